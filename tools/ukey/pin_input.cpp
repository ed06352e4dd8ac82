// PINs come from a descriptor, a file or the terminal (without echo), never
// from the command line, and live only in wiped buffers.
#include "cli.h"

#include "token/config.h"
#include "client/messages.h"
#include "token/pin_rules.h"

#include <algorithm>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

namespace ukey::cli {

namespace {

constexpr std::size_t max_pin = 256;

// One line from fd, read byte by byte so several PINs can share one
// descriptor (--pin-fd 3 --new-pin-fd 3).
client::Secret read_line(int fd, const std::string& what)
{
    client::Secret s;
    for (;;) {
        unsigned char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || c == '\n')
            break;
        if (s.size() >= max_pin)
            throw Failure(bad_input, "the " + what + " given is longer than " + std::to_string(max_pin) + " bytes");
        s.push_back(c);
    }
    if (!s.empty() && s.data()[s.size() - 1] == '\r')
        s.pop_back();
    return s;
}

// A file from an option is named by the option, never by its path: whoever
// typed `--pin-file 8675309` meant --pin-fd, or put the PIN itself there, and
// must not find it echoed into a terminal log. (A file from the config is
// named by its path.)
client::Secret from_file(const PinSource& src, const std::string& what)
{
    const std::string file = src.file_option.empty() ? "file " + shown(src.file)
                                                     : "file given with " + src.file_option;
    int fd = open(src.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw Failure(bad_input, "cannot read the " + what + " " + file + ": " + std::strerror(errno) +
                                     (src.file_option.empty() ? "" : " (its name is not shown: it might be a PIN)"));
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "ukey: warning: the %s %s is readable by other users; keep PIN files private (chmod 600)\n",
                what.c_str(), file.c_str());
    client::Secret s = read_line(fd, what);
    close(fd);
    return s;
}

client::Secret from_terminal(const std::string& prompt, const std::string& what)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        throw Failure(usage, "the " + what + " is needed: run on a terminal, or give it with --pin-fd/--pin-file "
                             "(or the matching --so-pin-*/--new-pin-* option)");
    struct termios old;
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        struct termios quiet = old;
        quiet.c_lflag &= ~(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    ssize_t ignored = write(fd, prompt.data(), prompt.size());
    client::Secret s = read_line(fd, what);
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    ignored = write(fd, "\n", 1);
    (void)ignored;
    close(fd);
    return s;
}

} // namespace

client::Secret read_pin(const PinSource& src, const std::string& what)
{
    client::Secret s = src.fd >= 0      ? read_line(src.fd, what)
                       : !src.file.empty() ? from_file(src, what)
                                           : from_terminal("Enter the " + what + ": ", what);
    if (s.empty())
        throw Failure(bad_input, "the " + what + " is empty");
    return s;
}

client::Secret read_new_pin(const PinSource& src, const std::string& what)
{
    if (src.fd >= 0 || !src.file.empty())
        return read_pin(src, what);
    client::Secret a = from_terminal("Enter the " + what + ": ", what);
    client::Secret b = from_terminal("Enter it again: ", what);
    if (a.empty())
        throw Failure(bad_input, "the " + what + " is empty");
    if (!(a == b))
        throw Failure(bad_input, "the two entries of the " + what + " differ: nothing was changed");
    return a;
}

void check_new_pin(const client::KeyInfo& k, const client::Secret& pin, const std::string& doing, bool trivial_ok)
{
    PinRules rules;
    if (auto cfg = load_config(config_path()))
        rules = cfg->pin_rules;
    if (trivial_ok)
        rules.reject_trivial = false;
    CK_RV rv = ukey::check_new_pin(pin.data(), pin.size(), k.token, rules);
    if (rv != CKR_OK)
        throw Failure(bad_input, doing + ": " + client::explain(rv) + " (nothing was changed)", rv);
}

void add_pin_options(CLI::App* cmd, PinSource& src, const std::string& name, const std::string& what)
{
    cmd->add_option("--" + name + "-fd", src.fd, "read the " + what + " from this file descriptor (one line)")
        ->check(CLI::NonNegativeNumber);
    src.file_option = "--" + name + "-file";
    cmd->add_option("--" + name + "-file", src.file, "read the " + what + " from the first line of this file");
}

} // namespace ukey::cli

// trustprobe FILE...: ukey's own verdict (token/file_trust.h) on each file,
// and what ukey reads from the environment, as the process it runs in sees
// them, and which of the backends' variables ukey removes before loading
// backends. Made setuid root by the test, it shows the rules of a privileged
// process (AT_SECURE). One line per file: "ok RESOLVED", "refused MESSAGE"
// or "error MESSAGE".
#include "token/config.h"
#include "token/file_trust.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

int main(int argc, char** argv)
{
    const char* level = secure_getenv("UKEY_LOG_LEVEL");
    std::printf("uid=%u euid=%u privileged=%d refused=%d\n", unsigned(getuid()), unsigned(geteuid()),
                int(ukey::privileged_process()), int(ukey::untrusted_files_refused()));
    std::printf("config_path=%s\n", ukey::config_path().c_str());
    std::printf("UKEY_LOG_LEVEL=%s\n", level ? level : "(ignored)");
    // What a backend would still find in the environment after ukey's scrub.
    std::string removed;
    for (const auto& n : ukey::scrub_backend_environment())
        removed += (removed.empty() ? "" : ",") + n;
    const char* shc = std::getenv("SOFTHSM2_CONF");
    std::printf("scrubbed=%s SOFTHSM2_CONF=%s\n", removed.empty() ? "(none)" : removed.c_str(),
                shc ? shc : "(unset)");
    for (int i = 1; i < argc; ++i) {
        auto r = ukey::trusted_file(argv[i], "file");
        if (r)
            std::printf("ok %s\n", r->c_str());
        else
            std::printf("%s %s\n", ukey::is_refusal(r.error()) ? "refused" : "error", r.error().message.c_str());
    }
    std::fflush(stdout);
    return 0;
}

// ukey-test-file-server: serves the files of one folder over plain HTTP on
// 127.0.0.1 (a CA's CRL distribution point for cli.doctor). GET /NAME
// answers the file NAME (no '/' in it) or 404; one connection at a time.
// Test-only; never installed.
//
//   ukey-test-file-server DIR PORT_FILE    (writes the port, then serves)
#include <ukeytest/loopback.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

int main(int argc, char** argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s DIR PORT_FILE\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    unsigned short bound = 0;
    const int s = ukeytest::listen_on_loopback(bound);
    if (s < 0) {
        std::perror("listen");
        return 1;
    }
    {
        std::ofstream port(argv[2] + std::string(".tmp"));
        port << bound << "\n";
    }
    std::rename((argv[2] + std::string(".tmp")).c_str(), argv[2]);
    for (;;) {
        int c = accept4(s, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        std::string req;
        char buf[2048];
        while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
            const ssize_t n = read(c, buf, sizeof buf);
            if (n <= 0)
                break;
            req.append(buf, static_cast<std::size_t>(n));
        }
        std::string name;
        if (req.rfind("GET /", 0) == 0)
            name = req.substr(5, req.find(' ', 5) - 5);
        std::string body, status = "404 Not Found";
        if (!name.empty() && name.find('/') == std::string::npos && name.find("..") == std::string::npos) {
            std::ifstream in(dir + "/" + name, std::ios::binary);
            if (in) {
                std::ostringstream all;
                all << in.rdbuf();
                body = all.str();
                status = "200 OK";
            }
        }
        const std::string head = "HTTP/1.0 " + status + "\r\nContent-Type: application/pkix-crl\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
        const std::string all = head + body;
        for (std::size_t at = 0; at < all.size();) {
            const ssize_t n = write(c, all.data() + at, all.size() - at);
            if (n <= 0)
                break;
            at += static_cast<std::size_t>(n);
        }
        close(c);
    }
}

// A one-connection-at-a-time HTTP/1.0 server on 127.0.0.1 for the SCEP fuzz
// targets: ScepClient talks real HTTP (OpenSSL's client) and has no other
// door, so each run's answer is served from here. `answer` gets the request
// (path with query, and the body of a POST) and returns the body to send.
// One process-wide instance, never freed (its thread runs until exit).
#pragma once

#include "client/scep.h"

#include <ukeytest/loopback.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace ukey::fuzz {

struct HttpRequest {
    std::string target; // "/scep?operation=GetCACert"
    std::string body;
};

class HttpServer {
public:
    using Answer = std::function<std::string(const HttpRequest&)>;

    static HttpServer& instance()
    {
        static HttpServer* s = new HttpServer; // lives until exit, with its thread
        return *s;
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/scep"; }
    void set_answer(Answer a)
    {
        std::lock_guard<std::mutex> l(mu_);
        answer_ = std::move(a);
    }

private:
    HttpServer()
    {
        unsigned short port = 0;
        fd_ = ukeytest::listen_on_loopback(port);
        if (fd_ < 0) {
            std::perror("scep_http: cannot listen on 127.0.0.1");
            std::abort();
        }
        port_ = port;
        std::thread([this] { serve(); }).detach();
    }

    static bool read_request(int c, HttpRequest& r)
    {
        std::string in;
        char buf[4096];
        std::size_t head_end;
        while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
            ssize_t n = recv(c, buf, sizeof buf, 0);
            if (n <= 0)
                return false;
            in.append(buf, std::size_t(n));
        }
        std::size_t sp1 = in.find(' '), sp2 = in.find(' ', sp1 + 1);
        if (sp1 == std::string::npos || sp2 == std::string::npos)
            return false;
        r.target = in.substr(sp1 + 1, sp2 - sp1 - 1);
        std::size_t want = 0;
        for (std::size_t at = in.find("\r\n"); at < head_end; at = in.find("\r\n", at + 2)) {
            if (strncasecmp(in.c_str() + at + 2, "Content-Length:", 15) == 0)
                want = std::strtoul(in.c_str() + at + 17, nullptr, 10);
        }
        r.body = in.substr(head_end + 4);
        while (r.body.size() < want) {
            ssize_t n = recv(c, buf, sizeof buf, 0);
            if (n <= 0)
                return false;
            r.body.append(buf, std::size_t(n));
        }
        return true;
    }

    void serve()
    {
        for (;;) {
            int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            HttpRequest r;
            if (read_request(c, r)) {
                std::string body;
                {
                    std::lock_guard<std::mutex> l(mu_);
                    if (answer_)
                        body = answer_(r);
                }
                std::string out = "HTTP/1.0 200 OK\r\nContent-Type: application/x-x509-ca-ra-cert\r\n"
                                  "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
                out += body;
                for (std::size_t at = 0; at < out.size();) {
                    ssize_t n = send(c, out.data() + at, out.size() - at, MSG_NOSIGNAL);
                    if (n <= 0)
                        break;
                    at += std::size_t(n);
                }
            }
            close(c);
        }
    }

    int fd_ = -1;
    int port_ = 0;
    std::mutex mu_;
    Answer answer_;
};

// A client of the server, which answers every request with `data`.
inline client::ScepClient client_answered_with(const uint8_t* data, size_t size)
{
    auto& http = HttpServer::instance();
    std::string body(reinterpret_cast<const char*>(data), size);
    http.set_answer([body](const HttpRequest&) { return body; });
    return client::ScepClient(http.url(), std::chrono::seconds(10));
}

} // namespace ukey::fuzz

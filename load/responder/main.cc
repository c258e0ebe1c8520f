// The C-only responder: the core (reactor + HTTP/1.1) answering "Hello, world!" with no
// Python in the process. It is the floor every benchmark quotes: whatever the ASGI path
// costs above it is the price of Python.
//
//   dbridge-responder [--host 127.0.0.1] [--port 8000] [--uds PATH] [--io auto|uring|epoll]
//                     [--threads N]
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "http1/connection.h"
#include "io/reactor.h"
#include "net/listener.h"

namespace {

volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int) {
    stop_requested = 1;
}

class hello_handler final : public dbridge::http1::request_handler {
public:
    void on_request(dbridge::http1::connection& c, const dbridge::http1::request_head& head) override {
        c.send_continue();
    }
    void on_body(dbridge::http1::connection& c, std::string_view chunk) override {}
    void on_request_end(dbridge::http1::connection& c) override {
        static constexpr dbridge::http1::header_field headers[] = {
            {"content-type", "text/plain"},
            {"content-length", "13"},
        };
        c.start_response(200, headers);
        c.send_body("Hello, world!", false);
    }
    void on_disconnect(dbridge::http1::connection& c) override {}
};

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8000;
    std::string uds;
    std::string io = "auto";
    int threads = 1;
};

void serve(const options& opt, bool announce) {
    dbridge::io::reactor_config rc;
    rc.io = dbridge::io::parse_backend_choice(opt.io);
    auto reactor = dbridge::io::reactor::create(rc);
    dbridge::net::listen_options lo;
    lo.reuse_port = opt.threads > 1;
    auto listener = opt.uds.empty() ? dbridge::net::listener::tcp(opt.host, opt.port, lo)
                                    : dbridge::net::listener::unix_domain(opt.uds, lo);
    hello_handler handler;
    dbridge::http1::server_config sc;
    sc.warn = [](std::string_view m) { std::fprintf(stderr, "WARNING: %.*s\n", int(m.size()), m.data()); };
    dbridge::http1::server server(sc, handler);
    reactor->add_listener(listener.fd(), server);
    if (announce) {
        std::fprintf(stderr, "INFO: Using %s\nINFO: Responder running on %s (Press CTRL+C to quit)\n",
                     reactor->choice_reason().c_str(), listener.url().c_str());
    }
    while (stop_requested == 0) {
        reactor->poll(500);
    }
    reactor->stop_accepting();
    reactor->close_all();
    reactor->poll(0);
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "error: %s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--host") {
            opt.host = value();
        } else if (arg == "--port") {
            opt.port = static_cast<std::uint16_t>(std::atoi(value().c_str()));
        } else if (arg == "--uds") {
            opt.uds = value();
        } else if (arg == "--io") {
            opt.io = value();
        } else if (arg == "--threads") {
            opt.threads = std::atoi(value().c_str());
        } else {
            std::fprintf(stderr, "usage: %s [--host H] [--port P] [--uds PATH] [--io auto|uring|epoll] [--threads N]\n",
                         argv[0]);
            return 2;
        }
    }
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    try {
        std::vector<std::thread> extra;
        for (int t = 1; t < opt.threads; ++t) {
            extra.emplace_back([&opt] { serve(opt, false); });
        }
        serve(opt, true);
        for (auto& t : extra) {
            t.join();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ERROR: %s\n", e.what());
        return 1;
    }
    return 0;
}

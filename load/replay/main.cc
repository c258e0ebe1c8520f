// A fixed replay of requests through the core (reactor + HTTP/1.1 parser and writer),
// for counting instructions per request under callgrind: the figure that does not move
// with the machine's noise. The server runs on the main thread; a client thread sends a
// fixed mix, each batch only after the previous batch's responses have all arrived, so
// every run sees the same sequence of events.
//
//   dbridge-replay [--io epoll|uring] [--rounds N]
//
// One round = a GET, a HEAD, a POST with a 1 KB Content-Length body, a chunked POST, a
// GET with 20 headers, and 16 pipelined GETs: 21 requests. Prints the request count.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include "http1/connection.h"
#include "io/reactor.h"
#include "net/listener.h"

namespace {

class hello_handler final : public dbridge::http1::request_handler {
public:
    void on_request(dbridge::http1::connection& c, const dbridge::http1::request_head&) override {
        c.send_continue();
    }
    void on_body(dbridge::http1::connection&, std::string_view) override {}
    void on_request_end(dbridge::http1::connection& c) override {
        static constexpr dbridge::http1::header_field headers[] = {
            {"content-type", "text/plain"},
            {"content-length", "13"},
        };
        c.start_response(200, headers);
        c.send_body("Hello, world!", false);
    }
    void on_disconnect(dbridge::http1::connection&) override {}
};

struct batch {
    std::string bytes;
    int responses;
};

std::vector<batch> replay_mix() {
    std::vector<batch> mix;
    mix.push_back({"GET / HTTP/1.1\r\nHost: replay\r\nUser-Agent: replay/1\r\nAccept: */*\r\n\r\n", 1});
    mix.push_back({"HEAD /head HTTP/1.1\r\nHost: replay\r\n\r\n", 1});
    std::string body(1024, 'x');
    mix.push_back({"POST /items HTTP/1.1\r\nHost: replay\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n" +
                       body,
                   1});
    mix.push_back({"POST /chunks HTTP/1.1\r\nHost: replay\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "100\r\n" + std::string(256, 'y') + "\r\n10;ext=1\r\n" + std::string(16, 'z') + "\r\n0\r\n\r\n",
                   1});
    std::string many = "GET /headers?a=1&b=2 HTTP/1.1\r\nHost: replay\r\n";
    for (int i = 0; i < 20; ++i) {
        many += "X-Header-" + std::to_string(i) + ": value-" + std::to_string(i) + "\r\n";
    }
    mix.push_back({many + "\r\n", 1});
    std::string pipelined;
    for (int i = 0; i < 16; ++i) {
        pipelined += "GET /p HTTP/1.1\r\nHost: replay\r\n\r\n";
    }
    mix.push_back({pipelined, 16});
    return mix;
}

// Reads until `responses` complete responses (the HEAD one has no body) have arrived.
void read_responses(int fd, int responses, bool head) {
    static const std::string marker = "\r\n\r\n";
    std::string data;
    int seen = 0;
    char buf[65536];
    while (seen < responses) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            throw std::runtime_error("replay: the server closed the connection");
        }
        data.append(buf, static_cast<std::size_t>(n));
        for (;;) {
            std::size_t end = data.find(marker);
            if (end == std::string::npos) {
                break;
            }
            std::size_t length = head ? end + 4 : end + 4 + 13;
            if (data.size() < length) {
                break;
            }
            data.erase(0, length);
            ++seen;
        }
    }
}

void client(std::uint16_t port, int rounds, std::atomic<bool>& done, std::atomic<int>& requests) {
    try {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            throw std::runtime_error("replay: connect failed");
        }
        auto mix = replay_mix();
        for (int r = 0; r < rounds; ++r) {
            for (const auto& b : mix) {
                if (::send(fd, b.bytes.data(), b.bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(b.bytes.size())) {
                    throw std::runtime_error("replay: short send");
                }
                read_responses(fd, b.responses, b.bytes.rfind("HEAD", 0) == 0);
                requests += b.responses;
            }
        }
        ::close(fd);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        requests = -1;
    }
    done = true;
}

}  // namespace

int main(int argc, char** argv) {
    std::string io = "epoll";
    int rounds = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string arg = argv[i];
        if (arg == "--io") {
            io = argv[i + 1];
        } else if (arg == "--rounds") {
            rounds = std::atoi(argv[i + 1]);
        } else {
            std::fprintf(stderr, "usage: %s [--io epoll|uring] [--rounds N]\n", argv[0]);
            return 2;
        }
    }
    dbridge::io::reactor_config rc;
    rc.io = dbridge::io::parse_backend_choice(io);
    auto reactor = dbridge::io::reactor::create(rc);
    auto listener = dbridge::net::listener::tcp("127.0.0.1", 0, {});
    hello_handler handler;
    dbridge::http1::server server({}, handler);
    reactor->add_listener(listener.fd(), server);
    std::atomic<bool> done{false};
    std::atomic<int> requests{0};
    std::thread t(client, listener.port(), rounds, std::ref(done), std::ref(requests));
    while (!done) {
        reactor->poll(20);
    }
    t.join();
    reactor->stop_accepting();
    reactor->close_all();
    reactor->poll(0);
    if (requests < 0) {
        return 1;
    }
    std::printf("%d\n", requests.load());
    return 0;
}

// The real reactor and HTTP/1.1 engine over loopback, with each backend: keep-alive,
// pipelining, 1000 concurrent connections, a 100 MB chunked upload, large responses
// read slowly, timeouts and the error path. The server runs on its own thread (its ring
// is created there); the test thread is an ordinary blocking client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <charconv>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http1/connection.h"
#include "io/reactor.h"
#include "io/uring_reactor.h"
#include "net/listener.h"

namespace bdata = boost::unit_test::data;
using dbridge::http1::connection;
using dbridge::http1::header_field;
using dbridge::io::backend_choice;

namespace dbridge::io {
// Names the backend in each data-driven case's name.
std::ostream& operator<<(std::ostream& os, backend_choice b) {
    return os << (b == backend_choice::uring ? "uring" : "epoll");
}
}  // namespace dbridge::io

namespace {

const backend_choice backends[] = {backend_choice::uring, backend_choice::epoll};

// What the connection still held unsent right after the last response's send_body(),
// and how many free buffers the reactor's pool had when the last request began.
std::atomic<std::size_t> unsent_after_body{0};
std::atomic<std::size_t> pooled_at_request{0};

// Answers every request after its body: GET /bytes/N -> N bytes of a known pattern;
// anything else -> "<method> <target> <body length> <body checksum>".
class test_handler final : public dbridge::http1::request_handler {
public:
    void on_request(connection& c, const dbridge::http1::request_head& head) override {
        pooled_at_request = c.stream().owner().buffers().pooled();
        _method = head.method;
        _target = head.target;
        _length = 0;
        _sum = 0;
        c.send_continue();
    }
    void on_body(connection& c, std::string_view chunk) override {
        _length += chunk.size();
        for (unsigned char b : chunk) {
            _sum = _sum * 31 + b;
        }
    }
    void on_request_end(connection& c) override {
        std::string body;
        if (_target.rfind("/bytes/", 0) == 0) {
            std::size_t n = std::stoul(_target.substr(7));
            body.resize(n);
            for (std::size_t i = 0; i < n; ++i) {
                body[i] = static_cast<char>('a' + i % 26);
            }
        } else {
            body = _method + " " + _target + " " + std::to_string(_length) + " " + std::to_string(_sum);
        }
        std::string length = std::to_string(body.size());
        const header_field headers[] = {{"content-type", "text/plain"}, {"content-length", length}};
        c.start_response(200, headers);
        c.send_body(body, false);
        unsent_after_body = c.unsent_bytes();
    }
    void on_disconnect(connection& c) override { ++disconnects; }

    int disconnects = 0;

private:
    std::string _method;
    std::string _target;
    std::uint64_t _length = 0;
    std::uint32_t _sum = 0;
};

struct server_stats_copy {
    std::uint64_t requests = 0;
    std::uint64_t rejected = 0;
    std::uint64_t accepted = 0;
    std::uint64_t closed = 0;
    std::uint64_t no_buffers = 0;
};

class test_server {
public:
    explicit test_server(backend_choice io, dbridge::http1::server_config config = {}, bool unix_socket = false,
                         dbridge::io::reactor_config reactor_config = {})
        : _config(std::move(config)), _reactor_config(reactor_config) {
        if (unix_socket) {
            _path = "/tmp/dbridge-reactor-test-" + std::to_string(::getpid()) + ".sock";
            _listener = dbridge::net::listener::unix_domain(_path, {});
        } else {
            _listener = dbridge::net::listener::tcp("127.0.0.1", 0, {});
        }
        _thread = std::thread([this, io] { run(io); });
        while (!_ready.load()) {
            std::this_thread::yield();
        }
    }
    ~test_server() { stop(); }

    void stop() {
        if (_thread.joinable()) {
            _stop = true;
            _thread.join();
        }
        if (!_path.empty()) {
            ::unlink(_path.c_str());
        }
    }

    std::uint16_t port() const { return _listener.port(); }
    const std::string& path() const { return _path; }
    const server_stats_copy& stats() const { return _stats; }
    std::string backend;

private:
    void run(backend_choice io) {
        dbridge::io::reactor_config rc = _reactor_config;
        rc.io = io;
        auto reactor = dbridge::io::reactor::create(rc);
        backend = dbridge::io::backend_name(reactor->kind());
        test_handler handler;
        dbridge::http1::server server(_config, handler);
        reactor->add_listener(_listener.fd(), server);
        _ready = true;
        while (!_stop.load()) {
            reactor->poll(10);
        }
        reactor->stop_accepting();
        reactor->close_all();
        reactor->poll(0);
        reactor->poll(0);
        _stats.requests = server.stats().requests;
        _stats.rejected = server.stats().rejected;
        _stats.accepted = reactor->stats().accepted;
        _stats.closed = reactor->stats().closed;
        _stats.no_buffers = reactor->stats().no_buffers;
    }

    dbridge::http1::server_config _config;
    dbridge::io::reactor_config _reactor_config;
    dbridge::net::listener _listener;
    std::string _path;
    std::thread _thread;
    std::atomic<bool> _ready{false};
    std::atomic<bool> _stop{false};
    server_stats_copy _stats;
};

// ---- a small blocking HTTP client ------------------------------------------------------

int connect_to(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE_MESSAGE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0,
                          "connect: " << std::strerror(errno));
    timeval tv{10, 0};  // no test may hang: a read that waits this long fails the test
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

void send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        BOOST_REQUIRE_MESSAGE(n > 0, "send: " << std::strerror(errno));
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

struct response {
    int status = 0;
    std::string head;
    std::string body;
};

// Reads one response (Content-Length framed, or until close) from fd; `pending` carries
// bytes read past the end of a previous response.
class reader {
public:
    explicit reader(int fd) : _fd(fd) {}

    bool fill() {
        char buf[65536];
        ssize_t n = ::recv(_fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            return false;
        }
        _pending.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    response next() {
        response r;
        std::size_t end;
        while ((end = _pending.find("\r\n\r\n")) == std::string::npos) {
            BOOST_REQUIRE_MESSAGE(fill(), "connection ended before a response head; got: " << _pending);
        }
        r.head = _pending.substr(0, end + 4);
        _pending.erase(0, end + 4);
        r.status = std::stoi(r.head.substr(9, 3));
        if (r.status == 100) {
            return r;
        }
        auto cl = r.head.find("content-length: ");
        BOOST_REQUIRE_MESSAGE(cl != std::string::npos, "response without content-length: " << r.head);
        std::size_t length = std::stoul(r.head.substr(cl + 16));
        while (_pending.size() < length) {
            BOOST_REQUIRE_MESSAGE(fill(), "connection ended inside a response body");
        }
        r.body = _pending.substr(0, length);
        _pending.erase(0, length);
        return r;
    }

    // True when the server closed the connection (and sent nothing more).
    bool closed_by_peer() {
        if (!_pending.empty()) {
            return false;
        }
        char c;
        ssize_t n = ::recv(_fd, &c, 1, 0);
        return n == 0 || (n < 0 && errno == ECONNRESET);
    }

private:
    int _fd;
    std::string _pending;
};

std::string get(const std::string& target, const std::string& extra = "") {
    return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra + "\r\n";
}

// Whether `body` is what test_handler answers to GET /bytes/N.
bool is_bytes_pattern(std::string_view body) {
    for (std::size_t i = 0; i < body.size(); ++i) {
        if (body[i] != static_cast<char>('a' + i % 26)) {
            return false;
        }
    }
    return true;
}

std::uint32_t checksum(std::string_view data, std::uint32_t sum = 0) {
    for (unsigned char b : data) {
        sum = sum * 31 + b;
    }
    return sum;
}

void raise_fd_limit() {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(reactor_over_loopback)

BOOST_DATA_TEST_CASE(backend_is_the_one_asked_for, bdata::make(backends), io) {
    test_server server(io);
    BOOST_TEST(server.backend == (io == backend_choice::uring ? "io_uring" : "epoll"));
}

BOOST_DATA_TEST_CASE(keep_alive_serves_many_requests_on_one_connection, bdata::make(backends), io) {
    test_server server(io);
    int fd = connect_to(server.port());
    reader in(fd);
    for (int i = 0; i < 200; ++i) {
        std::string target = "/n/" + std::to_string(i);
        send_all(fd, get(target));
        response r = in.next();
        BOOST_TEST_REQUIRE(r.status == 200);
        BOOST_TEST(r.body == "GET " + target + " 0 0");
        BOOST_TEST(r.head.find("date: ") != std::string::npos);
    }
    ::close(fd);
    server.stop();
    BOOST_TEST(server.stats().accepted == 1u);
    BOOST_TEST(server.stats().requests == 200u);
}

BOOST_DATA_TEST_CASE(pipelined_requests_are_answered_in_order, bdata::make(backends), io) {
    test_server server(io);
    int fd = connect_to(server.port());
    std::string burst;
    for (int i = 0; i < 64; ++i) {
        burst += get("/p/" + std::to_string(i));
    }
    send_all(fd, burst);
    reader in(fd);
    for (int i = 0; i < 64; ++i) {
        response r = in.next();
        BOOST_TEST_REQUIRE(r.status == 200);
        BOOST_TEST(r.body == "GET /p/" + std::to_string(i) + " 0 0");
    }
    ::close(fd);
}

BOOST_DATA_TEST_CASE(pipelined_posts_with_bodies_split_across_writes, bdata::make(backends), io) {
    test_server server(io);
    int fd = connect_to(server.port());
    std::string burst;
    for (int i = 0; i < 20; ++i) {
        std::string body(1000 + i, static_cast<char>('A' + i));
        burst += "POST /b/" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body;
    }
    // Dribble it in odd-sized writes so heads and bodies straddle receive boundaries.
    for (std::size_t at = 0; at < burst.size(); at += 777) {
        send_all(fd, std::string_view(burst).substr(at, 777));
    }
    reader in(fd);
    for (int i = 0; i < 20; ++i) {
        std::string body(1000 + i, static_cast<char>('A' + i));
        response r = in.next();
        BOOST_TEST(r.body == "POST /b/" + std::to_string(i) + " " + std::to_string(body.size()) + " " +
                                 std::to_string(checksum(body)));
    }
    ::close(fd);
}

BOOST_DATA_TEST_CASE(a_thousand_concurrent_connections, bdata::make(backends), io) {
    raise_fd_limit();
    test_server server(io);
    std::vector<int> fds;
    for (int i = 0; i < 1000; ++i) {
        fds.push_back(connect_to(server.port()));
    }
    for (int i = 0; i < 1000; ++i) {
        send_all(fds[i], get("/c/" + std::to_string(i)));
    }
    for (int i = 0; i < 1000; ++i) {
        reader in(fds[i]);
        response r = in.next();
        BOOST_TEST_REQUIRE(r.body == "GET /c/" + std::to_string(i) + " 0 0");
    }
    // And all of them are still usable.
    for (int i = 0; i < 1000; i += 97) {
        send_all(fds[i], get("/again"));
        reader in(fds[i]);
        BOOST_TEST(in.next().body == "GET /again 0 0");
    }
    for (int fd : fds) {
        ::close(fd);
    }
    server.stop();
    BOOST_TEST(server.stats().accepted == 1000u);
    BOOST_TEST(server.stats().closed == 1000u);
}

BOOST_DATA_TEST_CASE(hundred_megabyte_chunked_upload, bdata::make(backends), io) {
    test_server server(io);
    int fd = connect_to(server.port());
    send_all(fd, "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    std::string chunk(64 * 1024, '\0');
    for (std::size_t i = 0; i < chunk.size(); ++i) {
        chunk[i] = static_cast<char>(i * 7 + 3);
    }
    char size_line[32];
    auto [end, ec] = std::to_chars(size_line, size_line + sizeof(size_line), chunk.size(), 16);
    std::string framed = std::string(size_line, end) + ";ext=1\r\n" + chunk + "\r\n";
    const std::size_t chunks = 100 * 1024 * 1024 / chunk.size();
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < chunks; ++i) {
        send_all(fd, framed);
        sum = checksum(chunk, sum);
    }
    send_all(fd, "0\r\nx-trailer: done\r\n\r\n");
    reader in(fd);
    response r = in.next();
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == "POST /upload " + std::to_string(chunks * chunk.size()) + " " + std::to_string(sum));
    ::close(fd);
}

BOOST_DATA_TEST_CASE(large_response_to_a_slow_reader_arrives_whole, bdata::make(backends), io) {
    test_server server(io);
    int fd = connect_to(server.port());
    // Far more than the socket buffers hold: the server's sends come back short and
    // must be resumed while the client is not reading.
    const std::size_t n = 32 * 1024 * 1024;
    send_all(fd, get("/bytes/" + std::to_string(n)) + get("/after"));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    reader in(fd);
    response r = in.next();
    BOOST_TEST_REQUIRE(r.body.size() == n);
    BOOST_TEST(is_bytes_pattern(r.body));
    BOOST_TEST(in.next().body == "GET /after 0 0");
    ::close(fd);
}

// A body of 64 KB or more leaves from the handler's memory inside send_body(), as far as
// the socket takes it (stream::send_now), behind the response head. A copied body leaves
// only when the reactor flushes at the end of its iteration, so right after send_body()
// all of it is still queued: that is how the two paths are told apart here.
BOOST_DATA_TEST_CASE(a_large_body_starts_out_from_the_callers_memory, bdata::make(backends), io) {
    test_server server(io);
    int fd = connect_to(server.port());
    reader in(fd);
    // A small exchange first, so the pool holds buffers (a fresh one is empty, and an
    // empty pool could not show a buffer kept back).
    send_all(fd, get("/warm"));
    BOOST_TEST_REQUIRE(in.next().status == 200);
    std::size_t pooled_before = 0;
    for (std::size_t n : {std::size_t{200 * 1024}, std::size_t{64 * 1024}, std::size_t{1000}}) {
        send_all(fd, get("/bytes/" + std::to_string(n)));
        response r = in.next();
        // A response sent straight away leaves no buffer behind on the idle connection:
        // each request starts with the pool as the previous one found it.
        if (pooled_before == 0) {
            pooled_before = pooled_at_request.load();
            BOOST_TEST_REQUIRE(pooled_before > 0);
        }
        BOOST_TEST(pooled_at_request.load() == pooled_before, n << " bytes");
        BOOST_TEST_REQUIRE(r.body.size() == n);
        BOOST_TEST(is_bytes_pattern(r.body));
        if (n >= 64 * 1024) {
            BOOST_TEST(unsent_after_body.load() < n, n << " bytes: " << unsent_after_body.load() << " still queued");
        } else {
            BOOST_TEST(unsent_after_body.load() > n, "a small body is copied and sent with the flush");
        }
    }
    ::close(fd);
}

BOOST_DATA_TEST_CASE(expect_100_continue_gets_an_interim_response, bdata::make(backends), io) {
    test_server server(io);
    int fd = connect_to(server.port());
    send_all(fd, "PUT /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    reader in(fd);
    BOOST_TEST_REQUIRE(in.next().status == 100);
    send_all(fd, "hello");
    BOOST_TEST(in.next().body == "PUT /e 5 " + std::to_string(checksum("hello")));
    ::close(fd);
}

BOOST_DATA_TEST_CASE(http10_and_connection_close_end_the_connection, bdata::make(backends), io) {
    test_server server(io);
    for (const char* request : {"GET /a HTTP/1.0\r\n\r\n", "GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"}) {
        int fd = connect_to(server.port());
        send_all(fd, request);
        reader in(fd);
        response r = in.next();
        BOOST_TEST(r.body == "GET /a 0 0");
        BOOST_TEST(r.head.find("connection: close") != std::string::npos);
        BOOST_TEST(in.closed_by_peer());
        ::close(fd);
    }
}

BOOST_DATA_TEST_CASE(head_response_carries_no_body, bdata::make(backends), io) {
    test_server server(io);
    int fd = connect_to(server.port());
    send_all(fd, "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n" + get("/next"));
    reader in(fd);
    // The HEAD response declares the GET body's length but sends none: the next bytes
    // on the wire are the following response.
    char buf[4096];
    std::string all;
    while (all.find("GET /next 0 0") == std::string::npos) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        BOOST_REQUIRE(n > 0);
        all.append(buf, static_cast<std::size_t>(n));
    }
    BOOST_TEST(all.find("HEAD /h") == std::string::npos);
    BOOST_TEST(all.find("HTTP/1.1 200", 1) != std::string::npos);
    ::close(fd);
}

BOOST_DATA_TEST_CASE(malformed_request_gets_400_then_close_and_server_goes_on, bdata::make(backends), io) {
    test_server server(io);
    int fd = connect_to(server.port());
    send_all(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    reader in(fd);
    response r = in.next();
    BOOST_TEST(r.status == 400);
    BOOST_TEST(r.body == "Invalid HTTP request received.");
    BOOST_TEST(in.closed_by_peer());
    ::close(fd);

    int again = connect_to(server.port());
    send_all(again, get("/fine"));
    reader in2(again);
    BOOST_TEST(in2.next().body == "GET /fine 0 0");
    ::close(again);
    server.stop();
    BOOST_TEST(server.stats().rejected == 1u);
}

BOOST_DATA_TEST_CASE(slow_request_head_gets_408, bdata::make(backends), io) {
    dbridge::http1::server_config config;
    config.header_timeout = std::chrono::milliseconds(200);
    test_server server(io, config);
    int fd = connect_to(server.port());
    send_all(fd, "GET /slow HTTP/1.1\r\nHost:");
    reader in(fd);
    response r = in.next();
    BOOST_TEST(r.status == 408);
    BOOST_TEST(in.closed_by_peer());
    ::close(fd);
}

BOOST_DATA_TEST_CASE(idle_keep_alive_connection_is_closed_after_the_timeout, bdata::make(backends), io) {
    dbridge::http1::server_config config;
    config.keep_alive_timeout = std::chrono::milliseconds(100);
    test_server server(io, config);
    int fd = connect_to(server.port());
    send_all(fd, get("/once"));
    reader in(fd);
    BOOST_TEST(in.next().status == 200);
    BOOST_TEST(in.closed_by_peer());  // within SO_RCVTIMEO, or the test fails
    ::close(fd);
}

BOOST_DATA_TEST_CASE(closing_connection_to_a_client_that_stops_reading_is_dropped, bdata::make(backends), io) {
    dbridge::io::reactor_config rc;
    rc.drain_timeout = std::chrono::milliseconds(200);
    test_server server(io, {}, false, rc);
    int fd = connect_to(server.port());
    // Far more than the socket buffers hold, on a connection that closes after it.
    const std::size_t n = 32 * 1024 * 1024;
    send_all(fd, "GET /bytes/" + std::to_string(n) + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // not reading at all
    std::size_t received = 0;
    char buf[65536];
    for (;;) {
        ssize_t got = ::recv(fd, buf, sizeof(buf), 0);
        if (got <= 0) {
            break;  // EOF or reset: the server gave up
        }
        received += static_cast<std::size_t>(got);
    }
    BOOST_TEST(received < n, "the whole response arrived: the stalled connection was not dropped");
    ::close(fd);
}

BOOST_DATA_TEST_CASE(client_reset_mid_upload_leaves_nothing_behind, bdata::make(backends), io) {
    test_server server(io);
    for (int i = 0; i < 50; ++i) {
        int fd = connect_to(server.port());
        send_all(fd, "POST /r HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\npartial");
        linger lg{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        ::close(fd);  // RST
    }
    int fd = connect_to(server.port());
    send_all(fd, get("/alive"));
    reader in(fd);
    BOOST_TEST(in.next().body == "GET /alive 0 0");
    ::close(fd);
    server.stop();
    BOOST_TEST(server.stats().accepted == 51u);
    BOOST_TEST(server.stats().closed == 51u);
}

BOOST_DATA_TEST_CASE(unix_domain_socket_listener, bdata::make(backends), io) {
    test_server server(io, {}, true);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, server.path().c_str());
    BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    send_all(fd, get("/uds"));
    reader in(fd);
    BOOST_TEST(in.next().body == "GET /uds 0 0");
    ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(listeners)

BOOST_AUTO_TEST_CASE(ipv6_loopback_listener_reports_its_url) {
    auto l = dbridge::net::listener::tcp("::1", 0, {});
    BOOST_TEST(l.family() == AF_INET6);
    BOOST_TEST(l.url() == "http://[::1]:" + std::to_string(l.port()));
}

BOOST_AUTO_TEST_CASE(adopting_a_non_listening_socket_fails_clearly) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_CHECK_THROW(dbridge::net::listener::adopt(fd), std::system_error);
    ::close(fd);
}

BOOST_AUTO_TEST_CASE(adopting_an_inherited_listening_socket) {
    auto original = dbridge::net::listener::tcp("127.0.0.1", 0, {});
    int copy = ::dup(original.fd());
    auto adopted = dbridge::net::listener::adopt(copy);
    BOOST_TEST(adopted.port() == original.port());
}

// What a container with io_uring forbidden looks like: the automatic choice is epoll and
// says why. Needs root (it flips the kernel's switch for a moment and puts it back).
BOOST_AUTO_TEST_CASE(automatic_choice_falls_back_to_epoll_when_io_uring_is_disabled) {
    const char* knob = "/proc/sys/kernel/io_uring_disabled";
    std::string previous;
    {
        FILE* f = std::fopen(knob, "r");
        BOOST_REQUIRE_MESSAGE(f != nullptr, knob << " is not readable: this test needs kernel 6.6+");
        char buf[16] = {};
        BOOST_REQUIRE(std::fgets(buf, sizeof(buf), f) != nullptr);
        std::fclose(f);
        previous = buf;
    }
    auto write_knob = [&](const std::string& value) {
        FILE* f = std::fopen(knob, "w");
        BOOST_REQUIRE_MESSAGE(f != nullptr, "cannot write " << knob << ": this test needs root");
        std::fputs(value.c_str(), f);
        std::fclose(f);
    };
    write_knob("2");
    std::unique_ptr<dbridge::io::reactor> r;
    std::string probe_reason;
    try {
        probe_reason = dbridge::io::probe_uring().reason;
        dbridge::io::reactor_config rc;
        rc.io = backend_choice::automatic;
        r = dbridge::io::reactor::create(rc);
    } catch (...) {
        write_knob(previous);
        throw;
    }
    write_knob(previous);
    BOOST_TEST(std::string(dbridge::io::backend_name(r->kind())) == "epoll");
    BOOST_TEST(r->choice_reason().find("io_uring unavailable") != std::string::npos, r->choice_reason());
    BOOST_TEST(!probe_reason.empty());
    BOOST_CHECK_THROW(
        [&] {
            write_knob("2");
            try {
                dbridge::io::reactor_config rc;
                rc.io = backend_choice::uring;
                dbridge::io::reactor::create(rc);
            } catch (...) {
                write_knob(previous);
                throw;
            }
            write_knob(previous);
        }(),
        std::system_error);
}

BOOST_AUTO_TEST_CASE(forced_backend_names_are_parsed) {
    BOOST_TEST((dbridge::io::parse_backend_choice("epoll") == backend_choice::epoll));
    BOOST_TEST((dbridge::io::parse_backend_choice("uring") == backend_choice::uring));
    BOOST_TEST((dbridge::io::parse_backend_choice("auto") == backend_choice::automatic));
    BOOST_CHECK_THROW(dbridge::io::parse_backend_choice("kqueue"), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

// An outer event loop's descriptors polled through the ring (the ring as asyncio's
// selector): one-shot polls, level-triggered by re-arming, cancellation, and the wait
// guard called around the blocking wait only.
BOOST_AUTO_TEST_SUITE(fd_watches)

struct recorded_watch final : dbridge::io::fd_watch {
    std::vector<int> results;
    void on_poll(int result) override { results.push_back(result); }
};

struct counting_guard final : dbridge::io::wait_guard {
    int released = 0;
    int reacquired = 0;
    void release() override { ++released; }
    void reacquire() override { ++reacquired; }
};

std::unique_ptr<dbridge::io::uring_reactor> make_uring() {
    dbridge::io::reactor_config config;
    config.io = backend_choice::uring;
    auto r = dbridge::io::reactor::create(config);
    return std::unique_ptr<dbridge::io::uring_reactor>(static_cast<dbridge::io::uring_reactor*>(r.release()));
}

BOOST_AUTO_TEST_CASE(readiness_is_reported_once_per_arm_and_again_when_rearmed) {
    auto r = make_uring();
    int fds[2];
    BOOST_REQUIRE_EQUAL(::pipe(fds), 0);
    recorded_watch w;
    w.fd = fds[0];
    w.events = POLLIN;
    r->watch(w);
    r->poll(0);
    BOOST_TEST(w.results.empty());  // nothing to read yet
    BOOST_TEST(w.in_kernel);
    BOOST_REQUIRE_EQUAL(::write(fds[1], "x", 1), 1);
    r->poll(1000);
    BOOST_REQUIRE_EQUAL(w.results.size(), 1u);
    BOOST_TEST((w.results[0] & POLLIN) != 0);
    BOOST_TEST(!w.in_kernel);
    // Not read: re-arming reports it again at once (level-triggered).
    r->watch(w);
    r->poll(1000);
    BOOST_REQUIRE_EQUAL(w.results.size(), 2u);
    BOOST_TEST((w.results[1] & POLLIN) != 0);
    ::close(fds[0]);
    ::close(fds[1]);
}

BOOST_AUTO_TEST_CASE(unwatch_cancels_an_armed_poll) {
    auto r = make_uring();
    int fds[2];
    BOOST_REQUIRE_EQUAL(::pipe(fds), 0);
    recorded_watch w;
    w.fd = fds[0];
    w.events = POLLIN;
    r->watch(w);
    r->poll(0);
    r->unwatch(w);
    for (int i = 0; i < 10 && w.in_kernel; ++i) {
        r->poll(100);
    }
    BOOST_REQUIRE_EQUAL(w.results.size(), 1u);
    BOOST_TEST(w.results[0] == -ECANCELED);
    ::close(fds[0]);
    ::close(fds[1]);
}

BOOST_AUTO_TEST_CASE(wait_guard_is_released_only_around_a_blocking_wait) {
    auto r = make_uring();
    counting_guard g;
    r->set_wait_guard(&g);
    r->poll(0);
    BOOST_TEST(g.released == 0);
    r->poll(5);  // nothing happens: times out
    BOOST_TEST(g.released == 1);
    BOOST_TEST(g.reacquired == 1);
    r->set_wait_guard(nullptr);
}

BOOST_AUTO_TEST_SUITE_END()

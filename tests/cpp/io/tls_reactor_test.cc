// HTTPS over loopback through the real reactor (each backend) and the unchanged HTTP/1.1
// engine, with a blocking OpenSSL client: TLS is the reactor's per-stream filter, so
// http1 never sees ciphertext.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "../tls/test_certificates.h"
#include "http1/connection.h"
#include "io/reactor.h"
#include "net/listener.h"
#include "tls/context.h"

namespace dbridge::io {
// Defined in reactor_test.cc: names the backend in each data-driven case's name.
std::ostream& operator<<(std::ostream& os, backend_choice b);
}  // namespace dbridge::io

namespace bdata = boost::unit_test::data;
using dbridge::http1::connection;
using dbridge::http1::header_field;
using dbridge::io::backend_choice;
using dbridge::testing::test_certificates;

namespace {

const backend_choice tls_backends[] = {backend_choice::uring, backend_choice::epoll};

// GET /bytes/N -> N bytes of a pattern; anything else -> "<target> <body length>".
class answer_handler final : public dbridge::http1::request_handler {
public:
    void on_request(connection& c, const dbridge::http1::request_head& head) override {
        _target = head.target;
        _length = 0;
    }
    void on_body(connection& c, std::string_view chunk) override { _length += chunk.size(); }
    void on_request_end(connection& c) override {
        std::string body;
        if (_target.rfind("/bytes/", 0) == 0) {
            std::size_t n = std::stoul(_target.substr(7));
            body.resize(n);
            for (std::size_t i = 0; i < n; ++i) {
                body[i] = static_cast<char>('a' + i % 26);
            }
        } else {
            body = _target + " " + std::to_string(_length);
        }
        std::string length = std::to_string(body.size());
        const header_field headers[] = {{"content-length", length}};
        c.start_response(200, headers);
        c.send_body(body, false);
    }
    void on_disconnect(connection& c) override {}

private:
    std::string _target;
    std::size_t _length = 0;
};

// A reactor on its own thread with a TLS listener and a plaintext one.
class tls_server {
public:
    explicit tls_server(backend_choice io, dbridge::http1::server_config config = {})
        : _config(std::move(config)),
          _tls_listener(dbridge::net::listener::tcp("127.0.0.1", 0, {})),
          _plain_listener(dbridge::net::listener::tcp("127.0.0.1", 0, {})) {
        dbridge::tls::context_options o;
        o.certfile = test_certificates().server_cert;
        o.keyfile = test_certificates().server_key;
        _context = std::make_unique<dbridge::tls::context>(o);
        _thread = std::thread([this, io] { run(io); });
        while (!_ready.load()) {
            std::this_thread::yield();
        }
    }
    ~tls_server() { stop(); }
    void stop() {
        if (_thread.joinable()) {
            _stop = true;
            _thread.join();
        }
    }
    std::uint16_t tls_port() const { return _tls_listener.port(); }
    std::uint16_t plain_port() const { return _plain_listener.port(); }
    std::uint64_t tls_errors = 0;
    std::uint64_t requests = 0;
    std::string backend;

private:
    void run(backend_choice io) {
        dbridge::io::reactor_config rc;
        rc.io = io;
        auto reactor = dbridge::io::reactor::create(rc);
        backend = dbridge::io::backend_name(reactor->kind());
        answer_handler handler;
        dbridge::http1::server server(_config, handler);
        reactor->add_listener(_tls_listener.fd(), server, _context.get());
        reactor->add_listener(_plain_listener.fd(), server);
        _ready = true;
        while (!_stop.load()) {
            reactor->poll(10);
        }
        reactor->stop_accepting();
        reactor->close_all();
        reactor->poll(0);
        reactor->poll(0);
        tls_errors = reactor->stats().tls_errors;
        requests = server.stats().requests;
    }

    dbridge::http1::server_config _config;
    std::unique_ptr<dbridge::tls::context> _context;
    dbridge::net::listener _tls_listener;
    dbridge::net::listener _plain_listener;
    std::thread _thread;
    std::atomic<bool> _ready{false};
    std::atomic<bool> _stop{false};
};

int connect_to(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE_MESSAGE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0,
                          "connect: " << std::strerror(errno));
    timeval tv{10, 0};  // no test may hang
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

// A blocking OpenSSL client on a socket, verifying the server against the test CA.
class https_client {
public:
    explicit https_client(std::uint16_t port) {
        _ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_load_verify_locations(_ctx, test_certificates().ca_cert.c_str(), nullptr);
        SSL_CTX_set_verify(_ctx, SSL_VERIFY_PEER, nullptr);
        _fd = connect_to(port);
        _ssl = SSL_new(_ctx);
        SSL_set_fd(_ssl, _fd);
        SSL_set1_host(_ssl, "localhost");
        const unsigned char alpn[] = "\x08http/1.1";
        SSL_set_alpn_protos(_ssl, alpn, sizeof(alpn) - 1);
    }
    ~https_client() {
        SSL_free(_ssl);
        ::close(_fd);
        SSL_CTX_free(_ctx);
    }
    bool handshake() { return SSL_connect(_ssl) == 1; }
    std::string alpn() const {
        const unsigned char* data = nullptr;
        unsigned len = 0;
        SSL_get0_alpn_selected(_ssl, &data, &len);
        return data == nullptr ? "" : std::string(reinterpret_cast<const char*>(data), len);
    }
    void send(const std::string& data) {
        BOOST_REQUIRE_MESSAGE(SSL_write(_ssl, data.data(), static_cast<int>(data.size())) ==
                                  static_cast<int>(data.size()),
                              "SSL_write failed");
    }
    // One Content-Length framed response: its body.
    std::string response_body() {
        std::size_t end;
        while ((end = _pending.find("\r\n\r\n")) == std::string::npos) {
            BOOST_REQUIRE_MESSAGE(fill(), "connection ended before a response head: " << _pending);
        }
        std::string head = _pending.substr(0, end + 4);
        _pending.erase(0, end + 4);
        BOOST_REQUIRE_MESSAGE(head.rfind("HTTP/1.1 200", 0) == 0, "unexpected response: " << head);
        auto cl = head.find("content-length: ");
        BOOST_REQUIRE(cl != std::string::npos);
        std::size_t length = std::stoul(head.substr(cl + 16));
        while (_pending.size() < length) {
            BOOST_REQUIRE_MESSAGE(fill(), "connection ended inside a body");
        }
        std::string body = _pending.substr(0, length);
        _pending.erase(0, length);
        return body;
    }
    // True when the server ended the TLS connection with close_notify.
    bool closed_cleanly() {
        char c;
        int n = SSL_read(_ssl, &c, 1);
        return n <= 0 && SSL_get_error(_ssl, n) == SSL_ERROR_ZERO_RETURN;
    }
    void close_notify() { SSL_shutdown(_ssl); }

private:
    bool fill() {
        char buf[65536];
        int n = SSL_read(_ssl, buf, sizeof(buf));
        if (n <= 0) {
            return false;
        }
        _pending.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    SSL_CTX* _ctx = nullptr;
    SSL* _ssl = nullptr;
    int _fd = -1;
    std::string _pending;
};

bool peer_closed(int fd) {
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            return true;
        }
        if (n < 0) {
            return false;  // the 10 s receive timeout
        }
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tls_reactor)

BOOST_DATA_TEST_CASE(https_requests_on_one_keep_alive_connection, bdata::make(tls_backends), io) {
    tls_server server(io);
    https_client client(server.tls_port());
    BOOST_REQUIRE(client.handshake());
    BOOST_TEST(client.alpn() == "http/1.1");
    client.send("GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n");
    BOOST_TEST(client.response_body() == "/one 0");
    client.send("POST /two HTTP/1.1\r\nHost: localhost\r\ncontent-length: 5\r\n\r\nhello");
    BOOST_TEST(client.response_body() == "/two 5");
    // Pipelined, in one record.
    client.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    BOOST_TEST(client.response_body() == "/a 0");
    BOOST_TEST(client.response_body() == "/b 0");
    server.stop();
    BOOST_TEST(server.requests == 4u);
    BOOST_TEST(server.tls_errors == 0u);
}

BOOST_DATA_TEST_CASE(large_https_response_arrives_whole, bdata::make(tls_backends), io) {
    tls_server server(io);
    https_client client(server.tls_port());
    BOOST_REQUIRE(client.handshake());
    const std::size_t size = 3 * 1024 * 1024 + 17;
    client.send("GET /bytes/" + std::to_string(size) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string body = client.response_body();
    BOOST_REQUIRE(body.size() == size);
    bool pattern_ok = true;
    for (std::size_t i = 0; i < size; ++i) {
        pattern_ok = pattern_ok && body[i] == static_cast<char>('a' + i % 26);
    }
    BOOST_TEST(pattern_ok);
}

BOOST_DATA_TEST_CASE(connection_close_ends_with_close_notify, bdata::make(tls_backends), io) {
    tls_server server(io);
    https_client client(server.tls_port());
    BOOST_REQUIRE(client.handshake());
    client.send("GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    BOOST_TEST(client.response_body() == "/last 0");
    BOOST_TEST(client.closed_cleanly());
}

BOOST_DATA_TEST_CASE(client_close_notify_closes_the_connection, bdata::make(tls_backends), io) {
    tls_server server(io);
    https_client client(server.tls_port());
    BOOST_REQUIRE(client.handshake());
    client.send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    BOOST_TEST(client.response_body() == "/x 0");
    client.close_notify();
    BOOST_TEST(client.closed_cleanly());
}

BOOST_DATA_TEST_CASE(plaintext_on_the_tls_port_is_a_counted_tls_error, bdata::make(tls_backends), io) {
    tls_server server(io);
    int fd = connect_to(server.tls_port());
    const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    BOOST_TEST(peer_closed(fd));
    ::close(fd);
    // The server goes on: HTTPS and the plaintext listener beside it both still work.
    https_client client(server.tls_port());
    BOOST_REQUIRE(client.handshake());
    client.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    BOOST_TEST(client.response_body() == "/after 0");
    int plain = connect_to(server.plain_port());
    ::send(plain, request.data(), request.size(), MSG_NOSIGNAL);
    char buf[256];
    ssize_t n = ::recv(plain, buf, sizeof(buf), 0);
    BOOST_TEST(n > 12);
    BOOST_TEST(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0).rfind("HTTP/1.1 200", 0) == 0u);
    ::close(plain);
    server.stop();
    BOOST_TEST(server.tls_errors == 1u);
}

BOOST_DATA_TEST_CASE(client_that_never_starts_the_handshake_is_closed_by_the_header_timeout,
                     bdata::make(tls_backends), io) {
    dbridge::http1::server_config config;
    config.header_timeout = std::chrono::milliseconds(100);
    tls_server server(io, config);
    int fd = connect_to(server.tls_port());
    BOOST_TEST(peer_closed(fd));  // within the client's 10 s receive timeout
    ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()

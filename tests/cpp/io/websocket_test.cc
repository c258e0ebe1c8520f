// WebSocket sessions over loopback, with each backend: an HTTP/1.1 request upgraded
// (http1::connection::upgrade) to a ws::connection that echoes, and a raw client that
// writes masked frames byte by byte as RFC 6455 asks of clients. Echo, fragmentation,
// ping/pong, both closing handshakes, protocol errors, the size limit and the keepalive.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http1/connection.h"
#include "io/reactor.h"
#include "net/listener.h"
#include "ws/connection.h"
#include "ws/deflate.h"
#include "ws/handshake.h"

namespace dbridge::io {
// Defined in reactor_test.cc: names the backend in each data-driven case's name.
std::ostream& operator<<(std::ostream& os, backend_choice b);
}  // namespace dbridge::io

namespace bdata = boost::unit_test::data;
using dbridge::io::backend_choice;
namespace ws = dbridge::ws;

namespace {

const backend_choice ws_backends[] = {backend_choice::uring, backend_choice::epoll};

// Accepts every WebSocket handshake inside on_request() (the parser is on the stack:
// the deferred switch), then echoes messages. "close" makes the server start the
// closing handshake with 4000; "big" answers with a 1 MB binary message.
class echo_handler final : public dbridge::http1::request_handler, public ws::message_handler {
public:
    explicit echo_handler(ws::connection_pool& pool) : _pool(&pool) {}

    // permessage-deflate with these parameters for every WebSocket, or none.
    std::optional<ws::deflate_params> deflate;

    void on_request(dbridge::http1::connection& c, const dbridge::http1::request_head& head) override {
        ws::upgrade_request up = ws::parse_upgrade(head);
        if (up.error_status != 0) {
            const dbridge::http1::header_field headers[] = {{"content-length", "0"}};
            c.start_response(up.error_status, headers);
            c.send_body({}, false);
            return;
        }
        if (defer_accept) {
            // As an app on an asyncio loop answers: later, outside the parser.
            _deferred.emplace_back(&c, std::string(up.key));
            return;
        }
        accept(c, up.key);
    }

    // Accepts the handshakes deferred so far (called by the server loop between polls).
    void accept_deferred() {
        for (auto& [c, key] : _deferred) {
            accept(*c, key);
        }
        _deferred.clear();
    }
    bool defer_accept = false;
    void on_body(dbridge::http1::connection&, std::string_view) override {}
    void on_request_end(dbridge::http1::connection&) override {}
    void on_disconnect(dbridge::http1::connection&) override { ++http_disconnects; }
    void on_connection_closed(dbridge::http1::connection&) override { ++http_closed; }

    void on_message(ws::connection& c, ws::message_kind kind, std::string_view payload) override {
        if (payload == "close") {
            c.send_close(4000, "bye");
        } else if (payload == "big") {
            c.send_message(ws::message_kind::binary, std::string(1 << 20, 'x'));
        } else {
            c.send_message(kind, payload);
        }
    }
    void on_close(ws::connection&, std::uint16_t code, std::string_view reason) override {
        std::lock_guard<std::mutex> lock(mutex);
        closes.push_back(std::to_string(code) + " " + std::string(reason));
    }
    void on_released(ws::connection&) override { ++released; }

    std::atomic<int> http_disconnects{0};
    std::atomic<int> http_closed{0};
    std::atomic<int> released{0};
    std::mutex mutex;
    std::vector<std::string> closes;

private:
    void accept(dbridge::http1::connection& c, std::string_view key) {
        ws::write_accept(c.stream().output(), key, {}, {}, {});
        c.stream().flush();
        ws::connection& w = _pool->open(c.stream(), *this, deflate ? &*deflate : nullptr);
        c.upgrade(w);
    }

    ws::connection_pool* _pool;
    std::vector<std::pair<dbridge::http1::connection*, std::string>> _deferred;
};

class ws_server {
public:
    ws_server(backend_choice io, ws::connection_config config = {},
              std::optional<ws::deflate_params> deflate = std::nullopt, bool defer_accept = false)
        : _pool(config), _handler(_pool), _listener(dbridge::net::listener::tcp("127.0.0.1", 0, {})) {
        _handler.deflate = deflate;
        _handler.defer_accept = defer_accept;
        _thread = std::thread([this, io] {
            dbridge::io::reactor_config rc;
            rc.io = io;
            auto reactor = dbridge::io::reactor::create(rc);
            dbridge::http1::server server({}, _handler);
            reactor->add_listener(_listener.fd(), server);
            _ready = true;
            while (!_stop.load()) {
                reactor->poll(10);
                _handler.accept_deferred();
                reactor->flush();
            }
            reactor->stop_accepting();
            reactor->close_all();
            for (int i = 0; i < 100 && reactor->open_streams() > 0; ++i) {
                reactor->poll(10);
            }
        });
        while (!_ready.load()) {
            std::this_thread::yield();
        }
    }
    ~ws_server() { stop(); }
    void stop() {
        if (_thread.joinable()) {
            _stop = true;
            _thread.join();
        }
    }
    std::uint16_t port() const { return _listener.port(); }
    echo_handler& handler() { return _handler; }
    // The closes the handler saw, once the server thread has stopped.
    std::vector<std::string> closes() {
        stop();
        return _handler.closes;
    }

private:
    ws::connection_pool _pool;
    echo_handler _handler;
    dbridge::net::listener _listener;
    std::thread _thread;
    std::atomic<bool> _ready{false};
    std::atomic<bool> _stop{false};
};

// ---- a raw client ----------------------------------------------------------------------

struct frame {
    int opcode = -1;  // -1: the connection ended
    bool fin = false;
    std::string payload;
    int close_code() const {
        return payload.size() >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1])
                                   : 1005;
    }
};

std::string client_frame(int opcode, std::string_view payload, bool fin = true, bool masked = true, int rsv = 0) {
    std::string f;
    f.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
    const char mask_bit = masked ? static_cast<char>(0x80) : 0;
    if (payload.size() < 126) {
        f.push_back(static_cast<char>(mask_bit | payload.size()));
    } else if (payload.size() < 65536) {
        f.push_back(static_cast<char>(mask_bit | 126));
        f.push_back(static_cast<char>(payload.size() >> 8));
        f.push_back(static_cast<char>(payload.size() & 0xff));
    } else {
        f.push_back(static_cast<char>(mask_bit | 127));
        for (int i = 7; i >= 0; --i) {
            f.push_back(static_cast<char>((static_cast<std::uint64_t>(payload.size()) >> (8 * i)) & 0xff));
        }
    }
    const char key[4] = {0x12, 0x34, 0x56, 0x78};
    if (masked) {
        f.append(key, 4);
    }
    for (std::size_t i = 0; i < payload.size(); ++i) {
        f.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
    }
    return f;
}

std::string close_payload(int code, std::string_view reason = {}) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xff));
    p.append(reason);
    return p;
}

class client {
public:
    explicit client(std::uint16_t port, std::string_view first_frames = {}) {
        _fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        BOOST_REQUIRE(::connect(_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
        timeval tv{10, 0};  // no test may hang
        ::setsockopt(_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        // Frames sent in the same write as the handshake reach the server with the head:
        // the http1 connection must hand them over on upgrade.
        send(std::string("GET /chat HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n") +
             std::string(first_frames));
        std::size_t end;
        while ((end = _pending.find("\r\n\r\n")) == std::string::npos) {
            BOOST_REQUIRE_MESSAGE(fill(), "no handshake response");
        }
        head = _pending.substr(0, end + 4);
        _pending.erase(0, end + 4);
    }
    ~client() { ::close(_fd); }

    void send(std::string_view data) {
        while (!data.empty()) {
            ssize_t n = ::send(_fd, data.data(), data.size(), MSG_NOSIGNAL);
            BOOST_REQUIRE_MESSAGE(n > 0, "send: " << std::strerror(errno));
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    frame next() {
        frame f;
        if (!need(2)) {
            return f;
        }
        auto b0 = static_cast<unsigned char>(_pending[0]);
        auto b1 = static_cast<unsigned char>(_pending[1]);
        BOOST_REQUIRE_MESSAGE((b1 & 0x80) == 0, "a server frame must not be masked (RFC 6455 §5.1)");
        std::size_t header = 2;
        std::uint64_t length = b1 & 0x7f;
        if (length == 126) {
            BOOST_REQUIRE(need(4));
            length = (static_cast<unsigned char>(_pending[2]) << 8) | static_cast<unsigned char>(_pending[3]);
            header = 4;
        } else if (length == 127) {
            BOOST_REQUIRE(need(10));
            length = 0;
            for (int i = 2; i < 10; ++i) {
                length = (length << 8) | static_cast<unsigned char>(_pending[i]);
            }
            header = 10;
        }
        BOOST_REQUIRE(need(header + length));
        f.fin = (b0 & 0x80) != 0;
        f.opcode = b0 & 0x0f;
        f.payload = _pending.substr(header, length);
        _pending.erase(0, header + length);
        return f;
    }

    // True when the server closed the TCP connection after what was read.
    bool ended() {
        if (!_pending.empty()) {
            return false;
        }
        return !fill();
    }

    std::string head;

private:
    bool fill() {
        char buf[65536];
        ssize_t n = ::recv(_fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            return false;
        }
        _pending.append(buf, static_cast<std::size_t>(n));
        return true;
    }
    bool need(std::size_t n) {
        while (_pending.size() < n) {
            if (!fill()) {
                return false;
            }
        }
        return true;
    }

    int _fd = -1;
    std::string _pending;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(websocket_over_loopback)

BOOST_DATA_TEST_CASE(upgrade_answers_101_and_hands_over_frames_sent_with_the_head, bdata::make(ws_backends), io) {
    ws_server server(io);
    {
        client c(server.port(), client_frame(0x1, "early"));
        BOOST_TEST(c.head.rfind("HTTP/1.1 101 ", 0) == 0u);
        BOOST_TEST(c.head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos);
        frame f = c.next();
        BOOST_TEST(f.opcode == 0x1);
        BOOST_TEST(f.payload == "early");
        c.send(client_frame(0x2, std::string("\x00\x01\xff", 3)));
        f = c.next();
        BOOST_TEST(f.opcode == 0x2);
        BOOST_TEST(f.payload == std::string("\x00\x01\xff", 3));
    }
    server.stop();
    // The http1 side let go once (its per-connection state freed), without a disconnect.
    BOOST_TEST(server.handler().http_closed.load() == 1);
    BOOST_TEST(server.handler().http_disconnects.load() == 0);
    BOOST_TEST(server.handler().released.load() == 1);
    BOOST_TEST(server.closes() == std::vector<std::string>{"1006 "});
}

BOOST_DATA_TEST_CASE(upgrade_outside_the_parser_hands_over_bytes_that_waited, bdata::make(ws_backends), io) {
    ws_server server(io, {}, std::nullopt, true);
    {
        client c(server.port(), client_frame(0x1, "waited") + client_frame(0x1, "for the 101"));
        BOOST_TEST(c.head.rfind("HTTP/1.1 101 ", 0) == 0u);
        BOOST_TEST(c.next().payload == "waited");
        BOOST_TEST(c.next().payload == "for the 101");
        c.send(client_frame(0x1, "after"));
        BOOST_TEST(c.next().payload == "after");
    }
    server.stop();
    BOOST_TEST(server.handler().http_closed.load() == 1);
    BOOST_TEST(server.handler().http_disconnects.load() == 0);
}

BOOST_DATA_TEST_CASE(fragmented_message_is_delivered_whole, bdata::make(ws_backends), io) {
    ws_server server(io);
    client c(server.port());
    std::string big(100000, 'a');
    // §5.4: text frame without FIN, a ping in between (§5.5: control frames may be
    // interleaved), continuations, the last with FIN.
    c.send(client_frame(0x1, "he", false) + client_frame(0x9, "p") + client_frame(0x0, "ll", false) +
           client_frame(0x0, "o" + big, true));
    frame pong = c.next();
    BOOST_TEST(pong.opcode == 0xa);
    BOOST_TEST(pong.payload == "p");
    frame f = c.next();
    BOOST_TEST(f.opcode == 0x1);
    BOOST_TEST(f.fin);
    BOOST_TEST(f.payload == "hello" + big);
}

BOOST_DATA_TEST_CASE(client_close_is_echoed_then_the_server_closes, bdata::make(ws_backends), io) {
    ws_server server(io);
    client c(server.port());
    c.send(client_frame(0x8, close_payload(1001, "going")));
    frame f = c.next();
    BOOST_TEST(f.opcode == 0x8);
    BOOST_TEST(f.close_code() == 1001);
    BOOST_TEST(c.ended());
    BOOST_TEST(server.closes() == std::vector<std::string>{"1001 going"});
}

BOOST_DATA_TEST_CASE(server_close_waits_for_the_answer_then_closes, bdata::make(ws_backends), io) {
    ws_server server(io);
    client c(server.port());
    c.send(client_frame(0x1, "close"));
    frame f = c.next();
    BOOST_TEST(f.opcode == 0x8);
    BOOST_TEST(f.close_code() == 4000);
    BOOST_TEST(f.payload.substr(2) == "bye");
    c.send(client_frame(0x8, close_payload(4000)));
    BOOST_TEST(c.ended());
    BOOST_TEST(server.closes() == std::vector<std::string>{"4000 "});
}

BOOST_DATA_TEST_CASE(large_message_is_sent_whole, bdata::make(ws_backends), io) {
    ws_server server(io);
    client c(server.port());
    c.send(client_frame(0x1, "big"));
    frame f = c.next();
    BOOST_TEST(f.opcode == 0x2);
    BOOST_TEST(f.payload.size() == 1u << 20);
}

BOOST_DATA_TEST_CASE(compressed_messages_are_inflated_and_answers_compressed, bdata::make(ws_backends), io) {
    ws::deflate_params params;  // 15-bit windows, context kept: what a browser gets by default
    ws_server server(io, {}, params);
    client c(server.port());
    ws::deflater compress(15, false);
    ws::inflater inflate(15, false);
    // Highly compressible: a few compressed bytes inflate to more than one 16 KiB piece,
    // so the parser still has output after the last compressed byte was taken.
    for (std::size_t size : {std::size_t{10}, std::size_t{10000}, std::size_t{100000}}) {
        std::string message(size, 'z');
        std::string_view packed = compress.compress(message);
        c.send(client_frame(0x2, packed, true, true, 4));  // RSV1: compressed (RFC 7692 §6)
        frame f = c.next();
        BOOST_TEST_REQUIRE(f.opcode == 0x2);
        std::string out(size + 64, '\0');
        std::size_t produced = 0;
        auto step = inflate.inflate(f.payload, std::span<char>(out.data(), out.size()));
        BOOST_TEST_REQUIRE((step.result == ws::inflater::status::ok));
        produced += step.produced;
        for (;;) {
            auto tail = inflate.finish(std::span<char>(out.data() + produced, out.size() - produced));
            produced += tail.produced;
            BOOST_TEST_REQUIRE((tail.result != ws::inflater::status::error));
            if (tail.result == ws::inflater::status::finished) {
                break;
            }
        }
        BOOST_TEST(produced == size);
        BOOST_TEST((out.substr(0, produced) == message));
    }
}

struct protocol_error_case {
    const char* name;
    std::string bytes;
    int code;
};

std::ostream& operator<<(std::ostream& os, const protocol_error_case& c) {
    return os << c.name;
}

const protocol_error_case protocol_errors[] = {
    {"unmasked_client_frame_1002", client_frame(0x1, "x", true, false), 1002},  // §5.1
    {"reserved_opcode_1002", client_frame(0x3, "x"), 1002},                     // §5.2
    {"reserved_bit_without_extension_1002", client_frame(0x1, "x", true, true, 2), 1002},
    {"control_frame_over_125_bytes_1002", client_frame(0x9, std::string(126, 'p')), 1002},  // §5.5
    {"invalid_utf8_text_1007", client_frame(0x1, "\xc3\x28"), 1007},                         // §8.1
    {"message_over_the_limit_1009", client_frame(0x2, std::string(2000, 'b')), 1009},
};

BOOST_DATA_TEST_CASE(protocol_error_fails_the_connection_with_its_code,
                     bdata::make(ws_backends) * bdata::make(protocol_errors), io, error) {
    ws::connection_config config;
    config.max_message_size = 1000;
    ws_server server(io, config);
    client c(server.port());
    c.send(error.bytes);
    frame f = c.next();
    BOOST_TEST(f.opcode == 0x8);
    BOOST_TEST(f.close_code() == error.code);
    BOOST_TEST(c.ended());
    std::vector<std::string> closes = server.closes();
    BOOST_TEST_REQUIRE(closes.size() == 1u);
    BOOST_TEST(closes[0].rfind(std::to_string(error.code) + " ", 0) == 0u, "the handler is told " << closes[0]);
}

BOOST_DATA_TEST_CASE(keepalive_pings_and_closes_1011_without_a_pong, bdata::make(ws_backends), io) {
    ws::connection_config config;
    config.ping_interval = std::chrono::milliseconds(50);
    config.ping_timeout = std::chrono::milliseconds(50);
    ws_server server(io, config);
    client c(server.port());
    frame ping = c.next();
    BOOST_TEST(ping.opcode == 0x9);
    c.send(client_frame(0xa, ping.payload));  // answered: the session lives on
    frame second = c.next();
    BOOST_TEST(second.opcode == 0x9);
    BOOST_TEST(second.payload != ping.payload);
    frame f = c.next();  // not answered this time
    BOOST_TEST(f.opcode == 0x8);
    BOOST_TEST(f.close_code() == 1011);
    BOOST_TEST(c.ended());
    BOOST_TEST(server.closes() == std::vector<std::string>{"1011 keepalive ping timeout"});
}

// §5.5.3: a pong answers a ping only when it carries that ping's data; an unsolicited
// pong, or one with other data, must not keep a silent peer alive past the timeout.
BOOST_DATA_TEST_CASE(keepalive_ignores_pongs_that_do_not_echo_the_ping, bdata::make(ws_backends), io) {
    ws::connection_config config;
    config.ping_interval = std::chrono::milliseconds(50);
    config.ping_timeout = std::chrono::milliseconds(1000);  // room for the pongs below to arrive
    ws_server server(io, config);
    client c(server.port());
    frame ping = c.next();
    BOOST_TEST_REQUIRE(ping.opcode == 0x9);
    std::string other = ping.payload;
    other.back() = static_cast<char>(other.back() ^ 0x01);
    c.send(client_frame(0xa, "unsolicited"));
    c.send(client_frame(0xa, other));
    c.send(client_frame(0xa, ""));
    frame f = c.next();  // a matching pong would have led to a second ping instead
    BOOST_TEST(f.opcode == 0x8, "expected the 1011 close, got opcode " << int(f.opcode));
    BOOST_TEST(f.close_code() == 1011);
    BOOST_TEST(c.ended());
    BOOST_TEST(server.closes() == std::vector<std::string>{"1011 keepalive ping timeout"});
}

BOOST_AUTO_TEST_SUITE_END()

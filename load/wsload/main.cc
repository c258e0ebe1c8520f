// dbridge-wsload: the WebSocket load generator of `dbridge-asgi bench` (wrk drives no
// WebSockets, and a Python client saturates before the servers it measures).
//
//   dbridge-wsload --port P [--host 127.0.0.1] [--path /] [--connections 64] [--size 1024]
//                  [--duration 10] [--in-flight 1] [--binary]
//
// Opens the connections (RFC 6455 §4.1 client handshake, the 101 and its
// Sec-WebSocket-Accept checked), then for `duration` seconds each connection keeps
// `in-flight` messages of `size` bytes on the wire: it sends a masked message, waits for
// its echo, checks its length, type and every byte, records the round trip and sends the
// next. Then it stops sending, waits (bounded) for the echoes still on the way, and
// closes every connection with a close frame (§5.5.1, §7.1.2).
//
// One line on stdout, for machines (dbridge_bench.loadgen.parse_wsload):
//   DBRIDGE-WSLOAD messages=N seconds=S p50_us=.. p90_us=.. p99_us=.. p999_us=..
//                  connections=N connect=N handshake=N mismatch=N closed=N protocol=N timeout=N
// where the last six are errors by kind. The first error of each kind is described on
// stderr. Exit 0 when figures were printed (errors included: the caller judges), 2 on
// a usage error.
//
// One thread, epoll, non-blocking sockets: the client's own cost per message is a send,
// a receive and a memcmp of the payload, far below what an ASGI server spends on it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "ws/handshake.h"

namespace {

using clock_type = std::chrono::steady_clock;

std::uint64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

struct options {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string path = "/";
    int connections = 64;
    std::size_t size = 1024;
    double duration = 10.0;
    int in_flight = 1;
    bool binary = false;
};

enum error_kind {
    connect_error,
    handshake_error,
    mismatch_error,
    closed_error,
    protocol_error,
    timeout_error,
    kinds
};
const char* const error_names[kinds] = {"connect", "handshake", "mismatch", "closed", "protocol", "timeout"};

struct tally {
    std::uint64_t messages = 0;        // echoes received and checked before the deadline
    std::vector<std::uint64_t> rtt_ns;  // one per counted message
    std::uint64_t errors[kinds] = {};
};

tally totals;

void count_error(error_kind kind, int id, const std::string& what) {
    if (totals.errors[kind]++ == 0) {
        std::fprintf(stderr, "dbridge-wsload: connection %d: %s: %s\n", id, error_names[kind], what.c_str());
    }
}

// The payload of message number `seq`: a fixed printable pattern (valid UTF-8 for text
// messages) whose first bytes carry the sequence number in hex, so an echo of the wrong
// message, or a stale one, differs from what is expected.
void fill_payload(std::string& payload, std::size_t size, int id) {
    payload.resize(size);
    for (std::size_t i = 0; i < size; ++i) {
        payload[i] = static_cast<char>('a' + (i + static_cast<std::size_t>(id)) % 26);
    }
}

void stamp_sequence(std::string& payload, std::uint64_t seq) {
    static constexpr char hex[] = "0123456789abcdef";
    const std::size_t digits = std::min<std::size_t>(payload.size(), 16);
    for (std::size_t i = 0; i < digits; ++i) {
        payload[digits - 1 - i] = hex[(seq >> (4 * i)) & 15];
    }
}

// A client frame (§5.2): FIN, the opcode, the mask bit with a key (§5.3: every client
// frame is masked), the shortest length encoding, then the masked payload.
void append_frame(std::string& out, std::uint8_t opcode, std::string_view payload, std::uint32_t mask_key) {
    const std::size_t n = payload.size();
    out.push_back(static_cast<char>(0x80 | opcode));
    if (n < 126) {
        out.push_back(static_cast<char>(0x80 | n));
    } else if (n <= 0xffff) {
        out.push_back(static_cast<char>(0x80 | 126));
        out.push_back(static_cast<char>(n >> 8));
        out.push_back(static_cast<char>(n & 0xff));
    } else {
        out.push_back(static_cast<char>(0x80 | 127));
        for (int shift = 56; shift >= 0; shift -= 8) {
            out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xff));
        }
    }
    char mask[4];
    std::memcpy(mask, &mask_key, 4);
    out.append(mask, 4);
    const std::size_t start = out.size();
    out.append(payload);
    char* p = out.data() + start;
    for (std::size_t i = 0; i < n; ++i) {
        p[i] ^= mask[i & 3];
    }
}

enum class phase { handshake, open, closing, done };

struct connection {
    int id = 0;
    int fd = -1;
    phase state = phase::handshake;
    std::string key;         // Sec-WebSocket-Key sent
    std::string out;         // bytes not yet written
    std::size_t out_sent = 0;
    bool want_write = false;
    std::string in;          // bytes received, not yet parsed
    std::string message;     // the data message being reassembled (fragments, §5.4)
    bool in_message = false;
    std::uint8_t message_opcode = 0;
    std::string payload;     // the next message to send (pattern + sequence)
    std::string expected;    // the same for the oldest message in flight
    std::uint64_t next_seq = 0;
    std::vector<std::uint64_t> sent_at;  // ring of send times, oldest first from `head`
    std::size_t head = 0;
    std::size_t pending = 0;  // messages in flight
};

class load_run {
public:
    explicit load_run(const options& opt) : _opt(opt), _rng(std::random_device{}()) {}

    int run();

private:
    void open_all();
    void start_sending();
    void send_message(connection& c);
    void flush(connection& c);
    void on_readable(connection& c);
    void parse_handshake(connection& c);
    void parse_frames(connection& c);
    void on_message(connection& c, std::uint8_t opcode, const std::string& data);
    void fail(connection& c, error_kind kind, const std::string& what);
    void finish(connection& c);
    void begin_close(connection& c);
    void poll_until(std::uint64_t deadline_ns, bool (load_run::*done)() const);
    bool none_pending() const;
    bool all_done() const;
    bool handshakes_over() const;
    void set_events(connection& c);

    const options& _opt;
    std::mt19937 _rng;
    int _epoll = -1;
    std::vector<connection> _conns;
    bool _sending = false;  // before the deadline: echoes are counted and answered with the next message
    int _alive = 0;         // connections not done
};

void load_run::fail(connection& c, error_kind kind, const std::string& what) {
    count_error(kind, c.id, what);
    finish(c);
}

void load_run::finish(connection& c) {
    if (c.state == phase::done) {
        return;
    }
    c.state = phase::done;
    --_alive;
    if (c.fd >= 0) {
        epoll_ctl(_epoll, EPOLL_CTL_DEL, c.fd, nullptr);
        close(c.fd);
        c.fd = -1;
    }
}

void load_run::set_events(connection& c) {
    epoll_event ev{};
    ev.events = c.want_write ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(c.id);
    epoll_ctl(_epoll, EPOLL_CTL_MOD, c.fd, &ev);
}

void load_run::flush(connection& c) {
    while (c.out_sent < c.out.size()) {
        const ssize_t n = send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            if (errno == EINTR) {
                continue;
            }
            fail(c, closed_error, std::string("send: ") + std::strerror(errno));
            return;
        }
        c.out_sent += static_cast<std::size_t>(n);
    }
    if (c.out_sent == c.out.size()) {
        c.out.clear();
        c.out_sent = 0;
    }
    const bool want = !c.out.empty();
    if (want != c.want_write) {
        c.want_write = want;
        set_events(c);
    }
}

void load_run::open_all() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(_opt.port));
    if (inet_pton(AF_INET, _opt.host.c_str(), &addr.sin_addr) != 1) {
        std::fprintf(stderr, "dbridge-wsload: --host must be an IPv4 address, not %s\n", _opt.host.c_str());
        std::exit(2);
    }
    _conns.resize(static_cast<std::size_t>(_opt.connections));
    _alive = _opt.connections;
    for (int i = 0; i < _opt.connections; ++i) {
        connection& c = _conns[static_cast<std::size_t>(i)];
        c.id = i;
        c.sent_at.assign(static_cast<std::size_t>(_opt.in_flight), 0);
        fill_payload(c.payload, _opt.size, i);
        c.expected = c.payload;
        // Loopback: a blocking connect returns at once (accepted into the backlog or refused).
        c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c.fd < 0 || connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            const std::string why = std::strerror(errno);
            if (c.fd >= 0) {
                close(c.fd);
                c.fd = -1;
            }
            fail(c, connect_error, "connect: " + why);
            continue;
        }
        const int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        epoll_ctl(_epoll, EPOLL_CTL_ADD, c.fd, &ev);

        // §4.1: a random 16-byte nonce, base64-encoded (24 characters).
        static constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        unsigned char nonce[18] = {};
        for (int k = 0; k < 16; ++k) {
            nonce[k] = static_cast<unsigned char>(_rng());
        }
        for (int k = 0; k < 18; k += 3) {
            const std::uint32_t v =
                (std::uint32_t{nonce[k]} << 16) | (std::uint32_t{nonce[k + 1]} << 8) | nonce[k + 2];
            c.key.push_back(b64[(v >> 18) & 63]);
            c.key.push_back(b64[(v >> 12) & 63]);
            c.key.push_back(b64[(v >> 6) & 63]);
            c.key.push_back(b64[v & 63]);
        }
        c.key.resize(22);
        c.key += "==";
        c.out = "GET " + _opt.path + " HTTP/1.1\r\nHost: " + _opt.host + ":" + std::to_string(_opt.port) +
                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + c.key +
                "\r\nSec-WebSocket-Version: 13\r\n\r\n";
        flush(c);
    }
}

void load_run::send_message(connection& c) {
    stamp_sequence(c.payload, c.next_seq++);
    append_frame(c.out, _opt.binary ? 0x2 : 0x1, c.payload, static_cast<std::uint32_t>(_rng()));
    c.sent_at[(c.head + c.pending) % c.sent_at.size()] = now_ns();
    ++c.pending;
}

void load_run::start_sending() {
    _sending = true;
    for (connection& c : _conns) {
        if (c.state != phase::open) {
            continue;
        }
        for (int k = 0; k < _opt.in_flight; ++k) {
            send_message(c);
        }
        flush(c);
    }
}

void load_run::on_readable(connection& c) {
    char buf[65536];
    while (c.state != phase::done) {
        const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n > 0) {
            c.in.append(buf, static_cast<std::size_t>(n));
            if (static_cast<std::size_t>(n) < sizeof buf) {
                break;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        // EOF or a reset. After our close frame that is the end we asked for.
        if (c.state == phase::closing) {
            finish(c);
        } else if (c.state == phase::handshake) {
            fail(c, handshake_error, "the server closed the connection before answering 101");
        } else {
            fail(c, closed_error, n == 0 ? "the server closed the connection" : std::strerror(errno));
        }
        return;
    }
    if (c.state == phase::handshake) {
        parse_handshake(c);
    }
    if (c.state == phase::open || c.state == phase::closing) {
        parse_frames(c);
    }
    if (c.state != phase::done) {
        flush(c);
    }
}

bool header_is(std::string_view line, std::string_view name) {
    if (line.size() < name.size() + 1 || line[name.size()] != ':') {
        return false;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        const auto have = static_cast<unsigned char>(line[i]);
        const auto want = static_cast<unsigned char>(name[i]);
        if (std::tolower(have) != std::tolower(want)) {
            return false;
        }
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// §4.1 items 1-5 of the client's checks on the server's answer: status 101 and a
// Sec-WebSocket-Accept derived from our key (Upgrade and Connection are not re-checked:
// every server under test sends them, and a wrong accept already fails the handshake).
void load_run::parse_handshake(connection& c) {
    const std::size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
        if (c.in.size() > 16384) {
            fail(c, handshake_error, "no end of the response head in 16 KiB");
        }
        return;
    }
    const std::string_view head(c.in.data(), end);
    const std::size_t first_eol = head.find("\r\n");
    const std::string_view status_line = head.substr(0, first_eol);
    if (status_line.substr(0, 13) != "HTTP/1.1 101 " && status_line != "HTTP/1.1 101") {
        fail(c, handshake_error, "answered " + std::string(status_line) + " instead of 101");
        return;
    }
    const auto expected = dbridge::ws::accept_key(c.key);
    bool accepted = false;
    std::size_t pos = first_eol == std::string_view::npos ? head.size() : first_eol + 2;
    while (pos < head.size()) {
        std::size_t eol = head.find("\r\n", pos);
        if (eol == std::string_view::npos) {
            eol = head.size();
        }
        const std::string_view line = head.substr(pos, eol - pos);
        if (header_is(line, "sec-websocket-accept")) {
            accepted = trim(line.substr(21)) == std::string_view(expected.data(), expected.size());
        }
        pos = eol + 2;
    }
    if (!accepted) {
        fail(c, handshake_error, "missing or wrong Sec-WebSocket-Accept");
        return;
    }
    c.in.erase(0, end + 4);
    c.state = phase::open;
    if (_sending) {
        // A connection that finished its handshake after the others started.
        for (int k = 0; k < _opt.in_flight; ++k) {
            send_message(c);
        }
    }
}

// Server frames (§5.2): never masked (§5.1), no RSV bits (no extension was offered),
// control frames whole and at most 125 bytes (§5.5); data messages may be fragmented.
void load_run::parse_frames(connection& c) {
    std::size_t at = 0;
    while (c.state == phase::open || c.state == phase::closing) {
        const std::size_t avail = c.in.size() - at;
        if (avail < 2) {
            break;
        }
        const auto* p = reinterpret_cast<const unsigned char*>(c.in.data() + at);
        const bool fin = (p[0] & 0x80) != 0;
        const std::uint8_t opcode = p[0] & 0x0f;
        if ((p[0] & 0x70) != 0 || (p[1] & 0x80) != 0) {
            fail(c, protocol_error, "a server frame with RSV bits or a mask");
            return;
        }
        std::uint64_t len = p[1] & 0x7f;
        std::size_t header = 2;
        if (len == 126) {
            if (avail < 4) {
                break;
            }
            len = (std::uint64_t{p[2]} << 8) | p[3];
            header = 4;
        } else if (len == 127) {
            if (avail < 10) {
                break;
            }
            len = 0;
            for (int k = 2; k < 10; ++k) {
                len = (len << 8) | p[k];
            }
            header = 10;
        }
        if (len > (std::uint64_t{1} << 31)) {
            fail(c, protocol_error, "a frame over 2 GiB");
            return;
        }
        if (avail < header + len) {
            break;
        }
        const std::string_view body(c.in.data() + at + header, static_cast<std::size_t>(len));
        at += header + static_cast<std::size_t>(len);
        if (opcode >= 0x8) {
            if (!fin || len > 125) {
                fail(c, protocol_error, "a fragmented or oversized control frame");
                return;
            }
            if (opcode == 0x8) {
                if (c.state == phase::closing) {
                    finish(c);  // the answer to our close: the closing handshake is complete
                } else {
                    const int code = len >= 2 ? (p[header] << 8) | p[header + 1] : 1005;
                    fail(c, closed_error, "the server sent close " + std::to_string(code));
                }
                return;
            }
            if (opcode == 0x9) {
                append_frame(c.out, 0xa, body, static_cast<std::uint32_t>(_rng()));  // §5.5.2
            } else if (opcode != 0xa) {
                fail(c, protocol_error, "reserved control opcode " + std::to_string(opcode));
                return;
            }
            continue;
        }
        if (opcode == 0x0) {
            if (!c.in_message) {
                fail(c, protocol_error, "a continuation frame outside a message");
                return;
            }
        } else if (opcode == 0x1 || opcode == 0x2) {
            if (c.in_message) {
                fail(c, protocol_error, "a new message inside a fragmented one");
                return;
            }
            c.in_message = true;
            c.message_opcode = opcode;
            c.message.clear();
        } else {
            fail(c, protocol_error, "reserved data opcode " + std::to_string(opcode));
            return;
        }
        c.message.append(body);
        if (fin) {
            c.in_message = false;
            on_message(c, c.message_opcode, c.message);
        }
    }
    if (c.state != phase::done) {
        c.in.erase(0, at);
    }
}

void load_run::on_message(connection& c, std::uint8_t opcode, const std::string& data) {
    if (c.state == phase::closing) {
        return;  // an echo that crossed our close frame
    }
    if (c.pending == 0) {
        fail(c, mismatch_error, "a message that echoes nothing we sent");
        return;
    }
    stamp_sequence(c.expected, c.next_seq - c.pending);
    if (opcode != (_opt.binary ? 0x2 : 0x1)) {
        fail(c, mismatch_error,
             std::string("the echo is a ") + (opcode == 0x1 ? "text" : "binary") + " message");
        return;
    }
    if (data.size() != c.expected.size()) {
        fail(c, mismatch_error, "the echo has " + std::to_string(data.size()) + " bytes, not " +
                                    std::to_string(c.expected.size()));
        return;
    }
    if (data != c.expected) {
        fail(c, mismatch_error, "the echo differs from the message sent");
        return;
    }
    const std::uint64_t sent = c.sent_at[c.head];
    c.head = (c.head + 1) % c.sent_at.size();
    --c.pending;
    if (_sending) {
        ++totals.messages;
        totals.rtt_ns.push_back(now_ns() - sent);
        send_message(c);
    }
}

void load_run::begin_close(connection& c) {
    // §5.5.1: code 1000, then wait for the server's close (§7.1.1: the server closes TCP first).
    static constexpr char normal[] = {0x03, static_cast<char>(0xe8)};
    append_frame(c.out, 0x8, std::string_view(normal, 2), static_cast<std::uint32_t>(_rng()));
    c.state = phase::closing;
    flush(c);
}

bool load_run::none_pending() const {
    return std::all_of(_conns.begin(), _conns.end(),
                       [](const connection& c) { return c.state != phase::open || c.pending == 0; });
}

bool load_run::all_done() const {
    return _alive == 0;
}

bool load_run::handshakes_over() const {
    return std::none_of(_conns.begin(), _conns.end(),
                        [](const connection& c) { return c.state == phase::handshake; });
}

void load_run::poll_until(std::uint64_t deadline_ns, bool (load_run::*done)() const) {
    epoll_event events[256];
    while (!(done && (this->*done)())) {
        const std::uint64_t now = now_ns();
        if (now >= deadline_ns || _alive == 0) {
            return;
        }
        const auto left_ms = (deadline_ns - now) / 1000000 + 1;
        const int timeout_ms = static_cast<int>(std::min<std::uint64_t>(left_ms, 100));
        const int n = epoll_wait(_epoll, events, 256, timeout_ms);
        for (int i = 0; i < n; ++i) {
            connection& c = _conns[events[i].data.u32];
            if (c.state == phase::done) {
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                on_readable(c);
            }
            if (c.state != phase::done && (events[i].events & EPOLLOUT)) {
                flush(c);
            }
        }
    }
}

int load_run::run() {
    _epoll = epoll_create1(EPOLL_CLOEXEC);
    if (_epoll < 0) {
        std::perror("epoll_create1");
        return 1;
    }
    const auto seconds = [](double s) { return static_cast<std::uint64_t>(s * 1e9); };
    totals.rtt_ns.reserve(1 << 20);
    open_all();
    poll_until(now_ns() + seconds(10), &load_run::handshakes_over);
    for (connection& c : _conns) {
        if (c.state == phase::handshake) {
            fail(c, handshake_error, "no answer to the opening handshake within 10 s");
        }
    }
    const std::uint64_t start = now_ns();
    start_sending();
    poll_until(start + seconds(_opt.duration), nullptr);
    const std::uint64_t stop = now_ns();
    _sending = false;

    // The echoes still on the way: each must come back (bounded), else the server lost it.
    poll_until(stop + seconds(2), &load_run::none_pending);
    for (connection& c : _conns) {
        if (c.state == phase::open && c.pending > 0) {
            count_error(timeout_error, c.id, std::to_string(c.pending) + " message(s) not echoed within 2 s");
            totals.errors[timeout_error] += c.pending - 1;
        }
    }
    for (connection& c : _conns) {
        if (c.state == phase::open) {
            begin_close(c);
        }
    }
    poll_until(now_ns() + seconds(2), &load_run::all_done);
    for (connection& c : _conns) {
        finish(c);  // no close answer within 2 s: not a load error, the figures are taken
    }
    close(_epoll);

    const double elapsed = static_cast<double>(stop - start) / 1e9;
    std::vector<std::uint64_t>& rtt = totals.rtt_ns;
    std::sort(rtt.begin(), rtt.end());
    const auto percentile_us = [&rtt](double q) -> double {
        if (rtt.empty()) {
            return -1.0;
        }
        const auto rank = static_cast<std::size_t>(q / 100.0 * static_cast<double>(rtt.size()));
        const std::size_t i = std::min(rtt.size() - 1, rank);
        return static_cast<double>(rtt[i]) / 1000.0;
    };
    std::printf("DBRIDGE-WSLOAD messages=%llu seconds=%.6f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f",
                static_cast<unsigned long long>(totals.messages), elapsed, percentile_us(50),
                percentile_us(90), percentile_us(99), percentile_us(99.9));
    std::printf(" connections=%d", _opt.connections);
    for (int k = 0; k < kinds; ++k) {
        std::printf(" %s=%llu", error_names[k], static_cast<unsigned long long>(totals.errors[k]));
    }
    std::printf("\n");
    return 0;
}

[[noreturn]] void usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s --port P [--host 127.0.0.1] [--path /] [--connections 64] [--size 1024]\n"
                 "       [--duration 10] [--in-flight 1] [--binary]\n",
                 argv0);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage(argv[0]);
            }
            return argv[++i];
        };
        if (arg == "--host") {
            opt.host = value();
        } else if (arg == "--port") {
            opt.port = std::atoi(value().c_str());
        } else if (arg == "--path") {
            opt.path = value();
        } else if (arg == "--connections") {
            opt.connections = std::atoi(value().c_str());
        } else if (arg == "--size") {
            opt.size = static_cast<std::size_t>(std::atoll(value().c_str()));
        } else if (arg == "--duration") {
            opt.duration = std::atof(value().c_str());
        } else if (arg == "--in-flight") {
            opt.in_flight = std::atoi(value().c_str());
        } else if (arg == "--binary") {
            opt.binary = true;
        } else {
            usage(argv[0]);
        }
    }
    if (opt.port <= 0 || opt.port > 65535 || opt.connections < 1 || opt.in_flight < 1 || opt.duration <= 0 ||
        opt.path.empty() || opt.path[0] != '/' || opt.size > (std::size_t{1} << 30)) {
        usage(argv[0]);
    }
    std::signal(SIGPIPE, SIG_IGN);
    load_run run(opt);
    return run.run();
}

// A WebSocket on one socket, after the opening handshake (RFC 6455 §5-§7): feeds
// received bytes to the frame parser, assembles messages (up to the size limit, 1009
// beyond), answers pings, runs the closing handshake, keeps the connection alive with
// pings of its own, and fails the connection on a protocol error with the parser's
// close code. The application (the ASGI shim, or a test) sees whole messages and one
// close through a message_handler.
//
// Timers: the stream has one timeout, so the connection keeps one deadline at a time,
// whichever its state needs: the next keepalive ping, the pong it waits for, or the
// peer's answer to our close frame.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "buffer/byte_buffer.h"
#include "io/reactor.h"
#include "ws/deflate.h"
#include "ws/frame.h"

namespace dbridge::ws {

class connection;

// The application side. Views passed in are valid only during the call.
class message_handler {
public:
    virtual ~message_handler() = default;
    // A complete data message (text is valid UTF-8).
    virtual void on_message(connection& c, message_kind kind, std::string_view payload) = 0;
    // The WebSocket is over for the application, once: the peer's close frame arrived
    // (its code, 1005 when it had none, and its reason); we failed the connection (the
    // code and reason of our close frame: 1002, 1007, 1009 for a protocol error, 1011
    // when no pong came, as uvicorn reports them); or the connection ended without a
    // close frame (1006, RFC 6455 §7.1.5). No message follows; sends are refused.
    virtual void on_close(connection& c, std::uint16_t code, std::string_view reason) = 0;
    // Everything queued so far has reached the kernel (send backpressure is released).
    virtual void on_drained(connection& c) {}
    // The socket is closed and this object goes back to its pool: the last call.
    virtual void on_released(connection& c) = 0;
};

struct connection_config {
    // uvicorn's --ws-max-size: a larger message fails the connection with 1009.
    std::uint64_t max_message_size = 16 * 1024 * 1024;
    // uvicorn's --ws-ping-interval and --ws-ping-timeout; zero turns each off.
    std::chrono::milliseconds ping_interval{20000};
    std::chrono::milliseconds ping_timeout{20000};
    // How long we wait for the peer's close frame after sending ours (websockets' default).
    std::chrono::milliseconds close_timeout{10000};
};

class connection_pool;

class connection final : public io::stream_handler {
public:
    connection(connection_pool& pool, const connection_config& config);

    // Takes over `s` (whose handler it becomes) after the 101 response was queued.
    // `deflate`: the agreed permessage-deflate parameters, or null.
    void start(io::stream& s, message_handler& handler, const deflate_params* deflate);

    // A whole text or binary message. False when the WebSocket is closing or closed.
    bool send_message(message_kind kind, std::string_view payload);
    // Starts the closing handshake (or answers the peer's). A second call does nothing.
    write_status send_close(std::uint16_t code, std::string_view reason = {});
    // Neither side has sent a close frame and the socket is open.
    bool is_open() const { return !_close_sent && !_close_received && !_ended; }
    std::size_t unsent_bytes() const { return _stream->unsent_bytes(); }

    // Stop and restart delivering messages (the application's queue is full).
    void pause_messages();
    void resume_messages();

    io::stream& stream() { return *_stream; }
    // The handler's state for this WebSocket (the ASGI shim's exchange).
    void* app_state = nullptr;

    // ---- io::stream_handler ---------------------------------------------------------
    void on_data(io::stream& s, std::string_view bytes) override;
    void on_eof(io::stream& s) override;
    void on_timeout(io::stream& s) override;
    void on_drained(io::stream& s) override;
    void on_closed(io::stream& s) override;

private:
    friend class connection_pool;
    enum class timer : std::uint8_t { none, ping, pong, close };

    void process_input();
    void deliver(const frame_result& r);
    void fail(std::uint16_t code, const char* reason);
    void end(std::uint16_t code, std::string_view reason);
    void arm(timer kind);

    connection_pool* _pool;
    const connection_config* _config;
    io::stream* _stream = nullptr;
    message_handler* _handler = nullptr;
    frame_parser _parser;
    frame_writer _writer;
    byte_buffer _input;    // received bytes not yet parsed (the parser unmasks them in place)
    byte_buffer _message;  // the pieces of a fragmented or inflated message so far
    timer _timer = timer::none;
    std::uint32_t _pings_sent = 0;
    char _ping_payload[4] = {};  // the data of our last keepalive ping: its pong echoes it
    bool _close_sent = false;
    bool _close_received = false;
    bool _ended = false;       // on_close() was called
    bool _paused = false;      // pause_messages()
    bool _processing = false;  // process_input() is on the stack
};

// Makes and reuses connections: steady state allocates nothing per WebSocket.
class connection_pool {
public:
    explicit connection_pool(connection_config config) : _config(config) {}

    connection& open(io::stream& s, message_handler& handler, const deflate_params* deflate = nullptr);
    const connection_config& config() const { return _config; }
    std::size_t open_count() const { return _all.size() - _free.size(); }

    // Every connection not yet released (graceful shutdown closes them). `f` may close.
    template <typename F>
    void for_each_open(F&& f) {
        std::vector<connection*> open;
        for (auto& c : _all) {
            if (c->_stream != nullptr) {
                open.push_back(c.get());
            }
        }
        for (connection* c : open) {
            if (c->_stream != nullptr) {
                f(*c);
            }
        }
    }

private:
    friend class connection;
    void release(connection* c);

    connection_config _config;
    std::vector<std::unique_ptr<connection>> _all;
    std::vector<connection*> _free;
};

}  // namespace dbridge::ws

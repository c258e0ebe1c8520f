// HTTP/1.1 on one socket: feeds received bytes to the request parser, hands requests
// to the application (a request_handler: the C-only responder, or the ASGI shim),
// writes its responses, and owns keep-alive, pipelining, Expect: 100-continue, the
// header-read and keep-alive timeouts and the error responses for bad input.
//
// One exchange at a time: requests pipelined behind the current one stay buffered
// (bounded) until its response is complete, so responses go out in request order.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "buffer/byte_buffer.h"
#include "http1/request_parser.h"
#include "http1/response_writer.h"
#include "io/reactor.h"

namespace dbridge::http1 {

class connection;

// The application side of a connection. Views passed in are valid only during the call.
class request_handler {
public:
    virtual ~request_handler() = default;
    virtual void on_request(connection& c, const request_head& head) = 0;
    virtual void on_body(connection& c, std::string_view chunk) = 0;
    // The request (body and trailers) has been read completely.
    virtual void on_request_end(connection& c) = 0;
    // The client went away, or its request turned out malformed, before the response
    // was complete. No call for this exchange follows.
    virtual void on_disconnect(connection& c) = 0;
    // Everything queued so far has reached the kernel (send backpressure is released).
    virtual void on_drained(connection& c) {}
    // The connection is gone; per-connection state kept in connection_state goes now.
    virtual void on_connection_closed(connection& c) {}
};

struct server_config {
    http1::limits limits;
    // uvicorn's --timeout-keep-alive default.
    std::chrono::milliseconds keep_alive_timeout{5000};
    // From accepting a connection, or the first byte of a request, to its whole head;
    // a slowloris client is closed (with 408 when it had sent something).
    std::chrono::milliseconds header_timeout{30000};
    // A connection with a response to send whose client takes none of it for this long
    // (checked every send_timeout, so a stall is noticed after one to two periods) is
    // closed and the app told the client is gone: a peer that stops reading cannot hold
    // a connection, and an app blocked in send(), forever. The io reactor's drain_timeout
    // is the same rule for connections already closing.
    std::chrono::milliseconds send_timeout{60000};
    bool date_header = true;
    // Preformatted "name: value\r\n" lines added to every response (--server-header,
    // --header).
    std::string default_headers = "server: dbridge-asgi\r\n";
    // Unparsed input kept while a response is pending before the socket stops being read.
    std::size_t input_high_water = 64 * 1024;
    // After an early response, the unread rest of a request body is read and dropped up
    // to this many bytes so the connection can be kept; beyond it the connection closes.
    std::uint64_t max_discarded_body = 1024 * 1024;
    // Where protocol warnings go (a malformed request, a timeout).
    std::function<void(std::string_view message)> warn;
};

struct server_stats {
    std::uint64_t requests = 0;
    std::uint64_t rejected = 0;   // malformed or over a limit
    std::uint64_t timeouts = 0;   // header-read timeouts (keep-alive expiry is not counted)
    std::uint64_t send_timeouts = 0;  // connections closed because the client stopped reading
    std::uint64_t connections = 0;
};

class server;

class connection final : public io::stream_handler {
public:
    connection(server& owner, io::stream& s);

    // ---- for the request_handler ----------------------------------------------------
    write_status start_response(int status, std::span<const header_field> headers);
    // A large body may go out before this returns, from `data` itself (`send_now`, true
    // for an app's body); a caller that sends a long stream piece by piece and waits for
    // the kernel between pieces passes false, so one fast client cannot take it all at once.
    write_status send_body(std::string_view data, bool more, bool send_now = true);
    // Sends "100 Continue" if the current request asked for it and nothing else has been
    // sent yet (ASGI: when the app first waits for the body).
    void send_continue();
    // Ends the connection after what is queued: an error after the response started.
    void abort();
    // Stop / restart delivering the body (the app is not reading it yet).
    void pause_input();
    void resume_input();
    // Hands the socket to another protocol after a 101 response (RFC 9110 §7.8): the
    // http1 timers stop, `next` becomes the stream's handler and gets the bytes already
    // read past the request head through on_data(), and this connection returns to its
    // server (the request_handler gets on_connection_closed(), no on_disconnect()) while
    // the socket stays open. Called while the parser is on the stack (an app answering
    // inside on_request()), the switch completes when the parser returns.
    void upgrade(io::stream_handler& next);

    const request_facts& request() const { return _facts; }
    bool response_started() const { return _writer.started(); }
    bool response_finished() const { return _writer.finished(); }
    bool disconnected() const { return _disconnected; }
    std::size_t unsent_bytes() const { return _stream->unsent_bytes(); }
    io::stream& stream() { return *_stream; }

    // The handler's state for the current exchange (the ASGI shim's request object) and
    // for the whole connection (values computed once per connection).
    void* app_state = nullptr;
    void* connection_state = nullptr;

    // ---- io::stream_handler ---------------------------------------------------------
    void on_data(io::stream& s, std::string_view bytes) override;
    void on_eof(io::stream& s) override;
    void on_timeout(io::stream& s) override;
    void on_drained(io::stream& s) override;
    void on_closed(io::stream& s) override;

    void reset(io::stream& s);
    bool live() const { return _live; }
    bool in_request() const { return _in_request; }

private:
    friend class server;
    enum class timer : std::uint8_t { none, header, idle, send };

    std::size_t run_parser(std::string_view window);
    void parse_buffered();
    void begin_request(const request_head& head);
    void response_complete();
    void exchange_complete();
    void reject(int status, const char* reason);
    void notify_disconnect();
    void arm_timer(timer kind);
    void finish_upgrade();
    void watch_send();

    server* _server;
    io::stream* _stream;
    request_parser _parser;
    response_writer _writer;
    request_facts _facts;
    byte_buffer _input;  // unparsed bytes, borrowed from the reactor's pool while non-empty
    timer _timer = timer::none;
    io::stream_handler* _upgrade_to = nullptr;  // upgrade() waits for the parser to return
    bool _in_request = false;      // a head was handed to the handler; exchange not complete
    bool _request_done = false;    // its body has been read completely
    bool _discarding = false;      // the response came first: drop the rest of the body
    bool _expect_continue = false;
    bool _continue_sent = false;
    bool _disconnected = false;
    bool _input_paused = false;
    bool _parsing = false;         // run_parser() is on the stack
    bool _received_any = false;    // bytes of the current head arrived (408 vs silent close)
    bool _live = false;            // serving a socket (not in the server's free list)
    std::uint64_t _discarded = 0;
    std::uint64_t _sent_at_arm = 0;  // stream().bytes_sent() when the send timer was armed
};

// Makes a connection for each accepted socket and reuses them.
class server final : public io::stream_acceptor {
public:
    server(server_config config, request_handler& handler);
    ~server() override;

    io::stream_handler* open(io::stream& s) override;

    // Graceful shutdown: connections between requests close now, the others after
    // their current response (no more keep-alive).
    void begin_shutdown();
    // The end of a graceful shutdown's patience: connections in the middle of sending a
    // response (a stream that would not end) are closed, so their apps hear the client is
    // gone. Requests whose response has not started are left to their app.
    void disconnect_responding();
    bool shutting_down() const { return _shutting_down; }

    const server_config& config() const { return _config; }
    request_handler& handler() { return *_handler; }
    server_stats& stats() { return _stats; }

private:
    friend class connection;
    void release(connection* c);

    server_config _config;
    request_handler* _handler;
    server_stats _stats;
    bool _shutting_down = false;
    std::vector<std::unique_ptr<connection>> _all;
    std::vector<connection*> _free;
};

}  // namespace dbridge::http1

#include "http1/connection.h"

#include <charconv>
#include <string>
#include <utility>

namespace dbridge::http1 {

namespace {

// A body this large is sent from the app's memory rather than copied into a buffer (see
// io::stream::send_now). Below it the copy is cheaper than a system call of its own:
// small responses go out in the reactor's batched sends.
constexpr std::size_t direct_send_min = 64 * 1024;

// The body of the responses we make ourselves. 400 keeps uvicorn's wording.
std::string_view error_message(int status) {
    switch (status) {
    case 400:
        return "Invalid HTTP request received.";
    case 408:
        return "Request header timeout.";
    case 413:
        return "Request body too large.";
    case 414:
        return "Request line too long.";
    case 417:
        return "Expectation failed.";
    case 431:
        return "Request header fields too large.";
    case 501:
        return "Transfer coding not implemented.";
    case 505:
        return "HTTP version not supported.";
    default:
        return "Bad request.";
    }
}

}  // namespace

connection::connection(server& owner, io::stream& s) : _server(&owner), _stream(&s), _parser(owner.config().limits) {
    reset(s);
}

void connection::reset(io::stream& s) {
    _stream = &s;
    _parser.reset();
    _writer.reset();
    _facts = {};
    _in_request = _request_done = _discarding = false;
    _expect_continue = _continue_sent = _disconnected = false;
    _input_paused = _parsing = _received_any = false;
    _discarded = 0;
    _live = true;
    app_state = nullptr;
    connection_state = nullptr;
    _upgrade_to = nullptr;
    // A connection that sends nothing is held no longer than a slow request head.
    _timer = timer::none;
    arm_timer(timer::header);
}

// ---- input ---------------------------------------------------------------------------

void connection::on_data(io::stream& s, std::string_view bytes) {
    if (!_in_request) {
        _received_any = true;
    }
    if (_input.empty() && !_input_paused && !(_in_request && _request_done)) {
        // The common case: parse straight from the receive buffer, copy nothing.
        std::size_t used = run_parser(bytes);
        if (used < bytes.size() && !_stream->closing()) {
            if (_input.capacity() == 0) {
                _input = _stream->owner().buffers().take();
            }
            _input.append(bytes.substr(used));
        }
    } else {
        if (_input.capacity() == 0) {
            _input = _stream->owner().buffers().take();
        }
        _input.append(bytes);
        parse_buffered();
    }
    if (_upgrade_to != nullptr) {
        finish_upgrade();
        return;
    }
    if (_input.size() > _server->config().input_high_water) {
        _stream->pause_reading();  // resumed by parse_buffered() once the backlog shrinks
    } else if (_input.empty() && _input.capacity() != 0) {
        _stream->owner().buffers().give(std::move(_input));
    }
}

void connection::parse_buffered() {
    if (_parsing || _stream->closing()) {
        return;
    }
    std::size_t used = run_parser(_input.view());
    _input.consume(used);
    if (_upgrade_to != nullptr) {
        finish_upgrade();  // the app accepted an upgrade inside on_request()
        return;
    }
    if (_input.empty() && _input.capacity() != 0) {
        _stream->owner().buffers().give(std::move(_input));
    }
    if (!_input_paused && _stream->reading_paused() && _input.size() <= _server->config().input_high_water) {
        _stream->resume_reading();
    }
}

std::size_t connection::run_parser(std::string_view window) {
    std::size_t used = 0;
    _parsing = true;
    // A finished request whose response is still pending holds the rest of the input
    // back: pipelined requests are answered in order (RFC 9112 §9.3.2).
    while (!_stream->closing() && !_input_paused && !(_in_request && _request_done) && _upgrade_to == nullptr) {
        parse_result r = _parser.parse(window.substr(used));
        used += r.consumed;
        if (r.event == parse_event::need_more) {
            if (!_in_request) {
                arm_timer(_parser.in_message() ? timer::header : timer::idle);
            }
            break;
        }
        switch (r.event) {
        case parse_event::head:
            begin_request(_parser.head());
            break;
        case parse_event::body:
            if (!_discarding) {
                _server->handler().on_body(*this, r.body);
            } else if ((_discarded += r.body.size()) > _server->config().max_discarded_body) {
                _stream->close_after_flush();
            }
            break;
        case parse_event::end:
            _request_done = true;
            if (!_discarding) {
                _server->handler().on_request_end(*this);
            }
            if (_writer.finished() && _in_request) {
                exchange_complete();
            }
            break;
        case parse_event::error:
            reject(_parser.error_status(), _parser.error_reason());
            break;
        case parse_event::need_more:
            break;
        }
    }
    _parsing = false;
    return used;
}

void connection::begin_request(const request_head& head) {
    _stream->clear_timeout();
    _timer = timer::none;
    _in_request = true;
    _request_done = _discarding = false;
    _discarded = 0;
    _expect_continue = head.expect_continue;
    _continue_sent = false;
    _facts.version_minor = head.version_minor;
    _facts.head_method = head.method == "HEAD";
    _facts.keep_alive = head.keep_alive;
    _writer.reset();
    ++_server->stats().requests;
    _server->handler().on_request(*this, head);
}

void connection::pause_input() {
    _input_paused = true;
    _stream->pause_reading();
}

void connection::resume_input() {
    if (!_input_paused) {
        return;
    }
    _input_paused = false;
    // Even with nothing buffered: the body may be complete with its `end` event not
    // yet taken from the parser (the pause came with the last body bytes).
    if (!_input.empty() || (_in_request && !_request_done)) {
        parse_buffered();  // a no-op inside run_parser, whose loop simply goes on
    }
    if (!_input_paused && _input.size() <= _server->config().input_high_water) {
        _stream->resume_reading();
    }
}

void connection::upgrade(io::stream_handler& next) {
    _upgrade_to = &next;
    if (!_parsing) {
        finish_upgrade();
    }
}

void connection::finish_upgrade() {
    io::stream_handler* next = std::exchange(_upgrade_to, nullptr);
    io::stream& s = *_stream;
    // No http1 timer runs during a request (begin_request stopped it); the stream's
    // timeout is the new protocol's from now on.
    _timer = timer::none;
    s.set_handler(next);
    s.protocol_state = nullptr;
    byte_buffer rest = std::move(_input);
    _disconnected = true;  // the exchange went on as the new protocol: no on_disconnect
    _in_request = false;
    _server->handler().on_connection_closed(*this);
    _server->release(this);
    // The http1 side may have paused reading (its backlog, the app not reading a body);
    // the new protocol starts from a socket that is read.
    if (s.reading_paused()) {
        s.resume_reading();
    }
    if (!rest.empty() && !s.closing()) {
        next->on_data(s, rest.view());
    }
    if (rest.capacity() != 0) {
        s.owner().buffers().give(std::move(rest));
    }
}

// ---- output --------------------------------------------------------------------------

write_status connection::start_response(int status, std::span<const header_field> headers) {
    if (_disconnected || _stream->closing()) {
        return write_status::ok;  // the client is gone; the handler learnt it from on_disconnect
    }
    std::string_view date = _server->config().date_header ? _stream->owner().date().line() : std::string_view{};
    write_status st =
        _writer.start(_stream->output(), _facts, status, headers, date, _server->config().default_headers);
    if (st == write_status::ok) {
        _stream->flush();
        watch_send();
    }
    return st;
}

write_status connection::send_body(std::string_view data, bool more, bool send_now) {
    if (_disconnected || _stream->closing()) {
        return write_status::ok;
    }
    write_status st;
    if (send_now && data.size() >= direct_send_min && _writer.body_is_verbatim()) {
        // A large body goes out from the app's memory, behind what is queued (the response
        // head), as far as the socket takes it now; only the rest is copied.
        st = _writer.count_body(data.size(), more);
        if (st == write_status::ok || st == write_status::content_length_short) {
            const std::size_t taken = _stream->send_now(data);
            if (taken < data.size()) {
                _stream->output_for(data.size() - taken).append(data.substr(taken));
            }
        }
    } else {
        // Room for the data and its chunk framing (size line, CRLFs, last chunk), unless
        // none of it will be sent (a large buffer would be sized for nothing).
        byte_buffer& out = _writer.body_suppressed() ? _stream->output() : _stream->output_for(data.size() + 32);
        st = _writer.body(out, data, more);
    }
    if (st == write_status::content_length_short) {
        // The response promised more than it sent; only a close tells the client.
        _stream->close_after_flush();
        return st;
    }
    if (st != write_status::ok) {
        return st;
    }
    _stream->flush();
    watch_send();
    if (_writer.finished()) {
        response_complete();
    }
    return st;
}

void connection::send_continue() {
    if (!_expect_continue || _continue_sent || _writer.started() || _stream->closing()) {
        return;
    }
    _continue_sent = true;
    response_writer::write_continue(_stream->output());
    _stream->flush();
}

void connection::abort() {
    _disconnected = true;  // the handler knows: no on_disconnect back to it
    // What the app already sent still goes out (as uvicorn's transport.close()); the
    // missing end of the body (no last chunk, fewer bytes than Content-Length) and the
    // close tell the client the response is incomplete.
    _stream->close_after_flush();
}

void connection::response_complete() {
    if (_request_done) {
        exchange_complete();
        return;
    }
    // The response came before the whole request body.
    if (_expect_continue && !_continue_sent) {
        // The client waits for 100 Continue before sending the body; it will not come, so
        // the connection cannot be reused (RFC 9110 §10.1.1).
        _stream->close_after_flush();
        return;
    }
    if (!_writer.keep_alive()) {
        _stream->close_after_flush();
        return;
    }
    _discarding = true;  // read and drop the rest so the next request can follow
    if (_input_paused) {
        resume_input();
    }
}

void connection::exchange_complete() {
    _in_request = false;
    _received_any = false;
    if (!_writer.keep_alive() || _disconnected || _server->shutting_down()) {
        _stream->close_after_flush();
        return;
    }
    if (_parsing) {
        return;  // run_parser() goes on with the next pipelined request
    }
    if (!_input.empty()) {
        _received_any = true;
        parse_buffered();
    } else {
        arm_timer(timer::idle);
    }
}

void connection::reject(int status, const char* reason) {
    ++_server->stats().rejected;
    if (_server->config().warn) {
        std::string message = "Invalid HTTP request received: ";
        message += reason;
        _server->config().warn(message);
    }
    if (_in_request && !_discarding) {
        notify_disconnect();  // the app's request body turned out malformed
    }
    if (_in_request && _writer.started()) {
        // A response is under way: a close is all that can be said. A complete one (the
        // error is in a body being discarded) still goes out first.
        if (_writer.finished()) {
            _stream->close_after_flush();
        } else {
            _stream->close();
        }
        return;
    }
    // RFC 9112 §9.6 / the DESIGN rules: after a framing error the connection is closed.
    std::string_view message = error_message(status);
    char length[24];
    auto [end, ec] = std::to_chars(length, length + sizeof(length), message.size());
    const header_field headers[] = {
        {"content-type", "text/plain; charset=utf-8"},
        {"content-length", std::string_view(length, end - length)},
    };
    request_facts facts;
    facts.version_minor = 1;
    facts.head_method = false;
    facts.keep_alive = false;
    _writer.reset();
    byte_buffer& out = _stream->output();
    std::string_view date = _server->config().date_header ? _stream->owner().date().line() : std::string_view{};
    _writer.start(out, facts, status, headers, date, _server->config().default_headers);
    _writer.body(out, message, false);
    _stream->close_after_flush();
}

void connection::notify_disconnect() {
    if (_disconnected) {
        return;
    }
    _disconnected = true;
    if (_in_request && !_writer.finished()) {
        _server->handler().on_disconnect(*this);
    }
}

void connection::arm_timer(timer kind) {
    if (_timer == kind) {
        return;  // a slow head does not get a fresh timeout with every byte
    }
    _timer = kind;
    const server_config& config = _server->config();
    switch (kind) {
    case timer::header:
        _stream->set_timeout(config.header_timeout);
        break;
    case timer::idle:
        _stream->set_timeout(config.keep_alive_timeout);
        break;
    case timer::send:
        _sent_at_arm = _stream->bytes_sent();
        _stream->set_timeout(config.send_timeout);
        break;
    case timer::none:
        _stream->clear_timeout();
        break;
    }
}

void connection::watch_send() {
    // During an exchange no other timer runs; a response that is written but not yet
    // taken by the kernel gets the send timer until on_drained().
    if (_timer == timer::none && _stream->unsent_bytes() > 0 && !_stream->closing()) {
        arm_timer(timer::send);
    }
}

// ---- events from the reactor -----------------------------------------------------------

void connection::on_eof(io::stream& s) {
    // Like uvicorn: a client that shuts down its side has gone away. What is already
    // queued for it (a complete response) is still sent.
    if (_in_request && !_writer.finished()) {
        notify_disconnect();
        _stream->close();
        return;
    }
    _stream->close_after_flush();
}

void connection::on_timeout(io::stream& s) {
    timer expired = _timer;
    _timer = timer::none;
    if (expired == timer::header && _received_any) {
        ++_server->stats().timeouts;
        reject(408, "request head not received in time");
        return;
    }
    if (expired == timer::idle && _stream->unsent_bytes() > 0) {
        // Still sending the last response: the connection is not idle but sending.
        arm_timer(timer::send);
        return;
    }
    if (expired == timer::send) {
        if (_stream->unsent_bytes() == 0 || _stream->bytes_sent() != _sent_at_arm) {
            // The client reads, however slowly: watch the next period.
            arm_timer(_stream->unsent_bytes() > 0 ? timer::send : (_in_request ? timer::none : timer::idle));
            return;
        }
        ++_server->stats().send_timeouts;
        if (_server->config().warn) {
            _server->config().warn("Closing a connection whose client read none of the response for " +
                                   std::to_string(_server->config().send_timeout.count()) + " ms");
        }
        // As for a reset peer: the app learns the client is gone (http.disconnect, a
        // blocked send() returns and later sends are dropped, as uvicorn does).
        notify_disconnect();
    }
    _stream->close();  // idle keep-alive connection, or one that never sent anything
}

void connection::on_drained(io::stream& s) {
    if (_timer == timer::send) {
        arm_timer(_in_request ? timer::none : timer::idle);
    }
    if (_in_request) {
        _server->handler().on_drained(*this);
    }
}

void connection::on_closed(io::stream& s) {
    notify_disconnect();
    _server->handler().on_connection_closed(*this);
    _live = false;
    if (_input.capacity() != 0) {
        _stream->owner().buffers().give(std::move(_input));
    }
    _server->release(this);
}

// ---- server ----------------------------------------------------------------------------

server::server(server_config config, request_handler& handler)
    : _config(std::move(config)), _handler(&handler) {}

server::~server() = default;

io::stream_handler* server::open(io::stream& s) {
    ++_stats.connections;
    connection* c;
    if (!_free.empty()) {
        c = _free.back();
        _free.pop_back();
        c->reset(s);
    } else {
        _all.push_back(std::make_unique<connection>(*this, s));
        c = _all.back().get();
    }
    s.protocol_state = c;
    return c;
}

void server::release(connection* c) {
    c->_live = false;
    _free.push_back(c);
}

void server::begin_shutdown() {
    _shutting_down = true;
    for (auto& c : _all) {
        if (c->_live && !c->_in_request) {
            c->stream().close_after_flush();
        }
    }
}

void server::disconnect_responding() {
    for (auto& c : _all) {
        if (c->_live && c->_in_request && c->_writer.started()) {
            c->stream().close();
        }
    }
}

}  // namespace dbridge::http1

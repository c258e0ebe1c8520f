#include "ws/connection.h"

#include <span>

namespace dbridge::ws {

namespace {

// Buffers bigger than this are given back after use: one 16 MB message must not pin
// 16 MB on a connection that then sends small ones.
constexpr std::size_t kept_capacity = 256 * 1024;

void trim(byte_buffer& b) {
    if (b.empty() && b.capacity() > kept_capacity) {
        b.release();
    }
}

}  // namespace

connection::connection(connection_pool& pool, const connection_config& config)
    : _pool(&pool), _config(&config), _parser(parser_limits{config.max_message_size}) {}

void connection::start(io::stream& s, message_handler& handler, const deflate_params* deflate) {
    _stream = &s;
    _handler = &handler;
    _parser.reset();
    _writer.reset();
    _input.clear();
    _message.clear();
    _timer = timer::none;
    _pings_sent = 0;
    _close_sent = _close_received = _ended = _paused = _processing = false;
    app_state = nullptr;
    if (deflate != nullptr) {
        _parser.enable_deflate(*deflate);
        _writer.enable_deflate(*deflate);
    }
    s.set_handler(this);
    arm(timer::ping);
}

// ---- input ---------------------------------------------------------------------------

void connection::on_data(io::stream& s, std::string_view bytes) {
    // Copied: the parser unmasks in place (RFC 6455 §5.3), and the reactor's receive
    // buffer is not ours to write.
    _input.append(bytes);
    process_input();
}

void connection::process_input() {
    if (_processing) {
        return;  // resume_messages() from inside a handler call: the loop below goes on
    }
    _processing = true;
    std::size_t used = 0;
    // Called until it asks for more, even with every byte taken: an inflated message can
    // still have pieces to give after its last compressed byte.
    while (!_paused && !_stream->closing()) {
        frame_result r = _parser.parse(std::span<char>(_input.data() + used, _input.size() - used));
        used += r.consumed;
        if (r.event == frame_event::need_more) {
            break;
        }
        switch (r.event) {
        case frame_event::data:
            deliver(r);
            break;
        case frame_event::ping:
            // §5.5.2: answer with a pong carrying the same data, unless we are closing.
            if (!_close_sent) {
                frame_writer::pong(_stream->output(), r.data);
                _stream->flush();
            }
            break;
        case frame_event::pong:
            // §5.5.3: a pong answering our ping carries that ping's data; any other pong
            // is unsolicited and proves nothing, so only the matching one ends the wait.
            if (_timer == timer::pong && r.data == std::string_view(_ping_payload, sizeof(_ping_payload))) {
                arm(timer::ping);
            }
            break;
        case frame_event::close: {
            _close_received = true;
            if (!_close_sent) {
                // §5.5.1: answer with a close frame, echoing the status code.
                _close_sent = true;
                frame_writer::close(_stream->output(), r.close_code, {});
            }
            // §7.1.1: the server closes the TCP connection first.
            _stream->close_after_flush();
            end(r.close_code, r.data);
            break;
        }
        case frame_event::error:
            fail(_parser.error_code(), _parser.error_reason());
            break;
        case frame_event::need_more:
            break;
        }
    }
    if (_stream != nullptr && !_stream->closing()) {
        _input.consume(used);
        trim(_input);
    } else {
        _input.clear();
    }
    _processing = false;
}

void connection::deliver(const frame_result& r) {
    if (_ended || _close_sent) {
        return;  // the application closed: what the peer still sends is dropped
    }
    if (r.message_end && _message.empty()) {
        _handler->on_message(*this, r.kind, r.data);  // one piece: no copy
        return;
    }
    _message.append(r.data);
    if (r.message_end) {
        _handler->on_message(*this, r.kind, _message.view());
        _message.clear();
        trim(_message);
    }
}

void connection::pause_messages() {
    _paused = true;
    _stream->pause_reading();
}

void connection::resume_messages() {
    if (!_paused) {
        return;
    }
    _paused = false;
    if (!_input.empty()) {
        process_input();
    }
    if (!_paused && _stream != nullptr && !_stream->closing()) {
        _stream->resume_reading();
    }
}

// ---- output --------------------------------------------------------------------------

bool connection::send_message(message_kind kind, std::string_view payload) {
    if (!is_open() || _stream->closing()) {
        return false;
    }
    _writer.message(_stream->output(), kind, payload);
    _stream->flush();
    return true;
}

write_status connection::send_close(std::uint16_t code, std::string_view reason) {
    if (_close_sent || _ended || _stream->closing()) {
        return write_status::ok;
    }
    write_status st = frame_writer::close(_stream->output(), code, reason);
    if (st != write_status::ok) {
        return st;
    }
    _close_sent = true;
    _stream->flush();
    if (_close_received) {
        _stream->close_after_flush();
    } else {
        arm(timer::close);  // §7.1.1: the peer answers, then we close; or we stop waiting
    }
    return st;
}

// §7.1.7: fail the connection: a close frame with the reason, then close.
void connection::fail(std::uint16_t code, const char* reason) {
    if (!_close_sent) {
        _close_sent = true;
        frame_writer::close(_stream->output(), code, reason);
    }
    _stream->close_after_flush();
    end(code, reason);
}

void connection::end(std::uint16_t code, std::string_view reason) {
    if (_ended) {
        return;
    }
    _ended = true;
    _message.clear();
    _timer = timer::none;
    if (!_stream->closing()) {
        _stream->clear_timeout();  // a closing stream's timeout is the reactor's drain limit
    }
    _handler->on_close(*this, code, reason);
}

void connection::arm(timer kind) {
    std::chrono::milliseconds after{0};
    switch (kind) {
    case timer::ping:
        after = _config->ping_interval;
        break;
    case timer::pong:
        after = _config->ping_timeout;
        break;
    case timer::close:
        after = _config->close_timeout;
        break;
    case timer::none:
        break;
    }
    if (after.count() <= 0) {
        if (kind == timer::pong) {
            arm(timer::ping);  // no pong deadline: just ping again after the interval
            return;
        }
        _timer = timer::none;
        _stream->clear_timeout();
        return;
    }
    _timer = kind;
    _stream->set_timeout(after);
}

// ---- events from the reactor -----------------------------------------------------------

void connection::on_eof(io::stream& s) {
    // The peer shut down its side without (or after) a close frame.
    s.close_after_flush();
    end(close_code::abnormal, {});
}

void connection::on_timeout(io::stream& s) {
    timer expired = _timer;
    _timer = timer::none;
    switch (expired) {
    case timer::ping: {
        // A fresh payload per ping, so a late pong to an earlier one does not match.
        std::uint32_t n = ++_pings_sent;
        for (int i = 0; i < 4; ++i) {
            _ping_payload[i] = static_cast<char>(n >> (8 * (3 - i)));
        }
        frame_writer::ping(s.output(), std::string_view(_ping_payload, sizeof(_ping_payload)));
        s.flush();
        arm(timer::pong);
        break;
    }
    case timer::pong:
        // No pong in time: the peer (or the path to it) is gone (uvicorn: 1011).
        fail(close_code::internal_error, "keepalive ping timeout");
        break;
    case timer::close:
        s.close();  // the peer never answered our close frame
        end(close_code::abnormal, {});
        break;
    case timer::none:
        break;
    }
}

void connection::on_drained(io::stream& s) {
    if (!_ended) {
        _handler->on_drained(*this);
    }
}

void connection::on_closed(io::stream& s) {
    end(close_code::abnormal, {});
    _handler->on_released(*this);
    _input.clear();
    _message.clear();
    trim(_input);
    trim(_message);
    _stream = nullptr;
    _handler = nullptr;
    app_state = nullptr;
    _pool->release(this);
}

// ---- pool ------------------------------------------------------------------------------

connection& connection_pool::open(io::stream& s, message_handler& handler, const deflate_params* deflate) {
    connection* c;
    if (!_free.empty()) {
        c = _free.back();
        _free.pop_back();
    } else {
        _all.push_back(std::make_unique<connection>(*this, _config));
        c = _all.back().get();
    }
    c->start(s, handler, deflate);
    return *c;
}

void connection_pool::release(connection* c) {
    _free.push_back(c);
}

}  // namespace dbridge::ws

// What both backends share: stream lifecycle, the flush list, timeouts, the clock.
#include "io/reactor.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <stdexcept>
#include <utility>

#include "tls/session.h"

namespace dbridge::io {

namespace {

// OpenSSL hands out at most one record (16 KB of plaintext) per read.
constexpr std::size_t tls_plaintext_size = 16 * 1024;
// Plaintext is encrypted in slices, so the ciphertext of one send fits a pooled buffer
// and a large response is not held twice (plaintext and ciphertext) at once.
constexpr std::size_t tls_encrypt_slice = 32 * 1024;

}  // namespace

const char* backend_name(backend b) {
    return b == backend::uring ? "io_uring" : "epoll";
}

backend_choice parse_backend_choice(std::string_view text) {
    if (text == "auto") {
        return backend_choice::automatic;
    }
    if (text == "uring" || text == "io_uring") {
        return backend_choice::uring;
    }
    if (text == "epoll") {
        return backend_choice::epoll;
    }
    throw std::invalid_argument("--io must be one of auto, uring, epoll");
}

// ---- stream ---------------------------------------------------------------------------

byte_buffer& stream::output() {
    if (_out.capacity() == 0) {
        _out = _owner->_buffers.take();
    }
    return _out;
}

byte_buffer& stream::output_for_large(std::size_t n) {
    byte_buffer& out = output();
    const std::size_t wanted = out.size() + n;
    if (wanted <= out.capacity()) {
        return out;
    }
    // Bytes already waiting are copied over: grow geometrically when there are some, so
    // an app that sends many large bodies without waiting does not copy them again each time.
    byte_buffer large = _owner->_buffers.take_large(
        out.empty() ? wanted : std::max(wanted, 2 * out.capacity()));
    large.append(out.view());
    _owner->_buffers.give(std::move(_out));
    _out = std::move(large);
    return _out;
}

std::size_t stream::send_now(std::string_view data) {
    if (_state != state::open || _tls != nullptr || _send_in_flight || !_sending.empty() || data.empty()) {
        return 0;
    }
    iovec iov[2];
    int count = 0;
    if (!_out.empty()) {
        iov[count++] = {const_cast<char*>(_out.data()), _out.size()};
    }
    iov[count++] = {const_cast<char*>(data.data()), data.size()};
    msghdr message{};
    message.msg_iov = iov;
    message.msg_iovlen = static_cast<std::size_t>(count);
    const ssize_t sent = ::sendmsg(_fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent <= 0) {
        return 0;  // a full socket buffer, or an error the queued send will meet and handle
    }
    const std::size_t total = static_cast<std::size_t>(sent);
    const std::size_t from_out = std::min(total, _out.size());
    _out.consume(from_out);
    _bytes_sent += total;
    if (_out.empty()) {
        _owner->release_idle_buffers(*this);  // no send follows to do it in on_sent()
    }
    return total - from_out;
}

void stream::flush() {
    if (_state == state::closed || _state == state::lingering) {
        return;
    }
    _owner->mark_dirty(*this);
}

void stream::pause_reading() {
    if (_paused || _state == state::closed) {
        return;
    }
    _paused = true;
    if (_recv_armed) {
        _owner->disarm_recv(*this);
    }
}

void stream::resume_reading() {
    if (!_paused) {
        return;
    }
    _paused = false;
    if (_state != state::closed && !_eof) {
        _owner->arm_recv(*this);
    }
}

void stream::close_after_flush() {
    if (_state != state::open) {
        return;
    }
    _state = state::draining;
    set_timeout(_owner->_config.drain_timeout);
    // Input that arrives from now on is discarded, but it must still be read: a close
    // with unread input makes the kernel send RST, which can destroy our last response.
    resume_reading();
    _owner->mark_dirty(*this);
}

void stream::close() {
    if (_state == state::closed) {
        return;
    }
    _owner->begin_close(*this);
}

void stream::set_timeout(milliseconds after) {
    clear_timeout();
    _owner->timers_for(after).push(this, _owner->_now_ms);
}

void stream::clear_timeout() {
    if (_timer != nullptr) {
        _timer->remove(this);
    }
}

const sockaddr_storage& stream::peer_address() {
    if (!_peer_known) {
        socklen_t len = sizeof(_peer);
        if (::getpeername(_fd, reinterpret_cast<sockaddr*>(&_peer), &len) != 0) {
            _peer.ss_family = AF_UNSPEC;
        }
        _peer_known = true;
    }
    return _peer;
}

const sockaddr_storage& stream::local_address() {
    if (!_local_known) {
        socklen_t len = sizeof(_local);
        if (::getsockname(_fd, reinterpret_cast<sockaddr*>(&_local), &len) != 0) {
            _local.ss_family = AF_UNSPEC;
        }
        _local_known = true;
    }
    return _local;
}

// ---- timer_list ----------------------------------------------------------------------

void timer_list::push(stream* s, std::int64_t now_ms) {
    s->_timer = this;
    s->_deadline = now_ms + _duration;
    s->_timer_next = nullptr;
    s->_timer_prev = _tail;
    if (_tail != nullptr) {
        _tail->_timer_next = s;
    } else {
        _head = s;
    }
    _tail = s;
}

void timer_list::remove(stream* s) {
    if (s->_timer_prev != nullptr) {
        s->_timer_prev->_timer_next = s->_timer_next;
    } else {
        _head = s->_timer_next;
    }
    if (s->_timer_next != nullptr) {
        s->_timer_next->_timer_prev = s->_timer_prev;
    } else {
        _tail = s->_timer_prev;
    }
    s->_timer = nullptr;
    s->_timer_prev = s->_timer_next = nullptr;
}

// ---- reactor -------------------------------------------------------------------------

reactor::reactor(const reactor_config& config) : _config(config) {
    update_clock();
}

reactor::~reactor() = default;

void reactor::add_listener(int fd, stream_acceptor& acceptor, const tls::context* tls_context, bool shared) {
    auto slot = std::make_unique<listener_slot>();
    slot->fd = fd;
    slot->shared = shared;
    slot->acceptor = &acceptor;
    slot->tls_context = tls_context;
    arm_listener(*slot);
    _listeners.push_back(std::move(slot));
}

void reactor::stop_accepting() {
    for (auto& l : _listeners) {
        l->stopped = true;
        if (l->armed) {
            disarm_listener(*l);
        }
    }
}

void reactor::poll(int timeout_ms) {
    flush_dirty();
    rearm_listeners();
    wait_and_dispatch(next_wait(timeout_ms));
    update_clock();
    expire_timers();
    flush_dirty();
    recycle_dead();
}

void reactor::flush() {
    flush_dirty();
    submit();
    recycle_dead();
}

void reactor::close_all() {
    for (auto& s : _streams) {
        if (s->_state != stream::state::closed && s->_fd >= 0) {
            s->close();
        }
    }
}

namespace {

class orphan_handler final : public stream_handler {
public:
    void on_data(stream&, std::string_view) override {}
    void on_eof(stream&) override {}
    void on_timeout(stream& s) override { s.close(); }
    void on_closed(stream&) override {}
};

orphan_handler orphaned;

}  // namespace

void reactor::orphan_streams() {
    stop_accepting();  // an accept still in flight closes what it gets (no acceptor)
    for (auto& l : _listeners) {
        l->acceptor = nullptr;
    }
    for (auto& s : _streams) {
        if (s->_handler != nullptr) {
            s->_handler = &orphaned;
            s->protocol_state = nullptr;
            if (s->_state == stream::state::open) {
                s->close();
            }
        }
    }
}

stream* reactor::allocate_stream() {
    stream* s = _free;
    if (s != nullptr) {
        _free = s->_next_free;
        s->_next_free = nullptr;
        return s;
    }
    _streams.push_back(std::make_unique<stream>());
    s = _streams.back().get();
    s->_owner = this;
    return s;
}

void reactor::on_accepted(listener_slot& l, int fd) {
    // Responses are written whole; Nagle would only delay the last segment of each
    // (uvicorn sets TCP_NODELAY too). Fails harmlessly on Unix-domain sockets.
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    stream* s = allocate_stream();
    s->_fd = fd;
    s->_state = stream::state::open;
    s->_paused = s->_recv_armed = s->_send_in_flight = s->_dirty = false;
    s->_cancel_sent = s->_eof = s->_peer_known = s->_local_known = s->_tls_eof = false;
    s->_ops = 0;
    s->_poll_events = 0;
    s->_bytes_sent = 0;
    s->protocol_state = nullptr;
    ++_stats.accepted;
    ++_stats.open_streams;
    if (l.tls_context != nullptr && !start_tls(*s, *l.tls_context)) {
        ++_stats.tls_errors;
        if (_tls_error_log) {
            _tls_error_log(s->_tls->error());
        }
        begin_close(*s);
        return;
    }
    s->_handler = l.acceptor->open(*s);
    if (s->_state == stream::state::open && !s->_paused) {
        arm_recv(*s);
    }
}

void reactor::on_accept_error(listener_slot& l, int error) {
    ++_stats.accept_errors;
    // A connection that died in the backlog concerns only itself.
    if (error == ECONNABORTED || error == EINTR || error == EAGAIN) {
        return;
    }
    // Anything else (out of descriptors or memory above all) would come back at once:
    // the pending connection stays in the backlog, and a level-triggered listener or a
    // re-armed accept would spin. Pause this listener and come back shortly.
    l.retry_at = _now_ms + _config.accept_retry.count();
    if (l.armed) {
        disarm_listener(l);
    }
}

void reactor::on_received(stream& s, std::string_view bytes) {
    if (s._state == stream::state::open) {
        if (s._tls == nullptr) {
            s._handler->on_data(s, bytes);
        } else {
            receive_tls(s, bytes);
        }
    }
    // draining / lingering: discarded on purpose (see close_after_flush).
}

// ---- TLS: a filter between the socket and the handler ------------------------------

bool reactor::start_tls(stream& s, const tls::context& context) {
    if (_free_tls_sessions.empty()) {
        _tls_sessions.push_back(std::make_unique<tls::session>());
        _free_tls_sessions.push_back(_tls_sessions.back().get());
    }
    if (!_tls_plaintext) {
        _tls_plaintext = std::make_unique_for_overwrite<char[]>(tls_plaintext_size);
    }
    tls::session* t = _free_tls_sessions.back();
    _free_tls_sessions.pop_back();
    s._tls = t;
    return t->start(context);
}

void reactor::end_tls(stream& s) {
    s._tls->reset();
    _free_tls_sessions.push_back(s._tls);
    s._tls = nullptr;
}

void reactor::receive_tls(stream& s, std::string_view ciphertext) {
    tls::session& t = *s._tls;
    t.receive(ciphertext);
    // SSL_read drives the handshake first; application data in the same segment
    // follows in the same loop.
    while (s._state == stream::state::open) {
        tls::session::read_result r = t.read(_tls_plaintext.get(), tls_plaintext_size);
        if (r.what == tls::session::status::data) {
            s._handler->on_data(s, {_tls_plaintext.get(), r.bytes});
            continue;
        }
        if (r.what == tls::session::status::closed) {
            // close_notify (RFC 8446 §6.1): the peer sends no more, as a TCP FIN would
            // say; ours follows our last response (take_tls_output).
            if (!s._tls_eof) {
                s._tls_eof = true;
                s._handler->on_eof(s);
            }
        } else if (r.what == tls::session::status::failed) {
            // A failed handshake or a bad record: the connection is unusable. The alert
            // OpenSSL queued for the peer is sent before the close, so the client can
            // say what went wrong (a missing client certificate, no shared cipher).
            ++_stats.tls_errors;
            if (_tls_error_log) {
                _tls_error_log(t.error());
            }
            s.close_after_flush();
        }
        break;  // want_more: the rest of a record is still on the way
    }
    if (t.pending_output() > 0) {
        mark_dirty(s);  // handshake messages go out as soon as they exist
    }
}

bool reactor::take_tls_output(stream& s) {
    tls::session& t = *s._tls;
    while (!s._out.empty() && t.pending_output() < tls_encrypt_slice) {
        std::size_t n = t.write(s._out.view().substr(0, tls_encrypt_slice));
        if (n == 0) {
            break;  // the handshake is not done, or the session failed
        }
        s._out.consume(n);
    }
    if (s._state == stream::state::draining && s._out.empty()) {
        t.shutdown();  // close_notify after the last response
    }
    if (t.pending_output() == 0) {
        return false;
    }
    if (s._sending.capacity() == 0) {
        s._sending = _buffers.take();  // borrowed only while there are bytes to send
    }
    t.take_output(s._sending, buffer_pool::max_pooled_capacity);
    return true;
}

void reactor::on_peer_eof(stream& s) {
    s._eof = true;
    switch (s._state) {
    case stream::state::open:
        s._handler->on_eof(s);
        break;
    case stream::state::lingering:
        begin_close(s);
        break;
    case stream::state::draining:
    case stream::state::closed:
        break;
    }
}

void reactor::on_socket_error(stream& s, int error) {
    if (s._state != stream::state::closed) {
        begin_close(s);
    }
}

void reactor::on_sent(stream& s, std::size_t bytes) {
    s._send_in_flight = false;
    if (s._state == stream::state::closed) {
        return;
    }
    s._sending.consume(bytes);
    s._bytes_sent += bytes;
    if (s._state == stream::state::draining && bytes > 0) {
        s.set_timeout(_config.drain_timeout);  // progress: the client is reading
    }
    if (!s._sending.empty()) {
        start_send(s);  // a short send: resume with the rest
        return;
    }
    if (take_output(s)) {
        start_send(s);
        return;
    }
    release_idle_buffers(s);
    if (s._state == stream::state::draining) {
        // RFC 9112 §9.6: close in stages; half-close first, then read until the client
        // closes or the linger time is up.
        ::shutdown(s._fd, SHUT_WR);
        s._state = stream::state::lingering;
        if (s._eof) {
            begin_close(s);
        } else {
            s.set_timeout(_config.linger);
        }
        return;
    }
    s._handler->on_drained(s);
}

void reactor::release_idle_buffers(stream& s) {
    // Nothing left to send: idle connections hold no buffer memory. (A TLS stream may
    // still hold plaintext that cannot be encrypted before its handshake is done.)
    if (s._sending.capacity() != 0) {
        _buffers.give(std::move(s._sending));
    }
    if (s._out.capacity() != 0 && s._out.empty()) {
        _buffers.give(std::move(s._out));
    }
}

void reactor::operation_done(stream& s) {
    --s._ops;
    if (s._ops == 0 && s._state == stream::state::closed) {
        s._next_dead = _dead;
        _dead = &s;
    }
}

void reactor::mark_dirty(stream& s) {
    if (!s._dirty) {
        s._dirty = true;
        s._next_dirty = _dirty;
        _dirty = &s;
    }
}

void reactor::flush_dirty() {
    while (_dirty != nullptr) {
        stream& s = *_dirty;
        _dirty = s._next_dirty;
        s._dirty = false;
        s._next_dirty = nullptr;
        if (s._state != stream::state::open && s._state != stream::state::draining) {
            continue;
        }
        if (s._send_in_flight) {
            continue;  // on_sent() picks up _out when the current send completes
        }
        if (take_output(s)) {
            start_send(s);
        } else if (s._state == stream::state::draining) {
            on_sent(s, 0);  // nothing to send: go straight to the half-close
        }
    }
}

void reactor::begin_close(stream& s) {
    s._state = stream::state::closed;
    s.clear_timeout();
    cancel_operations(s);
    if (s._ops == 0) {
        s._next_dead = _dead;
        _dead = &s;
    }
}

void reactor::recycle_dead() {
    while (_dead != nullptr) {
        stream& s = *_dead;
        _dead = s._next_dead;
        s._next_dead = nullptr;
        finish_close(s);
    }
}

void reactor::finish_close(stream& s) {
    ::close(s._fd);
    s._fd = -1;
    stream_handler* h = s._handler;
    s._handler = nullptr;
    if (h != nullptr) {
        h->on_closed(s);
    }
    _buffers.give(std::move(s._out));
    _buffers.give(std::move(s._sending));
    if (s._tls != nullptr) {
        end_tls(s);
    }
    s.protocol_state = nullptr;
    ++_stats.closed;
    --_stats.open_streams;
    s._next_free = _free;
    _free = &s;
}

timer_list& reactor::timers_for(milliseconds duration) {
    for (auto& t : _timer_lists) {
        if (t->duration() == duration.count()) {
            return *t;
        }
    }
    _timer_lists.push_back(std::make_unique<timer_list>(duration.count()));
    return *_timer_lists.back();
}

void reactor::expire_timers() {
    // By index: a timeout handler may arm a timeout of a new duration (a new list).
    for (std::size_t i = 0; i < _timer_lists.size(); ++i) {
        timer_list* list = _timer_lists[i].get();
        stream* s;
        while ((s = list->front()) != nullptr && s->_deadline <= _now_ms) {
            list->remove(s);
            if (s->_state == stream::state::open) {
                s->_handler->on_timeout(*s);
            } else if (s->_state != stream::state::closed) {
                begin_close(*s);  // the linger time is over, or a drain made no progress
            }
        }
    }
}

void reactor::rearm_listeners() {
    for (auto& l : _listeners) {
        if (!l->armed && !l->stopped && l->retry_at <= _now_ms) {
            arm_listener(*l);
        }
    }
}

int reactor::next_wait(int timeout_ms) const {
    std::int64_t wait = timeout_ms;
    auto consider = [&](std::int64_t deadline) {
        std::int64_t until = deadline > _now_ms ? deadline - _now_ms : 0;
        if (wait < 0 || until < wait) {
            wait = until;
        }
    };
    for (const auto& list : _timer_lists) {
        if (list->front() != nullptr) {
            consider(list->front()->_deadline);
        }
    }
    for (const auto& l : _listeners) {
        if (!l->armed && !l->stopped) {
            consider(l->retry_at);
        }
    }
    if (_dead != nullptr || _dirty != nullptr) {
        wait = 0;
    }
    return static_cast<int>(wait);
}

void reactor::update_clock() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    _now_ms = static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
    ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    _date.refresh(ts.tv_sec);
}

}  // namespace dbridge::io

#include "io/epoll_reactor.h"
#include "io/uring_reactor.h"

namespace dbridge::io {

std::unique_ptr<reactor> reactor::create(const reactor_config& config) {
    std::unique_ptr<reactor> r;
    std::string reason;
    switch (config.io) {
    case backend_choice::uring:
        r = std::make_unique<uring_reactor>(config);
        reason = "io_uring (forced by --io uring)";
        break;
    case backend_choice::epoll:
        r = std::make_unique<epoll_reactor>(config);
        reason = "epoll (forced by --io epoll)";
        break;
    case backend_choice::automatic: {
        uring_probe probe = probe_uring();
        if (probe.usable) {
            try {
                r = std::make_unique<uring_reactor>(config);
                reason = "io_uring";
            } catch (const std::exception& e) {
                reason = std::string("epoll (io_uring unavailable: ") + e.what() + ")";
            }
        } else {
            reason = "epoll (io_uring unavailable: " + probe.reason + ")";
        }
        if (!r) {
            r = std::make_unique<epoll_reactor>(config);
        }
        break;
    }
    }
    r->_choice_reason = std::move(reason);
    return r;
}

}  // namespace dbridge::io

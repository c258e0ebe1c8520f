// The reactor: one per loop thread, owning that thread's sockets. It accepts
// connections on listening sockets, delivers received bytes to each connection's
// protocol (a stream_handler), sends what the protocol queued, runs per-connection
// timeouts and closes sockets. Two backends share this class and its behaviour:
// io_uring (uring_reactor.cc) and epoll (epoll_reactor.cc); the choice is made once, at
// start (reactor::create).
//
// Everything here runs on the owning thread; nothing is locked.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "buffer/buffer_pool.h"
#include "buffer/byte_buffer.h"
#include "clock/date_cache.h"

namespace dbridge::tls {
class context;
class session;
}  // namespace dbridge::tls

namespace dbridge::io {

class reactor;
class stream;
class timer_list;

enum class backend : std::uint8_t { uring, epoll };
enum class backend_choice : std::uint8_t { automatic, uring, epoll };

const char* backend_name(backend b);
// Parses "auto", "uring", "epoll"; throws std::invalid_argument otherwise.
backend_choice parse_backend_choice(std::string_view text);

// Whether an io_uring with what we need (multishot accept and receive, provided
// buffer rings) can be created here; `reason` says why not (seccomp, old kernel,
// io_uring_disabled).
struct uring_probe {
    bool usable = false;
    std::string reason;
};
uring_probe probe_uring();

using milliseconds = std::chrono::milliseconds;

// The protocol spoken on one accepted socket (http1::connection). All calls come from
// the reactor's thread.
class stream_handler {
public:
    virtual ~stream_handler() = default;
    // Bytes arrived; `bytes` is valid only during the call: keep what you do not use.
    virtual void on_data(stream& s, std::string_view bytes) = 0;
    // The peer shut down its side (a read returned 0).
    virtual void on_eof(stream& s) = 0;
    // The timeout set with stream::set_timeout() expired.
    virtual void on_timeout(stream& s) = 0;
    // Everything queued with stream::flush() has been handed to the kernel.
    virtual void on_drained(stream& s) {}
    // The socket is closed and the stream will be reused: the last call.
    virtual void on_closed(stream& s) = 0;
};

// Creates the protocol for each accepted socket.
class stream_acceptor {
public:
    virtual ~stream_acceptor() = default;
    virtual stream_handler* open(stream& s) = 0;
};

// One accepted socket. Owned and recycled by its reactor; a stream is reused only
// after every kernel operation on it has completed (fd numbers are reused).
class stream {
public:
    reactor& owner() const { return *_owner; }
    int fd() const { return _fd; }
    stream_handler* handler() const { return _handler; }
    // Switch protocols on this socket (an HTTP Upgrade).
    void set_handler(stream_handler* h) { _handler = h; }

    // Bytes appended here are sent by the next flush().
    byte_buffer& output();
    // output(), with room for `n` more bytes made now when they are many: a large body
    // goes into a buffer of the right size, kept by the pool after it is sent.
    byte_buffer& output_for(std::size_t n) {
        return n <= buffer_pool::max_pooled_capacity ? output() : output_for_large(n);
    }
    byte_buffer& output_for_large(std::size_t n);  // output_for() beyond the pooled size
    // Sends output()'s bytes and then `data`, straight from the caller's memory, as far
    // as the socket takes them without waiting; returns how many bytes of `data` went
    // (the caller queues the rest in output()). Large bodies thereby skip the copy into a
    // buffer. Does nothing (returns 0) unless the stream is open, plaintext and has no
    // send in flight, which would have to go first.
    std::size_t send_now(std::string_view data);
    std::size_t unsent_bytes() const { return _out.size() + _sending.size(); }
    // Bytes the kernel has taken from this stream so far: a protocol compares two
    // readings to tell a slow reader from one that stopped (a send timeout).
    std::uint64_t bytes_sent() const { return _bytes_sent; }
    // Send what output() holds. Sends are batched to the end of the loop iteration and
    // at most one is in flight; a short send is resumed.
    void flush();

    // Stop and restart delivering received bytes (backpressure towards the client).
    // Bytes the kernel had already handed over may still arrive after pause_reading().
    void pause_reading();
    void resume_reading();
    bool reading_paused() const { return _paused; }

    // Close gracefully: send what is queued, shut down our side, discard input for a
    // short while so the client reads our last response before the close, then close.
    void close_after_flush();
    // Close now, dropping unsent output (an aborted response, a reset peer).
    void close();
    bool closing() const { return _state != state::open; }

    // One timeout per stream: setting another replaces it.
    void set_timeout(milliseconds after);
    void clear_timeout();

    // Peer and local addresses, read from the socket the first time they are asked for.
    const sockaddr_storage& peer_address();
    const sockaddr_storage& local_address();

    // The TLS session when the listener carries TLS, else null. The handler sees only
    // plaintext either way.
    const tls::session* tls_session() const { return _tls; }

    // Scratch slot for the protocol (http1 keeps its connection object here).
    void* protocol_state = nullptr;

private:
    friend class reactor;
    friend class uring_reactor;
    friend class epoll_reactor;
    friend class timer_list;

    enum class state : std::uint8_t { open, draining, lingering, closed };

    reactor* _owner = nullptr;
    stream_handler* _handler = nullptr;
    int _fd = -1;
    state _state = state::closed;
    bool _paused = false;
    bool _recv_armed = false;     // a (multishot) receive is in the kernel / EPOLLIN wanted
    bool _send_in_flight = false;
    bool _dirty = false;          // on the reactor's flush list
    bool _cancel_sent = false;
    bool _eof = false;
    bool _peer_known = false;
    bool _local_known = false;
    bool _tls_eof = false;        // the peer's close_notify was passed on as on_eof
    std::uint32_t _ops = 0;       // kernel operations not yet completed (io_uring)
    std::uint32_t _poll_events = 0;  // interest registered with epoll, 0 = not registered
    std::uint64_t _bytes_sent = 0;

    byte_buffer _out;      // filled by the protocol (plaintext)
    byte_buffer _sending;  // being sent; never touched until its send completed
    tls::session* _tls = nullptr;  // from the reactor's pool; null on a plaintext stream

    // Timeout bookkeeping: an intrusive FIFO per duration (see timer_list).
    timer_list* _timer = nullptr;
    stream* _timer_prev = nullptr;
    stream* _timer_next = nullptr;
    std::int64_t _deadline = 0;

    stream* _next_free = nullptr;   // free list / flush list link
    stream* _next_dirty = nullptr;
    stream* _next_dead = nullptr;

    sockaddr_storage _peer{};
    sockaddr_storage _local{};
};

// Streams waiting on the same fixed duration expire in the order they were armed, so a
// FIFO list per duration is a complete timer queue: O(1) to arm, disarm and expire.
class timer_list {
public:
    explicit timer_list(std::int64_t duration_ms) : _duration(duration_ms) {}
    std::int64_t duration() const { return _duration; }
    void push(stream* s, std::int64_t now_ms);
    void remove(stream* s);
    stream* front() const { return _head; }

private:
    std::int64_t _duration;
    stream* _head = nullptr;
    stream* _tail = nullptr;
};

struct reactor_config {
    backend_choice io = backend_choice::automatic;
    // io_uring: submission queue size and the provided receive buffers.
    unsigned ring_entries = 2048;
    unsigned recv_buffer_count = 256;  // a power of two
    unsigned recv_buffer_size = 16 * 1024;
    // How long a gracefully closing connection keeps discarding input.
    milliseconds linger = milliseconds(2000);
    // A closing connection whose client takes none of our last bytes for this long is
    // closed anyway: a peer that stops reading cannot hold a connection forever.
    milliseconds drain_timeout = milliseconds(60000);
    // After accept() fails for lack of file descriptors, wait before trying again.
    milliseconds accept_retry = milliseconds(100);
};

// Lets an embedding runtime give up a lock (Python's GIL) while the thread sleeps in the
// reactor's wait, and only then: handlers always run with it held.
class wait_guard {
public:
    virtual ~wait_guard() = default;
    virtual void release() = 0;
    virtual void reacquire() = 0;
};

struct reactor_stats {
    std::uint64_t accepted = 0;
    std::uint64_t closed = 0;
    std::uint64_t recv_rearmed = 0;    // multishot receives that ended and were re-armed
    std::uint64_t no_buffers = 0;      // receives that ended with -ENOBUFS
    std::uint64_t accept_errors = 0;
    std::uint64_t tls_errors = 0;      // connections closed for a TLS failure (handshake or record)
    std::size_t open_streams = 0;
};

class reactor {
public:
    // Builds the backend asked for; `automatic` takes io_uring when probe_uring() says it
    // is usable and epoll otherwise. Throws std::system_error when the asked-for backend
    // cannot be created.
    static std::unique_ptr<reactor> create(const reactor_config& config);

    virtual ~reactor();
    reactor(const reactor&) = delete;
    reactor& operator=(const reactor&) = delete;

    virtual backend kind() const = 0;
    // Why this backend was chosen, for the startup log ("io_uring" / "epoll: <reason>").
    const std::string& choice_reason() const { return _choice_reason; }

    // Accept connections on a listening socket (owned by the caller, who keeps it open
    // while the reactor runs); each accepted socket gets acceptor.open(). With
    // `tls_context` (kept alive by the caller too), every connection speaks TLS under that
    // context: the reactor decrypts before on_data and encrypts what flush() sends.
    // `shared`: other processes accept on the same socket (worker processes, Gunicorn's
    // arbiter): io_uring then takes one connection per accept, so the kernel's wake-ups
    // rotate between the processes instead of feeding one multishot accept forever.
    void add_listener(int fd, stream_acceptor& acceptor, const tls::context* tls_context = nullptr,
                      bool shared = false);
    // Stop accepting on every listener (graceful shutdown); accepted streams go on.
    void stop_accepting();

    // Run what is ready and wait up to `timeout` (-1: until something happens, 0: do
    // not wait) for more; runs expired timeouts and sends what handlers queued.
    void poll(int timeout_ms);

    // Hand the kernel what was queued outside its wait (sends from an outer event
    // loop's callbacks, receives armed for new connections, cancellations) and finish
    // closing streams, without waiting for anything. An outer loop calls it after
    // poll(0) and after its own callbacks.
    void flush();

    // A descriptor that becomes readable when poll() has work: lets an outer event loop
    // (asyncio) drive this reactor.
    virtual int wait_fd() const = 0;

    // Close every open stream now (the end of a shutdown).
    void close_all();
    // For a protocol owner that leaves while the reactor lives on (a worker on a loop
    // whose selector is the ring): streams still closing get a handler that ignores
    // everything, and listeners stop for good, so no call reaches the departed owner.
    void orphan_streams();

    void set_wait_guard(wait_guard* g) { _wait_guard = g; }
    // Told why each connection that failed in TLS was closed (a debug log); may be empty.
    void set_tls_error_log(std::function<void(std::string_view reason)> log) { _tls_error_log = std::move(log); }

    std::int64_t now_ms() const { return _now_ms; }
    const date_cache& date() const { return _date; }
    buffer_pool& buffers() { return _buffers; }
    const reactor_stats& stats() const { return _stats; }
    std::size_t open_streams() const { return _stats.open_streams; }
    const reactor_config& config() const { return _config; }

protected:
    struct listener_slot {
        int fd = -1;
        stream_acceptor* acceptor = nullptr;
        const tls::context* tls_context = nullptr;
        bool armed = false;        // accepting (multishot accept in the kernel / EPOLLIN)
        bool shared = false;       // the socket is accepted on by other processes too
        bool stopped = false;
        std::int64_t retry_at = 0;  // when accepting paused after EMFILE/ENFILE
    };

    explicit reactor(const reactor_config& config);

    // Backend operations.
    virtual void arm_listener(listener_slot& l) = 0;
    virtual void disarm_listener(listener_slot& l) = 0;
    virtual void arm_recv(stream& s) = 0;
    virtual void disarm_recv(stream& s) = 0;
    virtual void start_send(stream& s) = 0;
    // Begin tearing the socket down: cancel what is in the kernel. The base closes the fd
    // and recycles the stream once s._ops is zero.
    virtual void cancel_operations(stream& s) = 0;
    // Submit queued work and wait for completions up to timeout_ms; dispatch them.
    virtual void wait_and_dispatch(int timeout_ms) = 0;
    // Hand queued operations to the kernel without waiting.
    virtual void submit() {}

    // Called by backends.
    void on_accepted(listener_slot& l, int fd);
    void on_accept_error(listener_slot& l, int error);
    void on_received(stream& s, std::string_view bytes);
    void on_peer_eof(stream& s);
    void on_socket_error(stream& s, int error);
    void on_sent(stream& s, std::size_t bytes);
    void operation_done(stream& s);

    std::vector<std::unique_ptr<listener_slot>> _listeners;
    std::string _choice_reason;
    reactor_config _config;
    reactor_stats _stats;
    wait_guard* _wait_guard = nullptr;

private:
    friend class stream;

    stream* allocate_stream();
    // Moves what the stream should send next into s._sending (which is empty); false if
    // there is nothing. Plaintext streams swap buffers; TLS streams encrypt.
    bool take_output(stream& s) {
        if (s._tls != nullptr) {
            return take_tls_output(s);
        }
        if (s._out.empty()) {
            return false;
        }
        std::swap(s._out, s._sending);
        return true;
    }
    bool take_tls_output(stream& s);
    void receive_tls(stream& s, std::string_view ciphertext);
    bool start_tls(stream& s, const tls::context& context);
    void end_tls(stream& s);
    void release_idle_buffers(stream& s);  // with nothing left to send
    void mark_dirty(stream& s);
    void flush_dirty();
    void begin_close(stream& s);
    void finish_close(stream& s);
    void recycle_dead();
    void expire_timers();
    void rearm_listeners();
    int next_wait(int timeout_ms) const;
    void update_clock();
    timer_list& timers_for(milliseconds duration);

    std::vector<std::unique_ptr<stream>> _streams;  // every stream ever made, reused
    stream* _free = nullptr;
    stream* _dirty = nullptr;
    stream* _dead = nullptr;
    std::vector<std::unique_ptr<timer_list>> _timer_lists;
    buffer_pool _buffers;
    // TLS sessions are reused across connections, like streams; plaintext out of
    // OpenSSL lands in one scratch buffer before on_data.
    std::vector<std::unique_ptr<tls::session>> _tls_sessions;
    std::vector<tls::session*> _free_tls_sessions;
    std::unique_ptr<char[]> _tls_plaintext;
    std::function<void(std::string_view)> _tls_error_log;
    date_cache _date;
    std::int64_t _now_ms = 0;
};

}  // namespace dbridge::io

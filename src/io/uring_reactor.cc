// The io_uring backend: multishot accept per listener, multishot receive into a ring of
// provided buffers, one send in flight per stream, cancellation on close. Every SQE
// carries its owner (a stream or listener slot, 8-byte aligned) and a tag in the low
// bits of user_data, so each completion is routed without a lookup.
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "io/reactor.h"
#include "io/uring_reactor.h"

namespace dbridge::io {

namespace {

enum class op_tag : std::uint64_t {
    accept = 1,
    recv = 2,
    send = 3,
    cancel = 4,           // a cancellation aimed at a stream's operations
    listener_cancel = 5,  // a cancellation of a listener's accept
    poll = 6,             // an fd_watch's one-shot poll
    poll_cancel = 7,      // the removal of one; its own completion carries nothing
};
constexpr std::uint64_t tag_mask = 7;
constexpr unsigned buffer_group = 0;

std::uint64_t tagged(const void* owner, op_tag tag) {
    return reinterpret_cast<std::uint64_t>(owner) | static_cast<std::uint64_t>(tag);
}

// Flags that lower the cost of every completion when the kernel has them; tried in
// order until one is accepted.
constexpr unsigned setup_flag_sets[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
    IORING_SETUP_COOP_TASKRUN,
    0,
};

int init_ring(io_uring& ring, unsigned entries) {
    int rc = -EINVAL;
    for (unsigned flags : setup_flag_sets) {
        io_uring_params params{};
        params.flags = flags | IORING_SETUP_CQSIZE;
        params.cq_entries = entries * 4;
        rc = io_uring_queue_init_params(entries, &ring, &params);
        if (rc == 0) {
            return 0;
        }
        if (rc != -EINVAL) {
            return rc;
        }
    }
    return rc;
}

}  // namespace

namespace {

// Multishot receive (the one feature the opcode probe cannot tell apart) came with 6.0.
bool kernel_at_least(int major, int minor) {
    utsname u{};
    if (::uname(&u) != 0) {
        return false;
    }
    int have_major = 0;
    int have_minor = 0;
    if (std::sscanf(u.release, "%d.%d", &have_major, &have_minor) != 2) {
        return false;
    }
    return have_major > major || (have_major == major && have_minor >= minor);
}

}  // namespace

uring_probe probe_uring() {
    uring_probe result;
    if (!kernel_at_least(6, 0)) {
        result.reason = "kernel older than 6.0 (no multishot receive)";
        return result;
    }
    io_uring ring{};
    int rc = io_uring_queue_init(8, &ring, 0);
    if (rc < 0) {
        result.reason = std::string("io_uring_setup failed: ") + std::strerror(-rc);
        if (rc == -ENOSYS) {
            result.reason += " (kernel without io_uring, or a seccomp filter forbids it)";
        } else if (rc == -EPERM) {
            result.reason += " (io_uring_disabled, or a seccomp filter forbids it)";
        }
        return result;
    }
    io_uring_probe* probe = io_uring_get_probe_ring(&ring);
    bool ops = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_ACCEPT) &&
               io_uring_opcode_supported(probe, IORING_OP_RECV) &&
               io_uring_opcode_supported(probe, IORING_OP_SEND) &&
               io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL);
    if (probe != nullptr) {
        io_uring_free_probe(probe);
    }
    // Provided buffer rings (5.19) are the newest feature we use; multishot accept and
    // receive came with 5.19 and 6.0. Registering a small ring tells us directly.
    bool buf_ring = false;
    if (ops) {
        long page = ::sysconf(_SC_PAGESIZE);
        void* mem = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem != MAP_FAILED) {
            io_uring_buf_reg reg{};
            reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
            reg.ring_entries = 1;
            reg.bgid = 0;
            buf_ring = io_uring_register_buf_ring(&ring, &reg, 0) == 0;
            ::munmap(mem, page);
        }
    }
    io_uring_queue_exit(&ring);
    if (!ops) {
        result.reason = "io_uring lacks accept/recv/send/cancel opcodes (kernel too old)";
    } else if (!buf_ring) {
        result.reason = "io_uring lacks provided buffer rings (kernel older than 5.19)";
    } else {
        result.usable = true;
    }
    return result;
}

uring_reactor::uring_reactor(const reactor_config& config) : reactor(config) {
    int rc = init_ring(_ring, config.ring_entries);
    if (rc < 0) {
        throw std::system_error(-rc, std::generic_category(), "io_uring_queue_init");
    }
    _buffer_count = config.recv_buffer_count;
    _buffer_size = config.recv_buffer_size;
    if (_buffer_count == 0 || (_buffer_count & (_buffer_count - 1)) != 0) {
        io_uring_queue_exit(&_ring);
        throw std::invalid_argument("recv_buffer_count must be a power of two");
    }
    std::size_t ring_bytes = sizeof(io_uring_buf) * _buffer_count;
    std::size_t data_bytes = std::size_t(_buffer_count) * _buffer_size;
    _mapping_size = ring_bytes + data_bytes;
    void* mem = ::mmap(nullptr, _mapping_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        int err = errno;
        io_uring_queue_exit(&_ring);
        throw std::system_error(err, std::generic_category(), "mmap (receive buffers)");
    }
    _buffer_ring = static_cast<io_uring_buf_ring*>(mem);
    _buffer_base = static_cast<char*>(mem) + ring_bytes;

    // liburing 2.3 (Debian 12) has io_uring_register_buf_ring but not
    // io_uring_setup_buf_ring: map and register the ring ourselves.
    io_uring_buf_ring_init(_buffer_ring);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(_buffer_ring);
    reg.ring_entries = _buffer_count;
    reg.bgid = buffer_group;
    rc = io_uring_register_buf_ring(&_ring, &reg, 0);
    if (rc < 0) {
        ::munmap(mem, _mapping_size);
        io_uring_queue_exit(&_ring);
        throw std::system_error(-rc, std::generic_category(), "io_uring_register_buf_ring");
    }
    unsigned mask = io_uring_buf_ring_mask(_buffer_count);
    for (unsigned id = 0; id < _buffer_count; ++id) {
        io_uring_buf_ring_add(_buffer_ring, _buffer_base + std::size_t(id) * _buffer_size, _buffer_size,
                              static_cast<unsigned short>(id), mask, static_cast<int>(id));
    }
    io_uring_buf_ring_advance(_buffer_ring, static_cast<int>(_buffer_count));
}

uring_reactor::~uring_reactor() {
    // Closing the ring cancels and reaps whatever is still in the kernel, so the streams
    // and buffers can go after it.
    io_uring_queue_exit(&_ring);
    if (_event_fd >= 0) {
        ::close(_event_fd);
    }
    ::munmap(_buffer_ring, _mapping_size);
}

int uring_reactor::wait_fd() const {
    // Registered on first use only: every completion signals a registered eventfd, a
    // cost not worth paying when nobody polls it.
    if (_event_fd < 0) {
        int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) {
            throw std::system_error(errno, std::generic_category(), "eventfd");
        }
        int rc = io_uring_register_eventfd(&_ring, fd);
        if (rc < 0) {
            ::close(fd);
            throw std::system_error(-rc, std::generic_category(), "io_uring_register_eventfd");
        }
        _event_fd = fd;
    }
    return _event_fd;
}

io_uring_sqe* uring_reactor::next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    while (sqe == nullptr) {
        // The submission queue is full: hand it to the kernel and take a fresh slot.
        int rc = io_uring_submit(&_ring);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            throw std::system_error(-rc, std::generic_category(), "io_uring_submit");
        }
        sqe = io_uring_get_sqe(&_ring);
    }
    return sqe;
}

void uring_reactor::arm_listener(listener_slot& l) {
    io_uring_sqe* sqe = next_sqe();
    if (l.shared) {
        // A multishot accept stays first in the socket's (exclusive) wait queue and would
        // take every connection from the other processes; a one-shot accept re-queues
        // behind them each time.
        io_uring_prep_accept(sqe, l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } else {
        io_uring_prep_multishot_accept(sqe, l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    io_uring_sqe_set_data64(sqe, tagged(&l, op_tag::accept));
    l.armed = true;
}

void uring_reactor::disarm_listener(listener_slot& l) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel64(sqe, tagged(&l, op_tag::accept), 0);
    io_uring_sqe_set_data64(sqe, tagged(&l, op_tag::listener_cancel));
    // `armed` stays true until the accept's last completion comes back.
}

void uring_reactor::arm_recv(stream& s) {
    if (s._recv_armed) {
        return;
    }
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_recv_multishot(sqe, s._fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buffer_group;
    io_uring_sqe_set_data64(sqe, tagged(&s, op_tag::recv));
    s._recv_armed = true;
    ++s._ops;
}

void uring_reactor::disarm_recv(stream& s) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel64(sqe, tagged(&s, op_tag::recv), 0);
    io_uring_sqe_set_data64(sqe, tagged(&s, op_tag::cancel));
    ++s._ops;
}

void uring_reactor::start_send(stream& s) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_send(sqe, s._fd, s._sending.data(), s._sending.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tagged(&s, op_tag::send));
    s._send_in_flight = true;
    ++s._ops;
}

void uring_reactor::cancel_operations(stream& s) {
    if (s._ops == 0 || s._cancel_sent) {
        return;
    }
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel_fd(sqe, s._fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, tagged(&s, op_tag::cancel));
    s._cancel_sent = true;
    ++s._ops;
}

void uring_reactor::watch(fd_watch& w) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_poll_add(sqe, w.fd, w.events);
    io_uring_sqe_set_data64(sqe, tagged(&w, op_tag::poll));
    w.in_kernel = true;
}

void uring_reactor::unwatch(fd_watch& w) {
    if (!w.in_kernel) {
        return;
    }
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_poll_remove(sqe, tagged(&w, op_tag::poll));
    io_uring_sqe_set_data64(sqe, tagged(&w, op_tag::poll_cancel));
}

void uring_reactor::wait_and_dispatch(int timeout_ms) {
    if (_event_fd >= 0) {
        // An outer loop woke us through the eventfd: reset it before reaping, so a
        // completion posted after this read wakes that loop again.
        std::uint64_t count;
        [[maybe_unused]] ssize_t n = ::read(_event_fd, &count, sizeof(count));
    }
    if (timeout_ms == 0) {
        io_uring_submit_and_get_events(&_ring);
    } else {
        io_uring_cqe* cqe = nullptr;
        __kernel_timespec ts{};
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
        if (_wait_guard != nullptr) {
            _wait_guard->release();
        }
        io_uring_submit_and_wait_timeout(&_ring, &cqe, 1, timeout_ms > 0 ? &ts : nullptr, nullptr);
        if (_wait_guard != nullptr) {
            _wait_guard->reacquire();
        }
    }
    // Handlers may queue new SQEs while we walk the completions; that is fine, they are
    // submitted with the next wait.
    for (;;) {
        io_uring_cqe* batch[64];
        unsigned n = io_uring_peek_batch_cqe(&_ring, batch, 64);
        if (n == 0) {
            break;
        }
        for (unsigned i = 0; i < n; ++i) {
            dispatch(*batch[i]);
            io_uring_cqe_seen(&_ring, batch[i]);
        }
    }
}

void uring_reactor::submit() {
    if (io_uring_sq_ready(&_ring) > 0) {
        io_uring_submit(&_ring);
    }
}

void uring_reactor::give_back_buffer(unsigned id) {
    io_uring_buf_ring_add(_buffer_ring, _buffer_base + std::size_t(id) * _buffer_size, _buffer_size,
                          static_cast<unsigned short>(id), io_uring_buf_ring_mask(_buffer_count), 0);
    io_uring_buf_ring_advance(_buffer_ring, 1);
}

void uring_reactor::dispatch(const io_uring_cqe& cqe) {
    auto tag = static_cast<op_tag>(cqe.user_data & tag_mask);
    void* owner = reinterpret_cast<void*>(cqe.user_data & ~tag_mask);
    bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;

    switch (tag) {
    case op_tag::accept: {
        auto& l = *static_cast<listener_slot*>(owner);
        if (!more) {
            l.armed = false;  // re-armed by rearm_listeners() unless stopped or backing off
        }
        if (cqe.res >= 0) {
            if (l.acceptor == nullptr) {
                ::close(cqe.res);  // the owner has left (orphan_streams)
            } else {
                // Accepted before stop_accepting() reached the kernel: the connection is
                // ours now (on a shared socket no other process can take it), so serve it.
                on_accepted(l, cqe.res);
                if (!l.armed && !l.stopped) {
                    arm_listener(l);  // one-shot (shared) accept: the next one goes with this batch
                }
            }
        } else if (cqe.res != -ECANCELED) {
            on_accept_error(l, -cqe.res);
        }
        break;
    }
    case op_tag::recv: {
        auto& s = *static_cast<stream*>(owner);
        if ((cqe.flags & IORING_CQE_F_BUFFER) != 0) {
            unsigned id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
            if (cqe.res > 0) {
                on_received(s, {_buffer_base + std::size_t(id) * _buffer_size, std::size_t(cqe.res)});
            }
            give_back_buffer(id);
        }
        if (cqe.res == 0) {
            on_peer_eof(s);
        } else if (cqe.res == -ENOBUFS) {
            // Every provided buffer was in use: this multishot receive has ended. The
            // buffers come back as the batch is processed; re-arm below.
            ++_stats.no_buffers;
        } else if (cqe.res < 0 && cqe.res != -ECANCELED) {
            on_socket_error(s, -cqe.res);
        }
        if (!more) {
            s._recv_armed = false;
            if (s._state != stream::state::closed && !s._paused && !s._eof) {
                ++_stats.recv_rearmed;
                arm_recv(s);
            }
            operation_done(s);
        }
        break;
    }
    case op_tag::send: {
        auto& s = *static_cast<stream*>(owner);
        s._send_in_flight = false;
        if (cqe.res >= 0) {
            on_sent(s, static_cast<std::size_t>(cqe.res));
        } else if (cqe.res != -ECANCELED) {
            on_socket_error(s, -cqe.res);
        }
        operation_done(s);
        break;
    }
    case op_tag::cancel:
        operation_done(*static_cast<stream*>(owner));
        break;
    case op_tag::listener_cancel:
        break;
    case op_tag::poll: {
        auto& w = *static_cast<fd_watch*>(owner);
        w.in_kernel = false;
        w.on_poll(cqe.res);  // may destroy w
        break;
    }
    case op_tag::poll_cancel:
        break;
    }
}

}  // namespace dbridge::io

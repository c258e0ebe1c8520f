// The epoll backend: level-triggered readiness, one read per ready stream per loop
// iteration (so a fast sender cannot starve the others), sends tried at once and
// finished on EPOLLOUT. Same handler calls, in the same order, as the io_uring backend.
#include "io/epoll_reactor.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace dbridge::io {

namespace {

// epoll_event.data carries the owner with a tag in the low bit.
constexpr std::uint64_t listener_bit = 1;

}  // namespace

epoll_reactor::epoll_reactor(const reactor_config& config)
    : reactor(config), _scratch(std::make_unique_for_overwrite<char[]>(scratch_size)) {
    _epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (_epoll_fd < 0) {
        throw std::system_error(errno, std::generic_category(), "epoll_create1");
    }
}

epoll_reactor::~epoll_reactor() {
    ::close(_epoll_fd);
}

void epoll_reactor::arm_listener(listener_slot& l) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = reinterpret_cast<std::uint64_t>(&l) | listener_bit;
    if (::epoll_ctl(_epoll_fd, EPOLL_CTL_MOD, l.fd, &ev) != 0) {
        ::epoll_ctl(_epoll_fd, EPOLL_CTL_ADD, l.fd, &ev);
    }
    l.armed = true;
}

void epoll_reactor::disarm_listener(listener_slot& l) {
    ::epoll_ctl(_epoll_fd, EPOLL_CTL_DEL, l.fd, nullptr);
    l.armed = false;
}

void epoll_reactor::update_interest(stream& s) {
    std::uint32_t wanted = 0;
    if (s._recv_armed) {
        wanted |= EPOLLIN | EPOLLRDHUP;
    }
    if (s._send_in_flight) {
        wanted |= EPOLLOUT;
    }
    if (wanted == s._poll_events) {
        return;
    }
    epoll_event ev{};
    ev.events = wanted;
    ev.data.u64 = reinterpret_cast<std::uint64_t>(&s);
    int op = s._poll_events == 0 ? EPOLL_CTL_ADD : (wanted == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD);
    ::epoll_ctl(_epoll_fd, op, s._fd, &ev);
    s._poll_events = wanted;
}

void epoll_reactor::arm_recv(stream& s) {
    s._recv_armed = true;
    update_interest(s);
}

void epoll_reactor::disarm_recv(stream& s) {
    s._recv_armed = false;
    update_interest(s);
}

void epoll_reactor::start_send(stream& s) {
    ssize_t n = ::send(s._fd, s._sending.data(), s._sending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
        bool waiting = s._send_in_flight;
        s._send_in_flight = false;
        if (waiting) {
            update_interest(s);
        }
        on_sent(s, static_cast<std::size_t>(n));  // resumes a short send, or drains
        return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // The kernel buffer is full: this send stays "in flight" until EPOLLOUT.
        s._send_in_flight = true;
        update_interest(s);
        return;
    }
    on_socket_error(s, errno);
}

void epoll_reactor::cancel_operations(stream& s) {
    // Nothing is in the kernel: forget the registration (close() would drop it too, but
    // the fd stays open until the stream is recycled).
    if (s._poll_events != 0) {
        ::epoll_ctl(_epoll_fd, EPOLL_CTL_DEL, s._fd, nullptr);
        s._poll_events = 0;
    }
    s._recv_armed = false;
    s._send_in_flight = false;
}

void epoll_reactor::accept_ready(listener_slot& l) {
    // A bounded batch per wakeup keeps accepting from starving established streams.
    for (int i = 0; i < 64 && l.armed; ++i) {
        int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            on_accepted(l, fd);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        on_accept_error(l, errno);
        return;
    }
}

void epoll_reactor::stream_ready(stream& s, unsigned events) {
    if ((events & EPOLLOUT) != 0 && s._send_in_flight && s._state != stream::state::closed) {
        start_send(s);
    }
    if (s._state == stream::state::closed) {
        return;
    }
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0) {
        return;
    }
    if (!s._recv_armed) {
        // Reading is paused, yet the socket reports an error or hang-up: level-triggered
        // epoll would report it forever, so the connection ends here.
        if ((events & (EPOLLHUP | EPOLLERR)) != 0) {
            on_socket_error(s, ECONNRESET);
        }
        return;
    }
    ssize_t n = ::recv(s._fd, _scratch.get(), scratch_size, 0);
    if (n > 0) {
        on_received(s, {_scratch.get(), static_cast<std::size_t>(n)});
    } else if (n == 0) {
        s._recv_armed = false;
        update_interest(s);
        on_peer_eof(s);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        on_socket_error(s, errno);
    }
}

void epoll_reactor::wait_and_dispatch(int timeout_ms) {
    epoll_event events[256];
    int n = ::epoll_wait(_epoll_fd, events, 256, timeout_ms);
    for (int i = 0; i < n; ++i) {
        std::uint64_t data = events[i].data.u64;
        if ((data & listener_bit) != 0) {
            auto& l = *reinterpret_cast<listener_slot*>(data & ~listener_bit);
            if (l.armed) {
                accept_ready(l);
            }
        } else {
            // A stream closed earlier in this batch is not recycled before the batch
            // ends, so the pointer is still valid; stream_ready checks its state.
            stream_ready(*reinterpret_cast<stream*>(data), events[i].events);
        }
    }
}

}  // namespace dbridge::io

// The io_uring backend of the reactor (see uring_reactor.cc).
#pragma once

#include <liburing.h>

#include "io/reactor.h"

namespace dbridge::io {

// A descriptor someone else owns (an outer event loop's socket or pipe), polled through
// the ring so that one wait covers it and the reactor's sockets. One-shot: the owner
// re-arms it after each readiness; since the kernel checks readiness when a poll is
// armed, that gives level-triggered behaviour.
class fd_watch {
public:
    int fd = -1;
    unsigned events = 0;      // POLLIN | POLLOUT
    bool in_kernel = false;   // a poll is armed and has not completed
    // The poll completed: poll(2) revents, or -errno (-ECANCELED after unwatch()).
    virtual void on_poll(int result) = 0;

protected:
    ~fd_watch() = default;
};

class uring_reactor final : public reactor {
public:
    explicit uring_reactor(const reactor_config& config);
    ~uring_reactor() override;

    backend kind() const override { return backend::uring; }
    int wait_fd() const override;

    // Arm a one-shot poll for w.events. `w` must stay alive until it completes.
    void watch(fd_watch& w);
    // Cancel an armed poll; its completion (-ECANCELED, or a readiness that raced the
    // cancellation) still comes back to w.on_poll().
    void unwatch(fd_watch& w);

private:
    void arm_listener(listener_slot& l) override;
    void disarm_listener(listener_slot& l) override;
    void arm_recv(stream& s) override;
    void disarm_recv(stream& s) override;
    void start_send(stream& s) override;
    void cancel_operations(stream& s) override;
    void wait_and_dispatch(int timeout_ms) override;
    void submit() override;

    io_uring_sqe* next_sqe();
    void dispatch(const io_uring_cqe& cqe);
    void give_back_buffer(unsigned id);

    mutable io_uring _ring{};
    mutable int _event_fd = -1;
    io_uring_buf_ring* _buffer_ring = nullptr;
    char* _buffer_base = nullptr;
    std::size_t _mapping_size = 0;
    unsigned _buffer_count = 0;
    unsigned _buffer_size = 0;
};

}  // namespace dbridge::io

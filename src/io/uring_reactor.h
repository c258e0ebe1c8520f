// The io_uring backend of the reactor (see uring_reactor.cc).
#pragma once

#include <liburing.h>

#include "io/reactor.h"

namespace dbridge::io {

class uring_reactor final : public reactor {
public:
    explicit uring_reactor(const reactor_config& config);
    ~uring_reactor() override;

    backend kind() const override { return backend::uring; }
    int wait_fd() const override;

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

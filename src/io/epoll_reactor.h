// The epoll backend of the reactor (see epoll_reactor.cc): the fallback where io_uring
// is missing or forbidden, with the same behaviour.
#pragma once

#include <memory>

#include "io/reactor.h"

namespace dbridge::io {

class epoll_reactor final : public reactor {
public:
    explicit epoll_reactor(const reactor_config& config);
    ~epoll_reactor() override;

    backend kind() const override { return backend::epoll; }
    int wait_fd() const override { return _epoll_fd; }

private:
    void arm_listener(listener_slot& l) override;
    void disarm_listener(listener_slot& l) override;
    void arm_recv(stream& s) override;
    void disarm_recv(stream& s) override;
    void start_send(stream& s) override;
    void cancel_operations(stream& s) override;
    void wait_and_dispatch(int timeout_ms) override;

    void update_interest(stream& s);
    void accept_ready(listener_slot& l);
    void stream_ready(stream& s, unsigned events);

    int _epoll_fd = -1;
    std::unique_ptr<char[]> _scratch;  // every read lands here first; handlers keep what they need
    static constexpr std::size_t scratch_size = 64 * 1024;
};

}  // namespace dbridge::io

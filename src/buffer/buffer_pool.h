// Per-loop-thread pool of byte buffers. A connection borrows a buffer only while it
// holds bytes (unsent output, a partial request head) and gives it back when it is
// empty again, so busy connections allocate nothing per request and idle keep-alive
// connections hold no buffer memory at all.
#pragma once

#include <cstddef>
#include <vector>

#include "buffer/byte_buffer.h"

namespace dbridge {

class buffer_pool {
public:
    // Buffers that grew beyond this (a 1 MB response) are freed rather than kept.
    static constexpr std::size_t max_pooled_capacity = 64 * 1024;

    explicit buffer_pool(std::size_t max_pooled_buffers = 1024) : _max_pooled(max_pooled_buffers) {}

    byte_buffer take() {
        if (_free.empty()) {
            return byte_buffer{};
        }
        byte_buffer b = std::move(_free.back());
        _free.pop_back();
        return b;
    }

    void give(byte_buffer&& b) {
        b.clear();
        if (b.capacity() == 0 || b.capacity() > max_pooled_capacity || _free.size() >= _max_pooled) {
            b.release();
            return;
        }
        _free.push_back(std::move(b));
    }

    std::size_t pooled() const { return _free.size(); }

private:
    std::size_t _max_pooled;
    std::vector<byte_buffer> _free;
};

}  // namespace dbridge

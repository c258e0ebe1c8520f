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
    // Buffers up to this size are pooled by count.
    static constexpr std::size_t max_pooled_capacity = 64 * 1024;
    // Larger ones (a 1 MB response) are kept too, up to this many bytes in all: a kept one
    // is reused as it is, where a fresh one is mapped, faulted in page by page, and
    // unmapped again when it is freed (three times the CPU of the response's own copy).
    static constexpr std::size_t max_large_bytes = 16 * 1024 * 1024;
    // No one buffer may take a large share of that: a 9 MB WebSocket message must not pin
    // the whole budget (and be handed to every 100 KB body after it).
    static constexpr std::size_t max_large_capacity = 4 * 1024 * 1024;

    explicit buffer_pool(std::size_t max_pooled_buffers = 1024) : _max_pooled(max_pooled_buffers) {}

    byte_buffer take() {
        if (_free.empty()) {
            return byte_buffer{};
        }
        byte_buffer b = std::move(_free.back());
        _free.pop_back();
        return b;
    }

    // An empty buffer with room for at least `n` bytes: the smallest kept large one that
    // fits, else a new one of exactly that size.
    byte_buffer take_large(std::size_t n) {
        std::size_t best = _large.size();
        for (std::size_t i = 0; i < _large.size(); ++i) {
            const std::size_t c = _large[i].capacity();
            if (c >= n && (best == _large.size() || c < _large[best].capacity())) {
                best = i;
            }
        }
        if (best == _large.size()) {
            byte_buffer b;
            b.reserve(n);
            return b;
        }
        byte_buffer b = std::move(_large[best]);
        if (best != _large.size() - 1) {
            _large[best] = std::move(_large.back());
        }
        _large.pop_back();
        _large_bytes -= b.capacity();
        return b;
    }

    void give(byte_buffer&& b) {
        b.clear();
        if (b.capacity() > max_pooled_capacity) {
            if (b.capacity() <= max_large_capacity && _large_bytes + b.capacity() <= max_large_bytes) {
                _large_bytes += b.capacity();
                _large.push_back(std::move(b));
            } else {
                b.release();
            }
            return;
        }
        if (b.capacity() == 0 || _free.size() >= _max_pooled) {
            b.release();
            return;
        }
        _free.push_back(std::move(b));
    }

    std::size_t pooled() const { return _free.size(); }
    std::size_t pooled_large_bytes() const { return _large_bytes; }

private:
    std::size_t _max_pooled;
    std::vector<byte_buffer> _free;
    std::vector<byte_buffer> _large;
    std::size_t _large_bytes = 0;
};

}  // namespace dbridge

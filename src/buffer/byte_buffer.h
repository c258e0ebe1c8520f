// A growable byte buffer with a movable front: bytes are appended at the back and
// consumed from the front (a partial send, a parsed request). Capacity is kept across
// clear() so a connection that is reused allocates nothing in steady state.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

namespace dbridge {

class byte_buffer {
public:
    byte_buffer() = default;
    byte_buffer(const byte_buffer&) = delete;
    byte_buffer& operator=(const byte_buffer&) = delete;
    // Hand-written: the defaulted moves would leave the source with a null _storage but
    // its old offsets and capacity, so appending to a moved-from buffer wrote through null.
    byte_buffer(byte_buffer&& other) noexcept
        : _storage(std::move(other._storage)),
          _begin(std::exchange(other._begin, 0)),
          _end(std::exchange(other._end, 0)),
          _capacity(std::exchange(other._capacity, 0)) {}
    byte_buffer& operator=(byte_buffer&& other) noexcept {
        _storage = std::move(other._storage);
        _begin = std::exchange(other._begin, 0);
        _end = std::exchange(other._end, 0);
        _capacity = std::exchange(other._capacity, 0);
        return *this;
    }

    const char* data() const { return _storage.get() + _begin; }
    char* data() { return _storage.get() + _begin; }
    std::size_t size() const { return _end - _begin; }
    bool empty() const { return _end == _begin; }
    std::size_t capacity() const { return _capacity; }
    std::string_view view() const { return {data(), size()}; }

    void append(std::string_view bytes) {
        if (bytes.empty()) {
            return;
        }
        std::memcpy(prepare(bytes.size()), bytes.data(), bytes.size());
        _end += bytes.size();
    }

    // Space for at least `n` more bytes at the back; call commit() with what was written.
    char* prepare(std::size_t n) {
        if (_capacity - _end < n) {
            make_room(n);
        }
        return _storage.get() + _end;
    }
    void commit(std::size_t n) { _end += n; }

    // Capacity for at least `n` bytes in all, allocated once to that size (no doubling).
    void reserve(std::size_t n) {
        if (n <= _capacity) {
            return;
        }
        std::size_t used = size();
        auto fresh = std::make_unique_for_overwrite<char[]>(n);
        if (used != 0) {
            std::memcpy(fresh.get(), data(), used);
        }
        _storage = std::move(fresh);
        _capacity = n;
        _begin = 0;
        _end = used;
    }

    // Drops `n` bytes from the front.
    void consume(std::size_t n) {
        _begin += n;
        if (_begin == _end) {
            _begin = _end = 0;
        }
    }

    void clear() { _begin = _end = 0; }

    // Gives the memory back (an idle connection should not hold a large buffer).
    void release() {
        _storage.reset();
        _begin = _end = _capacity = 0;
    }

private:
    void make_room(std::size_t n) {
        std::size_t used = size();
        // Sliding the live bytes to the front is enough when that frees the room.
        if (_capacity - used >= n && _begin >= used) {
            std::memmove(_storage.get(), data(), used);
            _begin = 0;
            _end = used;
            return;
        }
        std::size_t wanted = used + n;
        std::size_t grown = _capacity == 0 ? 4096 : _capacity * 2;
        while (grown < wanted) {
            grown *= 2;
        }
        auto fresh = std::make_unique_for_overwrite<char[]>(grown);
        if (used != 0) {
            std::memcpy(fresh.get(), data(), used);
        }
        _storage = std::move(fresh);
        _capacity = grown;
        _begin = 0;
        _end = used;
    }

    std::unique_ptr<char[]> _storage;
    std::size_t _begin = 0;
    std::size_t _end = 0;
    std::size_t _capacity = 0;
};

}  // namespace dbridge

// buffer_pool: small buffers are pooled by count, large ones up to a byte budget, so a
// connection sending large responses reuses memory that is already mapped.
#include "buffer/buffer_pool.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <utility>

using dbridge::buffer_pool;
using dbridge::byte_buffer;

namespace {

// Where a buffer's memory starts, as an address (a char* would be compared as a string).
const void* memory_of(const byte_buffer& b) {
    return b.data();
}

byte_buffer with_capacity(std::size_t n) {
    byte_buffer b;
    b.reserve(n);
    return b;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(buffer_pool_tests)

BOOST_AUTO_TEST_CASE(reserve_allocates_exactly_and_keeps_the_bytes) {
    byte_buffer b;
    b.append("head");
    b.consume(1);
    b.reserve(1'000'000);
    BOOST_TEST(b.capacity() == 1'000'000U);
    BOOST_TEST(b.view() == "ead");
    b.reserve(10);  // never shrinks
    BOOST_TEST(b.capacity() == 1'000'000U);
}

BOOST_AUTO_TEST_CASE(a_small_buffer_comes_back_from_take) {
    buffer_pool pool;
    byte_buffer b = with_capacity(4096);
    const void* memory = memory_of(b);
    pool.give(std::move(b));
    BOOST_TEST(pool.pooled() == 1U);
    byte_buffer again = pool.take();
    BOOST_TEST(memory_of(again) == memory);
    BOOST_TEST(again.empty());
}

BOOST_AUTO_TEST_CASE(a_large_buffer_is_kept_and_handed_back_for_a_large_body) {
    buffer_pool pool;
    byte_buffer b = with_capacity(2 * 1024 * 1024);
    b.append("left over");
    const void* memory = memory_of(b);
    pool.give(std::move(b));
    BOOST_TEST(pool.pooled() == 0U);  // not among the small ones
    BOOST_TEST(pool.pooled_large_bytes() == 2U * 1024 * 1024);
    byte_buffer again = pool.take_large(1024 * 1024 + 100);
    BOOST_TEST(memory_of(again) == memory);
    BOOST_TEST(again.empty());
    BOOST_TEST(pool.pooled_large_bytes() == 0U);
}

BOOST_AUTO_TEST_CASE(take_large_makes_a_buffer_of_the_size_asked_when_none_fits) {
    buffer_pool pool;
    pool.give(with_capacity(100'000));
    byte_buffer b = pool.take_large(300'000);
    BOOST_TEST(b.capacity() == 300'000U);
    BOOST_TEST(pool.pooled_large_bytes() == 100'000U);  // the small-large one stays
}

BOOST_AUTO_TEST_CASE(large_buffers_are_kept_only_up_to_the_byte_budget) {
    buffer_pool pool;
    const std::size_t each = 3 * 1024 * 1024;
    for (int i = 0; i < 10; ++i) {
        pool.give(with_capacity(each));
    }
    BOOST_TEST(pool.pooled_large_bytes() <= buffer_pool::max_large_bytes);
    BOOST_TEST(pool.pooled_large_bytes() == (buffer_pool::max_large_bytes / each) * each);
}

BOOST_AUTO_TEST_CASE(take_large_hands_out_the_smallest_buffer_that_fits) {
    buffer_pool pool;
    pool.give(with_capacity(3 * 1024 * 1024));
    pool.give(with_capacity(200'000));
    pool.give(with_capacity(1024 * 1024));
    byte_buffer b = pool.take_large(150'000);
    BOOST_TEST(b.capacity() == 200'000U);
    byte_buffer c = pool.take_large(500'000);
    BOOST_TEST(c.capacity() == 1024U * 1024);
    BOOST_TEST(pool.pooled_large_bytes() == 3U * 1024 * 1024);
}

BOOST_AUTO_TEST_CASE(a_buffer_above_the_per_buffer_cap_is_freed_not_kept) {
    buffer_pool pool;
    pool.give(with_capacity(buffer_pool::max_large_capacity + 1));
    BOOST_TEST(pool.pooled_large_bytes() == 0U);
    pool.give(with_capacity(buffer_pool::max_large_capacity));
    BOOST_TEST(pool.pooled_large_bytes() == buffer_pool::max_large_capacity);
}

BOOST_AUTO_TEST_SUITE_END()

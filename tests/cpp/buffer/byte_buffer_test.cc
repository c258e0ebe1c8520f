// byte_buffer: bytes go in at the back, leave from the front, and the memory is reused.
#include "buffer/byte_buffer.h"

#include <boost/test/unit_test.hpp>

#include <string>
#include <utility>

using dbridge::byte_buffer;

BOOST_AUTO_TEST_SUITE(byte_buffer_tests)

BOOST_AUTO_TEST_CASE(new_buffer_is_empty_and_owns_no_memory) {
    byte_buffer buffer;
    BOOST_TEST(buffer.empty());
    BOOST_TEST(buffer.size() == 0U);
    BOOST_TEST(buffer.capacity() == 0U);
    BOOST_TEST(buffer.view().empty());
}

BOOST_AUTO_TEST_CASE(append_keeps_bytes_in_order) {
    byte_buffer buffer;
    buffer.append("hello ");
    buffer.append("world");
    BOOST_TEST(buffer.view() == "hello world");
    BOOST_TEST(buffer.size() == 11U);
    BOOST_TEST(!buffer.empty());
}

BOOST_AUTO_TEST_CASE(append_of_nothing_allocates_nothing) {
    byte_buffer buffer;
    buffer.append("");
    BOOST_TEST(buffer.capacity() == 0U);
    BOOST_TEST(buffer.empty());
}

BOOST_AUTO_TEST_CASE(append_keeps_embedded_nul_bytes) {
    using namespace std::literals;
    byte_buffer buffer;
    buffer.append("a\0b"sv);
    BOOST_TEST(buffer.view() == "a\0b"sv);
}

BOOST_AUTO_TEST_CASE(consume_drops_bytes_from_the_front) {
    byte_buffer buffer;
    buffer.append("abcdef");
    buffer.consume(2);
    BOOST_TEST(buffer.view() == "cdef");
    buffer.consume(3);
    BOOST_TEST(buffer.view() == "f");
}

BOOST_AUTO_TEST_CASE(consuming_everything_rewinds_to_the_start) {
    byte_buffer buffer;
    buffer.append("abcdef");
    const void* start = buffer.data();
    buffer.consume(6);
    BOOST_TEST(buffer.empty());
    buffer.append("xy");
    // The next bytes reuse the front of the memory instead of creeping to the back.
    BOOST_TEST(static_cast<const void*>(buffer.data()) == start);
    BOOST_TEST(buffer.view() == "xy");
}

BOOST_AUTO_TEST_CASE(prepare_then_commit_appends_what_was_written) {
    byte_buffer buffer;
    buffer.append("ab");
    char* space = buffer.prepare(10);
    BOOST_TEST(buffer.capacity() - buffer.size() >= 10U);
    space[0] = 'c';
    space[1] = 'd';
    buffer.commit(2);
    BOOST_TEST(buffer.view() == "abcd");
}

BOOST_AUTO_TEST_CASE(prepare_without_commit_adds_nothing) {
    byte_buffer buffer;
    buffer.append("ab");
    char* space = buffer.prepare(3);
    space[0] = 'X';
    BOOST_TEST(buffer.view() == "ab");
    buffer.append("c");
    BOOST_TEST(buffer.view() == "abc");
}

BOOST_AUTO_TEST_CASE(first_growth_is_a_4k_block) {
    byte_buffer buffer;
    buffer.append("x");
    BOOST_TEST(buffer.capacity() == 4096U);
}

BOOST_AUTO_TEST_CASE(growth_doubles_and_keeps_the_bytes) {
    byte_buffer buffer;
    std::string expected;
    for (int i = 0; i < 3000; ++i) {
        std::string piece = std::to_string(i) + ",";
        buffer.append(piece);
        expected += piece;
    }
    BOOST_TEST(buffer.view() == expected);
    BOOST_TEST(buffer.capacity() == 16384U);  // 13890 bytes: 4096 -> 8192 -> 16384
}

BOOST_AUTO_TEST_CASE(one_large_append_grows_past_double_in_one_step) {
    byte_buffer buffer;
    buffer.append("x");
    std::string large(100000, 'y');
    buffer.append(large);
    BOOST_TEST(buffer.size() == 100001U);
    BOOST_TEST(buffer.capacity() == 131072U);  // 4096 doubled until it holds 100001
    BOOST_TEST(buffer.view() == "x" + large);
}

BOOST_AUTO_TEST_CASE(growth_drops_the_consumed_front) {
    byte_buffer buffer;
    buffer.append(std::string(4000, 'a'));
    buffer.consume(10);
    buffer.append(std::string(200, 'b'));  // does not fit behind the live bytes
    BOOST_TEST(buffer.size() == 4190U);
    BOOST_TEST(buffer.view() == std::string(3990, 'a') + std::string(200, 'b'));
}

BOOST_AUTO_TEST_CASE(slides_live_bytes_to_the_front_instead_of_growing) {
    byte_buffer buffer;
    buffer.append(std::string(4000, 'a'));
    buffer.append("tail");
    buffer.consume(4000);  // 4 live bytes at offset 4000, 92 free at the back
    buffer.append(std::string(1000, 'b'));
    BOOST_TEST(buffer.capacity() == 4096U);
    BOOST_TEST(buffer.view() == "tail" + std::string(1000, 'b'));
}

BOOST_AUTO_TEST_CASE(grows_when_sliding_would_move_more_than_it_frees) {
    byte_buffer buffer;
    buffer.append(std::string(4000, 'a'));
    buffer.consume(1000);  // 3000 live bytes behind a 1000-byte hole
    buffer.append(std::string(500, 'b'));
    // Sliding would fit, but copying 3000 bytes to win 1000 is the quadratic case.
    BOOST_TEST(buffer.capacity() == 8192U);
    BOOST_TEST(buffer.view() == std::string(3000, 'a') + std::string(500, 'b'));
}

BOOST_AUTO_TEST_CASE(clear_keeps_the_capacity) {
    byte_buffer buffer;
    buffer.append(std::string(5000, 'a'));
    std::size_t capacity = buffer.capacity();
    buffer.clear();
    BOOST_TEST(buffer.empty());
    BOOST_TEST(buffer.capacity() == capacity);
    buffer.append("again");
    BOOST_TEST(buffer.view() == "again");
    BOOST_TEST(buffer.capacity() == capacity);
}

BOOST_AUTO_TEST_CASE(release_gives_the_memory_back_and_buffer_stays_usable) {
    byte_buffer buffer;
    buffer.append(std::string(5000, 'a'));
    buffer.release();
    BOOST_TEST(buffer.empty());
    BOOST_TEST(buffer.capacity() == 0U);
    buffer.append("again");
    BOOST_TEST(buffer.view() == "again");
}

BOOST_AUTO_TEST_CASE(move_construction_takes_the_bytes_and_leaves_an_empty_buffer) {
    byte_buffer source;
    source.append("abcdef");
    source.consume(1);
    byte_buffer target(std::move(source));
    BOOST_TEST(target.view() == "bcdef");
    BOOST_TEST(source.empty());  // NOLINT(bugprone-use-after-move): the state is specified
    BOOST_TEST(source.capacity() == 0U);
    // A moved-from buffer must be usable again (connections are pooled).
    source.append("reused");
    BOOST_TEST(source.view() == "reused");
}

BOOST_AUTO_TEST_CASE(move_assignment_takes_the_bytes_and_leaves_an_empty_buffer) {
    byte_buffer source;
    source.append("abc");
    byte_buffer target;
    target.append("old");
    target = std::move(source);
    BOOST_TEST(target.view() == "abc");
    BOOST_TEST(source.empty());  // NOLINT(bugprone-use-after-move): the state is specified
    BOOST_TEST(source.capacity() == 0U);
    source.append("reused");
    BOOST_TEST(source.view() == "reused");
}

BOOST_AUTO_TEST_SUITE_END()

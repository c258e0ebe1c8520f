// date_cache: the IMF-fixdate Date line (RFC 9110 §5.6.7), checked against known instants.
#include "clock/date_cache.h"

#include <boost/test/unit_test.hpp>

#include <ctime>
#include <string>
#include <string_view>

using dbridge::date_cache;

namespace {

struct known_instant {
    const char* rule;
    std::time_t seconds;
    std::string_view value;
};

// Expected values cross-checked with Python's email.utils.formatdate(t, usegmt=True).
const known_instant k_instants[] = {
    {"rfc_9110_example (RFC 9110 5.6.7)", 784111777, "Sun, 06 Nov 1994 08:49:37 GMT"},
    {"unix_epoch", 0, "Thu, 01 Jan 1970 00:00:00 GMT"},
    {"second_before_the_epoch", -1, "Wed, 31 Dec 1969 23:59:59 GMT"},
    {"leap_day_in_a_year_divisible_by_400", 951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
    {"last_second_of_a_leap_day", 951868799, "Tue, 29 Feb 2000 23:59:59 GMT"},
    {"day_after_a_leap_day", 951868800, "Wed, 01 Mar 2000 00:00:00 GMT"},
    {"leap_day_in_a_year_divisible_by_4", 1709164800, "Thu, 29 Feb 2024 00:00:00 GMT"},
    {"century_not_divisible_by_400_has_no_leap_day", 4107542399, "Sun, 28 Feb 2100 23:59:59 GMT"},
    {"century_not_divisible_by_400_goes_to_march_1", 4107542400, "Mon, 01 Mar 2100 00:00:00 GMT"},
    {"last_32_bit_second", 2147483647, "Tue, 19 Jan 2038 03:14:07 GMT"},
    {"first_second_past_32_bits", 2147483648, "Tue, 19 Jan 2038 03:14:08 GMT"},
    {"single_digit_fields_are_zero_padded", 1700000000, "Tue, 14 Nov 2023 22:13:20 GMT"},
    {"last_four_digit_year", 253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
    {"year_one_is_padded_to_four_digits", -62135596800, "Mon, 01 Jan 0001 00:00:00 GMT"},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(date_cache_tests)

BOOST_AUTO_TEST_CASE(formats_known_instants_as_imf_fixdate) {
    for (const known_instant& instant : k_instants) {
        BOOST_TEST_CONTEXT(instant.rule << " (t = " << instant.seconds << ")") {
            date_cache cache;
            cache.refresh(instant.seconds);
            BOOST_TEST(cache.value() == instant.value);
            BOOST_TEST(cache.line() == "date: " + std::string(instant.value) + "\r\n");
        }
    }
}

BOOST_AUTO_TEST_CASE(value_is_the_line_without_name_and_crlf) {
    date_cache cache;
    cache.refresh(784111777);
    BOOST_TEST(cache.line().size() == 37U);
    BOOST_TEST(cache.value().size() == 29U);
    BOOST_TEST(static_cast<const void*>(cache.value().data()) ==
               static_cast<const void*>(cache.line().data() + 6));
}

BOOST_AUTO_TEST_CASE(new_cache_already_holds_the_current_time) {
    std::time_t before = std::time(nullptr);
    date_cache cache;
    std::time_t after = std::time(nullptr);
    date_cache at_before;
    at_before.refresh(before);
    date_cache at_after;
    at_after.refresh(after);
    // The constructor read the clock between the two reads here.
    BOOST_TEST((cache.line() == at_before.line() || cache.line() == at_after.line()),
               "constructed line " << cache.line() << " is not the current time");
}

// Whether the cache skipped the formatting cannot be seen from outside; what can be
// seen is that a refresh within the same second leaves the line as it was.
BOOST_AUTO_TEST_CASE(refresh_within_the_same_second_keeps_the_line) {
    date_cache cache;
    cache.refresh(1700000000);
    std::string_view line = cache.line();
    cache.refresh(1700000000);
    BOOST_TEST(cache.value() == "Tue, 14 Nov 2023 22:13:20 GMT");
    BOOST_TEST(line == cache.line());
}

BOOST_AUTO_TEST_CASE(refresh_in_the_next_second_updates_the_line) {
    date_cache cache;
    cache.refresh(1700000000);
    std::string_view line = cache.line();  // a view into the cache, not a copy
    cache.refresh(1700000001);
    BOOST_TEST(cache.value() == "Tue, 14 Nov 2023 22:13:21 GMT");
    BOOST_TEST(line == "date: Tue, 14 Nov 2023 22:13:21 GMT\r\n");
}

BOOST_AUTO_TEST_CASE(clock_stepped_back_shows_the_earlier_time) {
    date_cache cache;
    cache.refresh(1700000000);
    cache.refresh(1699999999);
    BOOST_TEST(cache.value() == "Tue, 14 Nov 2023 22:13:19 GMT");
}

BOOST_AUTO_TEST_CASE(year_beyond_four_digits_keeps_the_previous_line) {
    date_cache cache;
    cache.refresh(784111777);
    cache.refresh(253402300800);  // year 10000 has no IMF-fixdate
    BOOST_TEST(cache.value() == "Sun, 06 Nov 1994 08:49:37 GMT");
    cache.refresh(784111778);
    BOOST_TEST(cache.value() == "Sun, 06 Nov 1994 08:49:38 GMT");
}

BOOST_AUTO_TEST_SUITE_END()

// The UTF-8 validator against the boundaries of RFC 3629 §4: each row is checked whole,
// cut in two at every byte, and fed one byte at a time, since text messages arrive in
// arbitrary pieces.
#include "ws/utf8.h"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>

using dbridge::ws::is_valid_utf8;
using dbridge::ws::utf8_validator;

namespace {

struct row {
    std::string name;
    std::string bytes;
    bool valid;
    bool complete = true;  // for valid input: ends on a code point boundary
};

std::ostream& operator<<(std::ostream& os, const row& r) { return os << r.name; }

const row k_rows[] = {
    {"empty", "", true},
    {"ascii", "Hello, world", true},
    {"u0000_nul", std::string(1, '\0'), true},
    {"u007f_last_1_byte", "\x7f", true},
    {"u0080_first_2_byte", "\xc2\x80", true},
    {"u07ff_last_2_byte", "\xdf\xbf", true},
    {"u0800_first_3_byte", "\xe0\xa0\x80", true},
    {"ud7ff_before_surrogates", "\xed\x9f\xbf", true},
    {"ue000_after_surrogates", "\xee\x80\x80", true},
    {"ufffd_replacement", "\xef\xbf\xbd", true},
    {"uffff_last_3_byte", "\xef\xbf\xbf", true},
    {"u10000_first_4_byte", "\xf0\x90\x80\x80", true},
    {"u10ffff_last_code_point", "\xf4\x8f\xbf\xbf", true},
    {"greek_kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true},
    {"long_ascii_then_2_byte", "abcdefghijklmnopqrstuvwxyz\xc3\xa9", true},
    {"overlong_c0_80", "\xc0\x80", false},
    {"overlong_c1_bf", "\xc1\xbf", false},
    {"overlong_3_byte_e0_9f_bf", "\xe0\x9f\xbf", false},
    {"overlong_4_byte_f0_8f_bf_bf", "\xf0\x8f\xbf\xbf", false},
    {"surrogate_ud800", "\xed\xa0\x80", false},
    {"surrogate_udfff", "\xed\xbf\xbf", false},
    {"above_u10ffff_f4_90", "\xf4\x90\x80\x80", false},
    {"lead_f5", "\xf5\x80\x80\x80", false},
    {"byte_ff", "\xff", false},
    {"lone_continuation", "\x80", false},
    {"continuation_after_ascii_run", "abcdefghijklmnop\xbf", false},
    {"lead_then_ascii", "\xe2\x82" "a", false},
    {"two_byte_then_extra_continuation", "\xc3\xa9\xa9", false},
    {"truncated_3_byte_at_end", "\xe2\x82", true, false},
    {"truncated_4_byte_at_end", "abc\xf0\x9f\x98", true, false},
};

// Feeds `bytes` in the pieces `cuts` gives; returns {feed result, complete()}.
std::pair<bool, bool> feed_split(const std::string& bytes, std::size_t cut) {
    utf8_validator v;
    const bool first = v.feed(std::string_view(bytes).substr(0, cut));
    const bool second = v.feed(std::string_view(bytes).substr(cut));
    return {first && second, v.complete()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ws_utf8)

BOOST_DATA_TEST_CASE(validates_rfc3629_boundaries, boost::unit_test::data::make(k_rows), r) {
    BOOST_TEST(is_valid_utf8(r.bytes) == (r.valid && r.complete));
    for (std::size_t cut = 0; cut <= r.bytes.size(); ++cut) {
        const auto [fed, complete] = feed_split(r.bytes, cut);
        BOOST_TEST(fed == r.valid, "feed() when cut at " << cut);
        BOOST_TEST(complete == (r.valid && r.complete), "complete() when cut at " << cut);
    }
    utf8_validator v;
    bool ok = true;
    for (char c : r.bytes) {
        ok = v.feed(std::string_view(&c, 1)) && ok;
    }
    BOOST_TEST(ok == r.valid, "byte at a time");
    BOOST_TEST(v.complete() == (r.valid && r.complete), "byte at a time");
}

BOOST_AUTO_TEST_CASE(failure_is_sticky_until_reset) {
    utf8_validator v;
    BOOST_TEST(!v.feed("\xff"));
    BOOST_TEST(!v.feed("abc"));
    BOOST_TEST(!v.complete());
    v.reset();
    BOOST_TEST(v.feed("abc"));
    BOOST_TEST(v.complete());
}

BOOST_AUTO_TEST_CASE(every_code_point_encoded_is_valid_and_every_surrogate_is_not) {
    auto encode = [](std::uint32_t cp) {
        std::string s;
        if (cp < 0x80) {
            s += static_cast<char>(cp);
        } else if (cp < 0x800) {
            s += static_cast<char>(0xc0 | (cp >> 6));
            s += static_cast<char>(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            s += static_cast<char>(0xe0 | (cp >> 12));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            s += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
            s += static_cast<char>(0xf0 | (cp >> 18));
            s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            s += static_cast<char>(0x80 | (cp & 0x3f));
        }
        return s;
    };
    std::size_t wrong = 0;
    for (std::uint32_t cp = 0; cp <= 0x10ffff; ++cp) {
        const bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
        if (is_valid_utf8(encode(cp)) == surrogate) {
            ++wrong;
        }
    }
    BOOST_TEST(wrong == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

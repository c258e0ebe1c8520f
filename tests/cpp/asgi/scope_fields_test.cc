// The scope builder's byte work: the target cut into raw_path and query_string in each
// RFC 9112 §3.2 form, the path percent-decoded as uvicorn's unquote() does (RFC 3986
// §2.1), header names lower-cased. The expected values are what uvicorn puts in its
// scope for the same request line.
#include "scope_fields.h"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>

using dbridge::asgi::lower_case_field_name;
using dbridge::asgi::percent_decode;
using dbridge::asgi::split_target;

namespace {

struct target_row {
    std::string name;
    std::string target;
    std::string path;
    std::string query;
};

std::ostream& operator<<(std::ostream& os, const target_row& r) { return os << r.name; }

const target_row k_targets[] = {
    {"origin_form_path_only", "/users/42", "/users/42", ""},
    {"origin_form_root", "/", "/", ""},
    {"origin_form_with_query", "/users/42?limit=5&q=x", "/users/42", "limit=5&q=x"},
    {"empty_query_after_question_mark", "/a?", "/a", ""},
    {"query_keeps_later_question_marks", "/a?b?c", "/a", "b?c"},
    {"fragment_dropped_rfc9110_4_2_4", "/a?b=1#frag", "/a", "b=1"},
    {"fragment_before_any_query", "/a#x?y", "/a", ""},
    {"percent_escapes_stay_raw", "/caf%C3%A9?x=%20", "/caf%C3%A9", "x=%20"},
    {"absolute_form_path_after_authority", "http://example.com/p/q?r=1", "/p/q", "r=1"},
    {"absolute_form_without_path", "http://example.com", "/", ""},
    {"absolute_form_query_without_path", "https://example.com?x=1", "/", "x=1"},
    {"absolute_form_authority_with_port", "http://h:8080/x", "/x", ""},
    {"asterisk_form_options", "*", "*", ""},
    {"authority_form_connect", "example.com:443", "example.com:443", ""},
};

struct decode_row {
    std::string name;
    std::string raw;
    std::string decoded;
};

std::ostream& operator<<(std::ostream& os, const decode_row& r) { return os << r.name; }

const decode_row k_decodes[] = {
    {"no_escape_unchanged", "/plain/path", "/plain/path"},
    {"empty", "", ""},
    {"upper_case_hex", "/caf%C3%A9", "/caf\xc3\xa9"},
    {"lower_case_hex", "/caf%c3%a9", "/caf\xc3\xa9"},
    {"encoded_slash_decoded_as_uvicorn_does", "/a%2Fb", "/a/b"},
    {"space", "/a%20b", "/a b"},
    {"nul_byte", "/%00", std::string("/\0", 2)},
    {"escape_at_the_very_end", "/x%41", "/xA"},
    {"percent_alone_at_end_stays", "/x%", "/x%"},
    {"one_digit_at_end_stays", "/x%4", "/x%4"},
    {"non_hex_digit_stays", "/%4G%G4", "/%4G%G4"},
    {"encoded_percent_not_decoded_twice", "/%2541", "/%41"},
    {"percent_then_valid_escape", "/%%41", "/%A"},
    {"consecutive_escapes", "%41%42%43", "ABC"},
};

struct name_row {
    std::string name;
    std::string field;
    std::string lowered;
};

std::ostream& operator<<(std::ostream& os, const name_row& r) { return os << r.name; }

const name_row k_names[] = {
    {"mixed_case", "Content-Type", "content-type"},
    {"already_lower", "x-forwarded-for", "x-forwarded-for"},
    {"all_upper", "HOST", "host"},
    {"token_punctuation_unchanged", "X-A_b.c!#$%&'*+^`|~9", "x-a_b.c!#$%&'*+^`|~9"},
    {"bytes_around_the_letters_unchanged", "@[`{Z", "@[`{z"},
    {"non_ascii_bytes_unchanged", "\xc0\xc9\xff", "\xc0\xc9\xff"},
    {"empty", "", ""},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(asgi_scope_fields)

BOOST_DATA_TEST_CASE(splits_the_target_into_raw_path_and_query,
                     boost::unit_test::data::make(k_targets), row) {
    auto [path, query] = split_target(row.target);
    BOOST_TEST(std::string(path) == row.path);
    BOOST_TEST(std::string(query) == row.query);
}

BOOST_DATA_TEST_CASE(percent_decodes_the_path_as_unquote_does, boost::unit_test::data::make(k_decodes), row) {
    std::string out(row.raw.size(), '\x7f');
    std::size_t size = percent_decode(row.raw, out.data());
    BOOST_TEST(size <= row.raw.size());
    out.resize(size);
    BOOST_TEST(out == row.decoded);
}

BOOST_DATA_TEST_CASE(lower_cases_header_names_ascii_only, boost::unit_test::data::make(k_names), row) {
    std::string out(row.field.size(), '\0');
    lower_case_field_name(row.field, out.data());
    BOOST_TEST(out == row.lowered);
}

BOOST_AUTO_TEST_SUITE_END()

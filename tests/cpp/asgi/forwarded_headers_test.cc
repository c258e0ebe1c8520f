// The X-Forwarded-For/-Proto text as uvicorn's ProxyHeadersMiddleware (0.54) reads it:
// the fields joined with ", " and split on ',', each entry stripped as str.strip() does,
// an entry cut into host and port, the last X-Forwarded-Proto taken when it is one of
// four values. Which entry is believed is tested end to end (test_proxy_headers.py).
#include "forwarded_headers.h"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

using dbridge::asgi::first_forwarded_for;
using dbridge::asgi::forwarded_for_entries;
using dbridge::asgi::forwarded_proto;
using dbridge::asgi::split_host_port;
using dbridge::http1::request_head;

namespace {

using fields = std::vector<std::pair<std::string, std::string>>;

// A request head over `f`, its views into one buffer, as the parser leaves it.
struct head_of {
    explicit head_of(const fields& f) {
        for (const auto& [name, value] : f) {
            auto at = static_cast<std::uint32_t>(buffer.size());
            offsets.push_back({at, static_cast<std::uint32_t>(name.size()),
                               at + static_cast<std::uint32_t>(name.size()),
                               static_cast<std::uint32_t>(value.size())});
            buffer += name + value;
        }
        head.base = buffer.data();
        head.fields = offsets.data();
        head.field_count = offsets.size();
    }
    std::string buffer;
    std::vector<request_head::field_offsets> offsets;
    request_head head;
};

struct walk_row {
    std::string name;
    fields headers;
    std::vector<std::string> right_to_left;
};

std::ostream& operator<<(std::ostream& os, const walk_row& r) { return os << r.name; }

const walk_row k_walks[] = {
    {"no_field", {{"Host", "a"}}, {}},
    {"one_entry", {{"X-Forwarded-For", "1.2.3.4"}}, {"1.2.3.4"}},
    {"entries_right_to_left_stripped", {{"X-Forwarded-For", "1.1.1.1, 2.2.2.2 ,3.3.3.3"}},
     {"3.3.3.3", "2.2.2.2", "1.1.1.1"}},
    {"later_field_first_as_if_joined",
     {{"x-forwarded-for", "1.1.1.1"}, {"Host", "h"}, {"X-FORWARDED-FOR", "2.2.2.2, 3.3.3.3"}},
     {"3.3.3.3", "2.2.2.2", "1.1.1.1"}},
    {"empty_entries_kept_as_split_keeps_them", {{"X-Forwarded-For", ",1.1.1.1,"}}, {"", "1.1.1.1", ""}},
    {"empty_field_is_one_empty_entry", {{"X-Forwarded-For", ""}}, {""}},
    {"python_whitespace_stripped_nbsp_and_nel", {{"X-Forwarded-For", "\xa0" "1.1.1.1\x85\t"}}, {"1.1.1.1"}},
    {"other_names_ignored", {{"X-Forwarded-Fo", "9.9.9.9"}, {"X-Forwarded-Fors", "8.8.8.8"}}, {}},
};

struct split_row {
    std::string name;
    std::string entry;
    std::string host;
    const char* port;  // null: no port
    bool port_or_whole;
};

std::ostream& operator<<(std::ostream& os, const split_row& r) { return os << r.name; }

const split_row k_splits[] = {
    {"ipv4", "1.2.3.4", "1.2.3.4", nullptr, false},
    {"ipv4_with_port", "1.2.3.4:5678", "1.2.3.4", "5678", true},
    {"ipv6_bare", "::1", "::1", nullptr, false},
    {"ipv6_bracketed", "[::1]", "::1", nullptr, false},
    {"ipv6_bracketed_with_port", "[::1]:5678", "::1", "5678", false},
    {"bracket_unclosed_is_the_host", "[::1", "[::1", nullptr, false},
    {"bracket_then_junk_is_the_host", "[::1]x", "[::1]x", nullptr, false},
    {"empty_port", "1.2.3.4:", "1.2.3.4", "", true},
    {"name_with_port", "proxy:80", "proxy", "80", true},
    {"empty", "", "", nullptr, false},
};

struct proto_row {
    std::string name;
    fields headers;
    std::string scheme;  // empty: left alone
};

std::ostream& operator<<(std::ostream& os, const proto_row& r) { return os << r.name; }

const proto_row k_protos[] = {
    {"https", {{"X-Forwarded-Proto", "https"}}, "https"},
    {"stripped", {{"X-Forwarded-Proto", " wss\t"}}, "wss"},
    {"last_field_wins", {{"X-Forwarded-Proto", "http"}, {"x-forwarded-proto", "https"}}, "https"},
    {"last_field_unknown_leaves_it_even_after_a_good_one",
     {{"X-Forwarded-Proto", "https"}, {"X-Forwarded-Proto", "ftp"}},
     ""},
    {"case_matters_in_the_value", {{"X-Forwarded-Proto", "HTTPS"}}, ""},
    {"absent", {{"Host", "h"}}, ""},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(asgi_forwarded_headers)

BOOST_DATA_TEST_CASE(walks_x_forwarded_for_entries_as_uvicorn_splits_them,
                     boost::unit_test::data::make(k_walks), row) {
    head_of h(row.headers);
    std::vector<std::string> seen;
    forwarded_for_entries entries(h.head);
    while (auto entry = entries.previous()) {
        seen.emplace_back(*entry);
    }
    BOOST_TEST(seen == row.right_to_left, boost::test_tools::per_element());
    auto first = first_forwarded_for(h.head);
    BOOST_TEST(first.has_value() == !row.right_to_left.empty());
    if (first) {
        BOOST_TEST(std::string(*first) == row.right_to_left.back());
    }
}

BOOST_DATA_TEST_CASE(cuts_an_entry_into_host_and_port, boost::unit_test::data::make(k_splits), row) {
    auto entry = split_host_port(row.entry);
    BOOST_TEST(std::string(entry.host) == row.host);
    BOOST_TEST((entry.port.data() != nullptr) == (row.port != nullptr));
    if (row.port != nullptr) {
        BOOST_TEST(std::string(entry.port) == row.port);
    }
    BOOST_TEST(entry.port_or_whole == row.port_or_whole);
}

BOOST_DATA_TEST_CASE(takes_the_last_x_forwarded_proto_of_four_values,
                     boost::unit_test::data::make(k_protos), row) {
    head_of h(row.headers);
    BOOST_TEST(std::string(forwarded_proto(h.head)) == row.scheme);
}

BOOST_AUTO_TEST_SUITE_END()

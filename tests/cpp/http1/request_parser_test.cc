// The request parser as a specification: one table row per rule, each run on the whole
// input, on the input cut in two at every byte boundary, and one byte at a time. The
// harness plays the connection: it keeps an accumulating buffer, drops exactly
// `consumed` bytes after every call, and checks the window contract on the way.
#include "http1/request_parser.h"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

// Rows name only the fields that differ from the defaults; g++ 12 and clang 14 warn about
// exactly that when designated initializers are used.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using namespace std::string_literals;
using dbridge::http1::body_framing;
using dbridge::http1::limits;
using dbridge::http1::parse_event;
using dbridge::http1::parse_result;
using dbridge::http1::request_parser;

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct expected_request {
    std::string method = "GET";
    std::string target = "/";
    int version_minor = 1;
    header_list headers = {{"Host", "a"}};
    body_framing framing = body_framing::none;
    std::uint64_t content_length = 0;
    std::string body;
    bool keep_alive = true;
    bool expect_continue = false;
    bool upgrade = false;
    bool complete = true;  // the `end` event was seen
};

// What a connection observes: the requests (head, body bytes, end) and a final error.
struct outcome {
    std::vector<expected_request> requests;
    int error = 0;
    std::string contract_violations;
};

struct row {
    std::string name;
    std::string input;
    std::vector<expected_request> requests;
    int error = 0;
    limits lim = {};
};

std::ostream& operator<<(std::ostream& os, const row& r) { return os << r.name; }

std::string escape(const std::string& s) {
    std::ostringstream os;
    for (const unsigned char c : s) {
        if (c == '\r') {
            os << "\\r";
        } else if (c == '\n') {
            os << "\\n";
        } else if (c < 0x20 || c >= 0x7f || c == '\\') {
            static const char* digits = "0123456789abcdef";
            os << "\\x" << digits[c >> 4] << digits[c & 15];
        } else {
            os << c;
        }
    }
    return os.str();
}

const char* framing_name(body_framing f) {
    switch (f) {
    case body_framing::none:
        return "none";
    case body_framing::content_length:
        return "content_length";
    case body_framing::chunked:
        return "chunked";
    }
    return "?";
}

// One line per request and one for the error: a mismatch shows both texts side by side.
std::string describe(const std::vector<expected_request>& requests, int error) {
    std::ostringstream os;
    for (const auto& r : requests) {
        os << "\n  [" << escape(r.method) << " " << escape(r.target) << " HTTP/1." << r.version_minor
           << " framing=" << framing_name(r.framing) << " content_length=" << r.content_length
           << " keep_alive=" << r.keep_alive << " expect_continue=" << r.expect_continue
           << " upgrade=" << r.upgrade << " headers={";
        for (const auto& [name, value] : r.headers) {
            os << escape(name) << ": " << escape(value) << "; ";
        }
        os << "} body=\"" << escape(r.body) << "\" complete=" << r.complete << "]";
    }
    os << "\n  error=" << error;
    return os.str();
}

// Feeds `input` in pieces ending at `cuts` (increasing, inside the input) and plays the
// connection's side of the contract.
outcome drive(const std::string& input, const limits& lim, const std::vector<std::size_t>& cuts) {
    outcome out;
    std::ostringstream violations;
    request_parser parser(lim);
    std::string buffer;
    bool reading_head = true;
    std::size_t calls = 0;
    const std::size_t max_calls = 4 * input.size() + 16;

    std::size_t fed = 0;
    for (std::size_t piece = 0; piece <= cuts.size(); ++piece) {
        const std::size_t to = piece < cuts.size() ? cuts[piece] : input.size();
        buffer.append(input, fed, to - fed);
        fed = to;
        for (;;) {
            if (++calls > max_calls) {
                violations << "no progress after " << calls << " calls; ";
                out.contract_violations = violations.str();
                return out;
            }
            const std::string_view window(buffer);
            const parse_result r = parser.parse(window);
            if (r.consumed > window.size()) {
                violations << "consumed " << r.consumed << " > window " << window.size() << "; ";
                out.contract_violations = violations.str();
                return out;
            }
            if (r.event == parse_event::need_more) {
                if (reading_head && r.consumed != 0) {
                    violations << "released bytes of a head still being read; ";
                }
                buffer.erase(0, r.consumed);
                break;
            }
            if (r.event == parse_event::error) {
                out.error = parser.error_status();
                if (r.consumed != 0) {
                    violations << "error consumed bytes; ";
                }
                const parse_result again = parser.parse(window);
                const parse_result empty = parser.parse({});
                if (again.event != parse_event::error || again.consumed != 0 ||
                    empty.event != parse_event::error || parser.error_status() != out.error) {
                    violations << "error state not sticky; ";
                }
                out.contract_violations = violations.str();
                return out;
            }
            if (r.event == parse_event::head) {
                const auto& h = parser.head();
                const char* const lo = window.data();
                const char* const hi = window.data() + r.consumed;
                auto inside = [&](std::string_view v) { return v.data() >= lo && v.data() + v.size() <= hi; };
                if (h.base != lo || r.consumed == 0 || !inside(h.method) || !inside(h.target)) {
                    violations << "head views outside the consumed head; ";
                }
                expected_request req;
                req.method = std::string(h.method);
                req.target = std::string(h.target);
                req.version_minor = h.version_minor;
                req.headers.clear();
                for (std::size_t i = 0; i < h.header_count(); ++i) {
                    const auto f = h.header(i);
                    if (!inside(f.name) || !inside(f.value)) {
                        violations << "field view outside the consumed head; ";
                    }
                    req.headers.emplace_back(std::string(f.name), std::string(f.value));
                }
                req.framing = h.framing;
                req.content_length = h.content_length;
                req.keep_alive = h.keep_alive;
                req.expect_continue = h.expect_continue;
                req.upgrade = h.upgrade;
                req.complete = false;
                out.requests.push_back(std::move(req));
                reading_head = false;
                if (!parser.in_message()) {
                    violations << "not in_message after head; ";
                }
            } else if (r.event == parse_event::body) {
                if (r.body.empty() || r.body.data() < window.data() ||
                    r.body.data() + r.body.size() > window.data() + r.consumed) {
                    violations << "body view empty or outside the released bytes; ";
                }
                if (out.requests.empty() || reading_head) {
                    violations << "body before head; ";
                } else {
                    out.requests.back().body.append(r.body);
                }
            } else if (r.event == parse_event::end) {
                if (out.requests.empty() || reading_head) {
                    violations << "end before head; ";
                } else {
                    out.requests.back().complete = true;
                }
                reading_head = true;
                if (parser.in_message()) {
                    violations << "in_message after end; ";
                }
            }
            // The connection drops what was released; moving the rest to the front also
            // proves the parser keeps offsets, not pointers.
            buffer.erase(0, r.consumed);
        }
    }
    out.contract_violations = violations.str();
    return out;
}

std::string chunked_head() { return "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"; }

expected_request chunked_request(std::string body, bool complete = true) {
    return {.method = "POST",
            .target = "/u",
            .headers = {{"Host", "a"}, {"Transfer-Encoding", "chunked"}},
            .framing = body_framing::chunked,
            .body = std::move(body),
            .complete = complete};
}

expected_request post_with_length(const std::string& body) {
    return {.method = "POST",
            .headers = {{"Host", "a"}, {"Content-Length", std::to_string(body.size())}},
            .framing = body_framing::content_length,
            .content_length = body.size(),
            .body = body};
}

row bad(std::string name, std::string input, int status, limits lim = {}) {
    return {.name = std::move(name), .input = std::move(input), .requests = {}, .error = status, .lim = lim};
}

row good(std::string name, std::string input, std::vector<expected_request> requests, limits lim = {}) {
    return {.name = std::move(name),
            .input = std::move(input),
            .requests = std::move(requests),
            .error = 0,
            .lim = lim};
}

// A chunked request whose body framing is rejected: the head was already reported.
row bad_chunk_line(std::string name, std::string input, int status, limits lim = {}) {
    return {.name = std::move(name),
            .input = std::move(input),
            .requests = {chunked_request("", false)},
            .error = status,
            .lim = lim};
}

limits with_request_line(std::size_t n) {
    limits l;
    l.max_request_line = n;
    return l;
}

limits with_header_bytes(std::size_t n) {
    limits l;
    l.max_header_bytes = n;
    return l;
}

limits with_header_count(std::size_t n) {
    limits l;
    l.max_header_count = n;
    return l;
}

limits with_body(std::uint64_t n) {
    limits l;
    l.max_body = n;
    return l;
}

limits with_chunk_line(std::size_t n) {
    limits l;
    l.max_chunk_line = n;
    return l;
}

limits with_trailer_bytes(std::size_t n) {
    limits l;
    l.max_trailer_bytes = n;
    return l;
}

const std::string get_a = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

std::string repeat(const std::string& s, int times) {
    std::string out;
    for (int i = 0; i < times; ++i) {
        out += s;
    }
    return out;
}

std::vector<row> table() {
    const std::string big_body(3000, 'x');
    std::string big_chunked;
    for (int i = 0; i < 3; ++i) {
        big_chunked += "3e8\r\n" + std::string(1000, static_cast<char>('a' + i)) + "\r\n";
    }
    std::string long_header_value(200, 'v');

    std::vector<row> rows = {
        // --- request line (RFC 9112 §3) ---------------------------------------------
        good("accepts_minimal_get (RFC 9112 3)", get_a, {{}}),
        good("accepts_http10_without_host_and_closes (RFC 9112 3.2, 9.3)", "GET / HTTP/1.0\r\n\r\n",
             {{.version_minor = 0, .headers = {}, .keep_alive = false}}),
        good("accepts_any_token_method_case_sensitive (RFC 9112 3.1)",
             "M-SEARCH /x HTTP/1.1\r\nHost: a\r\n\r\nget /y HTTP/1.1\r\nHost: a\r\n\r\n",
             {{.method = "M-SEARCH", .target = "/x"}, {.method = "get", .target = "/y"}}),
        good("accepts_origin_form_with_query (RFC 9112 3.2.1)",
            "GET /a/b?c=d&e=%20 HTTP/1.1\r\nHost: a\r\n\r\n",
             {{.target = "/a/b?c=d&e=%20"}}),
        good("accepts_absolute_form (RFC 9112 3.2.2)",
            "GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
             {{.target = "http://example.com/p?q", .headers = {{"Host", "example.com"}}}}),
        good("accepts_asterisk_form_for_options (RFC 9112 3.2.4)", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
             {{.method = "OPTIONS", .target = "*"}}),
        good("accepts_authority_form_for_connect (RFC 9112 3.2.3)",
             "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
             {{.method = "CONNECT", .target = "example.com:443", .headers = {{"Host", "example.com:443"}}}}),
        good("accepts_connect_to_ip_literal (RFC 9112 3.2.3)",
            "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
             {{.method = "CONNECT", .target = "[::1]:8443", .headers = {{"Host", "[::1]:8443"}}}}),
        good("ignores_leading_empty_lines (RFC 9112 2.2)", "\r\n\r\n" + get_a, {{}}),
        bad("rejects_asterisk_form_for_get (RFC 9112 3.2.4)", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_authority_form_without_connect (RFC 9112 3.2.3)",
            "GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_origin_form_for_connect (RFC 9112 3.2.3)", "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_connect_without_port (RFC 9110 9.3.6)",
            "CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_connect_with_userinfo (RFC 9112 3.2.3)",
            "CONNECT u@h:1 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_relative_target (RFC 9112 3.2)", "GET foo/bar HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_absolute_form_without_authority (RFC 9112 3.2.2)",
            "GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n",
            400),
        bad("rejects_missing_version_http09 (RFC 9112 2.3)", "GET /\r\n\r\n", 400),
        bad("rejects_empty_version (RFC 9112 3)", "GET / \r\nHost: a\r\n\r\n", 400),
        bad("rejects_lowercase_version (RFC 9112 2.3)", "GET / http/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_multi_digit_version (RFC 9112 2.3)", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
        bad("rejects_two_digit_major_version (RFC 9112 2.3)", "GET / HTTP/11.1\r\nHost: a\r\n\r\n", 400),
        bad("answers_505_to_http_2_0 (RFC 9110 15.6.6)", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        good("serves_http_1_2_as_http_1_1 (RFC 9110 6.2)", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", {{}}),
        good("serves_http_1_9_as_http_1_1 (RFC 9110 6.2)", "GET / HTTP/1.9\r\nHost: a\r\n\r\n", {{}}),
        bad("answers_505_to_http_0_9_spelled_out (RFC 9110 15.6.6)", "GET / HTTP/0.9\r\n\r\n", 505),
        bad("rejects_double_space_after_method (RFC 9112 3)", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_empty_target_before_a_valid_version (RFC 9112 3)",
            "GET  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_double_space_before_version (RFC 9112 3)", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_tab_as_separator (RFC 9112 3)", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_trailing_space_after_version (RFC 9112 3)", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
        bad("rejects_space_before_method (RFC 9112 3)", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_non_token_method (RFC 9112 3.1)", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_control_byte_in_target (RFC 9112 3.2)", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_nul_in_target (RFC 9112 3.2)", "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"s, 400),
        bad("rejects_byte_0x80_in_target (RFC 9112 3.2)",
            "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        bad("rejects_del_in_target (RFC 9112 3.2)", "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        good("accepts_request_line_exactly_at_limit (limits.max_request_line)",
            get_a, {{}}, with_request_line(14)),
        bad("rejects_request_line_one_over_limit_with_414 (limits.max_request_line)", get_a, 414,
            with_request_line(13)),
        bad("rejects_long_request_line_before_its_crlf_arrives_with_414 (limits.max_request_line)",
            "GET /" + std::string(40, 'a'), 414, with_request_line(32)),
        bad("counts_leading_empty_lines_toward_the_request_line_limit (RFC 9112 2.2)",
            "\r\n\r\n" + get_a, 414,
            with_request_line(16)),
        good("accepts_leading_empty_lines_within_the_request_line_limit (RFC 9112 2.2)", "\r\n" + get_a, {{}},
             with_request_line(16)),
        bad("rejects_endless_empty_lines_with_414 (RFC 9112 2.2)",
            repeat("\r\n", 50), 414, with_request_line(64)),

        // --- line endings (RFC 9112 §2.2) --------------------------------------------
        bad("rejects_bare_lf_after_request_line (RFC 9112 2.2)", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
        bad("rejects_bare_lf_after_field (RFC 9112 2.2)", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
        bad("rejects_bare_lf_ending_the_head (RFC 9112 2.2)", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
        bad("rejects_bare_lf_as_leading_empty_line (RFC 9112 2.2)", "\n" + get_a, 400),
        bad("rejects_bare_cr_in_request_line (RFC 9112 2.2)", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
        bad("rejects_bare_cr_in_field_value (RFC 9112 2.2)", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400),
        bad("rejects_bare_cr_ending_the_head (RFC 9112 2.2)", "GET / HTTP/1.1\r\nHost: a\r\n\rX", 400),
        bad("rejects_bare_cr_as_leading_empty_line (RFC 9112 2.2)",
            "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),

        // --- field lines (RFC 9112 §5, RFC 9110 §5.5) ---------------------------------
        good("trims_ows_around_field_values (RFC 9112 5)",
            "GET / HTTP/1.1\r\nHost: a\r\nX-A: \t v  a \t \r\n\r\n",
             {{.headers = {{"Host", "a"}, {"X-A", "v  a"}}}}),
        good("accepts_empty_field_value (RFC 9110 5.5)",
            "GET / HTTP/1.1\r\nHost: a\r\nX-E:\r\nX-F:  \r\n\r\n",
             {{.headers = {{"Host", "a"}, {"X-E", ""}, {"X-F", ""}}}}),
        good("accepts_obs_text_in_field_value (RFC 9110 5.5)",
            "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\xff\r\n\r\n",
             {{.headers = {{"Host", "a"}, {"X", "caf\xc3\xa9\xff"}}}}),
        good("keeps_field_name_case_and_order (RFC 9110 5.1)",
            "GET / HTTP/1.1\r\nhOsT: a\r\nB: 1\r\nA: 2\r\n\r\n",
             {{.headers = {{"hOsT", "a"}, {"B", "1"}, {"A", "2"}}}}),
        bad("rejects_space_before_colon (RFC 9112 5.1)", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        bad("rejects_tab_before_colon (RFC 9112 5.1)", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
        bad("rejects_empty_field_name (RFC 9112 5)", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", 400),
        bad("rejects_field_line_without_colon (RFC 9112 5)",
            "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400),
        bad("rejects_non_token_field_name (RFC 9110 5.1)",
            "GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", 400),
        bad("rejects_obs_fold_with_space (RFC 9112 5.2)",
            "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400),
        bad("rejects_obs_fold_with_tab (RFC 9112 5.2)",
            "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", 400),
        bad("rejects_whitespace_line_before_first_field (RFC 9112 2.2)",
            "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
        bad("rejects_nul_in_field_value (RFC 9110 5.5)",
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"s, 400),
        bad("rejects_control_byte_in_field_value (RFC 9110 5.5)",
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\x07\r\n\r\n",
            400),
        bad("rejects_del_in_field_value (RFC 9110 5.5)", "GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", 400),
        good("accepts_header_section_exactly_at_limit (limits.max_header_bytes)",
            get_a, {{}}, with_header_bytes(11)),
        bad("rejects_header_section_one_over_limit_with_431 (limits.max_header_bytes)", get_a, 431,
            with_header_bytes(10)),
        bad("rejects_large_header_section_before_it_ends_with_431 (limits.max_header_bytes)",
            "GET / HTTP/1.1\r\nHost: a\r\nX: " + long_header_value, 431, with_header_bytes(100)),
        good("accepts_header_count_at_limit (limits.max_header_count)",
             "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\n\r\n",
             {{.headers = {{"Host", "a"}, {"B", "1"}, {"C", "2"}}}}, with_header_count(3)),
        bad("rejects_header_count_over_limit_with_431 (limits.max_header_count)",
            "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n", 431, with_header_count(3)),

        // --- Host (RFC 9112 §3.2) -----------------------------------------------------
        bad("rejects_http11_without_host (RFC 9112 3.2)", "GET / HTTP/1.1\r\nX: 1\r\n\r\n", 400),
        bad("rejects_two_host_fields (RFC 9112 3.2)", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400),
        bad("rejects_two_host_fields_in_http10 (RFC 9112 3.2)",
            "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        good("accepts_empty_host (RFC 9112 3.2)",
            "GET / HTTP/1.1\r\nHost:\r\n\r\n", {{.headers = {{"Host", ""}}}}),
        good("accepts_host_with_port (RFC 9110 7.2)",
            "GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n", {{.headers = {{"Host", "a.example:8080"}}}}),
        good("accepts_host_ip_literal_with_port (RFC 9110 7.2)",
            "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", {{.headers = {{"Host", "[::1]:80"}}}}),
        good("accepts_host_pct_encoded_reg_name (RFC 3986 3.2.2)",
            "GET / HTTP/1.1\r\nHost: a%2Db\r\n\r\n", {{.headers = {{"Host", "a%2Db"}}}}),
        bad("rejects_host_with_space (RFC 9112 3.2)", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        bad("rejects_host_with_comma_joined_hosts (RFC 9112 3.2)",
            "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400),
        bad("rejects_host_with_path (RFC 9110 7.2)", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
        bad("rejects_host_with_userinfo (RFC 9110 7.2)", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
        bad("rejects_host_with_non_digit_port (RFC 9110 7.2)",
            "GET / HTTP/1.1\r\nHost: a:8o\r\n\r\n", 400),
        bad("rejects_host_unterminated_ip_literal (RFC 3986 3.2.2)",
            "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
        bad("rejects_host_junk_after_ip_literal (RFC 3986 3.2.2)",
            "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400),
        bad("rejects_host_with_bad_pct_encoding (RFC 3986 3.2.2)",
            "GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400),
        bad("rejects_host_with_obs_text (RFC 3986 3.2.2)",
            "GET / HTTP/1.0\r\nHost: caf\xc3\xa9\r\n\r\n", 400),

        // --- Connection, Upgrade, Expect (RFC 9110 §7.6.1, §7.8, §10.1.1) --------------
        good("http11_connection_close_ends_keep_alive (RFC 9112 9.6)",
             "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
             {{.headers = {{"Host", "a"}, {"Connection", "close"}}, .keep_alive = false}}),
        good("connection_tokens_are_a_case_insensitive_list (RFC 9110 7.6.1)",
             "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo ,, CLOSE\r\n\r\n",
             {{.headers = {{"Host", "a"}, {"Connection", "foo ,, CLOSE"}}, .keep_alive = false}}),
        good("http10_keep_alive_token_keeps_connection (RFC 9112 9.3)",
             "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
             {{.version_minor = 0, .headers = {{"Connection", "Keep-Alive"}}, .keep_alive = true}}),
        good("http10_close_wins_over_keep_alive (RFC 9112 9.3)",
             "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
             {{.version_minor = 0,
               .headers = {{"Connection", "keep-alive"}, {"Connection", "close"}},
               .keep_alive = false}}),
        good("upgrade_needs_connection_token_and_upgrade_field (RFC 9110 7.8)",
             "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
             {{.target = "/ws",
               .headers = {{"Host", "a"}, {"Connection", "keep-alive, Upgrade"}, {"Upgrade", "websocket"}},
               .upgrade = true}}),
        good("upgrade_field_without_connection_token_is_no_upgrade (RFC 9110 7.8)",
             "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
             {{.headers = {{"Host", "a"}, {"Upgrade", "websocket"}}}}),
        good("connection_upgrade_without_upgrade_field_is_no_upgrade (RFC 9110 7.8)",
             "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n",
             {{.headers = {{"Host", "a"}, {"Connection", "upgrade"}}}}),
        good("ignores_upgrade_in_http10 (RFC 9110 7.8)",
             "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
             {{.version_minor = 0,
               .headers = {{"Connection", "upgrade"}, {"Upgrade", "websocket"}},
               .keep_alive = false}}),
        good("expect_100_continue_is_flagged_case_insensitively (RFC 9110 10.1.1)",
             "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\nhello",
             {{.method = "POST",
               .headers = {{"Host", "a"}, {"Expect", "100-Continue"}, {"Content-Length", "5"}},
               .framing = body_framing::content_length,
               .content_length = 5,
               .body = "hello",
               .expect_continue = true}}),
        good("ignores_expect_in_http10 (RFC 9110 10.1.1)",
             "GET / HTTP/1.0\r\nExpect: 100-continue\r\nExpect: something-else\r\n\r\n",
             {{.version_minor = 0,
               .headers = {{"Expect", "100-continue"}, {"Expect", "something-else"}},
               .keep_alive = false}}),
        bad("answers_417_to_unknown_expectation (RFC 9110 10.1.1)",
            "GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417),

        // --- Content-Length (RFC 9112 §6.2, §6.3) ------------------------------------
        good("reads_content_length_body (RFC 9112 6.2)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
             {post_with_length("hello")}),
        good("content_length_zero_has_empty_body (RFC 9112 6.2)",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", {post_with_length("")}),
        good("accepts_leading_zeros_in_content_length (RFC 9110 8.6)",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\nhello",
             {{.method = "POST",
               .headers = {{"Host", "a"}, {"Content-Length", "005"}},
               .framing = body_framing::content_length,
               .content_length = 5,
               .body = "hello"}}),
        good("accepts_identical_repeated_content_length (RFC 9112 6.3)",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
             {{.method = "POST",
               .headers = {{"Host", "a"}, {"Content-Length", "2"}, {"Content-Length", "2"}},
               .framing = body_framing::content_length,
               .content_length = 2,
               .body = "hi"}}),
        good("reads_body_larger_than_any_call_window (RFC 9112 6.2)",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3000\r\n\r\n" + big_body,
             {post_with_length(big_body)}),
        good("waits_for_the_rest_of_a_short_body (RFC 9112 6.2)",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello",
             {{.method = "POST",
               .headers = {{"Host", "a"}, {"Content-Length", "10"}},
               .framing = body_framing::content_length,
               .content_length = 10,
               .body = "hello",
               .complete = false}}),
        good("accepts_content_length_2_pow_63_minus_1 (RFC 9110 8.6)",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\nab",
             {{.method = "POST",
               .headers = {{"Host", "a"}, {"Content-Length", "9223372036854775807"}},
               .framing = body_framing::content_length,
               .content_length = 9223372036854775807ULL,
               .body = "ab",
               .complete = false}}),
        bad("rejects_content_length_2_pow_63 (RFC 9110 8.6)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", 400),
        bad("rejects_content_length_of_20_digits (RFC 9110 8.6)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 00000000000000000001\r\n\r\n", 400),
        bad("rejects_signed_content_length (RFC 9110 8.6)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            400),
        bad("rejects_negative_content_length (RFC 9110 8.6)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        bad("rejects_space_inside_content_length (RFC 9110 8.6)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", 400),
        bad("rejects_content_length_list (RFC 9112 6.3)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
            400),
        bad("rejects_empty_content_length (RFC 9110 8.6)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
            400),
        bad("rejects_differing_content_lengths (RFC 9112 6.3)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
        bad("rejects_same_length_spelled_differently (RFC 9112 6.3)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\nhello", 400),
        good("accepts_content_length_at_max_body (limits.max_body)",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
             {post_with_length("hello")},
             with_body(5)),
        bad("answers_413_to_content_length_over_max_body_at_the_head (limits.max_body)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\n", 413, with_body(5)),

        // --- Transfer-Encoding (RFC 9112 §6.1, §6.3) ---------------------------------
        bad("rejects_content_length_with_transfer_encoding (RFC 9112 6.3)",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400),
        bad("rejects_transfer_encoding_in_http10 (RFC 9112 6.1)",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        bad("rejects_chunked_not_last (RFC 9112 6.3)",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        bad("rejects_chunked_not_last_across_field_lines (RFC 9112 6.3)",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
            400),
        bad("rejects_chunked_twice (RFC 9112 6.1)",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
        bad("rejects_chunked_twice_across_field_lines (RFC 9112 6.1)",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            400),
        bad("rejects_empty_transfer_encoding (RFC 9112 6.1)",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n",
            400),
        bad("rejects_empty_transfer_coding_element (RFC 9112 6.1)",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n", 400),
        bad("rejects_parameters_on_chunked (RFC 9112 7)",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 400),
        bad("answers_501_to_gzip_coding (RFC 9112 6.1)",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        bad("rejects_identity_coding_as_final_coding_with_400 (RFC 9112 6.3 item 4)",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400),
        good("accepts_chunked_case_insensitively_with_ows (RFC 9112 6.1)",
             chunked_head().replace(chunked_head().find("chunked"), 7, " \tChUnKeD ") + "0\r\n\r\n",
             {{.method = "POST",
               .target = "/u",
               .headers = {{"Host", "a"}, {"Transfer-Encoding", "ChUnKeD"}},
               .framing = body_framing::chunked}}),

        // --- chunked body (RFC 9112 §7.1) ---------------------------------------------
        good("reads_chunked_body (RFC 9112 7.1)", chunked_head() + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
             {chunked_request("hello world")}),
        good("reads_hex_chunk_sizes_with_leading_zeros (RFC 9112 7.1)",
             chunked_head() + "0A\r\n0123456789\r\n00\r\n\r\n", {chunked_request("0123456789")}),
        good("reads_chunked_body_larger_than_any_call_window (RFC 9112 7.1)",
             chunked_head() + big_chunked + "0\r\n\r\n",
             {chunked_request(std::string(1000, 'a') + std::string(1000, 'b') + std::string(1000, 'c'))}),
        good("discards_chunk_extensions (RFC 9112 7.1.1)",
             chunked_head() + "5 ;a=b; c ;d = \"q\\\"s;\"\r\nhello\r\n0;last\r\n\r\n",
             {chunked_request("hello")}),
        good("discards_valid_trailers (RFC 9112 7.1.2)",
             chunked_head() + "2\r\nhi\r\n0\r\nX-Sum: abc\r\nX-Empty:\r\n\r\n", {chunked_request("hi")}),
        good("waits_for_the_rest_of_a_chunked_body (RFC 9112 7.1)", chunked_head() + "5\r\nhel",
             {chunked_request("hel", false)}),
        bad_chunk_line("rejects_chunk_size_of_17_digits (RFC 9112 7.1)",
            chunked_head() + "00000000000000001\r\nx\r\n0\r\n\r\n",
            400),
        bad_chunk_line("rejects_chunk_size_of_2_pow_63 (RFC 9112 7.1)",
            chunked_head() + "8000000000000000\r\n", 400),
        bad_chunk_line("rejects_missing_chunk_size (RFC 9112 7.1)", chunked_head() + "\r\nhello\r\n", 400),
        bad_chunk_line("rejects_space_before_chunk_size (RFC 9112 7.1)",
            chunked_head() + " 5\r\nhello\r\n0\r\n\r\n", 400),
        bad_chunk_line("rejects_space_after_chunk_size_without_extension (RFC 9112 7.1.1)",
            chunked_head() + "5 \r\nhello\r\n0\r\n\r\n", 400),
        bad_chunk_line("rejects_0x_chunk_size (RFC 9112 7.1)",
            chunked_head() + "0x5\r\nhello\r\n0\r\n\r\n", 400),
        bad_chunk_line("rejects_negative_chunk_size (RFC 9112 7.1)",
            chunked_head() + "-5\r\nhello\r\n0\r\n\r\n", 400),
        bad_chunk_line("rejects_bare_lf_after_chunk_size (RFC 9112 7.1)",
            chunked_head() + "5\nhello\r\n0\r\n\r\n", 400),
        bad_chunk_line("rejects_extension_without_name (RFC 9112 7.1.1)",
            chunked_head() + "5;\r\nhello\r\n0\r\n\r\n", 400),
        bad_chunk_line("rejects_extension_without_value_after_equals (RFC 9112 7.1.1)",
            chunked_head() + "5;a=\r\nhello\r\n0\r\n\r\n", 400),
        bad_chunk_line("rejects_unterminated_quoted_extension (RFC 9112 7.1.1)",
            chunked_head() + "5;a=\"x\r\nhello\r\n", 400),
        bad_chunk_line("rejects_extension_name_with_space_inside (RFC 9112 7.1.1)",
            chunked_head() + "5;a b\r\nhello\r\n0\r\n\r\n", 400),
        bad_chunk_line("rejects_chunk_line_over_max_chunk_line (limits.max_chunk_line)",
            chunked_head() + "5;aaaaaa=b\r\nhello\r\n0\r\n\r\n", 400, with_chunk_line(8)),
        good("accepts_chunk_line_at_max_chunk_line (limits.max_chunk_line)",
             chunked_head() + "5;aaaaa=b\r\nhello\r\n0\r\n\r\n",
             {chunked_request("hello")},
             with_chunk_line(9)),
        {.name = "rejects_chunk_data_without_crlf_after_delivering_it (RFC 9112 7.1)",
         .input = chunked_head() + "5\r\nhelloX\r\n0\r\n\r\n",
         .requests = {chunked_request("hello", false)},
         .error = 400},
        {.name = "rejects_chunk_data_followed_by_bare_lf (RFC 9112 7.1)",
         .input = chunked_head() + "5\r\nhello\n0\r\n\r\n",
         .requests = {chunked_request("hello", false)},
         .error = 400},
        {.name = "rejects_two_lfs_after_chunk_data (RFC 9112 7.1)",
         .input = chunked_head() + "5\r\nhello\n\n0\r\n\r\n",
         .requests = {chunked_request("hello", false)},
         .error = 400},
        {.name = "rejects_obs_fold_in_trailers (RFC 9112 5.2)",
         .input = chunked_head() + "0\r\nX: 1\r\n 2\r\n\r\n",
         .requests = {chunked_request("", false)},
         .error = 400},
        {.name = "rejects_space_before_colon_in_trailers (RFC 9112 5.1)",
         .input = chunked_head() + "0\r\nX : 1\r\n\r\n",
         .requests = {chunked_request("", false)},
         .error = 400},
        {.name = "rejects_bare_lf_in_trailers (RFC 9112 2.2)",
         .input = chunked_head() + "0\r\nX: 1\n\r\n",
         .requests = {chunked_request("", false)},
         .error = 400},
        {.name = "rejects_control_byte_in_trailer_value (RFC 9110 5.5)",
         .input = chunked_head() + "0\r\nX: \x01\r\n\r\n",
         .requests = {chunked_request("", false)},
         .error = 400},
        {.name = "answers_431_to_trailers_over_max_trailer_bytes (limits.max_trailer_bytes)",
         .input = chunked_head() + "0\r\nX: 12345\r\n\r\n",
         .requests = {chunked_request("", false)},
         .error = 431,
         .lim = with_trailer_bytes(11)},
        good("accepts_trailers_at_max_trailer_bytes (limits.max_trailer_bytes)",
             chunked_head() + "0\r\nX: 12345\r\n\r\n", {chunked_request("")}, with_trailer_bytes(12)),
        {.name = "answers_413_when_chunks_pass_max_body (limits.max_body)",
         .input = chunked_head() + "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
         .requests = {chunked_request("hello", false)},
         .error = 413,
         .lim = with_body(9)},
        good("accepts_chunks_summing_to_max_body (limits.max_body)",
             chunked_head() + "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
             {chunked_request("helloworld")},
             with_body(10)),

        // --- pipelining (RFC 9112 §9.3.2) ---------------------------------------------
        good("answers_two_pipelined_gets_in_order (RFC 9112 9.3.2)",
             "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
             {{.target = "/1"}, {.target = "/2"}}),
        good("answers_three_pipelined_requests_with_bodies (RFC 9112 9.3.2)",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + chunked_head() +
                 "3\r\nabc\r\n0\r\n\r\n" + "GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
             {post_with_length("hello"),
              chunked_request("abc"),
              {.target = "/last", .headers = {{"Host", "a"}, {"Connection", "close"}}, .keep_alive = false}}),
        good("ignores_empty_line_after_a_body_before_the_next_request (RFC 9112 2.2)",
             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\r\n" + get_a,
             {post_with_length("hello"), {}}),
        {.name = "answers_pipelined_requests_until_a_bad_one (RFC 9112 9.3.2)",
         .input = get_a + get_a + "GET /x HTTP/1.1\r\nHost : a\r\n\r\n" + get_a,
         .requests = {{}, {}},
         .error = 400},
    };
    return rows;
}

std::vector<std::size_t> every_byte(std::size_t n) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < n; ++i) {
        cuts.push_back(i);
    }
    return cuts;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(request_parser_table)

BOOST_AUTO_TEST_CASE(table_has_at_least_80_rows_with_unique_names) {
    const auto rows = table();
    BOOST_TEST(rows.size() >= 80u);
    std::set<std::string> names;
    for (const auto& r : rows) {
        BOOST_CHECK_MESSAGE(names.insert(r.name).second, "two rows are named " << r.name);
    }
}

BOOST_DATA_TEST_CASE(row_gives_the_same_outcome_at_every_split, boost::unit_test::data::make(table()), r) {
    const std::string expected = describe(r.requests, r.error);

    const outcome whole = drive(r.input, r.lim, {});
    BOOST_TEST_CONTEXT(r.name << ", whole input") {
        BOOST_TEST(whole.contract_violations == "");
        BOOST_TEST(describe(whole.requests, whole.error) == expected);
    }
    for (std::size_t cut = 1; cut < r.input.size(); ++cut) {
        const outcome split = drive(r.input, r.lim, {cut});
        BOOST_TEST_CONTEXT(r.name << ", split at byte " << cut) {
            BOOST_TEST(split.contract_violations == "");
            BOOST_TEST(describe(split.requests, split.error) == expected);
        }
    }
    const outcome bytewise = drive(r.input, r.lim, every_byte(r.input.size()));
    BOOST_TEST_CONTEXT(r.name << ", one byte per call") {
        BOOST_TEST(bytewise.contract_violations == "");
        BOOST_TEST(describe(bytewise.requests, bytewise.error) == expected);
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(request_parser_contract)

BOOST_AUTO_TEST_CASE(request_without_body_gives_head_then_end_consuming_nothing) {
    request_parser parser;
    const std::string input = get_a + "GET /next";
    const parse_result head = parser.parse(input);
    BOOST_TEST(static_cast<int>(head.event) == static_cast<int>(parse_event::head));
    BOOST_TEST(head.consumed == get_a.size());
    BOOST_TEST(parser.in_message());
    const parse_result end = parser.parse(std::string_view(input).substr(head.consumed));
    BOOST_TEST(static_cast<int>(end.event) == static_cast<int>(parse_event::end));
    BOOST_TEST(end.consumed == 0u);
    BOOST_TEST(!parser.in_message());
    const parse_result next = parser.parse(std::string_view(input).substr(head.consumed));
    BOOST_TEST(static_cast<int>(next.event) == static_cast<int>(parse_event::need_more));
    BOOST_TEST(next.consumed == 0u);
    BOOST_TEST(parser.in_message());
}

BOOST_AUTO_TEST_CASE(head_views_point_into_the_callers_window) {
    request_parser parser;
    const std::string input = "\r\nPUT /p HTTP/1.1\r\nHost:  h \r\n\r\n";
    const parse_result r = parser.parse(input);
    BOOST_TEST(static_cast<int>(r.event) == static_cast<int>(parse_event::head));
    BOOST_TEST(r.consumed == input.size());
    const auto& h = parser.head();
    BOOST_TEST(h.base == input.data());
    BOOST_TEST(h.method.data() == input.data() + 2);
    BOOST_TEST(h.target.data() == input.data() + 6);
    BOOST_TEST(h.header(0).value.data() == input.data() + input.find('h', 10));
    BOOST_TEST(h.header(0).value == "h");
}

BOOST_AUTO_TEST_CASE(error_is_sticky_until_reset) {
    request_parser parser;
    const std::string bad_request = "GET / HTTP/1.1\r\nHost : a\r\n\r\n";
    BOOST_TEST(static_cast<int>(parser.parse(bad_request).event) == static_cast<int>(parse_event::error));
    BOOST_TEST(parser.error_status() == 400);
    BOOST_TEST(std::string(parser.error_reason()) != "");
    const parse_result again = parser.parse(get_a);
    BOOST_TEST(static_cast<int>(again.event) == static_cast<int>(parse_event::error));
    BOOST_TEST(again.consumed == 0u);
    parser.reset();
    BOOST_TEST(!parser.in_message());
    BOOST_TEST(static_cast<int>(parser.parse(get_a).event) == static_cast<int>(parse_event::head));
    BOOST_TEST(parser.error_status() == 0);
}

BOOST_AUTO_TEST_CASE(leading_empty_lines_count_as_message_bytes) {
    request_parser parser;
    BOOST_TEST(!parser.in_message());
    const parse_result r = parser.parse("\r\n");
    BOOST_TEST(static_cast<int>(r.event) == static_cast<int>(parse_event::need_more));
    BOOST_TEST(r.consumed == 0u);
    BOOST_TEST(parser.in_message());
}

// A connection with a small fixed buffer: a body far larger than the buffer must flow
// through it, because body bytes and chunk framing are released as they are reported.
void stream_through_small_buffer(const std::string& head, const std::string& body_wire,
                                 std::size_t expected_body) {
    constexpr std::size_t capacity = 4096;
    request_parser parser;
    std::string buffer;
    std::size_t fed = 0;
    std::size_t body_bytes = 0;
    bool ended = false;
    const std::string wire = head + body_wire;
    while (!ended) {
        const std::size_t take = std::min(capacity - buffer.size(), wire.size() - fed);
        buffer.append(wire, fed, take);
        fed += take;
        const parse_result r = parser.parse(buffer);
        BOOST_REQUIRE(static_cast<int>(r.event) != static_cast<int>(parse_event::error));
        if (r.event == parse_event::need_more) {
            BOOST_REQUIRE_MESSAGE(take != 0 || r.consumed != 0, "the parser stalled with a full buffer");
        }
        if (r.event == parse_event::body) {
            body_bytes += r.body.size();
        }
        ended = r.event == parse_event::end;
        buffer.erase(0, r.consumed);
    }
    BOOST_TEST(body_bytes == expected_body);
    BOOST_TEST(fed == wire.size());
}

BOOST_AUTO_TEST_CASE(streams_a_1mb_content_length_body_through_a_4k_buffer) {
    const std::size_t n = 1 << 20;
    const std::string head =
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(n) + "\r\n\r\n";
    stream_through_small_buffer(head, std::string(n, 'z'), n);
}

BOOST_AUTO_TEST_CASE(streams_a_1mb_chunked_body_through_a_4k_buffer) {
    std::string wire;
    std::size_t total = 0;
    for (std::size_t size : {1u, 4095u, 4096u, 10000u, 65536u}) {
        for (int i = 0; i < 3; ++i) {
            std::ostringstream line;
            line << std::hex << size << ";ext=" << i << "\r\n";
            wire += line.str() + std::string(size, 'c') + "\r\n";
            total += size;
        }
    }
    while (total < (1u << 20)) {
        wire += "10000\r\n" + std::string(0x10000, 'd') + "\r\n";
        total += 0x10000;
    }
    wire += "0\r\nX-T: 1\r\n\r\n";
    stream_through_small_buffer(chunked_head(), wire, total);
}

BOOST_AUTO_TEST_SUITE_END()

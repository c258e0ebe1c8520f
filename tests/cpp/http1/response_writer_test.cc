// response_writer: one table row per rule of response framing (RFC 9110, RFC 9112). A row
// gives the request, the app's start message and body messages, and the exact bytes that
// must reach the connection. Each row runs as its own named test case, so a failure and
// `--run_test` both use the rule's name.
#include "http1/response_writer.h"

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace dbridge::http1 {

// Lets BOOST_TEST print a mismatched status by its meaning (static: other test files may
// want their own).
static std::ostream& operator<<(std::ostream& os, write_status status) { return os << describe(status); }

}  // namespace dbridge::http1

namespace {

using namespace std::literals;
using dbridge::byte_buffer;
using dbridge::http1::header_field;
using dbridge::http1::request_facts;
using dbridge::http1::response_writer;
using dbridge::http1::write_status;
using enum dbridge::http1::write_status;

constexpr request_facts http11{.version_minor = 1, .head_method = false, .keep_alive = true};
constexpr request_facts http11_close{.version_minor = 1, .head_method = false, .keep_alive = false};
constexpr request_facts http10{.version_minor = 0, .head_method = false, .keep_alive = false};
constexpr request_facts http10_keep_alive{.version_minor = 0, .head_method = false, .keep_alive = true};
constexpr request_facts head11{.version_minor = 1, .head_method = true, .keep_alive = true};
constexpr request_facts head10_keep_alive{.version_minor = 0, .head_method = true, .keep_alive = true};

constexpr std::string_view k_date = "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";
constexpr std::string_view k_server = "server: dbridge-asgi\r\n";

// Every row writes behind bytes already queued on the connection (a pipelined earlier
// response): the writer must append, and on error leave them exactly as they were.
constexpr std::string_view k_queued = "<earlier response>";

struct body_call {
    std::string_view data;
    bool more;
    write_status expect;
};

struct writer_case {
    const char* name;
    request_facts request;
    int status;
    std::string_view date_line = {};
    std::string_view default_headers = {};
    std::vector<header_field> headers = {};
    write_status start_result = ok;
    std::vector<body_call> body = {};
    std::string_view expected = {};  // the bytes appended behind k_queued
    bool keep_alive = true;          // checked when start() succeeded
};

const std::vector<writer_case> k_cases = {
    // --- status line ------------------------------------------------------------------
    {.name = "status_line_then_date_then_defaults_then_app_headers (RFC 9112 4)",
     .request = http11,
     .status = 200,
     .date_line = k_date,
     .default_headers = k_server,
     .headers = {{"content-type", "text/plain"}, {"content-length", "5"}},
     .body = {{"hello", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\n"
                 "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                 "server: dbridge-asgi\r\n"
                 "content-type: text/plain\r\n"
                 "content-length: 5\r\n"
                 "\r\n"
                 "hello"},
    {.name = "http10_request_is_answered_with_http11_version (RFC 9110 6.2)",
     .request = http10,
     .status = 200,
     .headers = {{"content-length", "2"}},
     .body = {{"hi", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
     .keep_alive = false},
    {.name = "unknown_status_has_an_empty_reason_phrase (RFC 9112 4)",
     .request = http11,
     .status = 599,
     .headers = {{"content-length", "0"}},
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 599 \r\ncontent-length: 0\r\n\r\n"},
    {.name = "status_below_100_is_rejected (RFC 9110 15)",
     .request = http11,
     .status = 99,
     .headers = {{"content-length", "0"}},
     .start_result = invalid_status},
    {.name = "status_above_599_is_rejected (RFC 9110 15)",
     .request = http11,
     .status = 600,
     .headers = {{"content-length", "0"}},
     .start_result = invalid_status},
    {.name = "interim_100_is_not_a_final_response (RFC 9110 15.2)",
     .request = http11,
     .status = 100,
     .start_result = invalid_status},
    {.name = "interim_103_is_not_a_final_response (RFC 9110 15.2)",
     .request = http11,
     .status = 103,
     .headers = {{"link", "</style.css>; rel=preload"}},
     .start_result = invalid_status},
    {.name = "switching_protocols_gets_no_framing_and_no_body (RFC 9110 15.2.2)",
     .request = http11,
     .status = 101,
     .headers = {{"upgrade", "websocket"}, {"connection", "upgrade"}},
     .body = {{"x", false, ok}},
     .expected = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"},

    // --- chunked framing --------------------------------------------------------------
    {.name = "http11_body_without_content_length_is_chunked (RFC 9112 7.1)",
     .request = http11,
     .status = 200,
     .headers = {{"content-type", "text/plain"}},
     .body = {{"hello", true, ok}, {"world!", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\n"
                 "content-type: text/plain\r\n"
                 "transfer-encoding: chunked\r\n"
                 "\r\n"
                 "5\r\nhello\r\n"
                 "6\r\nworld!\r\n"
                 "0\r\n\r\n"},
    {.name = "chunk_size_is_hexadecimal (RFC 9112 7.1)",
     .request = http11,
     .status = 200,
     .body = {{"abcdefghijklmnopqrstuvwxyz", true, ok}, {"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                 "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n"},
    {.name = "empty_body_part_with_more_writes_no_chunk (RFC 9112 7.1)",
     .request = http11,
     .status = 200,
     .body = {{"", true, ok}, {"abc", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
    {.name = "final_empty_body_part_writes_only_the_last_chunk (RFC 9112 7.1)",
     .request = http11,
     .status = 200,
     .body = {{"a", true, ok}, {"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"},
    {.name = "empty_chunked_body_is_only_the_last_chunk (RFC 9112 7.1)",
     .request = http11,
     .status = 200,
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"},
    {.name = "app_chunked_transfer_encoding_is_kept_as_given_and_applied (RFC 9112 6.1)",
     .request = http11,
     .status = 200,
     .headers = {{"Transfer-Encoding", "Chunked"}},
     .body = {{"hi", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"},
    {.name = "chunked_as_final_coding_after_another_is_chunked (RFC 9112 6.1)",
     .request = http11,
     .status = 200,
     .headers = {{"transfer-encoding", "gzip, chunked"}},
     .body = {{"zz", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n"},
    {.name = "transfer_coding_without_chunked_is_close_delimited (RFC 9112 6.3 rule 4)",
     .request = http11,
     .status = 200,
     .headers = {{"transfer-encoding", "gzip"}},
     .body = {{"zz", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\nconnection: close\r\n\r\nzz",
     .keep_alive = false},
    {.name = "chunked_before_another_coding_is_rejected (RFC 9112 6.1)",
     .request = http11,
     .status = 200,
     .headers = {{"transfer-encoding", "chunked, gzip"}},
     .start_result = invalid_header},
    {.name = "chunked_applied_twice_is_rejected (RFC 9112 6.1)",
     .request = http11,
     .status = 200,
     .headers = {{"transfer-encoding", "chunked"}, {"transfer-encoding", "chunked"}},
     .start_result = invalid_header},
    {.name = "content_length_with_transfer_encoding_is_rejected (RFC 9112 6.2)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "2"}, {"transfer-encoding", "chunked"}},
     .start_result = invalid_content_length},

    // --- HTTP/1.0 clients -------------------------------------------------------------
    {.name = "http10_body_without_content_length_is_close_delimited (RFC 9112 6.3 rule 8)",
     .request = http10_keep_alive,
     .status = 200,
     .body = {{"ab", true, ok}, {"cd", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nabcd",
     .keep_alive = false},
    {.name = "http10_client_never_gets_transfer_encoding (RFC 9112 6.1)",
     .request = http10,
     .status = 200,
     .headers = {{"transfer-encoding", "chunked"}, {"x-a", "1"}},
     .body = {{"ab", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\nx-a: 1\r\nconnection: close\r\n\r\nab",
     .keep_alive = false},
    {.name = "http10_keep_alive_with_content_length_says_keep_alive (RFC 9112 C.2.2)",
     .request = http10_keep_alive,
     .status = 200,
     .headers = {{"content-length", "2"}},
     .body = {{"ok", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok"},
    {.name = "http10_keep_alive_head_response_says_keep_alive (RFC 9112 C.2.2)",
     .request = head10_keep_alive,
     .status = 200,
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\n\r\n"},
    {.name = "http10_keep_alive_closed_by_the_app_adds_no_connection_field (RFC 9112 9.6)",
     .request = http10_keep_alive,
     .status = 200,
     .headers = {{"content-length", "0"}, {"connection", "close"}},
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
     .keep_alive = false},

    // --- Content-Length ---------------------------------------------------------------
    {.name = "content_length_body_is_written_as_is (RFC 9112 6.3 rule 6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "6"}},
     .body = {{"abc", true, ok}, {"def", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nabcdef"},
    {.name = "content_length_name_is_case_insensitive (RFC 9110 5.1)",
     .request = http11,
     .status = 200,
     .headers = {{"Content-Length", "3"}},
     .body = {{"abc", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"},
    {.name = "body_beyond_content_length_is_not_written (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "3"}},
     .body = {{"ab", true, ok}, {"cd", false, content_length_exceeded}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nab",
     .keep_alive = false},
    {.name = "body_short_of_content_length_is_written_and_reported (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "5"}},
     .body = {{"abc", false, content_length_short}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc",
     .keep_alive = false},
    {.name = "content_length_zero_with_an_empty_body (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "0"}},
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"},
    {.name = "content_length_with_a_sign_is_rejected (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "+5"}},
     .start_result = invalid_content_length},
    {.name = "negative_content_length_is_rejected (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "-1"}},
     .start_result = invalid_content_length},
    {.name = "content_length_with_trailing_garbage_is_rejected (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "5a"}},
     .start_result = invalid_content_length},
    {.name = "empty_content_length_is_rejected (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", ""}},
     .start_result = invalid_content_length},
    {.name = "content_length_list_is_rejected (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "5, 5"}},
     .start_result = invalid_content_length},
    {.name = "content_length_beyond_64_bits_is_rejected (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "18446744073709551616"}},
     .start_result = invalid_content_length},
    {.name = "largest_64_bit_content_length_is_accepted (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "18446744073709551615"}},
     .body = {{"abc", true, ok}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551615\r\n\r\nabc"},
    {.name = "differing_duplicate_content_length_is_rejected (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "5"}, {"content-length", "6"}},
     .start_result = invalid_content_length},
    {.name = "equal_duplicate_content_length_is_sent_once (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .headers = {{"content-length", "2"}, {"x-a", "1"}, {"Content-Length", "02"}},
     .body = {{"ok", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-a: 1\r\n\r\nok"},

    // --- responses without a body -----------------------------------------------------
    {.name = "head_response_has_no_body_but_keeps_content_length (RFC 9110 9.3.2)",
     .request = head11,
     .status = 200,
     .headers = {{"content-length", "5"}},
     .body = {{"hello", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"},
    {.name = "head_response_may_omit_the_body_its_content_length_announces (RFC 9110 9.3.2)",
     .request = head11,
     .status = 200,
     .headers = {{"content-length", "100"}},
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n"},
    {.name = "head_response_without_content_length_gets_no_framing_field (RFC 9110 9.3.2)",
     .request = head11,
     .status = 200,
     .body = {{"hello", true, ok}, {"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\n\r\n"},
    {.name = "no_content_204_gets_no_framing_and_no_body (RFC 9110 15.3.5)",
     .request = http11,
     .status = 204,
     .body = {{"x", false, ok}},
     .expected = "HTTP/1.1 204 No Content\r\n\r\n"},
    {.name = "not_modified_304_keeps_content_length_and_sends_no_body (RFC 9110 15.4.5)",
     .request = http11,
     .status = 304,
     .headers = {{"etag", "\"v1\""}, {"content-length", "120"}},
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\ncontent-length: 120\r\n\r\n"},
    {.name = "no_body_response_to_a_closing_request_says_close (RFC 9112 9.6)",
     .request = http11_close,
     .status = 204,
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n",
     .keep_alive = false},

    // --- keep-alive -------------------------------------------------------------------
    {.name = "closing_request_gets_connection_close (RFC 9112 9.6)",
     .request = http11_close,
     .status = 200,
     .headers = {{"content-length", "2"}},
     .body = {{"ok", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
     .keep_alive = false},
    {.name = "closing_request_with_chunked_body_gets_connection_close (RFC 9112 9.6)",
     .request = http11_close,
     .status = 200,
     .body = {{"ok", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                 "2\r\nok\r\n0\r\n\r\n",
     .keep_alive = false},
    {.name = "app_connection_close_ends_keep_alive_and_is_not_repeated (RFC 9112 9.6)",
     .request = http11,
     .status = 200,
     .headers = {{"Connection", "Close"}, {"content-length", "0"}},
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\nConnection: Close\r\ncontent-length: 0\r\n\r\n",
     .keep_alive = false},
    {.name = "close_among_connection_options_ends_keep_alive (RFC 9110 7.6.1)",
     .request = http11,
     .status = 200,
     .headers = {{"connection", "x-trace ,\tclose"}, {"content-length", "0"}},
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\nconnection: x-trace ,\tclose\r\ncontent-length: 0\r\n\r\n",
     .keep_alive = false},
    {.name = "connection_option_only_containing_close_keeps_alive (RFC 9110 7.6.1)",
     .request = http11,
     .status = 200,
     .headers = {{"connection", "keep-alive, x-close"}, {"content-length", "0"}},
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\nconnection: keep-alive, x-close\r\ncontent-length: 0\r\n\r\n"},
    {.name = "closing_request_with_app_connection_field_adds_no_second_one (RFC 9110 7.6.1)",
     .request = http11_close,
     .status = 200,
     .headers = {{"connection", "keep-alive"}, {"content-length", "0"}},
     .body = {{"", false, ok}},
     .expected = "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n",
     .keep_alive = false},

    // --- header validation: an app must not be able to split the response --------------
    {.name = "crlf_in_value_cannot_split_the_response (RFC 9110 5.5)",
     .request = http11,
     .status = 302,
     .headers = {{"x-a", "1"}, {"location", "/\r\nset-cookie: evil=1"}},
     .start_result = invalid_header},
    {.name = "bare_lf_in_value_is_rejected (RFC 9110 5.5)",
     .request = http11,
     .status = 200,
     .headers = {{"x-a", "a\nset-cookie: evil=1"}},
     .start_result = invalid_header},
    {.name = "bare_cr_in_value_is_rejected (RFC 9110 5.5)",
     .request = http11,
     .status = 200,
     .headers = {{"x-a", "a\rb"}},
     .start_result = invalid_header},
    {.name = "nul_in_value_is_rejected (RFC 9110 5.5)",
     .request = http11,
     .status = 200,
     .headers = {{"x-a", "a\0b"sv}},
     .start_result = invalid_header},
    {.name = "other_control_byte_in_value_is_rejected (RFC 9110 5.5)",
     .request = http11,
     .status = 200,
     .headers = {{"x-a", "a\x01"
                         "b"}},
     .start_result = invalid_header},
    {.name = "del_in_value_is_rejected (RFC 9110 5.5)",
     .request = http11,
     .status = 200,
     .headers = {{"x-a", "a\x7f"}},
     .start_result = invalid_header},
    {.name = "htab_space_and_obs_text_in_value_are_kept (RFC 9110 5.5)",
     .request = http11,
     .status = 200,
     .headers = {{"x-a", "a\tb c\xe9"}, {"content-length", "0"}},
     .expected = "HTTP/1.1 200 OK\r\nx-a: a\tb c\xe9\r\ncontent-length: 0\r\n\r\n"},
    {.name = "empty_value_is_allowed (RFC 9110 5.5)",
     .request = http11,
     .status = 200,
     .headers = {{"x-empty", ""}, {"content-length", "0"}},
     .expected = "HTTP/1.1 200 OK\r\nx-empty: \r\ncontent-length: 0\r\n\r\n"},
    {.name = "space_in_name_is_rejected (RFC 9110 5.1)",
     .request = http11,
     .status = 200,
     .headers = {{"x header", "1"}},
     .start_result = invalid_header},
    {.name = "colon_in_name_cannot_forge_a_field (RFC 9110 5.1)",
     .request = http11,
     .status = 200,
     .headers = {{"set-cookie: evil=1\r\nx-a", "1"}},
     .start_result = invalid_header},
    {.name = "colon_alone_in_name_is_rejected (RFC 9110 5.1)",
     .request = http11,
     .status = 200,
     .headers = {{"x-a:b", "1"}},
     .start_result = invalid_header},
    {.name = "crlf_in_name_cannot_split_the_response (RFC 9110 5.1)",
     .request = http11,
     .status = 200,
     .headers = {{"x-a\r\n\r\n<html>", "1"}},
     .start_result = invalid_header},
    {.name = "empty_name_is_rejected (RFC 9110 5.1)",
     .request = http11,
     .status = 200,
     .headers = {{"", "1"}},
     .start_result = invalid_header},
    {.name = "non_ascii_name_is_rejected (RFC 9110 5.1)",
     .request = http11,
     .status = 200,
     .headers = {{"caf\xc3\xa9", "1"}},
     .start_result = invalid_header},
    {.name = "every_tchar_is_allowed_in_a_name (RFC 9110 5.6.2)",
     .request = http11,
     .status = 200,
     .headers = {{"!#$%&'*+-.^_`|~09AZaz", "1"}, {"content-length", "0"}},
     .expected = "HTTP/1.1 200 OK\r\n!#$%&'*+-.^_`|~09AZaz: 1\r\ncontent-length: 0\r\n\r\n"},
    {.name = "invalid_last_header_leaves_the_buffer_untouched (RFC 9110 5.5)",
     .request = http11,
     .status = 200,
     .date_line = k_date,
     .default_headers = k_server,
     .headers = {{"content-type", "text/html"}, {"content-length", "0"}, {"x-a", "1\n"}},
     .start_result = invalid_header},
    {.name = "invalid_content_length_after_valid_headers_leaves_the_buffer_untouched (RFC 9110 8.6)",
     .request = http11,
     .status = 200,
     .date_line = k_date,
     .default_headers = k_server,
     .headers = {{"content-type", "text/html"}, {"content-length", "1"}, {"content-length", "2"}},
     .start_result = invalid_content_length},
};

// Shows CR, LF and other control bytes in a failure message.
std::string escaped(std::string_view bytes) {
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string text;
    for (char c : bytes) {
        auto byte = static_cast<unsigned char>(c);
        if (c == '\r') {
            text += "\\r";
        } else if (c == '\n') {
            text += "\\n";
        } else if (byte < 0x20 || byte >= 0x7f) {
            text += "\\x";
            text += k_hex[byte >> 4];
            text += k_hex[byte & 0xf];
        } else {
            text += c;
        }
    }
    return text;
}

void run_case(const writer_case& row) {
    byte_buffer out;
    out.append(k_queued);
    response_writer writer;

    write_status started = writer.start(out, row.request, row.status, row.headers, row.date_line,
                                        row.default_headers);
    BOOST_TEST(started == row.start_result);
    BOOST_TEST(writer.started() == (started == ok));
    for (std::size_t i = 0; i < row.body.size(); ++i) {
        const body_call& call = row.body[i];
        write_status written = writer.body(out, call.data, call.more);
        BOOST_TEST(written == call.expect,
                   "body call " << i << " (\"" << escaped(call.data) << "\", more=" << call.more << ")");
    }

    std::string expected = std::string(k_queued) + std::string(row.expected);
    BOOST_TEST(out.view() == expected,
               "output differs\n  expected: " << escaped(expected) << "\n  actual: " << escaped(out.view()));
    if (started == ok) {
        BOOST_TEST(writer.keep_alive() == row.keep_alive);
    }
}

// One test case per row, named by its rule.
[[maybe_unused]] const bool k_cases_registered = [] {
    boost::unit_test::test_suite* suite = BOOST_TEST_SUITE("response_writer_rules");
    for (const writer_case& row : k_cases) {
        suite->add(boost::unit_test::make_test_case([&row] { run_case(row); }, row.name, __FILE__, __LINE__));
    }
    boost::unit_test::framework::master_test_suite().add(suite);
    return true;
}();

std::string start_line(int status) {
    byte_buffer out;
    response_writer writer;
    // A HEAD response with no headers is the status line and the blank line alone.
    if (writer.start(out, head11, status, {}, {}, {}) != ok) {
        return "start failed";
    }
    return std::string(out.view());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(response_writer_tests)

// count_body() is body() without the bytes, for a caller that sends a large body itself:
// the same result and the same state after it, for every Content-Length outcome and for a
// close-delimited body; only verbatim framings qualify.
BOOST_AUTO_TEST_CASE(count_body_agrees_with_body_on_verbatim_framings) {
    struct count_case {
        const request_facts& request;
        std::string_view declared;  // Content-Length, empty for none
        std::size_t size;
        bool more;
    };
    const count_case cases[] = {
        {http11, "10", 10, false},      // exact
        {http11, "10", 4, true},        // part
        {http11, "10", 4, false},       // short
        {http11, "10", 11, false},      // exceeded
        {http10, "", 100000, true},     // close-delimited (HTTP/1.0, no length)
        {http10, "", 100000, false},
    };
    for (const count_case& c : cases) {
        std::vector<header_field> headers;
        if (!c.declared.empty()) {
            headers.push_back({"content-length", c.declared});
        }
        byte_buffer out_body, out_count;
        response_writer by_body, by_count;
        BOOST_TEST_REQUIRE(by_body.start(out_body, c.request, 200, headers, {}, {}) == ok);
        BOOST_TEST_REQUIRE(by_count.start(out_count, c.request, 200, headers, {}, {}) == ok);
        BOOST_TEST_REQUIRE(by_count.body_is_verbatim());
        const std::size_t head_size = out_body.size();
        const std::string data(c.size, 'x');
        const write_status appended = by_body.body(out_body, data, c.more);
        BOOST_TEST(by_count.count_body(c.size, c.more) == appended, "size " << c.size);
        BOOST_TEST(out_count.size() == head_size);  // count_body() writes nothing
        BOOST_TEST(by_count.finished() == by_body.finished());
        BOOST_TEST(by_count.keep_alive() == by_body.keep_alive());
        BOOST_TEST(by_count.body_bytes() == by_body.body_bytes());
    }
    // Chunked framing, a suppressed body, a finished response: body() must frame or drop.
    byte_buffer out;
    response_writer chunked;
    BOOST_TEST_REQUIRE(chunked.start(out, http11, 200, {}, {}, {}) == ok);
    BOOST_TEST(!chunked.body_is_verbatim());
    response_writer head;
    const header_field length[] = {{"content-length", "5"}};
    BOOST_TEST_REQUIRE(head.start(out, head11, 200, length, {}, {}) == ok);
    BOOST_TEST(!head.body_is_verbatim());
    response_writer done;
    BOOST_TEST(!done.body_is_verbatim());  // not started
    BOOST_TEST_REQUIRE(done.start(out, http11, 200, length, {}, {}) == ok);
    BOOST_TEST_REQUIRE(done.body(out, "hello", false) == ok);
    BOOST_TEST(!done.body_is_verbatim());
}

// The connection asks before sizing an output buffer for a body: a HEAD answer or a
// 204/304 whose app sends a large body must not make room for bytes never sent.
BOOST_AUTO_TEST_CASE(body_suppressed_says_when_body_bytes_are_counted_and_dropped) {
    struct suppress_case {
        const request_facts& request;
        int status;
        bool suppressed;
    };
    const suppress_case cases[] = {
        {http11, 200, false}, {http11, 404, false}, {head11, 200, true},
        {http11, 204, true},  {http11, 304, true},  {http10, 200, false},
    };
    for (const suppress_case& c : cases) {
        byte_buffer out;
        response_writer writer;
        const dbridge::http1::header_field length[] = {{"content-length", "100000"}};
        BOOST_TEST_REQUIRE(writer.start(out, c.request, c.status, length, {}, {}) == ok);
        BOOST_TEST(writer.body_suppressed() == c.suppressed, "status " << c.status);
        const std::size_t head_size = out.size();
        BOOST_TEST(writer.body(out, std::string(100000, 'x'), false) == ok);
        BOOST_TEST((out.size() == head_size) == c.suppressed, "status " << c.status);
    }
}

BOOST_AUTO_TEST_CASE(reason_phrases_follow_rfc_9110_section_15) {
    struct phrase_case {
        int status;
        std::string_view line;
    };
    const phrase_case cases[] = {
        {101, "HTTP/1.1 101 Switching Protocols\r\n"},
        {200, "HTTP/1.1 200 OK\r\n"},
        {201, "HTTP/1.1 201 Created\r\n"},
        {202, "HTTP/1.1 202 Accepted\r\n"},
        {203, "HTTP/1.1 203 Non-Authoritative Information\r\n"},
        {204, "HTTP/1.1 204 No Content\r\n"},
        {206, "HTTP/1.1 206 Partial Content\r\n"},
        {299, "HTTP/1.1 299 \r\n"},
        {301, "HTTP/1.1 301 Moved Permanently\r\n"},
        {302, "HTTP/1.1 302 Found\r\n"},
        {303, "HTTP/1.1 303 See Other\r\n"},
        {304, "HTTP/1.1 304 Not Modified\r\n"},
        {307, "HTTP/1.1 307 Temporary Redirect\r\n"},
        {308, "HTTP/1.1 308 Permanent Redirect\r\n"},
        {400, "HTTP/1.1 400 Bad Request\r\n"},
        {401, "HTTP/1.1 401 Unauthorized\r\n"},
        {403, "HTTP/1.1 403 Forbidden\r\n"},
        {404, "HTTP/1.1 404 Not Found\r\n"},
        {405, "HTTP/1.1 405 Method Not Allowed\r\n"},
        {408, "HTTP/1.1 408 Request Timeout\r\n"},
        {409, "HTTP/1.1 409 Conflict\r\n"},
        {413, "HTTP/1.1 413 Content Too Large\r\n"},
        {414, "HTTP/1.1 414 URI Too Long\r\n"},
        {415, "HTTP/1.1 415 Unsupported Media Type\r\n"},
        {416, "HTTP/1.1 416 Range Not Satisfiable\r\n"},
        {421, "HTTP/1.1 421 Misdirected Request\r\n"},
        {422, "HTTP/1.1 422 Unprocessable Content\r\n"},
        {425, "HTTP/1.1 425 Too Early\r\n"},
        {426, "HTTP/1.1 426 Upgrade Required\r\n"},
        {428, "HTTP/1.1 428 Precondition Required\r\n"},
        {429, "HTTP/1.1 429 Too Many Requests\r\n"},
        {431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
        {451, "HTTP/1.1 451 Unavailable For Legal Reasons\r\n"},
        {499, "HTTP/1.1 499 \r\n"},
        {500, "HTTP/1.1 500 Internal Server Error\r\n"},
        {501, "HTTP/1.1 501 Not Implemented\r\n"},
        {502, "HTTP/1.1 502 Bad Gateway\r\n"},
        {503, "HTTP/1.1 503 Service Unavailable\r\n"},
        {504, "HTTP/1.1 504 Gateway Timeout\r\n"},
        {505, "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
        {511, "HTTP/1.1 511 Network Authentication Required\r\n"},
    };
    for (const phrase_case& c : cases) {
        BOOST_TEST(start_line(c.status) == std::string(c.line) + "\r\n", "status " << c.status);
    }
}

BOOST_AUTO_TEST_CASE(body_before_start_is_not_started) {
    byte_buffer out;
    response_writer writer;
    BOOST_TEST(writer.body(out, "x", false) == not_started);
    BOOST_TEST(out.empty());
}

BOOST_AUTO_TEST_CASE(second_start_is_rejected_and_writes_nothing) {
    byte_buffer out;
    response_writer writer;
    const header_field fields[] = {{"content-length", "0"}};
    BOOST_TEST(writer.start(out, http11, 200, fields, {}, {}) == ok);
    std::string first(out.view());
    BOOST_TEST(writer.start(out, http11, 404, fields, {}, {}) == already_started);
    BOOST_TEST(out.view() == first);
    BOOST_TEST(writer.status() == 200);
}

BOOST_AUTO_TEST_CASE(body_after_the_final_part_is_rejected_and_writes_nothing) {
    byte_buffer out;
    response_writer writer;
    BOOST_TEST(writer.start(out, http11, 200, {}, {}, {}) == ok);
    BOOST_TEST(writer.body(out, "a", false) == ok);
    BOOST_TEST(writer.finished());
    std::string written(out.view());
    BOOST_TEST(writer.body(out, "b", false) == already_finished);
    BOOST_TEST(writer.body(out, "", false) == already_finished);
    BOOST_TEST(out.view() == written);
}

BOOST_AUTO_TEST_CASE(failed_start_leaves_the_writer_ready_for_a_valid_one) {
    // The connection answers a broken app with a 500 through the same writer.
    byte_buffer out;
    response_writer writer;
    const header_field bad[] = {{"x-a", "1\r\n"}};
    BOOST_TEST(writer.start(out, http11, 200, bad, {}, {}) == invalid_header);
    BOOST_TEST(!writer.started());
    const header_field good[] = {{"content-length", "0"}};
    BOOST_TEST(writer.start(out, http11, 500, good, {}, {}) == ok);
    BOOST_TEST(out.view() == "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(reset_serves_the_next_pipelined_response) {
    byte_buffer out;
    response_writer writer;
    BOOST_TEST(writer.start(out, http11, 200, {}, {}, {}) == ok);
    BOOST_TEST(writer.body(out, "one", false) == ok);
    writer.reset();
    BOOST_TEST(!writer.started());
    BOOST_TEST(!writer.finished());
    BOOST_TEST(writer.body_bytes() == 0U);
    const header_field fields[] = {{"content-length", "3"}};
    BOOST_TEST(writer.start(out, http11_close, 201, fields, {}, {}) == ok);
    BOOST_TEST(writer.body(out, "two", false) == ok);
    BOOST_TEST(out.view() ==
               "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\n"
               "HTTP/1.1 201 Created\r\ncontent-length: 3\r\nconnection: close\r\n\r\ntwo");
    BOOST_TEST(!writer.keep_alive());
    BOOST_TEST(writer.status() == 201);
}

BOOST_AUTO_TEST_CASE(continue_is_an_interim_response_without_fields) {
    byte_buffer out;
    out.append("x");
    response_writer::write_continue(out);
    BOOST_TEST(out.view() == "xHTTP/1.1 100 Continue\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(large_chunk_size_has_several_hex_digits) {
    byte_buffer out;
    response_writer writer;
    BOOST_TEST(writer.start(out, http11, 200, {}, {}, {}) == ok);
    out.clear();
    std::string data(65536 + 255, 'x');
    BOOST_TEST(writer.body(out, data, true) == ok);
    BOOST_TEST(out.view().substr(0, 7) == "100ff\r\n");
    BOOST_TEST(out.size() == 7 + data.size() + 2);
    BOOST_TEST(out.view().substr(out.size() - 2) == "\r\n");
}

BOOST_AUTO_TEST_CASE(body_bytes_counts_what_the_app_sent) {
    byte_buffer out;
    response_writer head;
    BOOST_TEST(head.start(out, head11, 200, {}, {}, {}) == ok);
    BOOST_TEST(head.body(out, "hello", true) == ok);
    BOOST_TEST(head.body(out, "!", false) == ok);
    // Not sent, but the access log reports the size the app produced.
    BOOST_TEST(head.body_bytes() == 6U);

    response_writer fixed;
    const header_field fields[] = {{"content-length", "3"}};
    BOOST_TEST(fixed.start(out, http11, 200, fields, {}, {}) == ok);
    BOOST_TEST(fixed.body(out, "ab", true) == ok);
    BOOST_TEST(fixed.body(out, "cd", true) == content_length_exceeded);
    // Rejected bytes were never sent.
    BOOST_TEST(fixed.body_bytes() == 2U);

    response_writer chunked;
    BOOST_TEST(chunked.start(out, http11, 200, {}, {}, {}) == ok);
    BOOST_TEST(chunked.body(out, "abcdefghij", false) == ok);
    // Chunk framing is not body.
    BOOST_TEST(chunked.body_bytes() == 10U);
}

BOOST_AUTO_TEST_CASE(writing_into_a_buffer_with_room_does_not_grow_it) {
    // The writer allocates nothing of its own; the buffer's growth is the only
    // allocation, so a buffer with room keeps its memory.
    byte_buffer out;
    out.prepare(16384);
    const void* memory = out.data();
    std::size_t capacity = out.capacity();
    response_writer writer;
    const header_field fields[] = {{"content-type", "application/json"}, {"x-request-id", "abc123"}};
    for (int i = 0; i < 20; ++i) {
        BOOST_TEST(writer.start(out, http11, 200, fields, k_date, k_server) == ok);
        BOOST_TEST(writer.body(out, "{\"ok\":true}", true) == ok);
        BOOST_TEST(writer.body(out, "", false) == ok);
        writer.reset();
        out.clear();
    }
    BOOST_TEST(out.capacity() == capacity);
    BOOST_TEST(static_cast<const void*>(out.data()) == memory);
}

BOOST_AUTO_TEST_CASE(every_status_has_its_own_description) {
    const write_status all[] = {ok,
                                invalid_status,
                                invalid_header,
                                invalid_content_length,
                                content_length_exceeded,
                                content_length_short,
                                not_started,
                                already_started,
                                already_finished};
    std::vector<std::string_view> seen;
    for (write_status status : all) {
        std::string_view text = dbridge::http1::describe(status);
        BOOST_TEST(!text.empty());
        for (std::string_view other : seen) {
            BOOST_TEST(text != other);
        }
        seen.push_back(text);
    }
}

BOOST_AUTO_TEST_SUITE_END()

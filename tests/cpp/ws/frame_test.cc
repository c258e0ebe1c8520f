// The frame parser and writer as a specification (RFC 6455 §5, §7, §8; RFC 7692 §6, §7).
// Parser rows are client bytes and what a connection would act on; each row is run on
// the whole input, cut in two at every byte, and one byte at a time. The harness plays
// the connection's side of the window contract: it drops exactly `consumed` bytes,
// scribbles over them, and moves its buffer now and then.
#include "ws/frame.h"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <functional>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using namespace std::string_literals;
using dbridge::byte_buffer;
using dbridge::ws::deflate_params;
using dbridge::ws::deflater;
using dbridge::ws::frame_event;
using dbridge::ws::frame_parser;
using dbridge::ws::frame_result;
using dbridge::ws::frame_writer;
using dbridge::ws::message_kind;
using dbridge::ws::parser_limits;
using dbridge::ws::write_status;

namespace dbridge::ws {
std::ostream& operator<<(std::ostream& os, write_status s) { return os << static_cast<int>(s); }
}  // namespace dbridge::ws

namespace {

// The masking key of the RFC 6455 §5.7 examples.
constexpr std::array<std::uint8_t, 4> k_mask = {0x37, 0xfa, 0x21, 0x3d};

// A client frame: first byte (FIN, RSV, opcode) as given, masked, shortest length.
std::string masked(std::uint8_t b0, const std::string& payload) {
    std::string f(1, static_cast<char>(b0));
    const std::size_t n = payload.size();
    if (n < 126) {
        f += static_cast<char>(0x80 | n);
    } else if (n < 65536) {
        f += "\xfe"s;
        f += static_cast<char>(n >> 8);
        f += static_cast<char>(n);
    } else {
        f += "\xff"s;
        for (int i = 0; i < 8; ++i) {
            f += static_cast<char>(static_cast<std::uint64_t>(n) >> (56 - 8 * i));
        }
    }
    for (auto m : k_mask) {
        f += static_cast<char>(m);
    }
    for (std::size_t i = 0; i < n; ++i) {
        f += static_cast<char>(payload[i] ^ k_mask[i & 3]);
    }
    return f;
}

std::string unmasked(std::uint8_t b0, const std::string& payload) {
    std::string f(1, static_cast<char>(b0));
    f += static_cast<char>(payload.size());
    return f + payload;
}

std::string close_body(std::uint16_t code, const std::string& reason = "") {
    return std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)} + reason;
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
    }
    return s;
}

// A message compressed the way a client with a fresh context would (RFC 7692 §7.2.1).
std::string compressed(const std::string& message) {
    deflater d(15, false);
    return std::string(d.compress(message));
}

struct row {
    std::string name;
    std::string input;
    std::vector<std::string> expected;
    parser_limits lim = {};
    std::optional<deflate_params> deflate = std::nullopt;
};

std::ostream& operator<<(std::ostream& os, const row& r) { return os << r.name; }

std::string escape(const std::string& s) {
    std::ostringstream os;
    for (const unsigned char c : s) {
        if (c < 0x20 || c >= 0x7f || c == '\\') {
            static const char* digits = "0123456789abcdef";
            os << "\\x" << digits[c >> 4] << digits[c & 15];
        } else {
            os << c;
        }
    }
    return os.str();
}

// Runs `input` through a parser, fed in the pieces `cuts` gives; returns what a
// connection would act on: whole messages, control frames, and the error it fails with.
std::vector<std::string> run(const row& r, const std::vector<std::size_t>& cuts, std::string& violations) {
    frame_parser parser(r.lim);
    if (r.deflate) {
        parser.enable_deflate(*r.deflate);
    }
    std::vector<std::string> t;
    std::string buffer;
    std::size_t start = 0;
    std::size_t fed = 0;
    std::string message;
    std::optional<message_kind> kind;
    for (std::size_t piece = 0; piece <= cuts.size(); ++piece) {
        const std::size_t to = piece < cuts.size() ? cuts[piece] : r.input.size();
        buffer.append(r.input, fed, to - fed);
        fed = to;
        for (;;) {
            const std::span<char> window(buffer.data() + start, buffer.size() - start);
            const frame_result res = parser.parse(window);
            if (res.consumed > window.size()) {
                violations += "consumed > window; ";
                return t;
            }
            switch (res.event) {
            case frame_event::need_more:
                break;
            case frame_event::data:
                if (kind && *kind != res.kind) {
                    violations += "kind changed inside a message; ";
                }
                kind = res.kind;
                message.append(res.data);
                if (res.message_end) {
                    t.push_back((res.kind == message_kind::text ? "text:" : "binary:") + message);
                    message.clear();
                    kind.reset();
                }
                break;
            case frame_event::ping:
                t.push_back("ping:" + std::string(res.data));
                break;
            case frame_event::pong:
                t.push_back("pong:" + std::string(res.data));
                break;
            case frame_event::close:
                t.push_back("close:" + std::to_string(res.close_code) + ":" + std::string(res.data));
                break;
            case frame_event::error:
                if (parser.parse(window).event != frame_event::error) {
                    violations += "error not sticky; ";
                }
                t.push_back("error:" + std::to_string(parser.error_code()));
                return t;
            }
            for (std::size_t i = start; i < start + res.consumed; ++i) {
                buffer[i] = '\x5a';
            }
            start += res.consumed;
            if (res.event == frame_event::need_more) {
                break;
            }
        }
        if (start > buffer.size() / 2) {
            buffer.erase(0, start);
            start = 0;
        }
    }
    return t;
}

// Cut points: all of them for small inputs; for large ones the edges and a stride.
std::vector<std::size_t> cut_points(std::size_t n) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < n; ++i) {
        if (n <= 4096 || i < 300 || n - i < 300 || i % 997 == 0) {
            cuts.push_back(i);
        }
    }
    return cuts;
}

const std::string k_hello_masked = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"s;   // §5.7
const std::string k_pong_masked = "\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"s;    // §5.7
const std::string k_hello_deflated = "\xf2\x48\xcd\xc9\xc9\x07\x00"s;                 // RFC 7692 §7.2.3.1
const std::string k_hello_shared = "\xf2\x00\x11\x00\x00"s;                           // RFC 7692 §7.2.3.2

parser_limits max(std::uint64_t n) {
    parser_limits l;
    l.max_message_size = n;
    return l;
}

deflate_params client_no_takeover() {
    deflate_params p;
    p.client_no_context_takeover = true;
    return p;
}

std::vector<row> rows() {
    const std::string m = std::string(reinterpret_cast<const char*>(k_mask.data()), 4);
    const std::string big_text = pattern(100000);
    std::vector<row> rs = {
        {"rfc6455_5_7_single_frame_masked_text", k_hello_masked, {"text:Hello"}},
        {"rfc6455_5_7_fragmented_masked_text", masked(0x01, "Hel") + masked(0x80, "lo"), {"text:Hello"}},
        {"rfc6455_5_7_masked_pong", k_pong_masked, {"pong:Hello"}},
        {"rfc6455_5_7_256_bytes_binary_16_bit_length", masked(0x82, pattern(256)), {"binary:" + pattern(256)}},
        {"rfc6455_5_7_64KiB_binary_64_bit_length", masked(0x82, pattern(65536)), {"binary:" + pattern(65536)}},
        {"rfc6455_5_4_ping_between_fragments", masked(0x01, "Hel") + masked(0x89, "p") + masked(0x80, "lo"),
         {"ping:p", "text:Hello"}},
        {"rfc6455_5_4_pong_between_fragments", masked(0x02, "a") + masked(0x8a, "") + masked(0x80, "b"),
         {"pong:", "binary:ab"}},
        {"rfc6455_5_4_close_between_fragments", masked(0x01, "Hel") + masked(0x88, close_body(1000)),
         {"close:1000:"}},
        {"rfc6455_5_6_empty_text_message", masked(0x81, ""), {"text:"}},
        {"rfc6455_5_4_empty_fragments", masked(0x02, "") + masked(0x00, "ab") + masked(0x00, "") + masked(0x80, ""),
         {"binary:ab"}},
        {"two_messages_in_one_read", masked(0x81, "a") + masked(0x82, "b"), {"text:a", "binary:b"}},
        {"rfc6455_5_6_binary_is_not_utf8_checked", masked(0x82, "\xff\xfe"), {"binary:\xff\xfe"}},
        {"rfc6455_8_1_code_point_across_fragments", masked(0x01, "\xce") + masked(0x80, "\xba"),
         {"text:\xce\xba"}},
        {"rfc6455_5_5_ping_of_125_bytes", masked(0x89, pattern(125)), {"ping:" + pattern(125)}},
        {"rfc6455_5_5_2_empty_ping", masked(0x89, ""), {"ping:"}},
        {"rfc6455_5_1_unmasked_client_frame", unmasked(0x81, "Hello"), {"error:1002"}},
        {"rfc6455_5_2_rsv1_without_extension", masked(0xc1, "a"), {"error:1002"}},
        {"rfc6455_5_2_rsv2", masked(0xa1, "a"), {"error:1002"}},
        {"rfc6455_5_2_rsv3", masked(0x91, "a"), {"error:1002"}},
        {"rfc6455_5_2_reserved_data_opcode_3", masked(0x83, "a"), {"error:1002"}},
        {"rfc6455_5_2_reserved_control_opcode_b", masked(0x8b, "a"), {"error:1002"}},
        {"rfc6455_5_5_fragmented_ping", masked(0x09, "a"), {"error:1002"}},
        {"rfc6455_5_5_ping_over_125_bytes", masked(0x89, pattern(126)), {"error:1002"}},
        {"rfc6455_5_5_close_over_125_bytes", masked(0x88, close_body(1000, pattern(124))), {"error:1002"}},
        {"rfc6455_5_4_continuation_without_message", masked(0x80, "a"), {"error:1002"}},
        {"rfc6455_5_4_text_inside_fragmented_message", masked(0x01, "a") + masked(0x81, "b"), {"error:1002"}},
        {"rfc6455_5_4_binary_inside_fragmented_message", masked(0x02, "a") + masked(0x02, "b"), {"error:1002"}},
        {"rfc6455_5_2_16_bit_length_not_minimal", "\x82\xfe\x00\x7d"s + m + pattern(125), {"error:1002"}},
        {"rfc6455_5_2_64_bit_length_not_minimal", "\x82\xff\x00\x00\x00\x00\x00\x00\xff\xff"s + m, {"error:1002"}},
        {"rfc6455_5_2_64_bit_length_top_bit_set", "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00"s + m, {"error:1002"}},
        {"rfc6455_10_4_message_over_max_in_one_frame", masked(0x82, pattern(11)), {"error:1009"}, max(10)},
        {"rfc6455_10_4_message_over_max_across_fragments", masked(0x02, pattern(6)) + masked(0x80, pattern(5)),
         {"error:1009"}, max(10)},
        {"rfc6455_10_4_message_at_max", masked(0x02, pattern(6)) + masked(0x80, pattern(4)),
         {"binary:" + pattern(6) + pattern(4)}, max(10)},
        {"rfc6455_10_4_huge_64_bit_length_refused_from_header",
         "\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff"s + m, {"error:1009"}},
        {"rfc6455_8_1_invalid_utf8", masked(0x81, "\xc0\x80"), {"error:1007"}},
        {"rfc6455_8_1_invalid_sequence_across_fragments", masked(0x01, "\xe2\x82") + masked(0x80, "("),
         {"error:1007"}},
        {"rfc6455_8_1_text_ends_inside_a_code_point", masked(0x81, "a\xe2\x82"), {"error:1007"}},
        {"rfc6455_8_1_fails_fast_before_the_message_ends", masked(0x01, "ab\xff"), {"error:1007"}},
        {"rfc6455_5_5_1_close_without_body", masked(0x88, ""), {"close:1005:"}},
        {"rfc6455_5_5_1_close_with_code_and_reason", masked(0x88, close_body(1000, "bye")), {"close:1000:bye"}},
        {"rfc6455_5_5_1_close_with_one_byte_body", masked(0x88, "\x03"), {"error:1002"}},
        {"rfc6455_5_5_1_close_reason_not_utf8", masked(0x88, close_body(1000, "\xff")), {"error:1007"}},
        {"rfc6455_5_5_1_bytes_after_close_are_ignored",
         masked(0x88, close_body(1001)) + unmasked(0xff, "junk"), {"close:1001:"}},
        // RFC 7692: permessage-deflate agreed with the defaults.
        {"rfc7692_7_2_3_1_compressed_hello", masked(0xc1, k_hello_deflated), {"text:Hello"}, {}, deflate_params{}},
        {"rfc7692_7_2_3_1_compressed_hello_fragmented",
         masked(0x41, k_hello_deflated.substr(0, 3)) + masked(0x80, k_hello_deflated.substr(3)), {"text:Hello"}, {},
         deflate_params{}},
        {"rfc7692_7_2_3_2_shared_window", masked(0xc1, k_hello_deflated) + masked(0xc1, k_hello_shared),
         {"text:Hello", "text:Hello"}, {}, deflate_params{}},
        {"rfc7692_7_2_3_2_client_no_context_takeover_refuses_back_reference",
         masked(0xc1, k_hello_deflated) + masked(0xc1, k_hello_shared), {"text:Hello", "error:1007"}, {},
         client_no_takeover()},
        {"rfc7692_7_2_3_2_client_no_context_takeover_fresh_context_each_message",
         masked(0xc1, k_hello_deflated) + masked(0xc1, k_hello_deflated), {"text:Hello", "text:Hello"}, {},
         client_no_takeover()},
        {"rfc7692_7_2_3_3_block_with_no_compression",
         masked(0xc1, "\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00"s), {"text:Hello"}, {}, deflate_params{}},
        {"rfc7692_7_2_3_4_block_with_bfinal", masked(0xc1, "\xf3\x48\xcd\xc9\xc9\x07\x00\x00"s), {"text:Hello"}, {},
         deflate_params{}},
        {"rfc7692_7_2_3_4_bfinal_then_shared_window",
         masked(0xc1, "\xf3\x48\xcd\xc9\xc9\x07\x00\x00"s) + masked(0xc1, k_hello_shared),
         {"text:Hello", "text:Hello"}, {}, deflate_params{}},
        {"rfc7692_7_2_3_5_two_blocks_in_one_message",
         masked(0xc1, "\xf2\x48\x05\x00\x00\x00\xff\xff\xca\xc9\xc9\x07\x00"s), {"text:Hello"}, {},
         deflate_params{}},
        {"rfc7692_7_2_3_6_empty_message", masked(0xc1, "\x00"s), {"text:"}, {}, deflate_params{}},
        {"rfc7692_7_2_3_6_empty_message_after_another", masked(0xc1, k_hello_deflated) + masked(0xc1, "\x00"s),
         {"text:Hello", "text:"}, {}, deflate_params{}},
        {"rfc7692_7_2_2_empty_compressed_payload_is_not_deflate", masked(0xc1, ""), {"error:1007"}, {},
         deflate_params{}},
        {"rfc7692_6_1_uncompressed_message_on_deflate_connection", k_hello_masked, {"text:Hello"}, {},
         deflate_params{}},
        {"rfc7692_6_1_rsv1_on_continuation",
         masked(0x41, k_hello_deflated.substr(0, 3)) + masked(0xc0, k_hello_deflated.substr(3)), {"error:1002"}, {},
         deflate_params{}},
        {"rfc7692_6_1_rsv1_on_control_frame", masked(0xc9, ""), {"error:1002"}, {}, deflate_params{}},
        {"rfc7692_large_message_inflated_in_pieces", masked(0xc1, compressed(big_text)), {"text:" + big_text}, {},
         deflate_params{}},
        {"rfc7692_deflate_bomb_hits_max_message_size", masked(0xc2, compressed(std::string(1 << 20, '\0'))),
         {"error:1009"}, max(65536), deflate_params{}},
        {"rfc7692_compressed_bytes_over_max", masked(0xc2, compressed(pattern(1000))), {"error:1009"}, max(100),
         deflate_params{}},
        {"rfc7692_inflated_text_not_utf8", masked(0xc1, compressed("ok\xff")), {"error:1007"}, {},
         deflate_params{}},
        {"rfc7692_invalid_deflate_block_type", masked(0xc1, "\xff\xff\xff\xff"s), {"error:1007"}, {},
         deflate_params{}},
    };
    for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
        rs.push_back({"rfc6455_7_4_invalid_close_code_" + std::to_string(code), masked(0x88, close_body(code)),
                      {"error:1002"}});
    }
    for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999}) {
        rs.push_back({"rfc6455_7_4_valid_close_code_" + std::to_string(code), masked(0x88, close_body(code, "r")),
                      {"close:" + std::to_string(code) + ":r"}});
    }
    return rs;
}

const std::vector<row> k_rows = rows();

}  // namespace

BOOST_AUTO_TEST_SUITE(ws_frame_parser)

BOOST_DATA_TEST_CASE(parses_client_frames, boost::unit_test::data::make(k_rows), r) {
    std::string violations;
    const std::vector<std::string> whole = run(r, {}, violations);
    BOOST_TEST(whole == r.expected, boost::test_tools::per_element());
    for (const std::size_t cut : cut_points(r.input.size())) {
        const std::vector<std::string> split = run(r, {cut}, violations);
        if (split != r.expected) {
            BOOST_ERROR("cut at " << cut << ": got " << escape(split.empty() ? "" : split.back()));
            break;
        }
    }
    std::vector<std::size_t> bytewise;
    for (std::size_t i = 1; i < r.input.size(); ++i) {
        bytewise.push_back(i);
    }
    const std::vector<std::string> one_by_one = run(r, bytewise, violations);
    BOOST_TEST(one_by_one == r.expected, boost::test_tools::per_element());
    BOOST_TEST(violations.empty(), violations);
}

BOOST_AUTO_TEST_CASE(data_pieces_never_exceed_what_arrived) {
    // A 64 KiB message fed in 1000-byte reads arrives as pieces of at most 1000 bytes,
    // so the parser holds nothing back.
    const std::string input = masked(0x82, pattern(65536));
    frame_parser parser;
    std::string buffer;
    std::size_t pieces = 0;
    std::string message;
    for (std::size_t fed = 0; fed < input.size();) {
        const std::size_t n = std::min<std::size_t>(1000, input.size() - fed);
        buffer.append(input, fed, n);
        fed += n;
        for (;;) {
            const frame_result r = parser.parse({buffer.data(), buffer.size()});
            if (r.event == frame_event::data) {
                BOOST_TEST(r.data.size() <= 1000u);
                message.append(r.data);
                ++pieces;
            }
            buffer.erase(0, r.consumed);
            if (r.event != frame_event::data) {
                break;
            }
        }
    }
    BOOST_TEST(message == pattern(65536));
    BOOST_TEST(pieces >= 65u);
}

BOOST_AUTO_TEST_CASE(inflated_pieces_are_at_most_16_KiB) {
    const std::string text = pattern(200000);
    std::string input = masked(0xc1, compressed(text));
    frame_parser parser;
    parser.enable_deflate({});
    std::string message;
    std::size_t pieces = 0;
    for (;;) {
        const frame_result r = parser.parse({input.data(), input.size()});
        input.erase(0, r.consumed);
        BOOST_TEST_REQUIRE((r.event == frame_event::data), "event " << static_cast<int>(r.event));
        BOOST_TEST(r.data.size() <= 16384u);
        message.append(r.data);
        ++pieces;
        if (r.message_end) {
            break;
        }
    }
    BOOST_TEST(message == text);
    BOOST_TEST(pieces >= 13u);
}

BOOST_AUTO_TEST_CASE(reset_forgets_a_message_in_progress) {
    frame_parser parser;
    std::string a = masked(0x01, "Hel");
    BOOST_TEST((parser.parse({a.data(), a.size()}).event == frame_event::data));
    BOOST_TEST(parser.in_message());
    parser.reset();
    BOOST_TEST(!parser.in_message());
    std::string b = k_hello_masked;
    const frame_result r = parser.parse({b.data(), b.size()});
    BOOST_TEST((r.event == frame_event::data));
    BOOST_TEST(r.data == "Hello");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ws_frame_writer)

std::string written(const std::function<void(byte_buffer&)>& write) {
    byte_buffer out;
    write(out);
    return std::string(out.view());
}

BOOST_AUTO_TEST_CASE(rfc6455_5_7_unmasked_text_hello) {
    frame_writer w;
    BOOST_TEST(written([&](byte_buffer& o) { w.message(o, message_kind::text, "Hello"); }) ==
               "\x81\x05\x48\x65\x6c\x6c\x6f"s);
}

BOOST_AUTO_TEST_CASE(rfc6455_5_7_fragmented_unmasked_text) {
    frame_writer w;
    BOOST_TEST(written([&](byte_buffer& o) { w.message(o, message_kind::text, "Hello", 3); }) ==
               "\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f"s);
}

BOOST_AUTO_TEST_CASE(rfc6455_5_7_unmasked_ping_and_pong) {
    BOOST_TEST(written([](byte_buffer& o) { BOOST_TEST(frame_writer::ping(o, "Hello") == write_status::ok); }) ==
               "\x89\x05\x48\x65\x6c\x6c\x6f"s);
    BOOST_TEST(written([](byte_buffer& o) { BOOST_TEST(frame_writer::pong(o, "Hello") == write_status::ok); }) ==
               "\x8a\x05\x48\x65\x6c\x6c\x6f"s);
}

BOOST_AUTO_TEST_CASE(rfc6455_5_7_256_bytes_and_64KiB_binary_headers) {
    frame_writer w;
    const std::string b256 = written([&](byte_buffer& o) { w.message(o, message_kind::binary, pattern(256)); });
    BOOST_TEST(b256.substr(0, 4) == "\x82\x7e\x01\x00"s);
    BOOST_TEST(b256.substr(4) == pattern(256));
    const std::string b64k = written([&](byte_buffer& o) { w.message(o, message_kind::binary, pattern(65536)); });
    BOOST_TEST(b64k.substr(0, 10) == "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"s);
    BOOST_TEST(b64k.substr(10) == pattern(65536));
}

BOOST_AUTO_TEST_CASE(rfc6455_5_2_length_boundaries_use_the_shortest_form) {
    char header[dbridge::ws::max_frame_header];
    using dbridge::ws::opcode;
    using dbridge::ws::put_frame_header;
    BOOST_TEST(put_frame_header(header, opcode::binary, true, false, 125) == 2u);
    BOOST_TEST(put_frame_header(header, opcode::binary, true, false, 126) == 4u);
    BOOST_TEST(put_frame_header(header, opcode::binary, true, false, 65535) == 4u);
    BOOST_TEST(put_frame_header(header, opcode::binary, true, false, 65536) == 10u);
    BOOST_TEST(std::string(header, 10) == "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"s);
}

BOOST_AUTO_TEST_CASE(rfc6455_5_5_1_close_frames) {
    BOOST_TEST(written([](byte_buffer& o) { BOOST_TEST(frame_writer::close(o, 1000, "bye") == write_status::ok); }) ==
               "\x88\x05\x03\xe8" "bye"s);
    BOOST_TEST(written([](byte_buffer& o) { BOOST_TEST(frame_writer::close(o, 1005) == write_status::ok); }) ==
               "\x88\x00"s);
    BOOST_TEST(written([](byte_buffer& o) {
                   BOOST_TEST(frame_writer::close(o, 4000, pattern(123)) == write_status::ok);
               }).size() == 127u);
}

BOOST_AUTO_TEST_CASE(refuses_what_may_not_be_sent_and_writes_nothing) {
    byte_buffer out;
    BOOST_TEST(frame_writer::ping(out, pattern(126)) == write_status::control_too_long);
    BOOST_TEST(frame_writer::pong(out, pattern(126)) == write_status::control_too_long);
    BOOST_TEST(frame_writer::close(out, 1006) == write_status::invalid_close_code);
    BOOST_TEST(frame_writer::close(out, 999) == write_status::invalid_close_code);
    BOOST_TEST(frame_writer::close(out, 1000, pattern(124)) == write_status::invalid_close_reason);
    BOOST_TEST(frame_writer::close(out, 1000, "\xff") == write_status::invalid_close_reason);
    BOOST_TEST(frame_writer::close(out, 1005, "why") == write_status::invalid_close_reason);
    BOOST_TEST(out.empty());
}

BOOST_AUTO_TEST_CASE(rfc7692_7_2_3_1_compressed_hello) {
    frame_writer w;
    w.enable_deflate({});
    BOOST_TEST(written([&](byte_buffer& o) { w.message(o, message_kind::text, "Hello"); }) ==
               "\xc1\x07" + k_hello_deflated);
}

// The §7.2.3.1 compressed data in frames of at most 3 bytes: RSV1 on the first frame
// only (RFC 7692 §6.1). (The RFC's own 3 + 4 split is a parser row.)
BOOST_AUTO_TEST_CASE(rfc7692_7_2_3_1_compressed_hello_fragmented) {
    frame_writer w;
    w.enable_deflate({});
    BOOST_TEST(written([&](byte_buffer& o) { w.message(o, message_kind::text, "Hello", 3); }) ==
               "\x41\x03\xf2\x48\xcd\x00\x03\xc9\xc9\x07\x80\x01\x00"s);
}

BOOST_AUTO_TEST_CASE(rfc7692_7_2_3_2_context_takeover_shares_the_window) {
    frame_writer w;
    w.enable_deflate({});
    written([&](byte_buffer& o) { w.message(o, message_kind::text, "Hello"); });
    BOOST_TEST(written([&](byte_buffer& o) { w.message(o, message_kind::text, "Hello"); }) ==
               "\xc1\x05" + k_hello_shared);
}

BOOST_AUTO_TEST_CASE(rfc7692_7_1_1_1_server_no_context_takeover_compresses_each_message_afresh) {
    frame_writer w;
    deflate_params p;
    p.server_no_context_takeover = true;
    w.enable_deflate(p);
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(written([&](byte_buffer& o) { w.message(o, message_kind::text, "Hello"); }) ==
                   "\xc1\x07" + k_hello_deflated);
    }
}

BOOST_AUTO_TEST_CASE(rfc7692_7_2_3_6_empty_message_compresses_to_one_byte) {
    frame_writer w;
    w.enable_deflate({});
    BOOST_TEST(written([&](byte_buffer& o) { w.message(o, message_kind::binary, ""); }) == "\xc2\x01\x00"s);
}

BOOST_AUTO_TEST_CASE(steady_state_writes_do_not_grow_the_buffer) {
    frame_writer w;
    byte_buffer out;
    w.message(out, message_kind::text, pattern(1000));
    const std::size_t capacity = out.capacity();
    for (int i = 0; i < 100; ++i) {
        out.clear();
        w.message(out, message_kind::text, pattern(1000), 100);
        BOOST_TEST_REQUIRE(frame_writer::ping(out, "p") == write_status::ok);
        BOOST_TEST_REQUIRE(frame_writer::close(out, 1000, "bye") == write_status::ok);
    }
    BOOST_TEST(out.capacity() == capacity);
}

BOOST_AUTO_TEST_SUITE_END()

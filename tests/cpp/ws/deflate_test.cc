// permessage-deflate (RFC 7692): the negotiation as a table of offers and answers, and
// the inflater's bounded output.
#include "ws/deflate.h"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using namespace std::string_literals;
using dbridge::http1::parse_event;
using dbridge::http1::request_parser;
using dbridge::ws::deflate_config;
using dbridge::ws::deflate_params;
using dbridge::ws::deflater;
using dbridge::ws::inflater;
using dbridge::ws::negotiate_deflate;
using dbridge::ws::parse_upgrade;
using dbridge::ws::upgrade_request;

namespace {

// The offers of a Sec-WebSocket-Extensions value, read by the handshake code from a
// real request; the views point into `_raw`.
class offered {
public:
    explicit offered(const std::string& extensions)
        : _raw("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Extensions: " +
               extensions + "\r\n\r\n") {
        if (_parser.parse(_raw).event == parse_event::head) {
            _request = parse_upgrade(_parser.head());
        }
    }
    offered(const offered&) = delete;
    const upgrade_request& request() const { return _request; }

private:
    std::string _raw;
    request_parser _parser;
    upgrade_request _request;
};

struct row {
    std::string name;
    std::string offers;
    std::string response;  // empty: declined
    deflate_config config = {};
    int client_bits = 15;
    int server_bits = 15;
};

std::ostream& operator<<(std::ostream& os, const row& r) { return os << r.name; }

deflate_config config(int server_bits, int client_bits, bool server_nct = false, bool client_nct = false) {
    deflate_config c;
    c.server_max_window_bits = server_bits;
    c.client_max_window_bits = client_bits;
    c.server_no_context_takeover = server_nct;
    c.client_no_context_takeover = client_nct;
    return c;
}

const row k_rows[] = {
    {"rfc7692_5_plain_offer", "permessage-deflate", "permessage-deflate"},
    {"rfc7692_7_1_2_2_bare_client_max_window_bits", "permessage-deflate; client_max_window_bits",
     "permessage-deflate"},
    {"rfc7692_7_1_2_2_client_max_window_bits_value_echoed", "permessage-deflate; client_max_window_bits=10",
     "permessage-deflate; client_max_window_bits=10", {}, 10},
    {"rfc7692_7_1_2_1_server_max_window_bits_honoured", "permessage-deflate; server_max_window_bits=10",
     "permessage-deflate; server_max_window_bits=10", {}, 15, 10},
    {"rfc7692_7_1_2_1_quoted_value", "permessage-deflate; server_max_window_bits=\"12\"",
     "permessage-deflate; server_max_window_bits=12", {}, 15, 12},
    {"rfc7692_7_1_1_no_context_takeover_echoed",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
    {"rfc7692_7_1_2_1_window_8_declined_zlib_cannot", "permessage-deflate; server_max_window_bits=8", ""},
    {"rfc7692_5_1_first_acceptable_offer_is_taken",
     "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
     "permessage-deflate"},
    {"rfc7692_5_1_other_extensions_skipped", "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=15",
     "permessage-deflate; server_max_window_bits=15"},
    {"rfc7692_7_1_unknown_parameter_declined", "permessage-deflate; foo", ""},
    {"rfc7692_7_1_repeated_parameter_declined", "permessage-deflate; client_max_window_bits; client_max_window_bits",
     ""},
    {"rfc7692_7_1_2_1_server_max_window_bits_needs_a_value", "permessage-deflate; server_max_window_bits", ""},
    {"rfc7692_7_1_2_window_bits_16_declined", "permessage-deflate; server_max_window_bits=16", ""},
    {"rfc7692_7_1_2_window_bits_leading_zero_declined", "permessage-deflate; client_max_window_bits=09", ""},
    {"rfc7692_7_1_1_no_context_takeover_with_value_declined", "permessage-deflate; server_no_context_takeover=1",
     ""},
    {"rfc7692_7_1_quoted_value_with_escape_declined", "permessage-deflate; server_max_window_bits=\"1\\2\"", ""},
    {"rfc7692_no_permessage_deflate_offer", "x-webkit-deflate-frame", ""},
    {"rfc7692_7_1_2_1_server_limits_its_own_window", "permessage-deflate",
     "permessage-deflate; server_max_window_bits=12", config(12, 15), 15, 12},
    {"rfc7692_7_1_2_1_smaller_of_offer_and_limit", "permessage-deflate; server_max_window_bits=10",
     "permessage-deflate; server_max_window_bits=10", config(12, 15), 15, 10},
    {"rfc7692_7_1_2_2_client_window_limited_when_offered", "permessage-deflate; client_max_window_bits",
     "permessage-deflate; client_max_window_bits=12", config(15, 12), 12},
    {"rfc7692_7_1_2_2_client_window_cannot_be_limited_unless_offered", "permessage-deflate", "", config(15, 12)},
    {"rfc7692_7_1_1_server_asks_for_no_context_takeover", "permessage-deflate",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover", config(15, 15, true, true)},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(ws_deflate)

BOOST_DATA_TEST_CASE(negotiates_permessage_deflate, boost::unit_test::data::make(k_rows), r) {
    offered o(r.offers);
    BOOST_TEST_REQUIRE(o.request().error_status == 0, o.request().error_reason);
    const auto agreed = negotiate_deflate(o.request().extensions, r.config);
    if (r.response.empty()) {
        BOOST_TEST(!agreed.has_value(), "accepted: " << (agreed ? agreed->response : ""));
        return;
    }
    BOOST_TEST_REQUIRE(agreed.has_value());
    BOOST_TEST(agreed->response == r.response);
    BOOST_TEST(agreed->params.client_max_window_bits == r.client_bits);
    BOOST_TEST(agreed->params.server_max_window_bits == r.server_bits);
    // Whatever was agreed, both streams can be built with it.
    deflater d(agreed->params.server_max_window_bits, agreed->params.server_no_context_takeover);
    inflater i(agreed->params.client_max_window_bits, agreed->params.client_no_context_takeover);
}

BOOST_AUTO_TEST_CASE(disabled_declines_everything) {
    offered o("permessage-deflate");
    deflate_config c;
    c.enabled = false;
    BOOST_TEST(!negotiate_deflate(o.request().extensions, c).has_value());
}

BOOST_AUTO_TEST_CASE(zlib_cannot_deflate_with_an_8_bit_window) {
    BOOST_CHECK_THROW(deflater(8, false), std::invalid_argument);
    BOOST_CHECK_NO_THROW(inflater(8, false));
}

// Inflates a whole message through an output span of `out_size` bytes.
std::string inflate_all(inflater& inf, std::string_view payload, std::size_t out_size) {
    std::string out;
    std::vector<char> piece(out_size);
    while (!payload.empty()) {
        const auto s = inf.inflate(payload, piece);
        BOOST_REQUIRE(s.result == inflater::status::ok);
        BOOST_REQUIRE(s.produced <= out_size);
        out.append(piece.data(), s.produced);
        payload.remove_prefix(s.consumed);
    }
    for (;;) {
        const auto s = inf.finish(piece);
        BOOST_REQUIRE(s.result != inflater::status::error);
        out.append(piece.data(), s.produced);
        if (s.result == inflater::status::finished) {
            return out;
        }
    }
}

BOOST_AUTO_TEST_CASE(round_trip_with_context_takeover_through_tiny_output) {
    deflater d(15, false);
    inflater i(15, false);
    for (const std::string m : {"Hello"s, "Hello"s, std::string(5000, 'x'), ""s, "Hello, world"s}) {
        const std::string payload(d.compress(m));
        BOOST_TEST(inflate_all(i, payload, 1) == m);
    }
}

BOOST_AUTO_TEST_CASE(round_trip_with_small_windows_and_no_context_takeover) {
    for (int bits = 9; bits <= 15; ++bits) {
        deflater d(bits, true);
        inflater i(bits, true);
        std::string m;
        for (int k = 0; k < 3000; ++k) {
            m += std::to_string(k * 7919 % 1000);
        }
        for (int round = 0; round < 3; ++round) {
            const std::string payload(d.compress(m));
            BOOST_TEST(inflate_all(i, payload, 777) == m, "window bits " << bits);
        }
    }
}

BOOST_AUTO_TEST_CASE(rfc7692_7_2_1_compress_strips_the_sync_flush_tail) {
    deflater d(15, false);
    BOOST_TEST(std::string(d.compress("Hello")) == "\xf2\x48\xcd\xc9\xc9\x07\x00"s);
    BOOST_TEST(std::string(d.compress("")) == "\x00"s);
}

BOOST_AUTO_TEST_CASE(a_deflate_bomb_is_inflated_only_as_far_as_the_output_span) {
    deflater d(15, false);
    const std::string bomb(d.compress(std::string(8 << 20, '\0')));
    BOOST_TEST(bomb.size() < 10000u);
    inflater i(15, false);
    char out[4096];
    const auto s = i.inflate(bomb, out);
    BOOST_TEST((s.result == inflater::status::ok));
    BOOST_TEST(s.produced == sizeof out);
    BOOST_TEST(s.consumed < bomb.size());
}

BOOST_AUTO_TEST_CASE(a_message_cut_inside_a_block_is_an_error) {
    deflater d(15, false);
    const std::string payload(d.compress(std::string(3000, 'y') + "z"));
    inflater i(15, false);
    char out[8192];
    // The first bytes of a compressed block, then the message "ends": the appended
    // tail is not a block boundary.
    const auto s = i.inflate(std::string_view(payload).substr(0, 2), out);
    BOOST_TEST((s.result == inflater::status::ok));
    const auto f = i.finish(out);
    BOOST_TEST((f.result == inflater::status::error));
}

BOOST_AUTO_TEST_SUITE_END()

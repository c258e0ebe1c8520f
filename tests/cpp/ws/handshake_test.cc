// The opening handshake (RFC 6455 §4.2): requests are parsed by the real http1 parser
// and then checked, so the rows are the bytes a client sends.
#include "ws/handshake.h"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <ostream>
#include <string>
#include <vector>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

using dbridge::byte_buffer;
using dbridge::http1::header_field;
using dbridge::http1::parse_event;
using dbridge::http1::request_parser;
using dbridge::ws::accept_key;
using dbridge::ws::accept_status;
using dbridge::ws::parse_upgrade;
using dbridge::ws::upgrade_request;
using dbridge::ws::wants_websocket;
using dbridge::ws::write_accept;

namespace dbridge::ws {
std::ostream& operator<<(std::ostream& os, accept_status s) { return os << static_cast<int>(s); }
}  // namespace dbridge::ws

namespace {

// A request's bytes and the parser that read them; the head's views point into `raw`.
class parsed_request {
public:
    explicit parsed_request(std::string raw) : _raw(std::move(raw)) {
        const auto r = _parser.parse(_raw);
        _ok = r.event == parse_event::head;
    }
    parsed_request(const parsed_request&) = delete;
    bool ok() const { return _ok; }
    const dbridge::http1::request_head& head() const { return _parser.head(); }

private:
    std::string _raw;
    request_parser _parser;
    bool _ok = false;
};

// RFC 6455 §1.3's example request, with `extra` lines added and `drop` lines removed.
std::string request(const std::string& extra = "", const std::string& drop = "",
                    const std::string& request_line = "GET /chat HTTP/1.1") {
    const std::vector<std::string> lines = {
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Origin: http://example.com",
        "Sec-WebSocket-Version: 13",
    };
    std::string s = request_line + "\r\n";
    for (const std::string& line : lines) {
        if (drop.empty() || line.rfind(drop, 0) != 0) {
            s += line + "\r\n";
        }
    }
    return s + extra + "\r\n";
}

struct row {
    std::string name;
    std::string raw;
    int status = 0;
    std::vector<std::string> subprotocols = {};
    std::string extensions = {};  // the offers flattened: "name;p;q=v,name2"
};

std::ostream& operator<<(std::ostream& os, const row& r) { return os << r.name; }

std::string flatten(const upgrade_request& r) {
    std::string s;
    for (const auto& offer : r.extensions) {
        if (!s.empty()) {
            s += ",";
        }
        s += offer.name;
        for (const auto& p : offer.params) {
            s.append(";").append(p.name);
            if (p.has_value) {
                s.append("=").append(p.value);
            }
        }
    }
    return s;
}

const row k_rows[] = {
    {"rfc6455_1_3_example_request", request()},
    {"rfc6455_4_2_1_upgrade_token_case_insensitive", request("Upgrade: WebSocket\r\n", "Upgrade:")},
    {"rfc6455_4_2_1_upgrade_token_in_a_list", request("Upgrade: h2c, websocket\r\n", "Upgrade:")},
    {"rfc6455_4_2_1_connection_token_in_a_list", request("Connection: keep-alive, Upgrade\r\n", "Connection:")},
    {"rfc6455_4_2_1_item_1_method_not_get", request("", "", "POST /chat HTTP/1.1"), 400},
    {"rfc6455_4_2_1_item_1_http_1_0", request("", "", "GET /chat HTTP/1.0"), 400},
    {"rfc6455_4_2_1_item_3_no_upgrade_field", request("", "Upgrade:"), 400},
    {"rfc6455_4_2_1_item_3_upgrade_other_protocol", request("Upgrade: h2c\r\n", "Upgrade:"), 400},
    {"rfc6455_4_2_1_item_3_upgrade_websocket_with_version_suffix", request("Upgrade: websocket/13\r\n", "Upgrade:"), 400},
    {"rfc6455_4_2_1_item_4_connection_without_upgrade", request("Connection: keep-alive\r\n", "Connection:"), 400},
    {"rfc6455_4_2_1_item_5_no_key", request("", "Sec-WebSocket-Key:"), 400},
    {"rfc6455_4_2_1_item_5_key_of_15_bytes",
     request("Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4P\r\n", "Sec-WebSocket-Key:"), 400},
    {"rfc6455_4_2_1_item_5_key_not_base64",
     request("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ!==\r\n", "Sec-WebSocket-Key:"), 400},
    {"rfc6455_4_2_1_item_5_key_with_nonzero_pad_bits",
     request("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n", "Sec-WebSocket-Key:"), 400},
    {"rfc6455_4_2_1_item_5_two_keys", request("Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n"), 400},
    {"rfc6455_4_4_version_8_is_426", request("Sec-WebSocket-Version: 8\r\n", "Sec-WebSocket-Version:"), 426},
    {"rfc6455_4_4_no_version_is_426", request("", "Sec-WebSocket-Version:"), 426},
    {"rfc6455_4_4_version_list_is_426", request("Sec-WebSocket-Version: 13, 8\r\n", "Sec-WebSocket-Version:"), 426},
    {"rfc6455_4_1_item_10_subprotocols_in_order",
     request("Sec-WebSocket-Protocol: chat, superchat\r\n"), 0, {"chat", "superchat"}},
    {"rfc6455_11_3_4_repeated_protocol_fields_are_one_list",
     request("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: ,v2.bin ,\r\n"), 0, {"chat", "v2.bin"}},
    {"rfc6455_4_1_item_10_subprotocol_not_a_token", request("Sec-WebSocket-Protocol: chat, a/b\r\n"), 400},
    {"rfc6455_9_1_extension_offers_with_params",
     request("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, "
             "permessage-deflate;server_max_window_bits=10 ; client_no_context_takeover\r\n"),
     0, {}, "permessage-deflate;client_max_window_bits,permessage-deflate;server_max_window_bits=10;client_no_context_takeover"},
    {"rfc6455_9_1_quoted_param_value_with_a_comma",
     request("Sec-WebSocket-Extensions: foo; a=\"x,y\", bar\r\n"), 0, {}, "foo;a=x,y,bar"},
    {"rfc6455_11_3_2_repeated_extension_fields_are_one_list",
     request("Sec-WebSocket-Extensions: foo\r\nSec-WebSocket-Extensions: bar; b\r\n"), 0, {}, "foo,bar;b"},
    {"rfc6455_9_1_extension_param_without_name", request("Sec-WebSocket-Extensions: foo; =1\r\n"), 400},
    {"rfc6455_9_1_extension_unterminated_quote", request("Sec-WebSocket-Extensions: foo; a=\"1\r\n"), 400},
    {"rfc6455_9_1_extension_junk_after_param", request("Sec-WebSocket-Extensions: foo; a=1 b\r\n"), 400},
    {"rfc6455_9_1_extension_name_not_a_token", request("Sec-WebSocket-Extensions: fo@o\r\n"), 400},
};

}  // namespace

BOOST_AUTO_TEST_SUITE(ws_handshake)

BOOST_AUTO_TEST_CASE(rfc6455_1_3_accept_key_example) {
    const auto accept = accept_key("dGhlIHNhbXBsZSBub25jZQ==");
    BOOST_TEST(std::string(accept.data(), accept.size()) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

// Keys whose key+GUID length lands on SHA-1's padding edges (55, 56, 64 bytes) and past
// one block; the expected values are Python's hashlib.sha1 + base64.
BOOST_AUTO_TEST_CASE(accept_key_across_sha1_block_boundaries) {
    const std::pair<std::size_t, std::string> cases[] = {
        {19, "tWclcP21hrR+xgjYVswtQRW71GQ="},
        {20, "tSsjsIAvEVIQ+IC5K8+T/OkG8nU="},
        {28, "x9bmfLYIxLMaaT5h0sFuRlAhhb8="},
        {92, "LY9EluoxzTck+ySKVLqXrQNaqCc="},
    };
    for (const auto& [length, expected] : cases) {
        const auto accept = accept_key(std::string(length, 'k'));
        BOOST_TEST(std::string(accept.data(), accept.size()) == expected, "key of " << length << " bytes");
    }
}

BOOST_DATA_TEST_CASE(checks_the_opening_handshake, boost::unit_test::data::make(k_rows), r) {
    parsed_request req(r.raw);
    BOOST_TEST_REQUIRE(req.ok());
    const upgrade_request u = parse_upgrade(req.head());
    BOOST_TEST(u.error_status == r.status, u.error_reason);
    if (r.status == 0) {
        BOOST_TEST(u.key == "dGhlIHNhbXBsZSBub25jZQ==");
        BOOST_TEST(std::vector<std::string>(u.subprotocols.begin(), u.subprotocols.end()) == r.subprotocols,
                   boost::test_tools::per_element());
        BOOST_TEST(flatten(u) == r.extensions);
    } else {
        BOOST_TEST(u.error_reason[0] != '\0');
    }
}

BOOST_AUTO_TEST_CASE(wants_websocket_only_with_upgrade_websocket) {
    parsed_request ws(request());
    parsed_request listed(request("Upgrade: foo, WEBSOCKET\r\n", "Upgrade:"));
    parsed_request h2c(request("Upgrade: h2c\r\n", "Upgrade:"));
    parsed_request plain("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    BOOST_TEST(wants_websocket(ws.head()));
    BOOST_TEST(wants_websocket(listed.head()));
    BOOST_TEST(!wants_websocket(h2c.head()));
    BOOST_TEST(!wants_websocket(plain.head()));
}

// §1.3 / §4.2.2: the server's answer to the example request, with the subprotocol the
// app chose.
BOOST_AUTO_TEST_CASE(rfc6455_1_3_accept_response_bytes) {
    byte_buffer out;
    const header_field extra[] = {{"x-app", "1"}};
    BOOST_TEST(write_accept(out, "dGhlIHNhbXBsZSBub25jZQ==", "chat", "permessage-deflate", extra,
                            "date: Mon, 23 Nov 2026 04:00:00 GMT\r\n", "server: dbridge-asgi\r\n") ==
               accept_status::ok);
    BOOST_TEST(std::string(out.view()) ==
               "HTTP/1.1 101 Switching Protocols\r\n"
               "date: Mon, 23 Nov 2026 04:00:00 GMT\r\n"
               "server: dbridge-asgi\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
               "Sec-WebSocket-Protocol: chat\r\n"
               "Sec-WebSocket-Extensions: permessage-deflate\r\n"
               "x-app: 1\r\n"
               "\r\n");
}

BOOST_AUTO_TEST_CASE(accept_response_without_subprotocol_or_extensions) {
    byte_buffer out;
    BOOST_TEST(write_accept(out, "dGhlIHNhbXBsZSBub25jZQ==", "", "", {}) == accept_status::ok);
    BOOST_TEST(std::string(out.view()) ==
               "HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
               "\r\n");
}

BOOST_AUTO_TEST_CASE(accept_response_refuses_header_injection_and_writes_nothing) {
    byte_buffer out;
    const header_field crlf[] = {{"x-app", "1\r\nSet-Cookie: a=b"}};
    const header_field bad_name[] = {{"x app", "1"}};
    BOOST_TEST(write_accept(out, "dGhlIHNhbXBsZSBub25jZQ==", "", "", crlf) == accept_status::invalid_header);
    BOOST_TEST(write_accept(out, "dGhlIHNhbXBsZSBub25jZQ==", "", "", bad_name) == accept_status::invalid_header);
    BOOST_TEST(write_accept(out, "dGhlIHNhbXBsZSBub25jZQ==", "chat\r\nx: y", "", {}) ==
               accept_status::invalid_subprotocol);
    BOOST_TEST(write_accept(out, "dGhlIHNhbXBsZSBub25jZQ==", "", "a\nb", {}) == accept_status::invalid_header);
    BOOST_TEST(out.empty());
}

BOOST_AUTO_TEST_CASE(rfc6455_4_4_version_header_for_426) {
    BOOST_TEST(dbridge::ws::version_header.name == "Sec-WebSocket-Version");
    BOOST_TEST(dbridge::ws::version_header.value == "13");
}

BOOST_AUTO_TEST_SUITE_END()

// The WebSocket opening handshake, server side (RFC 6455 §4.2).
//
// parse_upgrade() checks a parsed HTTP/1.1 request head against §4.2.1 and collects
// what the app is offered: the Sec-WebSocket-Key, the subprotocols and the extension
// offers. The views it returns point into the head's window, like the head's own
// fields, and are valid as long as those bytes are. write_accept() writes the 101
// response head that completes the handshake (§4.2.2).
//
// The handshake runs once per connection, so it may allocate (the offer lists); the
// frame codec that runs afterwards does not.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "buffer/byte_buffer.h"
#include "http1/request_parser.h"

namespace dbridge::ws {

// One parameter of an extension offer: `name` or `name=value`. A quoted-string value
// is given without its quotes; escapes in it are not undone (no extension we know
// takes a value that needs one; permessage-deflate declines such an offer).
struct extension_param {
    std::string_view name;
    std::string_view value;
    bool has_value = false;
};

// One element of Sec-WebSocket-Extensions (§9.1): a name and its parameters.
struct extension_offer {
    std::string_view name;
    std::vector<extension_param> params;
};

struct upgrade_request {
    // 0 for a valid opening handshake. Otherwise the status to answer instead of 101:
    // 400, or 426 with `version_header` when the version is not 13 (§4.4).
    int error_status = 0;
    const char* error_reason = "";

    std::string_view key;                     // Sec-WebSocket-Key, as sent
    std::vector<std::string_view> subprotocols;  // in the client's order of preference
    std::vector<extension_offer> extensions;  // every offer, in the order sent
};

// What a 426 answer must carry (§4.2.2 item 4, §4.4).
inline constexpr http1::header_field version_header{"Sec-WebSocket-Version", "13"};

// Whether the request asks for a WebSocket at all: an Upgrade field with the token
// "websocket" (case-insensitive, possibly in a list). A request that does not is plain
// HTTP; one that does is then checked in full by parse_upgrade().
bool wants_websocket(const http1::request_head& head);

// Checks the head (§4.2.1): GET, HTTP/1.1, Upgrade: websocket, Connection: upgrade,
// a Sec-WebSocket-Key that is 16 bytes in base64, Sec-WebSocket-Version: 13, and
// well-formed Sec-WebSocket-Protocol and Sec-WebSocket-Extensions lists. Host is
// already required of every HTTP/1.1 request by the http1 parser.
upgrade_request parse_upgrade(const http1::request_head& head);

// Sec-WebSocket-Accept for a key: base64(SHA-1(key + the §1.3 GUID)).
std::array<char, 28> accept_key(std::string_view key);

enum class accept_status : std::uint8_t {
    ok,
    invalid_subprotocol,  // not a token (§4.2.2 item 5.4: one of the offered values)
    invalid_header,       // an extra header name that is not a token, or CR/LF/NUL in a value
};

// Writes the 101 response head (§4.2.2 item 5): status line, `date_line` and
// `default_headers` (preformatted "name: value\r\n" lines, as the http1 writer takes
// them), Upgrade, Connection, Sec-WebSocket-Accept, Sec-WebSocket-Protocol when
// `subprotocol` is not empty, Sec-WebSocket-Extensions when `extensions` is not empty
// (the value negotiate_deflate() gives), the app's `extra_headers`, the blank line.
// Nothing is written unless the result is `ok`.
accept_status write_accept(byte_buffer& out, std::string_view key, std::string_view subprotocol,
                           std::string_view extensions, std::span<const http1::header_field> extra_headers,
                           std::string_view date_line = {}, std::string_view default_headers = {});

}  // namespace dbridge::ws

#include "ws/handshake.h"

#include <cstring>

namespace dbridge::ws {

namespace {

// §1.3: the GUID a server appends to the client's key before hashing.
constexpr std::string_view k_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// ---- SHA-1 (FIPS 180-4 §6.1) -----------------------------------------------------------
// Only the handshake hashes, 60 bytes per connection; a small local SHA-1 keeps the core
// free of a libcrypto dependency that TLS would otherwise bring in for this alone.

std::uint32_t rotl(std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

void sha1_block(std::uint32_t h[5], const unsigned char block[64]) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
        w[i] = (std::uint32_t{block[4 * i]} << 24) | (std::uint32_t{block[4 * i + 1]} << 16) |
               (std::uint32_t{block[4 * i + 2]} << 8) | std::uint32_t{block[4 * i + 3]};
    }
    for (int i = 16; i < 80; ++i) {
        w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
        std::uint32_t f;
        std::uint32_t k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        const std::uint32_t t = rotl(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

std::array<unsigned char, 20> sha1(std::string_view first, std::string_view second) {
    std::uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    unsigned char block[64];
    std::size_t filled = 0;
    const std::uint64_t total = first.size() + second.size();
    auto absorb = [&](std::string_view bytes) {
        for (char c : bytes) {
            block[filled++] = static_cast<unsigned char>(c);
            if (filled == 64) {
                sha1_block(h, block);
                filled = 0;
            }
        }
    };
    absorb(first);
    absorb(second);
    // Padding: 0x80, zeros, then the message length in bits, big-endian (§5.1.1).
    block[filled++] = 0x80;
    if (filled > 56) {
        std::memset(block + filled, 0, 64 - filled);
        sha1_block(h, block);
        filled = 0;
    }
    std::memset(block + filled, 0, 56 - filled);
    const std::uint64_t bits = total * 8;
    for (int i = 0; i < 8; ++i) {
        block[56 + i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    }
    sha1_block(h, block);
    std::array<unsigned char, 20> digest;
    for (int i = 0; i < 5; ++i) {
        for (int j = 0; j < 4; ++j) {
            digest[4 * i + j] = static_cast<unsigned char>(h[i] >> (24 - 8 * j));
        }
    }
    return digest;
}

// ---- base64 (RFC 4648 §4) ---------------------------------------------------------------

constexpr char k_base64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
    const char* p = std::strchr(k_base64, c);
    return c != '\0' && p != nullptr ? static_cast<int>(p - k_base64) : -1;
}

// §4.1 item 7: the key is 16 random bytes in base64, i.e. 22 alphabet characters and
// "==". The 22nd character carries only 2 data bits, so its low 4 bits must be zero
// (RFC 4648 §3.5: canonical encoding).
bool is_valid_key(std::string_view key) {
    if (key.size() != 24 || key[22] != '=' || key[23] != '=') {
        return false;
    }
    for (std::size_t i = 0; i < 22; ++i) {
        if (base64_value(key[i]) < 0) {
            return false;
        }
    }
    return (base64_value(key[21]) & 0x0f) == 0;
}

// ---- header lists (RFC 9110 §5.6) ---------------------------------------------------------

constexpr auto k_tchar = [] {
    std::array<bool, 256> table{};
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) {
        table[static_cast<unsigned char>(c)] = true;
    }
    for (int c = '0'; c <= '9'; ++c) {
        table[c] = true;
    }
    for (int c = 'a'; c <= 'z'; ++c) {
        table[c] = true;
        table[c - 'a' + 'A'] = true;
    }
    return table;
}();

bool is_tchar(char c) { return k_tchar[static_cast<unsigned char>(c)]; }

bool is_token(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        if (!is_tchar(c)) {
            return false;
        }
    }
    return true;
}

// VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5): no CR, LF, NUL or other CTL in a value.
bool is_field_value(std::string_view s) {
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && u != '\t') || u == 0x7f) {
            return false;
        }
    }
    return true;
}

bool equals_ignoring_case(std::string_view text, std::string_view lower) {
    if (text.size() != lower.size()) {
        return false;
    }
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c + ('a' - 'A'));
        }
        if (c != lower[i]) {
            return false;
        }
    }
    return true;
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_ows(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

// Calls `visit` with each non-empty element of a comma list, trimmed. Empty elements
// are skipped, as recipients must (RFC 9110 §5.6.1.2).
template <typename Visit>
void for_each_element(std::string_view list, Visit visit) {
    while (true) {
        const std::size_t comma = list.find(',');
        const std::string_view element = trim(list.substr(0, comma));
        if (!element.empty()) {
            visit(element);
        }
        if (comma == std::string_view::npos) {
            return;
        }
        list.remove_prefix(comma + 1);
    }
}

bool list_contains(std::string_view list, std::string_view lower_token) {
    bool found = false;
    for_each_element(list, [&](std::string_view e) { found = found || equals_ignoring_case(e, lower_token); });
    return found;
}

// A small cursor for the extension grammar, which cannot be split on commas alone:
// a quoted-string value may contain one.
struct cursor {
    std::string_view text;
    std::size_t pos = 0;

    bool done() const { return pos == text.size(); }
    char peek() const { return text[pos]; }
    void skip_ows() {
        while (!done() && is_ows(peek())) {
            ++pos;
        }
    }
    std::string_view token() {
        const std::size_t start = pos;
        while (!done() && is_tchar(peek())) {
            ++pos;
        }
        return text.substr(start, pos - start);
    }
    // quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 §5.6.4); gives
    // the bytes between the quotes, or false when it is not terminated.
    bool quoted(std::string_view& inner) {
        const std::size_t start = ++pos;
        while (!done()) {
            const auto c = static_cast<unsigned char>(peek());
            if (c == '"') {
                inner = text.substr(start, pos - start);
                ++pos;
                return true;
            }
            if (c == '\\') {
                ++pos;
                if (done()) {
                    return false;
                }
            } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
                return false;
            }
            ++pos;
        }
        return false;
    }
};

// Sec-WebSocket-Extensions = extension-list (§9.1):
//   extension-list = 1#extension
//   extension = extension-token *( ";" extension-param )
//   extension-param = token [ "=" (token | quoted-string) ]
bool parse_extension_list(std::string_view value, std::vector<extension_offer>& offers) {
    cursor c{value};
    while (true) {
        c.skip_ows();
        if (c.done()) {
            return true;
        }
        if (c.peek() == ',') {
            ++c.pos;
            continue;
        }
        extension_offer offer;
        offer.name = c.token();
        if (offer.name.empty()) {
            return false;
        }
        c.skip_ows();
        while (!c.done() && c.peek() == ';') {
            ++c.pos;
            c.skip_ows();
            extension_param param;
            param.name = c.token();
            if (param.name.empty()) {
                return false;
            }
            c.skip_ows();
            if (!c.done() && c.peek() == '=') {
                ++c.pos;
                c.skip_ows();
                param.has_value = true;
                if (!c.done() && c.peek() == '"') {
                    if (!c.quoted(param.value)) {
                        return false;
                    }
                } else {
                    param.value = c.token();
                    if (param.value.empty()) {
                        return false;
                    }
                }
                c.skip_ows();
            }
            offer.params.push_back(param);
        }
        if (!c.done() && c.peek() != ',') {
            return false;
        }
        offers.push_back(std::move(offer));
    }
}

upgrade_request fail(upgrade_request& r, int status, const char* reason) {
    r.error_status = status;
    r.error_reason = reason;
    r.subprotocols.clear();
    r.extensions.clear();
    return std::move(r);
}

char* put(char* p, std::string_view s) {
    if (!s.empty()) {  // an empty view may carry a null pointer: memcpy must not see it
        std::memcpy(p, s.data(), s.size());
    }
    return p + s.size();
}

}  // namespace

bool wants_websocket(const http1::request_head& head) {
    for (std::size_t i = 0; i < head.header_count(); ++i) {
        const http1::header_field f = head.header(i);
        if (equals_ignoring_case(f.name, "upgrade") && list_contains(f.value, "websocket")) {
            return true;
        }
    }
    return false;
}

upgrade_request parse_upgrade(const http1::request_head& head) {
    upgrade_request r;
    // §4.2.1 items 1 and 2: an HTTP/1.1 (or higher) GET.
    if (head.method != "GET") {
        return fail(r, 400, "WebSocket handshake: method is not GET");
    }
    if (head.version_minor < 1) {
        return fail(r, 400, "WebSocket handshake: not HTTP/1.1");
    }
    bool upgrade_websocket = false;
    bool connection_upgrade = false;
    int keys = 0;
    bool version_seen = false;
    bool version_13 = true;
    for (std::size_t i = 0; i < head.header_count(); ++i) {
        const http1::header_field f = head.header(i);
        if (equals_ignoring_case(f.name, "upgrade")) {
            upgrade_websocket = upgrade_websocket || list_contains(f.value, "websocket");
        } else if (equals_ignoring_case(f.name, "connection")) {
            connection_upgrade = connection_upgrade || list_contains(f.value, "upgrade");
        } else if (equals_ignoring_case(f.name, "sec-websocket-key")) {
            ++keys;
            r.key = f.value;
        } else if (equals_ignoring_case(f.name, "sec-websocket-version")) {
            version_seen = true;
            version_13 = version_13 && f.value == "13";
        } else if (equals_ignoring_case(f.name, "sec-websocket-protocol")) {
            // Repeated fields are one list (§11.3.4); each element is a token (§4.1 item 10).
            bool ok = true;
            for_each_element(f.value, [&](std::string_view e) {
                ok = ok && is_token(e);
                r.subprotocols.push_back(e);
            });
            if (!ok) {
                return fail(r, 400, "WebSocket handshake: malformed Sec-WebSocket-Protocol");
            }
        } else if (equals_ignoring_case(f.name, "sec-websocket-extensions")) {
            // Repeated fields are one list (§11.3.2).
            if (!parse_extension_list(f.value, r.extensions)) {
                return fail(r, 400, "WebSocket handshake: malformed Sec-WebSocket-Extensions");
            }
        }
    }
    // §4.2.1 items 3 and 4.
    if (!upgrade_websocket) {
        return fail(r, 400, "WebSocket handshake: no Upgrade: websocket");
    }
    if (!connection_upgrade) {
        return fail(r, 400, "WebSocket handshake: no Connection: upgrade");
    }
    // §4.2.1 item 6, §4.4: a version we do not speak is answered with the one we do,
    // before the key is looked at (another version may shape its key differently).
    if (!version_seen || !version_13) {
        return fail(r, 426, "WebSocket handshake: Sec-WebSocket-Version is not 13");
    }
    // §4.2.1 item 5.
    if (keys != 1 || !is_valid_key(r.key)) {
        return fail(r, 400, "WebSocket handshake: invalid Sec-WebSocket-Key");
    }
    return r;
}

std::array<char, 28> accept_key(std::string_view key) {
    const std::array<unsigned char, 20> d = sha1(key, k_guid);
    std::array<char, 28> out;
    std::size_t o = 0;
    // 20 bytes = 6 full groups of 3, then 2 bytes with one '=' of padding.
    for (std::size_t i = 0; i < 18; i += 3) {
        const std::uint32_t v = (std::uint32_t{d[i]} << 16) | (std::uint32_t{d[i + 1]} << 8) | d[i + 2];
        out[o++] = k_base64[(v >> 18) & 63];
        out[o++] = k_base64[(v >> 12) & 63];
        out[o++] = k_base64[(v >> 6) & 63];
        out[o++] = k_base64[v & 63];
    }
    const std::uint32_t v = (std::uint32_t{d[18]} << 16) | (std::uint32_t{d[19]} << 8);
    out[o++] = k_base64[(v >> 18) & 63];
    out[o++] = k_base64[(v >> 12) & 63];
    out[o++] = k_base64[(v >> 6) & 63];
    out[o++] = '=';
    return out;
}

accept_status write_accept(byte_buffer& out, std::string_view key, std::string_view subprotocol,
                           std::string_view extensions, std::span<const http1::header_field> extra_headers,
                           std::string_view date_line, std::string_view default_headers) {
    if (!subprotocol.empty() && !is_token(subprotocol)) {
        return accept_status::invalid_subprotocol;
    }
    if (!is_field_value(extensions)) {
        return accept_status::invalid_header;
    }
    constexpr std::string_view status_line = "HTTP/1.1 101 Switching Protocols\r\n";
    constexpr std::string_view upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    constexpr std::string_view accept_name = "Sec-WebSocket-Accept: ";
    constexpr std::string_view protocol_name = "Sec-WebSocket-Protocol: ";
    constexpr std::string_view extensions_name = "Sec-WebSocket-Extensions: ";
    std::size_t bound = status_line.size() + date_line.size() + default_headers.size() + upgrade.size() +
                        accept_name.size() + 28 + 2 + protocol_name.size() + subprotocol.size() + 2 +
                        extensions_name.size() + extensions.size() + 2 + 2;
    for (const http1::header_field& f : extra_headers) {
        if (!is_token(f.name) || !is_field_value(f.value)) {
            return accept_status::invalid_header;
        }
        bound += f.name.size() + f.value.size() + 4;
    }
    const std::array<char, 28> accept = accept_key(key);
    char* const begin = out.prepare(bound);
    char* p = put(begin, status_line);
    p = put(p, date_line);
    p = put(p, default_headers);
    p = put(p, upgrade);
    p = put(p, accept_name);
    p = put(p, std::string_view(accept.data(), accept.size()));
    p = put(p, "\r\n");
    if (!subprotocol.empty()) {
        p = put(p, protocol_name);
        p = put(p, subprotocol);
        p = put(p, "\r\n");
    }
    if (!extensions.empty()) {
        p = put(p, extensions_name);
        p = put(p, extensions);
        p = put(p, "\r\n");
    }
    for (const http1::header_field& f : extra_headers) {
        p = put(p, f.name);
        p = put(p, ": ");
        p = put(p, f.value);
        p = put(p, "\r\n");
    }
    p = put(p, "\r\n");
    out.commit(static_cast<std::size_t>(p - begin));
    return accept_status::ok;
}

}  // namespace dbridge::ws

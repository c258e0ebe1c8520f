// Strict incremental HTTP/1.1 request parser: see request_parser.h for the window contract.
//
// The parser is a byte-driven state machine whose states own tight loops over character
// classes. Everything it must remember about a head that is still arriving is an offset
// into the (unreleased) window, so a head delivered one byte per call is still scanned
// exactly once. Every decision at a byte depends only on the bytes before it, which is
// what makes the events independent of how the input is split.
#include "http1/request_parser.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <limits>
#include <optional>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace dbridge::http1 {

namespace {

// Character classes (RFC 9110 §5.6.2 tchar, §5.5 field-vchar, RFC 5234 VCHAR/HEXDIG,
// RFC 9110 §5.6.4 qdtext, RFC 3986 §3.1 scheme, §3.2.2 reg-name).
constexpr std::uint8_t k_tchar = 1;
constexpr std::uint8_t k_vchar = 2;
constexpr std::uint8_t k_field_content = 4;  // SP, HTAB, VCHAR, obs-text
constexpr std::uint8_t k_hex = 8;
constexpr std::uint8_t k_ows = 16;
constexpr std::uint8_t k_qdtext = 32;
constexpr std::uint8_t k_scheme = 64;
constexpr std::uint8_t k_reg_name = 128;  // unreserved / sub-delims / "%"

constexpr bool contains(const char* set, int c) {
    for (; *set != '\0'; ++set) {
        if (static_cast<unsigned char>(*set) == c) {
            return true;
        }
    }
    return false;
}

constexpr std::array<std::uint8_t, 256> make_char_classes() {
    std::array<std::uint8_t, 256> table{};
    for (int c = 0; c < 256; ++c) {
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool digit = c >= '0' && c <= '9';
        std::uint8_t f = 0;
        if (alpha || digit || contains("!#$%&'*+-.^_`|~", c)) {
            f |= k_tchar;
        }
        if (c >= 0x21 && c <= 0x7e) {
            f |= k_vchar;
        }
        if (c == '\t' || (c >= 0x20 && c != 0x7f)) {
            f |= k_field_content;
        }
        if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
            f |= k_hex;
        }
        if (c == ' ' || c == '\t') {
            f |= k_ows;
        }
        if (c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) ||
            c >= 0x80) {
            f |= k_qdtext;
        }
        if (alpha || digit || c == '+' || c == '-' || c == '.') {
            f |= k_scheme;
        }
        if (alpha || digit || contains("-._~!$&'()*+,;=%", c)) {
            f |= k_reg_name;
        }
        table[static_cast<std::size_t>(c)] = f;
    }
    return table;
}

constexpr std::array<std::uint8_t, 256> k_char_class = make_char_classes();

inline bool is(unsigned char c, std::uint8_t cls) { return (k_char_class[c] & cls) != 0; }
inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

// The two long runs of a head, the request-target and the field values, are skipped 16
// bytes at a time where SSE2 is there (every x86-64). Loads stay below `end`, inside the
// window. Both return the index of the first byte outside the class, or `end`.
inline std::size_t skip_vchar(const unsigned char* p, std::size_t i, std::size_t end) {
#if defined(__SSE2__)
    const __m128i space = _mm_set1_epi8(0x20);
    const __m128i del = _mm_set1_epi8(0x7f);
    while (end - i >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        // Signed compares: bytes >= 0x80 are negative, so they fail "> 0x20".
        const __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(v, space), _mm_cmplt_epi8(v, del));
        const unsigned bad = ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xffffu;
        if (bad != 0) {
            return i + static_cast<std::size_t>(__builtin_ctz(bad));
        }
        i += 16;
    }
#endif
    while (i < end && is(p[i], k_vchar)) {
        ++i;
    }
    return i;
}

inline std::size_t skip_field_content(const unsigned char* p, std::size_t i, std::size_t end) {
#if defined(__SSE2__)
    const __m128i below_space = _mm_set1_epi8(0x1f);
    const __m128i del = _mm_set1_epi8(0x7f);
    const __m128i tab = _mm_set1_epi8('\t');
    while (end - i >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        // 0x20..0x7f, or >= 0x80 (negative: obs-text), or HTAB; then not DEL.
        __m128i ok = _mm_or_si128(_mm_cmpgt_epi8(v, below_space), _mm_cmplt_epi8(v, _mm_setzero_si128()));
        ok = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, del), ok), _mm_cmpeq_epi8(v, tab));
        const unsigned bad = ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xffffu;
        if (bad != 0) {
            return i + static_cast<std::size_t>(__builtin_ctz(bad));
        }
        i += 16;
    }
#endif
    while (i < end && is(p[i], k_field_content)) {
        ++i;
    }
    return i;
}

inline unsigned hex_value(unsigned char c) {
    if (c <= '9') {
        return c - '0';
    }
    return (c | 0x20u) - 'a' + 10;
}

// Case-insensitive comparison with a lower-case literal of letters, digits and '-'.
// `c | 0x20` maps only 'A'-'Z' onto letters, and only CR onto '-'; CR never reaches here.
bool equals_lower(std::string_view s, std::string_view lower) {
    if (s.size() != lower.size()) {
        return false;
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) | 0x20u) != static_cast<unsigned char>(lower[i])) {
            return false;
        }
    }
    return true;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is(static_cast<unsigned char>(s.front()), k_ows)) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is(static_cast<unsigned char>(s.back()), k_ows)) {
        s.remove_suffix(1);
    }
    return s;
}

// Calls fn for each element of a comma list, OWS trimmed (RFC 9110 §5.6.1). Empty
// elements are passed on: each caller decides whether they are an error.
template <typename Fn>
void for_each_element(std::string_view list, Fn&& fn) {
    for (;;) {
        const std::size_t comma = list.find(',');
        fn(trim_ows(list.substr(0, comma)));
        if (comma == std::string_view::npos) {
            return;
        }
        list.remove_prefix(comma + 1);
    }
}

// Content-Length = 1*DIGIT (RFC 9112 §6.2, RFC 9110 §8.6), at most 2^63-1.
std::optional<std::uint64_t> parse_content_length(std::string_view s) {
    constexpr std::uint64_t max = std::numeric_limits<std::int64_t>::max();
    if (s.empty() || s.size() > 19) {
        return std::nullopt;
    }
    std::uint64_t n = 0;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (!is_digit(c)) {
            return std::nullopt;
        }
        n = n * 10 + (c - '0');  // 19 digits fit in 64 bits unsigned
    }
    if (n > max) {
        return std::nullopt;
    }
    return n;
}

// uri-host = IP-literal / IPv4address / reg-name (RFC 3986 §3.2.2); an IPv4address is
// also a reg-name, and a reg-name may be empty.
bool is_uri_host(std::string_view host) {
    if (!host.empty() && host.front() == '[') {
        // IP-literal: IPv6address, checked for its alphabet only.
        if (host.size() < 3 || host.back() != ']') {
            return false;
        }
        for (const char ch : host.substr(1, host.size() - 2)) {
            const auto c = static_cast<unsigned char>(ch);
            if (!is(c, k_hex) && c != ':' && c != '.') {
                return false;
            }
        }
        return true;
    }
    for (std::size_t i = 0; i < host.size(); ++i) {
        const auto c = static_cast<unsigned char>(host[i]);
        if (!is(c, k_reg_name)) {
            return false;
        }
        // pct-encoded = "%" HEXDIG HEXDIG
        if (c == '%' && (i + 2 >= host.size() || !is(static_cast<unsigned char>(host[i + 1]), k_hex) ||
                         !is(static_cast<unsigned char>(host[i + 2]), k_hex))) {
            return false;
        }
    }
    return true;
}

// authority-form = uri-host ":" port (RFC 9112 §3.2.3); no userinfo, port not empty
// (RFC 9110 §9.3.6: an empty or invalid port is rejected).
bool is_authority_form(std::string_view t) {
    const std::size_t colon = t.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        return false;
    }
    const std::string_view port = t.substr(colon + 1);
    if (port.empty() || port.size() > 5) {
        return false;
    }
    std::uint32_t port_number = 0;
    for (const char ch : port) {
        if (!is_digit(static_cast<unsigned char>(ch))) {
            return false;
        }
        port_number = port_number * 10 + static_cast<std::uint32_t>(ch - '0');
    }
    return port_number <= 65535 && is_uri_host(t.substr(0, colon));
}

// Host = uri-host [ ":" port ], port = *DIGIT (RFC 9110 §7.2, RFC 3986 §3.2.3); empty when
// the target has no authority (RFC 9112 §3.2). No userinfo, path or whitespace: a server
// MUST answer 400 to a Host with an invalid value (RFC 9112 §3.2).
bool is_host_field(std::string_view v) {
    std::size_t host_end = v.size();
    if (!v.empty() && v.front() == '[') {
        const std::size_t bracket = v.find(']');
        host_end = bracket == std::string_view::npos ? v.size() : bracket + 1;
    } else {
        host_end = std::min(v.find(':'), v.size());
    }
    if (host_end < v.size()) {
        if (v[host_end] != ':') {
            return false;
        }
        for (const char ch : v.substr(host_end + 1)) {
            if (!is_digit(static_cast<unsigned char>(ch))) {
                return false;
            }
        }
    }
    return is_uri_host(v.substr(0, host_end));
}

// absolute-form (RFC 9112 §3.2.2): we require scheme "://" authority, the only shape
// proxies send; a URI without an authority could not name the host anyway.
bool is_absolute_form(std::string_view t) {
    const auto first = static_cast<unsigned char>(t.front());
    if (!((first | 0x20u) >= 'a' && (first | 0x20u) <= 'z')) {
        return false;
    }
    std::size_t i = 1;
    while (i < t.size() && is(static_cast<unsigned char>(t[i]), k_scheme)) {
        ++i;
    }
    if (t.substr(i, 3) != "://") {
        return false;
    }
    i += 3;
    return i < t.size() && t[i] != '/' && t[i] != '?' && t[i] != '#';
}

// Transfer-Encoding is a list of transfer codings, possibly over several field lines
// (RFC 9112 §6.1, RFC 9110 §5.3). The verdict is taken once all lines are seen.
struct transfer_codings {
    bool malformed = false;         // an empty element, a coding that is not a token
    bool chunked_not_last = false;  // chunked followed by any coding, itself included
    bool last_is_chunked = false;
    bool unknown_coding = false;    // anything but chunked: we implement no other

    void add(std::string_view element) {
        std::size_t n = 0;
        while (n < element.size() && is(static_cast<unsigned char>(element[n]), k_tchar)) {
            ++n;
        }
        const std::string_view name = element.substr(0, n);
        const std::string_view params = trim_ows(element.substr(n));
        if (name.empty() || (!params.empty() && params.front() != ';')) {
            malformed = true;
            return;
        }
        if (last_is_chunked) {
            chunked_not_last = true;
        }
        last_is_chunked = equals_lower(name, "chunked");
        if (last_is_chunked && !params.empty()) {
            malformed = true;  // chunked takes no parameters
        } else if (!last_is_chunked) {
            unknown_coding = true;
        }
    }
};

}  // namespace

enum class request_parser::state : std::uint8_t {
    // request line (RFC 9112 §3)
    request_start,
    request_start_lf,
    method,
    target,
    version,
    request_line_lf,
    // field lines (RFC 9112 §5)
    field_start,
    field_name,
    value_ows,
    value,
    value_lf,
    head_end_lf,
    // no body, or a Content-Length body (the end is announced when _remaining is 0)
    fixed_body,
    // chunked body (RFC 9112 §7.1); the chunk-size line states come first and together
    chunk_size_start,
    chunk_size,
    chunk_ext_bws,         // BWS after the size or a value: only ";" may follow
    chunk_ext_name_start,  // after ";"
    chunk_ext_name,
    chunk_ext_name_bws,    // BWS after a name: "=" or ";" may follow
    chunk_ext_value_start,
    chunk_ext_token,
    chunk_ext_quoted,
    chunk_ext_quoted_pair,
    chunk_ext_quoted_end,
    chunk_size_lf,
    chunk_data,
    chunk_data_cr,
    chunk_data_lf,
    // trailer section (RFC 9112 §7.1.2)
    trailer_start,
    trailer_name,
    trailer_value,
    trailer_value_lf,
    trailer_end_lf,
    error,
};

request_parser::request_parser(const limits& lim) : _limits(lim), _state(state::request_start) {
    _fields.reserve(std::min<std::size_t>(_limits.max_header_count, 32));
}

void request_parser::reset() {
    _state = state::request_start;
    _head = request_head{};
    _fields.clear();
    _scan = 0;
    _remaining = 0;
    _body_seen = 0;
    _chunk_size = 0;
    _line_bytes = 0;
    _trailer_bytes = 0;
    _error_status = 0;
    _error_reason = "";
}

bool request_parser::in_message() const {
    // Leading empty lines count: they are bytes of the next request (RFC 9112 §2.2).
    return _state != state::request_start || _scan != 0;
}

parse_result request_parser::fail(int status, const char* reason) {
    _state = state::error;
    _error_status = status;
    _error_reason = reason;
    return {parse_event::error, 0, {}};
}

parse_result request_parser::end_message(std::size_t consumed) {
    _state = state::request_start;
    _scan = 0;
    return {parse_event::end, consumed, {}};
}

parse_result request_parser::parse(std::string_view window) {
    if (_state <= state::head_end_lf) {
        return parse_head(window);
    }
    if (_state == state::fixed_body) {
        return parse_fixed_body(window);
    }
    if (_state == state::error) {
        return {parse_event::error, 0, {}};
    }
    return parse_chunked_body(window);
}

parse_result request_parser::suspend(state resume_at, std::size_t scan) {
    _state = resume_at;
    _scan = scan;
    return {};
}

// The states of a line follow each other in the order of its bytes, so a head that is
// all there falls through them without a dispatch per state; the state is stored only
// when the bytes run out, and the switch is the way back in on the next call.
parse_result request_parser::parse_head(std::string_view window) {
    const auto* const p = reinterpret_cast<const unsigned char*>(window.data());
    const std::size_t size = window.size();
    std::size_t i = _scan;
    assert(i <= size && "the window must keep every byte of a head being read");
    if (i == 0 && _state == state::request_start) {
        _fields.clear();
    }

    if (_state < state::field_start) {
        // Every byte of the request line, leading empty lines included, must lie below
        // `limit`; only the CRLF that ends the line may reach past it (-> 414).
        const std::size_t limit = _limits.max_request_line;
        const std::size_t end = std::min(size, limit);
        switch (_state) {
        case state::request_start_lf:
        request_start_lf:
            if (i == size) {
                return suspend(state::request_start_lf, i);
            }
            if (i >= limit) {
                return fail(414, "request line too long");
            }
            if (p[i] != '\n') {
                return fail(400, "bare CR (RFC 9112 2.2)");
            }
            ++i;
            [[fallthrough]];
        case state::request_start:
            if (i == size) {
                return suspend(state::request_start, i);
            }
            if (i >= limit) {
                return fail(414, "request line too long");
            }
            if (p[i] == '\r') {
                // Empty lines before the request line are ignored (RFC 9112 §2.2).
                ++i;
                goto request_start_lf;
            }
            if (!is(p[i], k_tchar)) {
                return fail(400, p[i] == '\n' ? "bare LF (RFC 9112 2.2)" : "invalid method");
            }
            _method_start = i;
            ++i;
            [[fallthrough]];
        case state::method:
            // method = token, then exactly one SP (RFC 9112 §3)
            while (i < end && is(p[i], k_tchar)) {
                ++i;
            }
            if (i == end) {
                return end < size ? fail(414, "request line too long") : suspend(state::method, i);
            }
            if (p[i] != ' ') {
                return fail(400, "invalid method");
            }
            _method_end = i;
            ++i;
            [[fallthrough]];
        case state::target:
            // request-target: VCHARs only, so no CTL, SP or byte >= 0x80 (RFC 9112 §3.2)
            i = skip_vchar(p, i, end);
            if (i == end) {
                return end < size ? fail(414, "request line too long") : suspend(state::target, i);
            }
            if (p[i] != ' ') {
                // Includes CRLF right after the target: HTTP/0.9 is not served.
                return fail(400, "invalid request-target or missing version");
            }
            if (i == _method_end + 1) {
                return fail(400, "empty request-target");
            }
            _target_end = i;
            ++i;
            [[fallthrough]];
        case state::version:
            // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3)
            for (;; ++i) {
                if (i == size) {
                    return suspend(state::version, i);
                }
                const std::size_t pos = i - _target_end - 1;
                const unsigned char c = p[i];
                if (pos == 8) {
                    if (c != '\r') {
                        return fail(400, c == '\n' ? "bare LF (RFC 9112 2.2)" : "malformed HTTP version");
                    }
                    ++i;
                    break;
                }
                if (i >= limit) {
                    return fail(414, "request line too long");
                }
                const bool ok = pos < 5 ? c == static_cast<unsigned char>("HTTP/"[pos])
                                        : (pos == 6 ? c == '.' : is_digit(c));
                if (!ok) {
                    return fail(400, "malformed HTTP version");
                }
            }
            [[fallthrough]];
        case state::request_line_lf:
            if (i == size) {
                return suspend(state::request_line_lf, i);
            }
            if (p[i] != '\n') {
                return fail(400, "bare CR (RFC 9112 2.2)");
            }
            ++i;
            if (!finish_request_line(window.data())) {
                return {parse_event::error, 0, {}};
            }
            _headers_start = i;
            _state = state::field_start;
            break;
        default:
            assert(false);
            return fail(400, "internal parser state");
        }
    }

    // The header section, final CRLF included, must fit in max_header_bytes (-> 431).
    const std::size_t end =
        size - _headers_start > _limits.max_header_bytes ? _headers_start + _limits.max_header_bytes : size;
    // The offsets of the line being read live in registers; members keep them between calls.
    std::size_t name_start = _name_start;
    std::size_t name_end = _name_end;
    std::size_t value_start = _value_start;
    auto out_of_bytes = [&](state resume_at) {
        if (end < size) {
            return fail(431, "header section too large");
        }
        _name_start = name_start;
        _name_end = name_end;
        _value_start = value_start;
        return suspend(resume_at, i);
    };
    switch (_state) {
    case state::field_start:
    field_start:
        if (i == end) {
            return out_of_bytes(state::field_start);
        }
        if (p[i] == '\r') {
            ++i;
            goto head_end_lf;
        }
        if (!is(p[i], k_tchar)) {
            if (p[i] == ' ' || p[i] == '\t') {
                // obs-fold, or whitespace before the first field (RFC 9112 §5.2, §2.2)
                return fail(400, "obs-fold or line starting with whitespace");
            }
            if (p[i] == '\n') {
                return fail(400, "bare LF (RFC 9112 2.2)");
            }
            return fail(400, p[i] == ':' ? "empty field name" : "invalid field name");
        }
        if (_fields.size() >= _limits.max_header_count) {
            return fail(431, "too many header fields");
        }
        name_start = i;
        ++i;
        [[fallthrough]];
    case state::field_name:
        while (i < end && is(p[i], k_tchar)) {
            ++i;
        }
        if (i == end) {
            return out_of_bytes(state::field_name);
        }
        if (p[i] != ':') {
            // No whitespace between field name and colon (RFC 9112 §5.1).
            return fail(400, p[i] == ' ' || p[i] == '\t' ? "whitespace before colon" : "invalid field name");
        }
        name_end = i;
        ++i;
        [[fallthrough]];
    case state::value_ows:
        while (i < end && is(p[i], k_ows)) {
            ++i;
        }
        if (i == end) {
            return out_of_bytes(state::value_ows);
        }
        value_start = i;
        [[fallthrough]];
    case state::value:
        // field-value: SP, HTAB, VCHAR, obs-text; no NUL, CTL or DEL (RFC 9110 §5.5)
        i = skip_field_content(p, i, end);
        if (i == end) {
            return out_of_bytes(state::value);
        }
        if (p[i] != '\r') {
            return fail(400, p[i] == '\n' ? "bare LF (RFC 9112 2.2)" : "invalid byte in field value");
        }
        {
            // Trailing OWS is not part of the value (RFC 9112 §5); leading OWS was skipped.
            std::size_t value_end = i;
            while (value_end > value_start && is(p[value_end - 1], k_ows)) {
                --value_end;
            }
            _fields.push_back({static_cast<std::uint32_t>(name_start),
                               static_cast<std::uint32_t>(name_end - name_start),
                               static_cast<std::uint32_t>(value_start),
                               static_cast<std::uint32_t>(value_end - value_start)});
        }
        ++i;
        [[fallthrough]];
    case state::value_lf:
        if (i == end) {
            return out_of_bytes(state::value_lf);
        }
        if (p[i] != '\n') {
            return fail(400, "bare CR (RFC 9112 2.2)");
        }
        ++i;
        goto field_start;
    case state::head_end_lf:
    head_end_lf:
        if (i == end) {
            return out_of_bytes(state::head_end_lf);
        }
        if (p[i] != '\n') {
            return fail(400, "bare CR (RFC 9112 2.2)");
        }
        return finish_head(window, i + 1);
    default:
        assert(false);
        return fail(400, "internal parser state");
    }
}

bool request_parser::finish_request_line(const char* base) {
    const char* const version = base + _target_end + 1;  // "HTTP/d.d", syntax checked
    if (version[5] != '1') {
        // A major version we do not speak (RFC 9110 §15.6.6).
        fail(505, "HTTP version not supported");
        return false;
    }
    // A higher minor version is processed as the highest one we implement (RFC 9110 §6.2).
    _head.version_minor = version[7] == '0' ? 0 : 1;

    const std::string_view method(base + _method_start, _method_end - _method_start);
    const std::string_view target(base + _method_end + 1, _target_end - _method_end - 1);
    bool ok = false;
    if (method == "CONNECT") {
        ok = is_authority_form(target);  // RFC 9112 §3.2.3: CONNECT, and only it
    } else if (target.front() == '/') {
        ok = true;  // origin-form (RFC 9112 §3.2.1)
    } else if (target == "*") {
        ok = method == "OPTIONS";  // asterisk-form (RFC 9112 §3.2.4)
    } else {
        ok = is_absolute_form(target);  // must be accepted (RFC 9112 §3.2.2)
    }
    if (!ok) {
        fail(400, "request-target form not allowed for this method");
    }
    return ok;
}

parse_result request_parser::finish_head(std::string_view window, std::size_t head_end) {
    const char* const base = window.data();
    const bool http11 = _head.version_minor == 1;

    std::size_t host_count = 0;
    std::string_view host;
    bool has_content_length = false;
    bool content_lengths_differ = false;
    std::string_view content_length;
    bool has_transfer_encoding = false;
    transfer_codings codings;
    bool close = false;
    bool keep_alive_token = false;
    bool upgrade_token = false;
    bool has_upgrade_field = false;
    bool expect_continue = false;
    bool unknown_expectation = false;

    for (const auto& f : _fields) {
        const std::string_view name(base + f.name_offset, f.name_length);
        const std::string_view value(base + f.value_offset, f.value_length);
        switch (name.size()) {
        case 4:
            if (equals_lower(name, "host")) {
                ++host_count;
                host = value;
            }
            break;
        case 6:
            // A server ignores Expect in HTTP/1.0 requests (RFC 9110 §10.1.1).
            if (http11 && equals_lower(name, "expect")) {
                for_each_element(value, [&](std::string_view e) {
                    if (equals_lower(e, "100-continue")) {
                        expect_continue = true;
                    } else if (!e.empty()) {
                        unknown_expectation = true;
                    }
                });
            }
            break;
        case 7:
            if (equals_lower(name, "upgrade")) {
                has_upgrade_field = true;
            }
            break;
        case 10:
            // Connection = #connection-option, case-insensitive (RFC 9110 §7.6.1)
            if (equals_lower(name, "connection")) {
                for_each_element(value, [&](std::string_view e) {
                    close = close || equals_lower(e, "close");
                    keep_alive_token = keep_alive_token || equals_lower(e, "keep-alive");
                    upgrade_token = upgrade_token || equals_lower(e, "upgrade");
                });
            }
            break;
        case 14:
            if (equals_lower(name, "content-length")) {
                // Repeated lines must be byte-identical (RFC 9112 §6.3 item 5, strict).
                if (has_content_length && value != content_length) {
                    content_lengths_differ = true;
                }
                has_content_length = true;
                content_length = value;
            }
            break;
        case 17:
            if (equals_lower(name, "transfer-encoding")) {
                has_transfer_encoding = true;
                for_each_element(value, [&](std::string_view e) { codings.add(e); });
            }
            break;
        default:
            break;
        }
    }

    // Host (RFC 9112 §3.2): exactly one in HTTP/1.1, at most one in HTTP/1.0.
    if (host_count > 1) {
        return fail(400, "more than one Host field");
    }
    if (http11 && host_count == 0) {
        return fail(400, "HTTP/1.1 request without Host");
    }
    if (host_count == 1 && !is_host_field(host)) {
        return fail(400, "invalid Host");
    }

    body_framing framing = body_framing::none;
    std::uint64_t length = 0;
    if (has_transfer_encoding) {
        if (!http11) {
            return fail(400, "Transfer-Encoding in an HTTP/1.0 request");  // RFC 9112 §6.1
        }
        if (has_content_length) {
            // RFC 9112 §6.3 item 3: a smuggling vector; rejecting is allowed.
            return fail(400, "both Content-Length and Transfer-Encoding");
        }
        if (codings.malformed || codings.chunked_not_last || !codings.last_is_chunked) {
            // RFC 9112 §6.3 item 4: when chunked is not the final coding the length of the
            // body cannot be known; the server MUST answer 400 and close.
            return fail(400, "malformed Transfer-Encoding or chunked not last");
        }
        if (codings.unknown_coding) {
            return fail(501, "unsupported transfer coding");  // RFC 9112 §6.1
        }
        framing = body_framing::chunked;
    } else if (has_content_length) {
        if (content_lengths_differ) {
            return fail(400, "differing Content-Length values");  // RFC 9112 §6.3 item 5
        }
        const auto n = parse_content_length(content_length);
        if (!n) {
            return fail(400, "invalid Content-Length");  // RFC 9110 §8.6
        }
        framing = body_framing::content_length;
        length = *n;
    }
    if (unknown_expectation) {
        return fail(417, "unsupported expectation");  // RFC 9110 §10.1.1
    }
    if (_limits.max_body != 0 && framing == body_framing::content_length && length > _limits.max_body) {
        return fail(413, "body larger than the limit");
    }

    _head.base = base;
    _head.method = std::string_view(base + _method_start, _method_end - _method_start);
    _head.target = std::string_view(base + _method_end + 1, _target_end - _method_end - 1);
    _head.fields = _fields.data();
    _head.field_count = _fields.size();
    _head.framing = framing;
    _head.content_length = length;
    // Persistence (RFC 9112 §9.3): "close" always wins; HTTP/1.0 needs "keep-alive".
    _head.keep_alive = !close && (http11 || keep_alive_token);
    _head.expect_continue = expect_continue;
    // A server must ignore Upgrade in an HTTP/1.0 request (RFC 9110 §7.8).
    _head.upgrade = http11 && upgrade_token && has_upgrade_field;

    _scan = 0;
    if (framing == body_framing::chunked) {
        _state = state::chunk_size_start;
        _chunk_size = 0;
        _line_bytes = 0;
        _body_seen = 0;
        _trailer_bytes = 0;
    } else {
        _state = state::fixed_body;
        _remaining = length;
    }
    return {parse_event::head, head_end, {}};
}

parse_result request_parser::parse_fixed_body(std::string_view window) {
    if (_remaining == 0) {
        return end_message(0);
    }
    if (window.empty()) {
        return {};
    }
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(_remaining, window.size()));
    _remaining -= n;
    return {parse_event::body, n, window.substr(0, n)};
}

parse_result request_parser::parse_chunked_body(std::string_view window) {
    const auto* const p = reinterpret_cast<const unsigned char*>(window.data());
    const std::size_t size = window.size();
    for (std::size_t i = 0; i < size; ++i) {
        const unsigned char c = p[i];
        if (_state == state::chunk_data) {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(_remaining, size - i));
            _remaining -= n;
            if (_remaining == 0) {
                _state = state::chunk_data_cr;
            }
            return {parse_event::body, i + n, window.substr(i, n)};
        }
        if (_state <= state::chunk_ext_quoted_end && c != '\r' && ++_line_bytes > _limits.max_chunk_line) {
            return fail(400, "chunk-size line too long");
        }
        if (_state >= state::trailer_start && ++_trailer_bytes > _limits.max_trailer_bytes) {
            return fail(431, "trailer section too large");
        }
        // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF (RFC 9112 §7.1)
        // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) (§7.1.1)
        switch (_state) {
        case state::chunk_size_start:
            if (!is(c, k_hex)) {
                return fail(400, "invalid chunk size");
            }
            _chunk_size = hex_value(c);
            _state = state::chunk_size;
            break;
        case state::chunk_size:
            if (is(c, k_hex)) {
                // At most 16 digits and 2^63-1 (no leading-zero padding attacks either).
                if (_line_bytes > 16) {
                    return fail(400, "chunk size too long");
                }
                _chunk_size = _chunk_size * 16 + hex_value(c);
                if (_chunk_size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                    return fail(400, "chunk size overflow");
                }
            } else if (c == '\r') {
                _state = state::chunk_size_lf;
            } else if (c == ';') {
                _state = state::chunk_ext_name_start;
            } else if (c == ' ' || c == '\t') {
                _state = state::chunk_ext_bws;
            } else {
                return fail(400, "invalid chunk size");
            }
            break;
        case state::chunk_ext_bws:
            // BWS is allowed only in front of ";" (no trailing whitespace before CRLF).
            if (c == ';') {
                _state = state::chunk_ext_name_start;
            } else if (c != ' ' && c != '\t') {
                return fail(400, "invalid chunk extension");
            }
            break;
        case state::chunk_ext_name_start:
            if (is(c, k_tchar)) {
                _state = state::chunk_ext_name;
            } else if (c != ' ' && c != '\t') {
                return fail(400, "invalid chunk extension");
            }
            break;
        case state::chunk_ext_name:
            if (c == '\r') {
                _state = state::chunk_size_lf;
            } else if (c == ';') {
                _state = state::chunk_ext_name_start;
            } else if (c == '=') {
                _state = state::chunk_ext_value_start;
            } else if (c == ' ' || c == '\t') {
                _state = state::chunk_ext_name_bws;
            } else if (!is(c, k_tchar)) {
                return fail(400, "invalid chunk extension");
            }
            break;
        case state::chunk_ext_name_bws:
            if (c == ';') {
                _state = state::chunk_ext_name_start;
            } else if (c == '=') {
                _state = state::chunk_ext_value_start;
            } else if (c != ' ' && c != '\t') {
                return fail(400, "invalid chunk extension");
            }
            break;
        case state::chunk_ext_value_start:
            if (c == '"') {
                _state = state::chunk_ext_quoted;
            } else if (is(c, k_tchar)) {
                _state = state::chunk_ext_token;
            } else if (c != ' ' && c != '\t') {
                return fail(400, "invalid chunk extension");
            }
            break;
        case state::chunk_ext_token:
            if (c == '\r') {
                _state = state::chunk_size_lf;
            } else if (c == ';') {
                _state = state::chunk_ext_name_start;
            } else if (c == ' ' || c == '\t') {
                _state = state::chunk_ext_bws;
            } else if (!is(c, k_tchar)) {
                return fail(400, "invalid chunk extension");
            }
            break;
        case state::chunk_ext_quoted:
            // quoted-string (RFC 9110 §5.6.4)
            if (c == '"') {
                _state = state::chunk_ext_quoted_end;
            } else if (c == '\\') {
                _state = state::chunk_ext_quoted_pair;
            } else if (!is(c, k_qdtext)) {
                return fail(400, "invalid chunk extension");
            }
            break;
        case state::chunk_ext_quoted_pair:
            if (!is(c, k_field_content)) {
                return fail(400, "invalid chunk extension");
            }
            _state = state::chunk_ext_quoted;
            break;
        case state::chunk_ext_quoted_end:
            if (c == '\r') {
                _state = state::chunk_size_lf;
            } else if (c == ';') {
                _state = state::chunk_ext_name_start;
            } else if (c == ' ' || c == '\t') {
                _state = state::chunk_ext_bws;
            } else {
                return fail(400, "invalid chunk extension");
            }
            break;
        case state::chunk_size_lf:
            if (c != '\n') {
                return fail(400, "bare CR after chunk size");
            }
            if (_chunk_size == 0) {
                _state = state::trailer_start;  // last-chunk (RFC 9112 §7.1)
                break;
            }
            // Refuse the chunk that would carry the body past the limit before any of it.
            if (_limits.max_body != 0 && _chunk_size > _limits.max_body - _body_seen) {
                return fail(413, "body larger than the limit");
            }
            _body_seen += _chunk_size;
            _remaining = _chunk_size;
            _state = state::chunk_data;
            break;
        case state::chunk_data_cr:
            if (c != '\r') {
                return fail(400, "chunk data not followed by CRLF");
            }
            _state = state::chunk_data_lf;
            break;
        case state::chunk_data_lf:
            if (c != '\n') {
                return fail(400, "chunk data not followed by CRLF");
            }
            _state = state::chunk_size_start;
            _line_bytes = 0;
            break;
        // trailer-section = *( field-line CRLF ), checked like the header section and
        // discarded: the app never sees trailers (RFC 9112 §7.1.2).
        case state::trailer_start:
            if (c == '\r') {
                _state = state::trailer_end_lf;
            } else if (is(c, k_tchar)) {
                _state = state::trailer_name;
            } else if (c == ' ' || c == '\t') {
                return fail(400, "obs-fold in trailer section");  // RFC 9112 §5.2
            } else {
                return fail(400, "invalid trailer field");
            }
            break;
        case state::trailer_name:
            if (c == ':') {
                _state = state::trailer_value;
            } else if (!is(c, k_tchar)) {
                return fail(400, "invalid trailer field name");  // incl. whitespace before colon
            }
            break;
        case state::trailer_value:
            if (c == '\r') {
                _state = state::trailer_value_lf;
            } else if (!is(c, k_field_content)) {
                return fail(400, "invalid byte in trailer value");
            }
            break;
        case state::trailer_value_lf:
            if (c != '\n') {
                return fail(400, "bare CR in trailer section");
            }
            _state = state::trailer_start;
            break;
        case state::trailer_end_lf:
            if (c != '\n') {
                return fail(400, "bare CR in trailer section");
            }
            return end_message(i + 1);
        default:
            assert(false);
            return fail(400, "internal parser state");
        }
    }
    // Chunk framing is released as it is read; the rest of the state is in members.
    return {parse_event::need_more, size, {}};
}

}  // namespace dbridge::http1

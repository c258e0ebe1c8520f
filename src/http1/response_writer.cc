// The response head is written in one pass straight into the output buffer: one
// prepare() sized for the worst case, the app's headers validated as they are copied,
// one commit() at the end. A header that fails validation returns before the commit, so
// the buffer is left exactly as it was and no half-written head can reach the socket.
#include "http1/response_writer.h"

#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>

namespace dbridge::http1 {

namespace {

constexpr std::string_view k_chunked_header = "transfer-encoding: chunked\r\n";
constexpr std::string_view k_close_header = "connection: close\r\n";
constexpr std::string_view k_keep_alive_header = "connection: keep-alive\r\n";
constexpr std::string_view k_last_chunk = "0\r\n\r\n";

// Reason phrases of RFC 9110 §15 and of the registered codes clients meet in practice
// (WebDAV, RFC 6585, RFC 7725, RFC 8297, RFC 8470). The phrase is informational only
// (RFC 9112 §4), so an unknown code is sent with an empty one.
struct status_reason {
    int status;
    std::string_view reason;
};

constexpr status_reason k_reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {208, "Already Reported"},
    {226, "IM Used"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {418, "I'm a Teapot"},  // RFC 9110 §15.5.19 reserves it; Python's http.HTTPStatus names it
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {506, "Variant Also Negotiates"},
    {507, "Insufficient Storage"},
    {508, "Loop Detected"},
    {510, "Not Extended"},
    {511, "Network Authentication Required"},
};

// Indexed by status - 100, so the hot path is one load.
constexpr auto k_reason_by_status = [] {
    std::array<std::string_view, 500> table{};
    for (const status_reason& entry : k_reasons) {
        table[entry.status - 100] = entry.reason;
    }
    return table;
}();

// tchar (RFC 9110 §5.6.2): the bytes a field name may hold.
constexpr auto k_tchar = [] {
    std::array<bool, 256> table{};
    for (int c = '0'; c <= '9'; ++c) {
        table[c] = true;
    }
    for (int c = 'a'; c <= 'z'; ++c) {
        table[c] = true;
        table[c - 'a' + 'A'] = true;
    }
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) {
        table[static_cast<unsigned char>(c)] = true;
    }
    return table;
}();

// field-value bytes (RFC 9110 §5.5): VCHAR, obs-text, SP and HTAB. CR, LF and NUL would
// let an app end the field early (response splitting); the other CTLs are not allowed
// either, and some recipients treat them as line ends.
constexpr auto k_field_value_byte = [] {
    std::array<bool, 256> table{};
    for (int c = 0x20; c < 0x100; ++c) {
        table[c] = c != 0x7f;
    }
    table['\t'] = true;
    return table;
}();

bool is_token(std::string_view name) {
    if (name.empty()) {
        return false;
    }
    for (char c : name) {
        if (!k_tchar[static_cast<unsigned char>(c)]) {
            return false;
        }
    }
    return true;
}

bool is_field_value(std::string_view value) {
    for (char c : value) {
        if (!k_field_value_byte[static_cast<unsigned char>(c)]) {
            return false;
        }
    }
    return true;
}

char to_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

// Field names, connection options and transfer codings are case-insensitive
// (RFC 9110 §5.1, §7.6.1, §10.1.4); `lower` is given in lower case.
bool equals_ignoring_case(std::string_view text, std::string_view lower) {
    if (text.size() != lower.size()) {
        return false;
    }
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (to_lower(text[i]) != lower[i]) {
            return false;
        }
    }
    return true;
}

// Calls `visit` with each non-empty element of a comma-separated list with the optional
// whitespace around it removed (RFC 9110 §5.6.1: empty elements are ignored).
template <typename Visit>
void for_each_list_element(std::string_view value, Visit&& visit) {
    while (!value.empty()) {
        std::size_t comma = value.find(',');
        std::string_view element = value.substr(0, comma);
        std::size_t first = element.find_first_not_of(" \t");
        if (first != std::string_view::npos) {
            std::size_t last = element.find_last_not_of(" \t");
            visit(element.substr(first, last - first + 1));
        }
        if (comma == std::string_view::npos) {
            break;
        }
        value.remove_prefix(comma + 1);
    }
}

// Content-Length = 1*DIGIT (RFC 9110 §8.6); a value that does not fit is as unusable as
// a malformed one.
std::optional<std::uint64_t> parse_content_length(std::string_view value) {
    if (value.empty()) {
        return std::nullopt;
    }
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t length = 0;
    for (char c : value) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        auto digit = static_cast<std::uint64_t>(c - '0');
        if (length > (max - digit) / 10) {
            return std::nullopt;
        }
        length = length * 10 + digit;
    }
    return length;
}

enum class framing_field : std::uint8_t { other, content_length, transfer_encoding, connection };

framing_field classify(std::string_view name) {
    switch (name.size()) {
    case 10:
        return equals_ignoring_case(name, "connection") ? framing_field::connection : framing_field::other;
    case 14:
        return equals_ignoring_case(name, "content-length") ? framing_field::content_length
                                                            : framing_field::other;
    case 17:
        return equals_ignoring_case(name, "transfer-encoding") ? framing_field::transfer_encoding
                                                               : framing_field::other;
    default:
        return framing_field::other;
    }
}

char* put(char* out, std::string_view bytes) {
    // An empty view may hold a null pointer, which memcpy must not be given.
    if (bytes.empty()) {
        return out;
    }
    std::memcpy(out, bytes.data(), bytes.size());
    return out + bytes.size();
}

// "HTTP/1.1 200 OK\r\n"; `status` is already known to be 100..599.
char* put_status_line(char* out, int status, std::string_view reason) {
    out = put(out, "HTTP/1.1 ");
    out[0] = static_cast<char>('0' + status / 100);
    out[1] = static_cast<char>('0' + status / 10 % 10);
    out[2] = static_cast<char>('0' + status % 10);
    out[3] = ' ';
    out = put(out + 4, reason);
    return put(out, "\r\n");
}

std::size_t hex_digits(std::uint64_t value) {
    return value == 0 ? 1 : (std::numeric_limits<std::uint64_t>::digits - std::countl_zero(value) + 3) / 4;
}

char* put_hex(char* out, std::uint64_t value, std::size_t digits) {
    constexpr char k_hex[] = "0123456789abcdef";
    for (std::size_t i = digits; i > 0; --i) {
        out[i - 1] = k_hex[value & 0xf];
        value >>= 4;
    }
    return out + digits;
}

}  // namespace

const char* describe(write_status status) {
    switch (status) {
    case write_status::ok:
        return "ok";
    case write_status::invalid_status:
        return "invalid status code for a final response";
    case write_status::invalid_header:
        return "invalid response header name or value";
    case write_status::invalid_content_length:
        return "invalid or conflicting Content-Length";
    case write_status::content_length_exceeded:
        return "response body longer than its Content-Length";
    case write_status::content_length_short:
        return "response body shorter than its Content-Length";
    case write_status::not_started:
        return "response body before the response start";
    case write_status::already_started:
        return "response started twice";
    case write_status::already_finished:
        return "response body after the response was finished";
    }
    return "unknown write status";
}

write_status response_writer::start(byte_buffer& out, const request_facts& request, int status,
                                    std::span<const header_field> headers, std::string_view date_line,
                                    std::string_view default_headers) {
    if (_started) {
        return write_status::already_started;
    }
    // A 1xx other than 101 is interim (RFC 9110 §15.2): 100 Continue goes through
    // write_continue(), and the final response must still follow.
    if (status < 100 || status > 599 || (status < 200 && status != 101)) {
        return write_status::invalid_status;
    }
    const bool http10 = request.version_minor == 0;
    // RFC 9110 §6.4.1: responses to HEAD and 1xx, 204 and 304 responses carry no content,
    // whatever their header fields say (RFC 9112 §6.3 rule 1).
    const bool suppress_body = request.head_method || status < 200 || status == 204 || status == 304;
    const std::string_view reason = k_reason_by_status[status - 100];

    std::size_t bound = std::string_view("HTTP/1.1 200 \r\n").size() + reason.size() + date_line.size() +
                        default_headers.size() + k_chunked_header.size() + k_keep_alive_header.size() + 2;
    for (const header_field& field : headers) {
        bound += field.name.size() + field.value.size() + 4;
    }
    char* const begin = out.prepare(bound);
    char* p = put_status_line(begin, status, reason);
    p = put(p, date_line);
    p = put(p, default_headers);

    bool has_content_length = false;
    std::uint64_t content_length = 0;
    bool has_transfer_encoding = false;
    std::size_t chunked_codings = 0;
    bool chunked_is_last = false;
    bool has_connection = false;
    bool app_close = false;

    for (const header_field& field : headers) {
        if (!is_token(field.name) || !is_field_value(field.value)) {
            return write_status::invalid_header;
        }
        switch (classify(field.name)) {
        case framing_field::content_length: {
            std::optional<std::uint64_t> length = parse_content_length(field.value);
            if (!length || (has_content_length && *length != content_length)) {
                return write_status::invalid_content_length;
            }
            if (has_content_length) {
                // An identical repeat is the same field twice; a recipient may reject
                // the repeat (RFC 9110 §8.6), so it is sent once.
                continue;
            }
            has_content_length = true;
            content_length = *length;
            break;
        }
        case framing_field::transfer_encoding:
            has_transfer_encoding = true;
            // Repeated fields form one list (RFC 9110 §5.3), so the count and the last
            // coding carry over from one field to the next.
            for_each_list_element(field.value, [&](std::string_view coding) {
                chunked_is_last = equals_ignoring_case(coding, "chunked");
                chunked_codings += chunked_is_last ? 1 : 0;
            });
            if (http10) {
                // RFC 9112 §6.1: no Transfer-Encoding in a response to an HTTP/1.0 request;
                // such a client could not decode it.
                continue;
            }
            break;
        case framing_field::connection:
            has_connection = true;
            for_each_list_element(field.value, [&](std::string_view option) {
                app_close = app_close || equals_ignoring_case(option, "close");
            });
            break;
        case framing_field::other:
            break;
        }
        p = put(p, field.name);
        p = put(p, ": ");
        p = put(p, field.value);
        p = put(p, "\r\n");
    }

    if (has_transfer_encoding) {
        // RFC 9112 §6.1: chunked at most once and only as the final coding.
        if (chunked_codings > 1 || (chunked_codings == 1 && !chunked_is_last)) {
            return write_status::invalid_header;
        }
        // RFC 9112 §6.2: never both; a recipient would have to guess which one frames.
        if (has_content_length) {
            return write_status::invalid_content_length;
        }
    }

    framing body_framing = framing::none;
    bool add_chunked_header = false;
    if (has_content_length) {
        body_framing = framing::content_length;
    } else if (suppress_body) {
        body_framing = framing::none;
    } else if (has_transfer_encoding && !http10) {
        // RFC 9112 §6.3 rule 4: a response whose final coding is not chunked ends when
        // the connection closes.
        body_framing = chunked_is_last ? framing::chunked : framing::close_delimited;
    } else if (http10) {
        // An HTTP/1.0 client knows no chunked coding (RFC 9112 §6.1): the end of the body
        // is the end of the connection (RFC 9112 §6.3 rule 8).
        body_framing = framing::close_delimited;
    } else {
        body_framing = framing::chunked;
        add_chunked_header = true;
    }

    const bool keep_alive = request.keep_alive && !app_close && body_framing != framing::close_delimited;
    if (add_chunked_header) {
        p = put(p, k_chunked_header);
    }
    // A 101 response switches the connection to the upgraded protocol; its Connection
    // field is the app's "upgrade" (RFC 9110 §7.8) and the connection owner decides what
    // follows, so we add nothing to it.
    if (!has_connection && status != 101) {
        if (!keep_alive) {
            // RFC 9112 §9.6: say that the connection closes after this response.
            p = put(p, k_close_header);
        } else if (http10) {
            // RFC 9112 Appendix C.2.2: an HTTP/1.0 client closes unless told otherwise.
            p = put(p, k_keep_alive_header);
        }
    }
    p = put(p, "\r\n");
    out.commit(static_cast<std::size_t>(p - begin));

    _framing = body_framing;
    _started = true;
    _finished = false;
    _keep_alive = keep_alive;
    _suppress_body = suppress_body;
    _status = status;
    _declared_length = content_length;
    _body_bytes = 0;
    return write_status::ok;
}

write_status response_writer::count_body(std::size_t size, bool more) {
    if (_framing == framing::content_length) {
        if (size > _declared_length - _body_bytes) {
            // The client would read the excess as the next response: nothing of it goes
            // out, and the connection cannot be reused.
            _keep_alive = false;
            return write_status::content_length_exceeded;
        }
        _body_bytes += size;
        if (!more) {
            _finished = true;
            if (_body_bytes < _declared_length) {
                // The client waits for bytes that never come; only closing ends it.
                _keep_alive = false;
                return write_status::content_length_short;
            }
        }
        return write_status::ok;
    }
    _body_bytes += size;  // close-delimited: the close ends the body
    _finished = !more;
    return write_status::ok;
}

write_status response_writer::body(byte_buffer& out, std::string_view data, bool more) {
    if (!_started) {
        return write_status::not_started;
    }
    if (_finished) {
        return write_status::already_finished;
    }
    if (_suppress_body) {
        // The app may send the body it would send for GET; it is counted for the log and
        // dropped (RFC 9110 §9.3.2).
        _body_bytes += data.size();
        _finished = !more;
        return write_status::ok;
    }

    switch (_framing) {
    case framing::content_length:
    case framing::close_delimited: {
        write_status st = count_body(data.size(), more);
        if (st == write_status::ok || st == write_status::content_length_short) {
            out.append(data);
        }
        return st;
    }
    case framing::chunked: {
        // RFC 9112 §7.1: chunk = chunk-size CRLF chunk-data CRLF; the zero-size chunk is
        // the last one, so empty data is never framed as a chunk of its own.
        const std::size_t size = data.size();
        const std::size_t digits = size == 0 ? 0 : hex_digits(size);
        const std::size_t total = (size == 0 ? 0 : digits + 2 + size + 2) + (more ? 0 : k_last_chunk.size());
        if (total == 0) {
            return write_status::ok;
        }
        char* const begin = out.prepare(total);
        char* p = begin;
        if (size != 0) {
            p = put_hex(p, size, digits);
            p = put(p, "\r\n");
            p = put(p, data);
            p = put(p, "\r\n");
        }
        if (!more) {
            p = put(p, k_last_chunk);
        }
        out.commit(static_cast<std::size_t>(p - begin));
        _body_bytes += size;
        _finished = !more;
        return write_status::ok;
    }
    case framing::none:
        // Only a response without a body has no framing, and it returned above.
        break;
    }
    _finished = !more;
    return write_status::ok;
}

void response_writer::write_continue(byte_buffer& out) { out.append("HTTP/1.1 100 Continue\r\n\r\n"); }

void response_writer::reset() { *this = response_writer{}; }

}  // namespace dbridge::http1

// Incremental, strict HTTP/1.1 request parser (RFC 9112).
//
// The parser never copies header bytes: the request head it reports is a set of offsets
// into the caller's input. The contract that makes this work across any split of the
// input:
//
//   - parse(window) is given the caller's unconsumed bytes; it returns one event and
//     how many bytes at the front of `window` it has released (`consumed`).
//   - The caller drops exactly `consumed` bytes and keeps the rest. On `need_more` it
//     appends newly received bytes and calls again with the longer window (same first
//     byte). While a head is being read nothing is released, so the head stays
//     contiguous; body framing and body bytes are released as they are reported.
//   - Views in a `head` result or a `body` result point into the window passed to that
//     call and are valid until the caller drops or moves those bytes.
//
// A message without a body gives `head`, then `end` (consuming nothing) on the next
// call. After `end` the parser is ready for the next request on the same connection
// (pipelining). After `error` it
// stays in the error state: the connection must answer with `error_status` and close.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace dbridge::http1 {

struct limits {
    // Longer request lines get 414 (almost all of such a line is the target).
    std::size_t max_request_line = 8192;
    // The whole header section (after the request line, including CRLFs) -> 431.
    std::size_t max_header_bytes = 32768;
    // Number of header fields -> 431.
    std::size_t max_header_count = 100;
    // Request body limit in bytes, 0 = unlimited (opt-in, as in uvicorn) -> 413.
    std::uint64_t max_body = 0;
    // Length of one chunk-size line with its extensions, and of the whole trailer
    // section: both are framing the app never sees, so they stay small -> 400 / 431.
    std::size_t max_chunk_line = 4096;
    std::size_t max_trailer_bytes = 32768;
};

struct header_field {
    std::string_view name;
    std::string_view value;  // with leading and trailing whitespace removed
};

enum class body_framing : std::uint8_t { none, content_length, chunked };

// The parsed request head. Text views are resolved against `base`, the start of the
// window passed to the parse() call that returned the `head` event.
struct request_head {
    struct field_offsets {
        std::uint32_t name_offset;
        std::uint32_t name_length;
        std::uint32_t value_offset;
        std::uint32_t value_length;
    };

    const char* base = nullptr;
    std::string_view method;
    std::string_view target;
    std::uint8_t version_minor = 1;  // HTTP/1.<minor>, 0 or 1
    const field_offsets* fields = nullptr;
    std::size_t field_count = 0;

    body_framing framing = body_framing::none;
    std::uint64_t content_length = 0;  // when framing == content_length
    bool keep_alive = true;            // after the version and any Connection tokens
    bool expect_continue = false;      // HTTP/1.1 with Expect: 100-continue
    bool upgrade = false;              // Connection: upgrade with an Upgrade field

    std::size_t header_count() const { return field_count; }
    header_field header(std::size_t i) const {
        const field_offsets& f = fields[i];
        return {std::string_view(base + f.name_offset, f.name_length),
                std::string_view(base + f.value_offset, f.value_length)};
    }
};

enum class parse_event : std::uint8_t {
    need_more,  // every byte of the window has been examined; give more
    head,       // head() is ready; `consumed` covers the whole head
    body,       // `body` holds request body bytes (never empty)
    end,        // the request is complete (body and trailers read)
    error,      // malformed or over a limit: answer error_status, then close
};

struct parse_result {
    parse_event event = parse_event::need_more;
    std::size_t consumed = 0;
    std::string_view body;  // for parse_event::body
};

class request_parser {
public:
    explicit request_parser(const limits& limits = {});

    parse_result parse(std::string_view window);

    // Valid after a `head` event, with views into that call's window.
    const request_head& head() const { return _head; }

    // After an `error` event: the status to answer (400, 413, 414, 417, 431, 501, 505) and
    // a short human reason for the log.
    int error_status() const { return _error_status; }
    const char* error_reason() const { return _error_reason; }

    // True between the first byte of a request and its `end` event (used to tell an
    // idle keep-alive connection from one that is mid-request).
    bool in_message() const;

    // Forget all state (a connection object being reused).
    void reset();

private:
    enum class state : std::uint8_t;

    parse_result fail(int status, const char* reason);
    parse_result suspend(state resume_at, std::size_t scan);
    parse_result parse_head(std::string_view window);
    bool finish_request_line(const char* base);
    parse_result finish_head(std::string_view window, std::size_t head_end);
    parse_result parse_fixed_body(std::string_view window);
    parse_result parse_chunked_body(std::string_view window);
    parse_result end_message(std::size_t consumed);

    limits _limits;
    state _state;
    request_head _head;
    std::vector<request_head::field_offsets> _fields;  // capacity kept across requests
    // Offsets into the window of a head that is still arriving. The head is never
    // released while it is read, so they stay valid and each byte is examined once.
    std::size_t _scan = 0;           // how far into the head the scan has progressed
    std::size_t _method_start = 0;   // after any leading empty lines
    std::size_t _method_end = 0;     // the SP after the method; the target follows
    std::size_t _target_end = 0;     // the SP after the target; the version follows
    std::size_t _headers_start = 0;  // first byte after the request line's CRLF
    std::size_t _name_start = 0;     // of the field line being read
    std::size_t _name_end = 0;
    std::size_t _value_start = 0;
    std::uint64_t _remaining = 0;  // body bytes left in the current chunk or message
    std::uint64_t _body_seen = 0;  // body bytes announced so far (for max_body)
    std::uint64_t _chunk_size = 0;
    std::size_t _line_bytes = 0;   // bytes in the current chunk-size line
    std::size_t _trailer_bytes = 0;
    int _error_status = 0;
    const char* _error_reason = "";
};

}  // namespace dbridge::http1

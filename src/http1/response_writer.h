// Serializes one HTTP/1.1 response into a connection's output buffer and owns its
// framing: the app's Content-Length is honoured and checked against the body it sends;
// without one, an HTTP/1.1 response is chunked and an HTTP/1.0 response is delimited
// by closing the connection (RFC 9112 §6.3, §7.1). HEAD responses and 1xx/204/304
// carry no body bytes (RFC 9110 §6.4.1).
//
// Every header the app gives is checked before a byte of it is written: a name must be
// a token and a value must not hold CR, LF or NUL, so an app can never split a response
// (RFC 9110 §5.1, §5.5).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "buffer/byte_buffer.h"
#include "http1/request_parser.h"

namespace dbridge::http1 {

enum class write_status : std::uint8_t {
    ok,
    invalid_status,            // not in 100..599, or 1xx given as the final response
    invalid_header,            // a name that is not a token, or CR/LF/NUL in a value
    invalid_content_length,    // a Content-Length value that is not 1*DIGIT, or two that differ
    content_length_exceeded,   // body bytes beyond the declared Content-Length (not written)
    content_length_short,      // the body ended before the declared Content-Length
    not_started,               // body() before start()
    already_started,           // start() twice
    already_finished,          // body() after the final body message
};

const char* describe(write_status status);

// What the writer must know of the request being answered.
struct request_facts {
    std::uint8_t version_minor = 1;
    bool head_method = false;
    bool keep_alive = true;  // the request allows the connection to stay open
};

class response_writer {
public:
    // Begin a response: status line, Date (when `date_line` is not empty; it is a full
    // "date: ...\r\n" line from date_cache), the server's own default header lines
    // (`default_headers`, preformatted "name: value\r\n" lines, e.g. "server: ..."),
    // then the app's headers, then the framing header we add, then the blank line.
    write_status start(byte_buffer& out, const request_facts& request, int status,
                       std::span<const header_field> headers, std::string_view date_line,
                       std::string_view default_headers);

    // Append body bytes; `more` = false finishes the response (writes the last chunk
    // for chunked framing). Empty data with more = true writes nothing.
    write_status body(byte_buffer& out, std::string_view data, bool more);

    // Whether body() would append the data as it is (Content-Length or close-delimited
    // framing, a body that is sent): a caller may then send a large body itself, straight
    // from the app's memory, and account for it with count_body().
    bool body_is_verbatim() const {
        return _started && !_finished && !_suppress_body &&
               (_framing == framing::content_length || _framing == framing::close_delimited);
    }
    // body() without the bytes, when body_is_verbatim(): the same checks, counting and
    // result; the caller sends `size` bytes itself when the result is ok or
    // content_length_short (what body() would have appended).
    write_status count_body(std::size_t size, bool more);

    // Interim 100 Continue (RFC 9110 §15.2.1); only before start().
    static void write_continue(byte_buffer& out);

    bool started() const { return _started; }
    bool finished() const { return _finished; }
    // HEAD, 1xx, 204, 304: body() counts the app's bytes and sends none.
    bool body_suppressed() const { return _suppress_body; }
    int status() const { return _status; }
    // Whether the connection may serve another request once this response is done:
    // false when the request or the app asked to close, or when the body is delimited
    // by closing the connection.
    bool keep_alive() const { return _keep_alive; }
    // Body bytes the app has sent so far (for the access log).
    std::uint64_t body_bytes() const { return _body_bytes; }

    // Ready for the next response on the same connection.
    void reset();

private:
    enum class framing : std::uint8_t { none, content_length, chunked, close_delimited };

    framing _framing = framing::none;
    bool _started = false;
    bool _finished = false;
    bool _keep_alive = true;
    bool _suppress_body = false;  // HEAD, 1xx, 204, 304: count the bytes, send none
    int _status = 0;
    std::uint64_t _declared_length = 0;
    std::uint64_t _body_bytes = 0;
};

}  // namespace dbridge::http1

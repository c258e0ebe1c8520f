// WebSocket framing, server side (RFC 6455 §5), with permessage-deflate (RFC 7692).
//
// frame_parser turns the bytes a client sends into message pieces and control frames.
// It plays the same window contract as http1::request_parser:
//
//   - parse(window) is given the caller's unconsumed bytes; it returns one event and how
//     many bytes at the front of `window` it has released (`consumed`).
//   - The caller drops exactly `consumed` bytes and keeps the rest; on `need_more` it
//     appends what arrives next and calls again with the longer window.
//   - The window is writable: the parser unmasks payload in place (§5.3), so data and
//     control payloads are handed out without a copy. Views in a result point into the
//     window (or, for inflated data, into the parser's own 16 KiB buffer) and are valid
//     until the next parse() call or until the caller drops or moves those bytes.
//
// A message is delivered as `data` events, each a piece of it, the last one with
// `message_end` set (an empty message is one empty piece with `message_end`). Pieces
// are at most what one read brought (uncompressed) or 16 KiB (inflated), so the caller
// decides what to hold: an ASGI receive() appends the pieces into the one message
// buffer it must build anyway, never more than max_message_size. The parser itself
// holds no message bytes. A message that fails a check after some of its pieces were
// delivered ends in `error`: the caller discards the partial message.
//
// Text is validated as it arrives (§8.1: fail as soon as invalid UTF-8 is seen), so a
// text message whose last piece carries `message_end` is valid UTF-8 as a whole.
//
// After `error` the connection must be failed (§7.1.7): send a close frame with
// error_code(), then close. After a `close` event the parser ignores (consumes) every
// further byte (§5.5.1); the caller answers the close and closes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "buffer/byte_buffer.h"
#include "ws/deflate.h"
#include "ws/utf8.h"

namespace dbridge::ws {

enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xa,
};

enum class message_kind : std::uint8_t { text, binary };

// Status codes (§7.4.1).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;
inline constexpr std::uint16_t no_status = 1005;  // never on the wire: a close without a code
inline constexpr std::uint16_t abnormal = 1006;   // never on the wire: no close frame at all
inline constexpr std::uint16_t invalid_payload = 1007;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t mandatory_extension = 1010;
inline constexpr std::uint16_t internal_error = 1011;
}  // namespace close_code

// Whether a code may appear in a close frame (§7.4.1, §7.4.2): 1000-1003, 1007-1011,
// the IANA-registered 1012-1014 (service restart, try again later, bad gateway), and
// 3000-4999 (libraries, frameworks, applications). 1004-1006 and 1015 are reserved and
// never sent; anything else below 3000 is unassigned.
bool is_valid_close_code(std::uint16_t code);

struct parser_limits {
    // The largest message, in payload bytes after decompression -> close 1009. Also
    // caps the compressed bytes of a message. uvicorn's --ws-max-size default.
    std::uint64_t max_message_size = 16 * 1024 * 1024;
};

enum class frame_event : std::uint8_t {
    need_more,  // every byte of the window has been examined; give more
    data,       // `data` is the next piece of the current message (`kind`, `message_end`)
    ping,       // `data` is the ping's application data (at most 125 bytes); answer with a pong
    pong,       // `data` is the pong's application data
    close,      // `close_code` (1005 when the frame had no body) and `data` the reason (UTF-8)
    error,      // fail the connection with error_code() (§7.1.7)
};

struct frame_result {
    frame_event event = frame_event::need_more;
    std::size_t consumed = 0;
    std::string_view data;
    message_kind kind = message_kind::binary;  // data: the message's type
    bool message_end = false;                  // data: the message is complete
    std::uint16_t close_code = 0;              // close
};

class frame_parser {
public:
    explicit frame_parser(const parser_limits& limits = {});

    // After a handshake that agreed permessage-deflate: RSV1 then marks a compressed
    // message, inflated with the client's window and context-takeover parameters.
    void enable_deflate(const deflate_params& params);

    frame_result parse(std::span<char> window);

    // After an `error` event: the close code to fail the connection with (1002, 1007,
    // 1009; 1011 only if zlib misbehaves) and a short reason, usable as the close
    // frame's reason.
    std::uint16_t error_code() const { return _error_code; }
    const char* error_reason() const { return _error_reason; }

    // Between a message's first frame and its last piece.
    bool in_message() const { return _in_message; }

    // Forget all state (a connection object being reused); deflate is switched off.
    void reset();

private:
    enum class state : std::uint8_t { header, payload, inflate_tail, closed, failed };

    frame_result fail(std::uint16_t code, const char* reason);
    frame_result read_header(std::span<char> window, std::size_t consumed);
    frame_result read_close(std::span<char> body, std::size_t consumed);
    frame_result read_payload(std::span<char> window, std::size_t consumed);
    frame_result read_compressed(std::span<char> window, std::size_t consumed);
    frame_result finish_compressed(std::size_t consumed);
    // Checks a piece of message data (size, UTF-8) and makes the `data` event for it.
    frame_result deliver(std::string_view piece, bool message_end, std::size_t consumed);
    void unmask(char* payload, std::size_t n);

    parser_limits _limits;
    state _state = state::header;

    // The data frame being read.
    bool _fin = false;
    std::uint64_t _remaining = 0;  // payload bytes of the frame not yet consumed
    std::uint8_t _mask[4] = {};
    std::uint8_t _mask_offset = 0;     // payload bytes unmasked so far, mod 4
    std::size_t _unmasked_ahead = 0;   // unconsumed payload bytes at the window's front already unmasked

    // The message being read.
    bool _in_message = false;
    bool _compressed = false;
    message_kind _kind = message_kind::binary;
    std::uint64_t _message_size = 0;  // payload bytes delivered (after inflating)
    std::uint64_t _wire_size = 0;     // payload bytes announced by its frames
    utf8_validator _utf8;

    std::optional<inflater> _inflater;
    std::unique_ptr<char[]> _inflated;  // where inflated pieces are written

    std::uint16_t _error_code = 0;
    const char* _error_reason = "";
};

// ---- writing ------------------------------------------------------------------------------

enum class write_status : std::uint8_t {
    ok,
    control_too_long,     // a ping or pong payload over 125 bytes (§5.5)
    invalid_close_code,   // not a code that may be sent (is_valid_close_code)
    invalid_close_reason, // over 123 bytes, or not UTF-8 (§5.5.1)
};

inline constexpr std::size_t max_frame_header = 10;  // a server frame: never a masking key

// Writes the header of a server frame (unmasked, §5.1) at `dst`, with the shortest
// length encoding (§5.2); returns its size (2, 4 or 10).
std::size_t put_frame_header(char* dst, opcode op, bool fin, bool rsv1, std::uint64_t payload_size);

// Serializes server frames into a connection's output buffer. Apart from the deflater's
// own buffer (kept between messages), nothing is allocated per frame.
class frame_writer {
public:
    // After a handshake that agreed permessage-deflate: data messages are compressed
    // with the server's window and context-takeover parameters.
    void enable_deflate(const deflate_params& params);
    bool compressing() const { return _deflater.has_value(); }

    // A whole text or binary message, compressed when deflate is on, in frames whose
    // payload is at most `max_frame_payload` bytes (0: a single frame).
    void message(byte_buffer& out, message_kind kind, std::string_view payload,
                 std::size_t max_frame_payload = 0);

    static write_status ping(byte_buffer& out, std::string_view payload);
    static write_status pong(byte_buffer& out, std::string_view payload);
    // A close frame with `code` and `reason`; code 1005 (no_status) writes a close frame
    // without a body, the answer to a close that carried no code (§5.5.1).
    static write_status close(byte_buffer& out, std::uint16_t code, std::string_view reason = {});

    void reset() { _deflater.reset(); }

private:
    std::optional<deflater> _deflater;
};

}  // namespace dbridge::ws

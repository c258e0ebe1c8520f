#include "ws/frame.h"

#include <algorithm>
#include <cstring>

namespace dbridge::ws {

namespace {

constexpr std::size_t k_inflated_piece = 16 * 1024;

bool is_control(std::uint8_t op) { return (op & 0x8) != 0; }

std::uint16_t read_u16(const char* p) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(p[0]) << 8) | static_cast<unsigned char>(p[1]));
}

frame_result event(frame_event e, std::size_t consumed, std::string_view data = {}) {
    frame_result r;
    r.event = e;
    r.consumed = consumed;
    r.data = data;
    return r;
}

frame_result need_more(std::size_t consumed) { return event(frame_event::need_more, consumed); }

}  // namespace

bool is_valid_close_code(std::uint16_t code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

frame_parser::frame_parser(const parser_limits& limits) : _limits(limits) {}

void frame_parser::enable_deflate(const deflate_params& params) {
    _inflater.emplace(params.client_max_window_bits, params.client_no_context_takeover);
    if (!_inflated) {
        _inflated = std::make_unique_for_overwrite<char[]>(k_inflated_piece);
    }
}

void frame_parser::reset() {
    const parser_limits limits = _limits;
    std::unique_ptr<char[]> inflated = std::move(_inflated);
    *this = frame_parser(limits);
    _inflated = std::move(inflated);
}

frame_result frame_parser::fail(std::uint16_t code, const char* reason) {
    _state = state::failed;
    _error_code = code;
    _error_reason = reason;
    return event(frame_event::error, 0);
}

void frame_parser::unmask(char* payload, std::size_t n) {
    // §5.3: octet i of the payload is XORed with octet i mod 4 of the masking key.
    std::uint8_t key[8];
    for (int i = 0; i < 8; ++i) {
        key[i] = _mask[(_mask_offset + i) & 3];
    }
    std::uint64_t word_key;
    std::memcpy(&word_key, key, 8);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, payload + i, 8);
        w ^= word_key;
        std::memcpy(payload + i, &w, 8);
    }
    for (; i < n; ++i) {
        payload[i] = static_cast<char>(payload[i] ^ key[i & 7]);
    }
    _mask_offset = static_cast<std::uint8_t>((_mask_offset + n) & 3);
}

frame_result frame_parser::parse(std::span<char> window) {
    std::size_t consumed = 0;
    while (true) {
        frame_result r;
        const state before = _state;
        switch (_state) {
        case state::failed:
            return event(frame_event::error, 0);
        case state::closed:
            // §5.5.1: nothing after a close frame is processed.
            return need_more(window.size());
        case state::header:
            r = read_header(window, consumed);
            break;
        case state::payload:
            r = _compressed ? read_compressed(window, consumed) : read_payload(window, consumed);
            break;
        case state::inflate_tail:
            r = finish_compressed(consumed);
            break;
        }
        // Progress without an event (a header read, an empty non-final frame, input
        // inflated to nothing): go on with what else the window holds.
        if (r.event == frame_event::need_more && (r.consumed != consumed || _state != before)) {
            consumed = r.consumed;
            continue;
        }
        return r;
    }
}

// The frame header (§5.2). Every check needs only bytes already present, and they run
// in the same order on every call, so the outcome does not depend on how the input was
// split. The header is not consumed until it is whole, nor a control frame until its
// payload is there too (at most 131 bytes): a ping, pong or close is handed out whole.
frame_result frame_parser::read_header(std::span<char> window, std::size_t consumed) {
    const char* p = window.data() + consumed;
    const std::size_t avail = window.size() - consumed;
    if (avail < 2) {
        return need_more(consumed);
    }
    const auto b0 = static_cast<std::uint8_t>(p[0]);
    const auto b1 = static_cast<std::uint8_t>(p[1]);
    const bool fin = (b0 & 0x80) != 0;
    const bool rsv1 = (b0 & 0x40) != 0;
    const std::uint8_t op = b0 & 0x0f;
    const bool masked = (b1 & 0x80) != 0;
    const std::uint8_t length7 = b1 & 0x7f;

    // §5.2: RSV2 and RSV3 belong to extensions we never negotiate; RSV1 is
    // permessage-deflate's "compressed" bit, on the first frame of a data message only
    // (RFC 7692 §6, §6.1).
    if ((b0 & 0x30) != 0) {
        return fail(close_code::protocol_error, "reserved bit set");
    }
    if (op != 0x0 && op != 0x1 && op != 0x2 && op != 0x8 && op != 0x9 && op != 0xa) {
        return fail(close_code::protocol_error, "unknown opcode");
    }
    if (rsv1 && (!_inflater || op == 0x0 || is_control(op))) {
        return fail(close_code::protocol_error, "RSV1 set without a compressed message start");
    }
    // §5.5: control frames are never fragmented and carry at most 125 bytes.
    if (is_control(op) && !fin) {
        return fail(close_code::protocol_error, "fragmented control frame");
    }
    if (is_control(op) && length7 > 125) {
        return fail(close_code::protocol_error, "control frame over 125 bytes");
    }
    // §5.1: a server must close on an unmasked client frame.
    if (!masked) {
        return fail(close_code::protocol_error, "unmasked client frame");
    }
    // §5.4: a continuation needs a message in progress, and a new data message may not
    // start inside another.
    if (op == 0x0 && !_in_message) {
        return fail(close_code::protocol_error, "continuation frame without a message");
    }
    if ((op == 0x1 || op == 0x2) && _in_message) {
        return fail(close_code::protocol_error, "new message inside a fragmented message");
    }

    std::size_t header = 2;
    std::uint64_t length = length7;
    if (length7 == 126) {
        if (avail < 4) {
            return need_more(consumed);
        }
        length = read_u16(p + 2);
        header = 4;
        // §5.2: "the minimal number of bytes MUST be used to encode the length".
        if (length < 126) {
            return fail(close_code::protocol_error, "length not minimally encoded");
        }
    } else if (length7 == 127) {
        if (avail < 10) {
            return need_more(consumed);
        }
        length = 0;
        for (int i = 0; i < 8; ++i) {
            length = (length << 8) | static_cast<unsigned char>(p[2 + i]);
        }
        header = 10;
        // §5.2: the most significant bit of a 64-bit length must be 0.
        if ((length >> 63) != 0) {
            return fail(close_code::protocol_error, "64-bit length with the top bit set");
        }
        if (length < 65536) {
            return fail(close_code::protocol_error, "length not minimally encoded");
        }
    }
    if (!is_control(op)) {
        // Refused from the header alone, before any of the payload is read.
        // Uncompressed, the frame lengths are the message size; compressed, they are
        // capped too, so a stream that inflates to little cannot run on forever.
        const bool compressed = op == 0x0 ? _compressed : rsv1;
        const std::uint64_t so_far = op == 0x0 ? (compressed ? _wire_size : _message_size) : 0;
        if (length > _limits.max_message_size - so_far) {
            return fail(close_code::message_too_big, "message too big");
        }
    }
    if (avail < header + 4) {
        return need_more(consumed);
    }
    std::memcpy(_mask, p + header, 4);
    header += 4;

    if (is_control(op)) {
        if (avail < header + length) {
            return need_more(consumed);
        }
        _mask_offset = 0;
        char* payload = window.data() + consumed + header;
        unmask(payload, length);
        const std::size_t end = consumed + header + length;
        if (op == 0x8) {
            return read_close({payload, length}, end);
        }
        return event(op == 0x9 ? frame_event::ping : frame_event::pong, end, std::string_view(payload, length));
    }

    if (op != 0x0) {
        _in_message = true;
        _compressed = rsv1;
        _kind = op == 0x1 ? message_kind::text : message_kind::binary;
        _message_size = 0;
        _wire_size = 0;
        _utf8.reset();
    }
    _wire_size += length;
    _fin = fin;
    _remaining = length;
    _mask_offset = 0;
    _unmasked_ahead = 0;
    _state = state::payload;
    return need_more(consumed + header);
}

// A close frame (§5.5.1): empty, or a 2-byte code and a UTF-8 reason.
frame_result frame_parser::read_close(std::span<char> frame, std::size_t consumed) {
    if (frame.size() == 1) {
        return fail(close_code::protocol_error, "close frame with a 1-byte body");
    }
    std::uint16_t code = close_code::no_status;
    std::string_view reason;
    if (frame.size() >= 2) {
        code = read_u16(frame.data());
        if (!is_valid_close_code(code)) {
            return fail(close_code::protocol_error, "invalid close code");
        }
        reason = std::string_view(frame.data() + 2, frame.size() - 2);
        if (!is_valid_utf8(reason)) {
            return fail(close_code::invalid_payload, "close reason is not UTF-8");
        }
    }
    _state = state::closed;
    frame_result r = event(frame_event::close, consumed, reason);
    r.close_code = code;
    return r;
}

frame_result frame_parser::read_payload(std::span<char> window, std::size_t consumed) {
    const std::size_t avail =
        static_cast<std::size_t>(std::min<std::uint64_t>(_remaining, window.size() - consumed));
    if (avail == 0 && _remaining != 0) {
        return need_more(consumed);
    }
    char* piece = window.data() + consumed;
    unmask(piece, avail);
    _remaining -= avail;
    consumed += avail;
    const bool frame_done = _remaining == 0;
    if (frame_done) {
        _state = state::header;
    }
    if (avail == 0 && !(frame_done && _fin)) {
        return need_more(consumed);  // an empty non-final frame: nothing to hand out
    }
    return deliver({piece, avail}, frame_done && _fin, consumed);
}

frame_result frame_parser::read_compressed(std::span<char> window, std::size_t consumed) {
    const std::size_t avail =
        static_cast<std::size_t>(std::min<std::uint64_t>(_remaining, window.size() - consumed));
    char* input = window.data() + consumed;
    _unmasked_ahead = std::min(_unmasked_ahead, avail);  // only a caller breaking the contract shrinks it
    // zlib may take only part of the input when the output piece fills up. The rest
    // stays in the caller's window, already unmasked, and is given again next time.
    unmask(input + _unmasked_ahead, avail - _unmasked_ahead);
    _unmasked_ahead = avail;
    if (_remaining != 0 && avail == 0) {
        return need_more(consumed);
    }
    const inflater::step s = _inflater->inflate({input, avail}, {_inflated.get(), k_inflated_piece});
    _remaining -= s.consumed;
    _unmasked_ahead -= s.consumed;
    consumed += s.consumed;
    if (_remaining == 0) {
        _state = _fin ? state::inflate_tail : state::header;
    }
    // The output is checked before a DEFLATE error is reported, so that the first
    // problem in the message is the one reported, however the input was split.
    if (s.produced != 0) {
        frame_result r = deliver({_inflated.get(), s.produced}, false, consumed);
        if (r.event == frame_event::error || s.result != inflater::status::error) {
            return r;
        }
    }
    if (s.result == inflater::status::error) {
        return fail(close_code::invalid_payload, "invalid compressed data");
    }
    return need_more(consumed);
}

frame_result frame_parser::finish_compressed(std::size_t consumed) {
    const inflater::step s = _inflater->finish({_inflated.get(), k_inflated_piece});
    const bool done = s.result == inflater::status::finished;
    if (done) {
        _state = state::header;
    }
    if (s.produced != 0 || done) {
        frame_result r = deliver({_inflated.get(), s.produced}, done, consumed);
        if (r.event == frame_event::error || s.result != inflater::status::error) {
            return r;
        }
    }
    if (s.result == inflater::status::error) {
        return fail(close_code::invalid_payload, "invalid compressed data");
    }
    // finish() stops short only when its output is full, and then it produced bytes.
    return fail(close_code::internal_error, "inflating the message tail made no progress");
}

frame_result frame_parser::deliver(std::string_view piece, bool message_end, std::size_t consumed) {
    // Only the bytes within the limit are validated: past it, the size is the error,
    // wherever the piece boundaries fell.
    const std::uint64_t allowed = _limits.max_message_size - _message_size;
    const std::size_t checked = static_cast<std::size_t>(std::min<std::uint64_t>(allowed, piece.size()));
    if (_kind == message_kind::text && !_utf8.feed(piece.substr(0, checked))) {
        return fail(close_code::invalid_payload, "invalid UTF-8 in a text message");
    }
    if (piece.size() > allowed) {
        return fail(close_code::message_too_big, "message too big");
    }
    _message_size += piece.size();
    if (message_end) {
        // §8.1: the message must not end inside a code point.
        if (_kind == message_kind::text && !_utf8.complete()) {
            return fail(close_code::invalid_payload, "invalid UTF-8 in a text message");
        }
        _in_message = false;
    }
    frame_result r = event(frame_event::data, consumed, piece);
    r.kind = _kind;
    r.message_end = message_end;
    return r;
}

// ---- writing ------------------------------------------------------------------------------

std::size_t put_frame_header(char* dst, opcode op, bool fin, bool rsv1, std::uint64_t payload_size) {
    dst[0] = static_cast<char>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | static_cast<std::uint8_t>(op));
    if (payload_size < 126) {
        dst[1] = static_cast<char>(payload_size);
        return 2;
    }
    if (payload_size < 65536) {
        dst[1] = 126;
        dst[2] = static_cast<char>(payload_size >> 8);
        dst[3] = static_cast<char>(payload_size);
        return 4;
    }
    dst[1] = 127;
    for (int i = 0; i < 8; ++i) {
        dst[2 + i] = static_cast<char>(payload_size >> (56 - 8 * i));
    }
    return 10;
}

namespace {

void put_frame(byte_buffer& out, opcode op, bool fin, bool rsv1, std::string_view payload) {
    char* const begin = out.prepare(max_frame_header + payload.size());
    const std::size_t header = put_frame_header(begin, op, fin, rsv1, payload.size());
    if (!payload.empty()) {
        std::memcpy(begin + header, payload.data(), payload.size());
    }
    out.commit(header + payload.size());
}

}  // namespace

void frame_writer::enable_deflate(const deflate_params& params) {
    _deflater.emplace(params.server_max_window_bits, params.server_no_context_takeover, params.compression_level,
                      params.memory_level);
}

void frame_writer::message(byte_buffer& out, message_kind kind, std::string_view payload,
                           std::size_t max_frame_payload) {
    const bool compressed = _deflater.has_value();
    if (compressed) {
        payload = _deflater->compress(payload);
    }
    const opcode first = kind == message_kind::text ? opcode::text : opcode::binary;
    if (max_frame_payload == 0 || payload.size() <= max_frame_payload) {
        put_frame(out, first, true, compressed, payload);
        return;
    }
    // §5.4: the first frame has the message's opcode (and RSV1, RFC 7692 §6.1), the
    // rest are continuations, the last has FIN.
    bool first_frame = true;
    while (!payload.empty()) {
        const std::string_view piece = payload.substr(0, max_frame_payload);
        payload.remove_prefix(piece.size());
        put_frame(out, first_frame ? first : opcode::continuation, payload.empty(), first_frame && compressed,
                  piece);
        first_frame = false;
    }
}

write_status frame_writer::ping(byte_buffer& out, std::string_view payload) {
    if (payload.size() > 125) {
        return write_status::control_too_long;
    }
    put_frame(out, opcode::ping, true, false, payload);
    return write_status::ok;
}

write_status frame_writer::pong(byte_buffer& out, std::string_view payload) {
    if (payload.size() > 125) {
        return write_status::control_too_long;
    }
    put_frame(out, opcode::pong, true, false, payload);
    return write_status::ok;
}

write_status frame_writer::close(byte_buffer& out, std::uint16_t code, std::string_view reason) {
    if (code == close_code::no_status) {
        if (!reason.empty()) {
            return write_status::invalid_close_reason;  // a reason needs a code (§5.5.1)
        }
        put_frame(out, opcode::close, true, false, {});
        return write_status::ok;
    }
    if (!is_valid_close_code(code)) {
        return write_status::invalid_close_code;
    }
    if (reason.size() > 123 || !is_valid_utf8(reason)) {
        return write_status::invalid_close_reason;
    }
    char body[125];
    body[0] = static_cast<char>(code >> 8);
    body[1] = static_cast<char>(code);
    if (!reason.empty()) {  // an empty view may carry a null pointer
        std::memcpy(body + 2, reason.data(), reason.size());
    }
    put_frame(out, opcode::close, true, false, std::string_view(body, 2 + reason.size()));
    return write_status::ok;
}

}  // namespace dbridge::ws

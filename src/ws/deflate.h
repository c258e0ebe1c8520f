// permessage-deflate (RFC 7692): negotiation, and the two zlib streams of a connection.
//
// negotiate_deflate() picks the first offer the server can honour (§5.1, §7.1) and
// gives the parameters both sides then use plus the Sec-WebSocket-Extensions value to
// answer with. The frame parser inflates with the client's parameters and the frame
// writer deflates with the server's: frame_parser::enable_deflate() and
// frame_writer::enable_deflate() take the negotiated `deflate_params`.
//
// deflater and inflater are symmetric (a test can play the client with them): each is
// one raw DEFLATE stream with a window size and a context-takeover rule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "buffer/byte_buffer.h"
#include "ws/handshake.h"

struct z_stream_s;

namespace dbridge::ws {

// What this server is willing to do. The defaults accept any offer as made (as
// websockets' server does for uvicorn); lower window bits or the no_context_takeover
// flags trade compression for memory per connection.
struct deflate_config {
    bool enabled = true;
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    int server_max_window_bits = 15;  // 9..15: zlib cannot deflate with an 8-bit window
    int client_max_window_bits = 15;  // 8..15; below 15 needs the offer's client_max_window_bits
    int compression_level = 6;        // zlib's default
    int memory_level = 8;             // zlib's default
};

// The agreed parameters (§7.1), as both sides apply them.
struct deflate_params {
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    int server_max_window_bits = 15;
    int client_max_window_bits = 15;
    int compression_level = 6;
    int memory_level = 8;
};

struct deflate_agreement {
    deflate_params params;
    std::string response;  // the Sec-WebSocket-Extensions value, "permessage-deflate; ..."
};

// The first permessage-deflate offer in `offers` the server can accept, or nothing
// (then the connection runs uncompressed and no extension is answered). An offer is
// declined when it has an unknown, repeated or ill-valued parameter (§7.1), asks for
// server_max_window_bits=8 (zlib cannot honour it), or when the server wants a smaller
// client window than 15 and the client did not offer client_max_window_bits (§7.1.2.2).
std::optional<deflate_agreement> negotiate_deflate(std::span<const extension_offer> offers,
                                                   const deflate_config& config = {});

// Compresses whole messages (§7.2.1).
class deflater {
public:
    deflater(int window_bits, bool no_context_takeover, int level = 6, int memory_level = 8);
    ~deflater();
    deflater(deflater&&) noexcept;
    deflater& operator=(deflater&&) noexcept;

    // The compressed payload of one message, without the 00 00 FF FF tail of the final
    // sync flush (§7.2.1). Valid until the next call. Empty input compresses to the
    // single byte 00 (§7.2.3.6).
    std::string_view compress(std::string_view message);

private:
    std::unique_ptr<z_stream_s> _stream;  // zlib keeps a pointer to it: it must not move
    bool _no_context_takeover;
    byte_buffer _output;  // capacity kept between messages, up to a cap
};

// Decompresses messages a piece at a time into a caller-given span, so that the
// inflated size can be capped without ever allocating it (a deflate bomb).
class inflater {
public:
    inflater(int window_bits, bool no_context_takeover);
    ~inflater();
    inflater(inflater&&) noexcept;
    inflater& operator=(inflater&&) noexcept;

    enum class status : std::uint8_t {
        ok,        // went as far as input and output allow
        finished,  // (finish() only) the message is complete, all output given
        error,     // the data is not valid DEFLATE
    };
    struct step {
        status result = status::ok;
        std::size_t consumed = 0;  // input bytes taken
        std::size_t produced = 0;  // bytes written to the front of `out`
    };

    // Inflates message payload bytes. Returns when all input is taken or `out` is full.
    step inflate(std::string_view input, std::span<char> out);

    // After the message's last payload byte: inflates the 00 00 FF FF tail the sender
    // removed (§7.2.2) and drains zlib. Call again while it gives `ok` (out was full);
    // `finished` ends the message (and resets the stream under no_context_takeover).
    step finish(std::span<char> out);

private:
    step run(std::string_view input, std::span<char> out);
    void restart_keeping_window();

    std::unique_ptr<z_stream_s> _stream;
    bool _no_context_takeover;
    std::uint8_t _tail_fed = 0;  // bytes of the 4-byte tail inflated so far
};

}  // namespace dbridge::ws

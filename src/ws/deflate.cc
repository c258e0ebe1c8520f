#include "ws/deflate.h"

#include <zlib.h>

#include <algorithm>
#include <new>
#include <stdexcept>

namespace dbridge::ws {

namespace {

// §7.2.1: a sync flush ends with an empty stored block, 00 00 FF FF, which the sender
// removes and the receiver puts back (§7.2.2).
constexpr char k_tail[4] = {'\x00', '\x00', '\xff', '\xff'};

// A compressed message larger than this does not keep its buffer for the next one.
constexpr std::size_t k_kept_output = 64 * 1024;

struct offer_params {
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    int server_max_window_bits = 0;  // 0: not offered
    bool client_max_window_bits = false;
    int client_max_window_bits_value = 0;  // 0: offered without a value
};

// "8".."15" without leading zeros (§7.1.2.1, §7.1.2.2: 1*DIGIT, 8 to 15).
int window_bits(std::string_view v) {
    if (v.empty() || v.size() > 2 || v[0] == '0') {
        return 0;
    }
    int n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') {
            return 0;
        }
        n = n * 10 + (c - '0');
    }
    return n >= 8 && n <= 15 ? n : 0;
}

// The parameters of one offer, or nothing when §7.1 says the offer must be declined: a
// parameter not defined for an offer, a repeated one, or one with an invalid value.
std::optional<offer_params> read_offer(const extension_offer& offer) {
    offer_params p;
    bool seen[4] = {};
    for (const extension_param& param : offer.params) {
        int which;
        if (param.name == "server_no_context_takeover") {
            which = 0;
            if (param.has_value) {
                return std::nullopt;
            }
            p.server_no_context_takeover = true;
        } else if (param.name == "client_no_context_takeover") {
            which = 1;
            if (param.has_value) {
                return std::nullopt;
            }
            p.client_no_context_takeover = true;
        } else if (param.name == "server_max_window_bits") {
            which = 2;
            p.server_max_window_bits = param.has_value ? window_bits(param.value) : 0;
            if (p.server_max_window_bits == 0) {
                return std::nullopt;
            }
        } else if (param.name == "client_max_window_bits") {
            which = 3;
            p.client_max_window_bits = true;
            if (param.has_value) {
                p.client_max_window_bits_value = window_bits(param.value);
                if (p.client_max_window_bits_value == 0) {
                    return std::nullopt;
                }
            }
        } else {
            return std::nullopt;
        }
        if (seen[which]) {
            return std::nullopt;
        }
        seen[which] = true;
    }
    return p;
}

}  // namespace

std::optional<deflate_agreement> negotiate_deflate(std::span<const extension_offer> offers,
                                                   const deflate_config& config) {
    if (!config.enabled) {
        return std::nullopt;
    }
    const int server_limit = std::clamp(config.server_max_window_bits, 9, 15);
    const int client_limit = std::clamp(config.client_max_window_bits, 8, 15);
    for (const extension_offer& offer : offers) {
        if (offer.name != "permessage-deflate") {
            continue;
        }
        const std::optional<offer_params> p = read_offer(offer);
        if (!p) {
            continue;
        }
        deflate_agreement a;
        a.params.compression_level = config.compression_level;
        a.params.memory_level = config.memory_level;
        a.params.server_no_context_takeover = p->server_no_context_takeover || config.server_no_context_takeover;
        a.params.client_no_context_takeover = p->client_no_context_takeover || config.client_no_context_takeover;

        // §7.1.2.1: we must not use a larger window than offered; the response may name
        // a smaller one whether or not the client offered one.
        const int server_bits = std::min(server_limit, p->server_max_window_bits != 0 ? p->server_max_window_bits : 15);
        if (server_bits < 9) {
            continue;  // server_max_window_bits=8: zlib's raw deflate cannot use a 256-byte window
        }
        a.params.server_max_window_bits = server_bits;

        // §7.1.2.2: the client's window can be limited only if it offered the parameter;
        // when it gave a value, ours must not be larger.
        int client_bits = 15;
        if (p->client_max_window_bits) {
            client_bits = std::min(client_limit,
                                   p->client_max_window_bits_value != 0 ? p->client_max_window_bits_value : 15);
        } else if (client_limit < 15) {
            continue;
        }
        a.params.client_max_window_bits = client_bits;

        a.response = "permessage-deflate";
        if (a.params.server_no_context_takeover) {
            a.response += "; server_no_context_takeover";
        }
        if (a.params.client_no_context_takeover) {
            a.response += "; client_no_context_takeover";
        }
        if (p->server_max_window_bits != 0 || server_bits < 15) {
            a.response += "; server_max_window_bits=" + std::to_string(server_bits);
        }
        if (p->client_max_window_bits && (p->client_max_window_bits_value != 0 || client_bits < 15)) {
            a.response += "; client_max_window_bits=" + std::to_string(client_bits);
        }
        return a;
    }
    return std::nullopt;
}

// ---- deflater ---------------------------------------------------------------------------

deflater::deflater(int window_bits, bool no_context_takeover, int level, int memory_level)
    : _stream(std::make_unique<z_stream>()), _no_context_takeover(no_context_takeover) {
    if (window_bits < 9 || window_bits > 15) {
        throw std::invalid_argument("deflate window bits must be 9..15");
    }
    // Negative window bits: raw DEFLATE, no zlib header or checksum (§7.2.1).
    if (deflateInit2(_stream.get(), level, Z_DEFLATED, -window_bits, memory_level, Z_DEFAULT_STRATEGY) != Z_OK) {
        _stream.reset();
        throw std::bad_alloc();
    }
}

deflater::~deflater() {
    if (_stream) {
        deflateEnd(_stream.get());
    }
}

deflater::deflater(deflater&&) noexcept = default;

deflater& deflater::operator=(deflater&& other) noexcept {
    if (this != &other) {
        if (_stream) {
            deflateEnd(_stream.get());
        }
        _stream = std::move(other._stream);
        _no_context_takeover = other._no_context_takeover;
        _output = std::move(other._output);
    }
    return *this;
}

std::string_view deflater::compress(std::string_view message) {
    if (_output.capacity() > k_kept_output) {
        _output.release();
    }
    _output.clear();
    z_stream& s = *_stream;
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
    s.avail_in = static_cast<uInt>(message.size());
    // Input beyond uInt (4 GiB) is fed in slices.
    std::size_t left = message.size() - s.avail_in;
    const std::size_t chunk = std::max<std::size_t>(1024, message.size() / 2 + 64);
    while (true) {
        char* out = _output.prepare(chunk);
        s.next_out = reinterpret_cast<Bytef*>(out);
        s.avail_out = static_cast<uInt>(chunk);
        deflate(&s, Z_SYNC_FLUSH);  // Z_OK, or Z_BUF_ERROR when there was nothing to do
        _output.commit(chunk - s.avail_out);
        if (s.avail_in == 0 && left != 0) {
            const std::size_t more = std::min<std::size_t>(left, 0xffffffffu);
            s.avail_in = static_cast<uInt>(more);
            left -= more;
            continue;
        }
        // The flush is complete when deflate() left output space unused.
        if (s.avail_out != 0 && s.avail_in == 0) {
            break;
        }
    }
    if (_no_context_takeover) {
        deflateReset(&s);
    }
    std::string_view payload = _output.view();
    // Always true after a sync flush; the check keeps a zlib surprise from cutting data.
    if (payload.size() >= 4 && payload.substr(payload.size() - 4) == std::string_view(k_tail, 4)) {
        payload.remove_suffix(4);
    }
    // An empty message right after another gives zlib nothing to flush (Z_BUF_ERROR), yet
    // the payload needs the byte that holds an empty stored block's header bits, whose
    // LEN/NLEN are the tail the receiver appends: 00 (§7.2.3.6).
    if (payload.empty()) {
        payload = std::string_view("\x00", 1);
    }
    return payload;
}

// ---- inflater ---------------------------------------------------------------------------

inflater::inflater(int window_bits, bool no_context_takeover)
    : _stream(std::make_unique<z_stream>()), _no_context_takeover(no_context_takeover) {
    if (window_bits < 8 || window_bits > 15) {
        throw std::invalid_argument("inflate window bits must be 8..15");
    }
    if (inflateInit2(_stream.get(), -window_bits) != Z_OK) {
        _stream.reset();
        throw std::bad_alloc();
    }
}

inflater::~inflater() {
    if (_stream) {
        inflateEnd(_stream.get());
    }
}

inflater::inflater(inflater&&) noexcept = default;

inflater& inflater::operator=(inflater&& other) noexcept {
    if (this != &other) {
        if (_stream) {
            inflateEnd(_stream.get());
        }
        _stream = std::move(other._stream);
        _no_context_takeover = other._no_context_takeover;
        _tail_fed = other._tail_fed;
    }
    return *this;
}

// §7.2.3.3: a sender may end a message with a BFINAL block. zlib then reports the end
// of its stream; the bytes after it start a new one, and with context takeover the new
// one may still refer to the old window, so the window is carried over.
void inflater::restart_keeping_window() {
    z_stream& s = *_stream;
    if (_no_context_takeover) {
        inflateReset(&s);
        return;
    }
    Bytef window[32768];
    uInt length = 0;
    inflateGetDictionary(&s, window, &length);
    inflateReset(&s);
    if (length != 0) {
        inflateSetDictionary(&s, window, length);
    }
}

inflater::step inflater::run(std::string_view input, std::span<char> out) {
    z_stream& s = *_stream;
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    s.avail_in = static_cast<uInt>(input.size());
    s.next_out = reinterpret_cast<Bytef*>(out.data());
    s.avail_out = static_cast<uInt>(out.size());
    step r;
    while (true) {
        const int rc = ::inflate(&s, Z_SYNC_FLUSH);
        if (rc == Z_STREAM_END) {
            restart_keeping_window();
            if (s.avail_in != 0 && s.avail_out != 0) {
                continue;
            }
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            r.result = status::error;
        }
        break;
    }
    r.consumed = input.size() - s.avail_in;
    r.produced = out.size() - s.avail_out;
    return r;
}

inflater::step inflater::inflate(std::string_view input, std::span<char> out) {
    // Callers pass at most a frame's piece in a window; slice anything beyond uInt.
    step total;
    while (true) {
        const std::string_view slice = input.substr(total.consumed, 0x7fffffff);
        const step r = run(slice, out.subspan(total.produced, std::min<std::size_t>(out.size() - total.produced, 0x7fffffff)));
        total.consumed += r.consumed;
        total.produced += r.produced;
        total.result = r.result;
        if (r.result != status::ok || total.consumed == input.size() || total.produced == out.size()) {
            return total;
        }
    }
}

inflater::step inflater::finish(std::span<char> out) {
    step r = run(std::string_view(k_tail + _tail_fed, 4 - _tail_fed), out);
    _tail_fed = static_cast<std::uint8_t>(_tail_fed + r.consumed);
    if (r.result == status::error || _tail_fed < 4 || r.produced == out.size()) {
        return r;  // more output to drain, or broken data
    }
    // A well-formed message ends on a block boundary once the tail (an empty stored
    // block) is read; anything else is a message cut inside a block. zlib reports the
    // boundary as bit 128 of data_type.
    if ((_stream->data_type & 128) == 0) {
        r.result = status::error;
        return r;
    }
    r.result = status::finished;
    _tail_fed = 0;
    if (_no_context_takeover) {
        inflateReset(_stream.get());
    }
    return r;
}

}  // namespace dbridge::ws

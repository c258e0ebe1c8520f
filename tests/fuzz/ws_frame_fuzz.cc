// libFuzzer target for the WebSocket frame parser (with permessage-deflate).
//
// Input: byte 0 chooses the set-up (bit 0: deflate agreed; bit 1: the client does not
// take over context; bits 2-3: the message size limit), byte 1 where the rest is cut in
// two; the rest is what a client sends. Each input is parsed whole, in the two pieces,
// and one byte at a time, playing the connection's side of the window contract.
// Checked on every call: consumed fits the window, views lie where they may, control
// payloads obey their limits, `error` is sticky and a close ends parsing. Checked per
// message: it stays within the limit and a text message is UTF-8 by an independent
// decoder. Checked across the runs: the same messages, control frames and error
// whatever the split.
#include "ws/frame.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using dbridge::ws::deflate_params;
using dbridge::ws::frame_event;
using dbridge::ws::frame_parser;
using dbridge::ws::frame_result;
using dbridge::ws::message_kind;
using dbridge::ws::parser_limits;

namespace {

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "frame_parser invariant violated: %s\n", what);
        std::abort();
    }
}

// UTF-8 by decoding each code point and checking its value, a different method from
// the validator's byte ranges.
bool decodes_as_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        int n;
        std::uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size()) {
            return false;  // the sequence is cut off by the end
        }
        for (int k = 1; k <= n; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (d & 0x3f);
        }
        const std::uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

struct setup {
    bool deflate = false;
    bool client_no_context_takeover = false;
    std::uint64_t max_message_size = 0;
};

std::vector<std::string> run(std::string_view input, const setup& s, const std::vector<std::size_t>& cuts) {
    parser_limits lim;
    lim.max_message_size = s.max_message_size;
    frame_parser parser(lim);
    if (s.deflate) {
        deflate_params p;
        p.client_no_context_takeover = s.client_no_context_takeover;
        parser.enable_deflate(p);
    }
    std::vector<std::string> t;
    std::string buffer;
    std::size_t start = 0;
    std::size_t fed = 0;
    std::size_t calls = 0;
    std::string message;
    std::optional<message_kind> kind;
    bool closed = false;
    for (std::size_t piece = 0; piece <= cuts.size(); ++piece) {
        const std::size_t to = piece < cuts.size() ? cuts[piece] : input.size();
        buffer.append(input.substr(fed, to - fed));
        fed = to;
        for (;;) {
            // Each call consumes bytes, changes state or asks for more; inflating a piece
            // may take a call per 16 KiB produced, bounded by the size limit.
            require(++calls <= 3 * input.size() + 16 + 2 * (s.max_message_size >> 14), "no progress");
            const std::span<char> window(buffer.data() + start, buffer.size() - start);
            const frame_result r = parser.parse(window);
            require(r.consumed <= window.size(), "consumed > window size");
            const char* lo = window.data();
            const char* hi = window.data() + r.consumed;
            auto released = [&](std::string_view v) {
                return v.empty() || (v.data() >= lo && v.data() + v.size() <= hi);
            };
            require(!closed || (r.event == frame_event::need_more && r.consumed == window.size()),
                    "bytes after a close are not ignored");
            switch (r.event) {
            case frame_event::need_more:
                break;
            case frame_event::data:
                require(!kind || *kind == r.kind, "kind changed inside a message");
                require(s.deflate || released(r.data), "data view outside the released bytes");
                kind = r.kind;
                message.append(r.data);
                require(message.size() <= s.max_message_size, "message over the limit");
                require(parser.in_message() == !r.message_end, "in_message after a piece");
                if (r.message_end) {
                    require(r.kind == message_kind::binary || decodes_as_utf8(message), "text is not UTF-8");
                    t.push_back((r.kind == message_kind::text ? "text:" : "binary:") + message);
                    message.clear();
                    kind.reset();
                }
                break;
            case frame_event::ping:
            case frame_event::pong:
                require(released(r.data), "control payload outside the released bytes");
                require(r.data.size() <= 125, "control payload over 125 bytes");
                t.push_back((r.event == frame_event::ping ? "ping:" : "pong:") + std::string(r.data));
                break;
            case frame_event::close:
                require(released(r.data), "close reason outside the released bytes");
                require(r.data.size() <= 123, "close reason over 123 bytes");
                require(decodes_as_utf8(r.data), "close reason is not UTF-8");
                require(r.close_code == 1005 ? r.data.empty() : dbridge::ws::is_valid_close_code(r.close_code),
                        "close code");
                t.push_back("close:" + std::to_string(r.close_code) + ":" + std::string(r.data));
                closed = true;
                break;
            case frame_event::error: {
                require(r.consumed == 0, "error consumed bytes");
                const auto code = parser.error_code();
                require(code == 1002 || code == 1007 || code == 1009, "unexpected close code");
                require(parser.error_reason() != nullptr && parser.error_reason()[0] != '\0', "no reason");
                for (int i = 0; i < 2; ++i) {
                    const frame_result again = parser.parse(i == 0 ? window : std::span<char>{});
                    require(again.event == frame_event::error && again.consumed == 0, "error not sticky");
                }
                t.push_back("error:" + std::to_string(code));
                return t;
            }
            }
            // Drop what was released and scribble over it: a parser that kept looking
            // at released bytes would then differ between runs.
            for (std::size_t i = start; i < start + r.consumed; ++i) {
                buffer[i] = '\x7f';
            }
            start += r.consumed;
            if (r.event == frame_event::need_more) {
                break;
            }
        }
        // Move the unconsumed bytes to the front now and then, as a real buffer does.
        if (start > buffer.size() / 2) {
            buffer.erase(0, start);
            start = 0;
        }
    }
    return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    setup s;
    s.deflate = (data[0] & 1) != 0;
    s.client_no_context_takeover = (data[0] & 2) != 0;
    constexpr std::uint64_t limits[] = {16 * 1024 * 1024, 64, 4096, 100000};
    s.max_message_size = limits[(data[0] >> 2) & 3];
    const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
    const std::size_t cut = input.size() * data[1] / 255;

    std::vector<std::size_t> bytewise;
    for (std::size_t i = 1; i < input.size(); ++i) {
        bytewise.push_back(i);
    }
    const std::vector<std::string> whole = run(input, s, {});
    const std::vector<std::string> split = run(input, s, {cut});
    require(whole == split, "events differ between whole and split input");
    const std::vector<std::string> one_by_one = run(input, s, bytewise);
    require(whole == one_by_one, "events differ between whole and bytewise input");
    return 0;
}

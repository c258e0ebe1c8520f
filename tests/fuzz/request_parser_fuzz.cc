// libFuzzer target for the request parser; built a second time with
// DBRIDGE_FUZZ_CHUNKED_BODY as fuzz_chunked_body, where every input follows a fixed
// chunked request head, so the mutations go to the chunked decoder (sizes, extensions,
// trailers, what follows the last chunk) instead of to getting past the head.
//
// Input: the first byte picks where the rest is cut in two; the rest is the bytes a
// client sends. Each input is parsed whole, in the two pieces, and one byte per call,
// under the default limits and under small ones (so every limit is reachable), playing
// the connection's side of the window contract. Checked on every call: consumed fits
// the window, views lie inside the window (body views inside the released prefix), a
// head is not released while it is read, and `error` is sticky. Checked across the runs:
// the same events, heads, body bytes and error status whatever the split.
#include "http1/request_parser.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using dbridge::http1::body_framing;
using dbridge::http1::limits;
using dbridge::http1::parse_event;
using dbridge::http1::parse_result;
using dbridge::http1::request_parser;

namespace {

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "request_parser invariant violated: %s\n", what);
        std::abort();
    }
}

// A record of everything a connection would act on. Body events are merged, because
// how body bytes are grouped into events legitimately depends on the split.
struct transcript {
    std::vector<std::string> events;

    void add(std::string event) { events.push_back(std::move(event)); }
    void add_body(std::string_view bytes) {
        if (events.empty() || events.back().rfind("body:", 0) != 0) {
            events.emplace_back("body:");
        }
        events.back().append(bytes);
    }
};

std::string describe_head(const request_parser& parser) {
    const auto& h = parser.head();
    std::string s = "head:";
    s.append(h.method).append(" ").append(h.target).append(" 1.").append(std::to_string(h.version_minor));
    s.append(" f=").append(std::to_string(static_cast<int>(h.framing)));
    s.append(" cl=").append(std::to_string(h.content_length));
    s.append(h.keep_alive ? " ka" : " close");
    s.append(h.expect_continue ? " 100" : "");
    s.append(h.upgrade ? " up" : "");
    for (std::size_t i = 0; i < h.header_count(); ++i) {
        const auto f = h.header(i);
        s.append("|").append(f.name).append(":").append(f.value);
    }
    return s;
}

transcript run(std::string_view input, const limits& lim, const std::vector<std::size_t>& cuts) {
    transcript t;
    request_parser parser(lim);
    std::string buffer;  // the connection's buffer; [start, end) is unconsumed
    std::size_t start = 0;
    bool reading_head = true;
    body_framing framing = body_framing::none;
    std::uint64_t content_length = 0;
    std::uint64_t message_body = 0;
    std::size_t calls = 0;
    std::size_t fed = 0;
    for (std::size_t piece = 0; piece <= cuts.size(); ++piece) {
        const std::size_t to = piece < cuts.size() ? cuts[piece] : input.size();
        buffer.append(input.substr(fed, to - fed));
        fed = to;
        for (;;) {
            // Every call consumes bytes, changes state, or asks for more: a bound on the
            // number of calls catches a parser that spins.
            require(++calls <= 3 * input.size() + 16, "no progress");
            const std::string_view window = std::string_view(buffer).substr(start);
            const parse_result r = parser.parse(window);
            require(r.consumed <= window.size(), "consumed > window size");
            switch (r.event) {
            case parse_event::need_more:
                require(!reading_head || r.consumed == 0, "head bytes released before the head event");
                break;
            case parse_event::head: {
                require(reading_head, "head while in a body");
                require(r.consumed > 0, "empty head");
                const auto& h = parser.head();
                const char* lo = window.data();
                const char* hi = window.data() + r.consumed;
                auto inside = [&](std::string_view v) { return v.data() >= lo && v.data() + v.size() <= hi; };
                require(h.base == lo, "head base is not the window");
                require(inside(h.method) && inside(h.target), "request line view outside the head");
                require(!h.method.empty() && !h.target.empty(), "empty method or target");
                require(h.version_minor <= 1, "version");
                for (std::size_t i = 0; i < h.header_count(); ++i) {
                    const auto f = h.header(i);
                    require(inside(f.name) && inside(f.value), "field view outside the head");
                }
                require(parser.in_message(), "not in a message after head");
                t.add(describe_head(parser));
                reading_head = false;
                framing = h.framing;
                content_length = h.content_length;
                message_body = 0;
                break;
            }
            case parse_event::body:
                require(!reading_head, "body before head");
                require(!r.body.empty(), "empty body event");
                require(r.body.data() >= window.data() &&
                            r.body.data() + r.body.size() <= window.data() + r.consumed,
                        "body view outside the released bytes");
                message_body += r.body.size();
                require(lim.max_body == 0 || message_body <= lim.max_body, "body bytes beyond max_body");
                require(framing != body_framing::none, "body bytes for a message without a body");
                require(framing != body_framing::content_length || message_body <= content_length,
                        "body bytes beyond Content-Length");
                t.add_body(r.body);
                break;
            case parse_event::end:
                require(!reading_head, "end before head");
                require(!parser.in_message(), "in a message after end");
                require(framing != body_framing::content_length || message_body == content_length,
                        "end before Content-Length bytes");
                t.add("end");
                reading_head = true;
                break;
            case parse_event::error: {
                require(r.consumed == 0, "error consumed bytes");
                const int status = parser.error_status();
                require(status == 400 || status == 413 || status == 414 || status == 417 || status == 431 ||
                            status == 501 || status == 505,
                        "unexpected status");
                require(parser.error_reason() != nullptr && parser.error_reason()[0] != '\0', "no reason");
                for (int i = 0; i < 2; ++i) {
                    const parse_result again = parser.parse(i == 0 ? window : std::string_view{});
                    require(again.event == parse_event::error && again.consumed == 0,
                            "error state not sticky");
                }
                require(parser.error_status() == status, "error status changed");
                t.add("error:" + std::to_string(status));
                return t;
            }
            }
            // Drop what was released, and scribble over it: a parser that kept looking
            // at released bytes would then differ between runs.
            for (std::size_t i = start; i < start + r.consumed; ++i) {
                buffer[i] = '\x7f';
            }
            start += r.consumed;
            if (r.event == parse_event::need_more) {
                break;
            }
        }
        // Move the unconsumed bytes to the front now and then, as a real buffer does;
        // the parser must hold offsets, never pointers.
        if (start > buffer.size() / 2) {
            buffer.erase(0, start);
            start = 0;
        }
    }
    return t;
}

limits small_limits() {
    limits l;
    l.max_request_line = 40;
    l.max_header_bytes = 120;
    l.max_header_count = 4;
    l.max_body = 24;
    l.max_chunk_line = 12;
    l.max_trailer_bytes = 24;
    return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
#ifdef DBRIDGE_FUZZ_CHUNKED_BODY
    std::string framed = "POST /c HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n";
    framed.append(input);
    input = framed;
#endif
    const std::size_t cut = input.size() * data[0] / 255;

    std::vector<std::size_t> bytewise;
    for (std::size_t i = 1; i < input.size(); ++i) {
        bytewise.push_back(i);
    }

    for (const limits& lim : {limits{}, small_limits()}) {
        const transcript whole = run(input, lim, {});
        const transcript split = run(input, lim, {cut});
        require(whole.events == split.events, "events differ between whole and split input");
        const transcript one_by_one = run(input, lim, bytewise);
        require(whole.events == one_by_one.events, "events differ between whole and bytewise input");
    }
    return 0;
}

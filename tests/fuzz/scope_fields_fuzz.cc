// libFuzzer target for the scope builder's byte work: asgi/scope_fields.h (the request
// target becomes raw_path, query_string and the percent-decoded path; header names are
// lower-cased) and asgi/forwarded_headers.h (the X-Forwarded-For/-Proto text a trusted
// proxy sends). The input is used whole as a target and as a field name, and cut at '\n'
// into header fields (the first byte of each picks its name); the functions must hold for
// any bytes, not only for what the parser lets through.
//
// Checked: raw_path and query_string are views inside the target ("/" aside), with the
// '?' between them and nothing after a '#'; an origin-form target is exactly raw_path,
// or raw_path '?' query_string; decoding never grows, is the identity without a '%', and
// undoes percent-encoding of every byte; lower-casing keeps the length, leaves no
// upper-case ASCII letter, changes nothing else, and is idempotent; the X-Forwarded-For
// walk visits what splitting the ", "-joined fields on ',' gives, right to left, each entry
// stripped of Python whitespace only; host and port lie inside their entry; the scheme is
// the last X-Forwarded-Proto when it is one of four values. ASan checks that
// nothing reads or writes outside the buffers given (each exactly as large as promised).
#include "forwarded_headers.h"
#include "scope_fields.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using dbridge::asgi::first_forwarded_for;
using dbridge::asgi::forwarded_for_entries;
using dbridge::asgi::forwarded_proto;
using dbridge::asgi::lower_case_field_name;
using dbridge::asgi::percent_decode;
using dbridge::asgi::split_host_port;
using dbridge::asgi::split_target;
using dbridge::asgi::strip_python_space;
using dbridge::http1::request_head;

namespace {

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "scope_fields invariant violated: %s\n", what);
        std::abort();
    }
}

bool inside(std::string_view part, std::string_view whole) {
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void check_split(std::string_view target) {
    auto [path, query] = split_target(target);
    require(path.find('#') == std::string_view::npos && query.find('#') == std::string_view::npos,
            "a fragment reached path or query");
    require(path.find('?') == std::string_view::npos, "'?' in raw_path");
    if (!query.empty()) {
        require(inside(query, target), "query_string outside the target");
        require(query.data() > target.data() && query.data()[-1] == '?',
                "query_string does not follow a '?'");
    }
    if (path == "/" && !inside(path, target)) {
        return;  // absolute-form without a path
    }
    require(inside(path, target), "raw_path outside the target");
    if (!target.empty() && target[0] == '/') {
        // origin-form: the target up to a '#' is raw_path, or raw_path '?' query_string.
        std::string_view sent = target.substr(0, target.find('#'));
        require(path.data() == target.data(), "origin-form raw_path does not start the target");
        if (path.size() == sent.size()) {
            require(query.empty(), "a query without a '?'");
        } else {
            require(sent[path.size()] == '?', "raw_path does not end at the '?'");
            require(query.data() == sent.data() + path.size() + 1 &&
                        query.size() == sent.size() - path.size() - 1,
                    "query_string is not the rest of the target");
        }
    }
}

void check_decode(std::string_view raw) {
    // Exactly raw.size() bytes: ASan catches a write past the promised bound.
    auto out = std::make_unique<char[]>(raw.size());
    std::size_t size = percent_decode(raw, out.get());
    require(size <= raw.size(), "decoding grew");
    if (raw.find('%') == std::string_view::npos) {
        require(size == raw.size() && std::memcmp(out.get(), raw.data(), size) == 0,
                "decoding changed a path without '%'");
    }
    // Every byte encoded as %XX, alternating the case of the hex digits, decodes back.
    static const char upper[] = "0123456789ABCDEF";
    static const char lower[] = "0123456789abcdef";
    std::string encoded;
    encoded.reserve(raw.size() * 3);
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const char* digits = i % 2 == 0 ? upper : lower;
        unsigned char b = static_cast<unsigned char>(raw[i]);
        encoded.push_back('%');
        encoded.push_back(digits[b >> 4]);
        encoded.push_back(digits[b & 15]);
    }
    auto round = std::make_unique<char[]>(encoded.size());
    std::size_t round_size = percent_decode(encoded, round.get());
    require(round_size == raw.size() && std::memcmp(round.get(), raw.data(), raw.size()) == 0,
            "percent-encoding did not decode back");
}

void check_lower(std::string_view name) {
    std::string once(name.size(), '\0');
    lower_case_field_name(name, once.data());
    for (std::size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        bool letter = c >= 'A' && c <= 'Z';
        require(letter ? once[i] == c + 32 : once[i] == c, "lower-casing changed the wrong byte");
    }
    std::string twice(once.size(), '\0');
    lower_case_field_name(once, twice.data());
    require(once == twice, "lower-casing is not idempotent");
}

bool python_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0;
}

std::string_view checked_strip(std::string_view s) {
    std::string_view t = strip_python_space(s);
    require(inside(t, s) || (t.empty() && s.empty()), "strip left its input");
    for (const char* c = s.data(); c < t.data(); ++c) {
        require(python_space(static_cast<unsigned char>(*c)), "strip removed a non-space at the start");
    }
    for (const char* c = t.data() + t.size(); c < s.data() + s.size(); ++c) {
        require(python_space(static_cast<unsigned char>(*c)), "strip removed a non-space at the end");
    }
    require(t.empty() || (!python_space(static_cast<unsigned char>(t.front())) &&
                          !python_space(static_cast<unsigned char>(t.back()))),
            "strip left a space at an end");
    return t;
}

void check_entry(std::string_view entry) {
    auto [host, port, port_or_whole] = split_host_port(entry);
    require(inside(host, entry) || host.empty(), "host outside its entry");
    if (port.data() != nullptr) {
        require(inside(port, entry) && port.data() + port.size() == entry.data() + entry.size(),
                "port is not the end of its entry");
        require(port.data()[-1] == ':', "port does not follow a ':'");
        if (port_or_whole) {
            require(host.data() == entry.data() && host.size() + 1 + port.size() == entry.size(),
                    "host ':' port is not the whole entry");
        }
    } else if (host.size() != entry.size()) {
        require(entry.front() == '[' && host.data() == entry.data() + 1 && host.size() + 2 == entry.size() &&
                    entry.back() == ']',
                "host without a port is neither the entry nor the entry in brackets");
    }
}

void check_forwarded(std::string_view input) {
    static const char* const names[] = {"X-Forwarded-For", "x-forwarded-for", "X-Forwarded-Proto", "Host"};
    // The head the parser would leave: names and values in one exact-size buffer.
    std::vector<std::pair<std::string_view, std::string_view>> cut;
    std::size_t bytes = 0;
    for (std::size_t start = 0; start <= input.size() && cut.size() < 16;) {
        std::size_t end = std::min(input.find('\n', start), input.size());
        std::string_view piece = input.substr(start, end - start);
        std::string_view name = names[piece.empty() ? 0 : static_cast<unsigned char>(piece[0]) % 4];
        std::string_view value = piece.empty() ? piece : piece.substr(1);
        cut.emplace_back(name, value);
        bytes += name.size() + value.size();
        start = end + 1;
    }
    auto buffer = std::make_unique<char[]>(bytes);
    std::vector<request_head::field_offsets> offsets;
    std::size_t at = 0;
    std::string joined;  // uvicorn: ", ".join of the X-Forwarded-For values
    bool any_for = false;
    std::string_view last_proto;
    bool any_proto = false;
    for (auto [name, value] : cut) {
        std::memcpy(buffer.get() + at, name.data(), name.size());
        std::memcpy(buffer.get() + at + name.size(), value.data(), value.size());
        offsets.push_back({static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(name.size()),
                           static_cast<std::uint32_t>(at + name.size()),
                           static_cast<std::uint32_t>(value.size())});
        std::string_view stored(buffer.get() + at + name.size(), value.size());
        at += name.size() + value.size();
        if (name == "X-Forwarded-Proto") {
            last_proto = stored;
            any_proto = true;
        } else if (name != "Host") {
            joined.append(any_for ? ", " : "").append(value);
            any_for = true;
        }
    }
    request_head head;
    head.base = buffer.get();
    head.fields = offsets.data();
    head.field_count = offsets.size();

    std::vector<std::string> expected;  // joined.split(','), stripped
    if (any_for) {
        for (std::size_t start = 0;;) {
            std::size_t comma = joined.find(',', start);
            std::size_t end = comma == std::string::npos ? joined.size() : comma;
            std::string_view part = std::string_view(joined).substr(start, end - start);
            expected.emplace_back(checked_strip(part));
            if (comma == std::string::npos) {
                break;
            }
            start = comma + 1;
        }
    }
    forwarded_for_entries entries(head);
    std::size_t visited = 0;
    while (auto entry = entries.previous()) {
        require(visited < expected.size(), "more X-Forwarded-For entries than the split gives");
        require(*entry == expected[expected.size() - 1 - visited],
                "X-Forwarded-For entry differs from the split");
        require(inside(*entry, std::string_view(buffer.get(), bytes)) || entry->empty(),
                "entry outside the head");
        check_entry(*entry);
        ++visited;
    }
    require(visited == expected.size(), "fewer X-Forwarded-For entries than the split gives");
    auto first = first_forwarded_for(head);
    require(first.has_value() == any_for, "first entry found without a field, or missed");
    require(!first || *first == expected.front(), "first entry is not the left-most");

    std::string_view scheme = forwarded_proto(head);
    std::string_view want = any_proto ? checked_strip(last_proto) : std::string_view();
    if (want != "http" && want != "https" && want != "ws" && want != "wss") {
        want = {};
    }
    require(scheme == want, "scheme is not the last X-Forwarded-Proto of four values");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // A copy of exactly `size` bytes, so any read past the input is an ASan report.
    auto copy = std::make_unique<char[]>(size);
    std::memcpy(copy.get(), data, size);
    std::string_view input(copy.get(), size);
    check_split(input);
    auto [path, query] = split_target(input);
    check_decode(path);
    check_decode(input);
    check_lower(input);
    check_forwarded(input);
    return 0;
}

// libFuzzer target for the scope builder's byte work (asgi/scope_fields.h): the request
// target the parser accepted becomes raw_path, query_string and (percent-decoded) path;
// header names are lower-cased. The input is used as a target and as a field name as it
// is (the functions must hold for any bytes, not only for what the parser lets through).
//
// Checked: raw_path and query_string are views inside the target ("/" aside), with the
// '?' between them and nothing after a '#'; an origin-form target is exactly raw_path,
// or raw_path '?' query_string; decoding never grows, is the identity without a '%', and
// undoes percent-encoding of every byte; lower-casing keeps the length, leaves no
// upper-case ASCII letter, changes nothing else, and is idempotent. ASan checks that
// nothing reads or writes outside the buffers given (each exactly as large as promised).
#include "scope_fields.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

using dbridge::asgi::lower_case_field_name;
using dbridge::asgi::percent_decode;
using dbridge::asgi::split_target;

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
        require(query.data() > target.data() && query.data()[-1] == '?', "query_string does not follow a '?'");
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
            require(query.data() == sent.data() + path.size() + 1 && query.size() == sent.size() - path.size() - 1,
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
    return 0;
}

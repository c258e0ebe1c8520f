// The byte work behind the HTTP scope's fields, apart from Python so it can be tested and
// fuzzed alone: the target cut into the path (`raw_path`) and the query string, the path
// percent-decoded (`path`, before its UTF-8 decoding), header names lower-cased. Every
// function reads views into the request head and writes only into memory the caller
// gives: nothing here allocates.
#pragma once

#include <cstddef>
#include <string_view>

namespace dbridge::asgi {

struct target_parts {
    std::string_view path;   // raw_path: the path bytes as sent, a view into the target ("/" for
                             // an absolute-form target without one)
    std::string_view query;  // query_string, without the '?'; a view into the target
};

// The path and query of a request target in any of the RFC 9112 §3.2 forms; a fragment is
// dropped (RFC 9110 §4.2.4: never sent, but cut off if it is), and an absolute-form target
// gives the path after its authority ("/" when there is none).
target_parts split_target(std::string_view target);

// uvicorn's `unquote(raw_path)` before its UTF-8 decoding: each "%XX" with two hex digits
// becomes the byte it names (RFC 3986 §2.1); any other '%' stays as it is. Writes into
// `out`, which holds at least raw.size() bytes (decoding never grows), and returns the
// decoded length.
std::size_t percent_decode(std::string_view raw, char* out);

// ASGI: header names in the scope are lower-cased. ASCII only (RFC 9110 §5.1: field names
// are tokens, compared case-insensitively); writes name.size() bytes into `out`.
void lower_case_field_name(std::string_view name, char* out);

}  // namespace dbridge::asgi

// The text of X-Forwarded-For and X-Forwarded-Proto as uvicorn's ProxyHeadersMiddleware
// reads it (uvicorn 0.54; no RFC covers X-Forwarded-*), apart from Python so it can be
// tested and fuzzed alone. proxy_headers.cc decides which entry to believe and makes the
// scope's objects. Everything here is a view into the request head: nothing allocates.
#pragma once

#include <optional>
#include <string_view>

#include "http1/request_parser.h"

namespace dbridge::asgi {

// uvicorn decodes the values as Latin-1 and strips them with str.strip(): the Latin-1
// characters Python counts as whitespace are removed from both ends.
std::string_view strip_python_space(std::string_view s);

// A field name compared with a lower-case one, ASCII case-insensitively (RFC 9110 §5.1).
bool field_name_is(std::string_view name, std::string_view lower);

// The last X-Forwarded-Proto field, stripped, when it is one of the four values uvicorn
// accepts ("http", "https", "ws", "wss"); empty otherwise.
std::string_view forwarded_proto(const http1::request_head& head);

// One X-Forwarded-For entry cut as uvicorn cuts it: "1.2.3.4", "1.2.3.4:5678",
// "[::1]:5678", "::1". `port` is null when there is none. When `port_or_whole` is set and
// the port is not a number (Python's int() decides), the whole entry is the host.
struct forwarded_entry {
    std::string_view host;
    std::string_view port;
    bool port_or_whole = false;
};
forwarded_entry split_host_port(std::string_view value);

// The entries of every X-Forwarded-For field, right to left. uvicorn joins the fields with
// ", " and splits on ','; walking each field's entries from the right, last field first,
// visits the same entries in the same order without building the joined string.
class forwarded_for_entries {
public:
    explicit forwarded_for_entries(const http1::request_head& head)
        : _head(head), _field(head.header_count()) {}

    // The next entry to the left (stripped), or nothing when there is none.
    std::optional<std::string_view> previous();

private:
    const http1::request_head& _head;
    std::size_t _field;
    std::string_view _rest;  // the unvisited start of the current field; null: go to the previous field
};

// The left-most entry: the first entry of the first X-Forwarded-For field, if any.
std::optional<std::string_view> first_forwarded_for(const http1::request_head& head);

}  // namespace dbridge::asgi

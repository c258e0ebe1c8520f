#include "forwarded_headers.h"

namespace dbridge::asgi {

namespace {

bool is_python_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0;
}

}  // namespace

std::string_view strip_python_space(std::string_view s) {
    while (!s.empty() && is_python_space(static_cast<unsigned char>(s.front()))) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_python_space(static_cast<unsigned char>(s.back()))) {
        s.remove_suffix(1);
    }
    return s;
}

bool field_name_is(std::string_view name, std::string_view lower) {
    if (name.size() != lower.size()) {
        return false;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c + 32);
        }
        if (c != lower[i]) {
            return false;
        }
    }
    return true;
}

std::string_view forwarded_proto(const http1::request_head& head) {
    for (std::size_t i = head.header_count(); i-- > 0;) {
        http1::header_field f = head.header(i);
        if (field_name_is(f.name, "x-forwarded-proto")) {
            std::string_view proto = strip_python_space(f.value);
            // A WebSocket scope maps http→ws and https→wss; the scope builder makes HTTP scopes.
            if (proto == "http" || proto == "https" || proto == "ws" || proto == "wss") {
                return proto;
            }
            return {};
        }
    }
    return {};
}

forwarded_entry split_host_port(std::string_view value) {
    if (!value.empty() && value.front() == '[') {
        std::size_t close = value.find(']');
        if (close == std::string_view::npos) {
            return {value, {}};
        }
        std::string_view host = value.substr(1, close - 1);
        std::string_view rest = value.substr(close + 1);
        if (rest.empty()) {
            return {host, {}};
        }
        if (rest.front() != ':') {
            return {value, {}};
        }
        // A port int() refuses is dropped, the host kept.
        return {host, rest.substr(1)};
    }
    std::size_t colon = value.find(':');
    if (colon != std::string_view::npos && value.find(':', colon + 1) == std::string_view::npos) {
        return {value.substr(0, colon), value.substr(colon + 1), true};
    }
    return {value, {}};
}

std::optional<std::string_view> forwarded_for_entries::previous() {
    while (_rest.data() == nullptr) {
        if (_field == 0) {
            return std::nullopt;
        }
        --_field;
        http1::header_field f = _head.header(_field);
        if (field_name_is(f.name, "x-forwarded-for")) {
            _rest = f.value;
        }
    }
    std::string_view entry;
    std::size_t comma = _rest.rfind(',');
    if (comma == std::string_view::npos) {
        entry = strip_python_space(_rest);
        _rest = {};
    } else {
        entry = strip_python_space(_rest.substr(comma + 1));
        _rest = _rest.substr(0, comma);
    }
    return entry;
}

std::optional<std::string_view> first_forwarded_for(const http1::request_head& head) {
    for (std::size_t i = 0; i < head.header_count(); ++i) {
        http1::header_field f = head.header(i);
        if (field_name_is(f.name, "x-forwarded-for")) {
            return strip_python_space(f.value.substr(0, f.value.find(',')));
        }
    }
    return std::nullopt;
}

}  // namespace dbridge::asgi

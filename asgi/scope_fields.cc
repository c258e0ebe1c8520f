#include "scope_fields.h"

namespace dbridge::asgi {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

}  // namespace

target_parts split_target(std::string_view target) {
    std::size_t hash = target.find('#');
    if (hash != std::string_view::npos) {
        target = target.substr(0, hash);
    }
    if (!target.empty() && target[0] != '/' && target != "*") {
        // absolute-form "scheme://authority/path?query": the authority is not the path.
        std::size_t scheme_end = target.find("://");
        if (scheme_end != std::string_view::npos) {
            std::size_t path_start = target.find_first_of("/?", scheme_end + 3);
            if (path_start == std::string_view::npos) {
                return {"/", {}};
            }
            target = target.substr(path_start);
            if (target[0] == '?') {
                return {"/", target.substr(1)};
            }
        }
    }
    std::size_t q = target.find('?');
    if (q == std::string_view::npos) {
        return {target, {}};
    }
    return {target.substr(0, q), target.substr(q + 1)};
}

std::size_t percent_decode(std::string_view raw, char* out) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        int hi, lo;
        if (raw[i] == '%' && i + 2 < raw.size() && (hi = hex_value(raw[i + 1])) >= 0 &&
            (lo = hex_value(raw[i + 2])) >= 0) {
            out[n++] = static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = raw[i];
        }
    }
    return n;
}

void lower_case_field_name(std::string_view name, char* out) {
    for (std::size_t k = 0; k < name.size(); ++k) {
        char ch = name[k];
        out[k] = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch + 32) : ch;
    }
}

}  // namespace dbridge::asgi

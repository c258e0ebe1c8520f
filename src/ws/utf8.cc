#include "ws/utf8.h"

#include <cstring>

namespace dbridge::ws {

namespace {

constexpr std::uint64_t k_high_bits = 0x8080808080808080ULL;

}  // namespace

bool utf8_validator::feed(std::string_view bytes) {
    if (_failed) {
        return false;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* const end = p + bytes.size();
    while (p != end) {
        if (_pending == 0) {
            // Text is mostly ASCII: skip eight bytes at a time while no high bit is set.
            while (end - p >= 8) {
                std::uint64_t word;
                std::memcpy(&word, p, 8);
                if ((word & k_high_bits) != 0) {
                    break;
                }
                p += 8;
            }
            if (p == end) {
                break;
            }
            const unsigned char c = *p++;
            if (c < 0x80) {
                continue;
            }
            // The lead byte fixes the sequence length and the second byte's range
            // (RFC 3629 §4, the UTF8-2/3/4 rules).
            _low = 0x80;
            _high = 0xbf;
            if (c >= 0xc2 && c <= 0xdf) {
                _pending = 1;
            } else if (c == 0xe0) {
                _pending = 2;
                _low = 0xa0;  // below is an overlong 3-byte form
            } else if (c == 0xed) {
                _pending = 2;
                _high = 0x9f;  // above are the surrogates U+D800..U+DFFF
            } else if (c >= 0xe1 && c <= 0xef) {
                _pending = 2;
            } else if (c == 0xf0) {
                _pending = 3;
                _low = 0x90;  // below is an overlong 4-byte form
            } else if (c >= 0xf1 && c <= 0xf3) {
                _pending = 3;
            } else if (c == 0xf4) {
                _pending = 3;
                _high = 0x8f;  // above is beyond U+10FFFF
            } else {
                // 80..BF: a continuation byte without a lead; C0, C1: overlong 2-byte
                // forms; F5..FF: beyond U+10FFFF or never valid.
                _failed = true;
                return false;
            }
            continue;
        }
        const unsigned char c = *p++;
        if (c < _low || c > _high) {
            _failed = true;
            return false;
        }
        --_pending;
        _low = 0x80;
        _high = 0xbf;
    }
    return true;
}

bool is_valid_utf8(std::string_view bytes) {
    utf8_validator v;
    return v.feed(bytes) && v.complete();
}

}  // namespace dbridge::ws

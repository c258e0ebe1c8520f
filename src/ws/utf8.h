// UTF-8 validation for WebSocket text messages and close reasons (RFC 6455 §8.1, §5.5.1).
//
// The validator is incremental: a text message arrives in pieces (frames, or reads of a
// frame) that may cut a code point anywhere, so the state of a partial sequence is
// carried from one feed() to the next. It fails at the first byte that cannot continue a
// valid sequence, so a connection is failed as early as RFC 6455 §8.1 asks, and the
// failure point does not depend on how the message was split.
//
// Valid means well-formed UTF-8 per RFC 3629 §4: no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF.
#pragma once

#include <cstdint>
#include <string_view>

namespace dbridge::ws {

class utf8_validator {
public:
    // False once any byte so far was invalid (sticky until reset()).
    bool feed(std::string_view bytes);

    // True when everything fed so far is valid and no code point is left unfinished.
    bool complete() const { return !_failed && _pending == 0; }

    void reset() {
        _pending = 0;
        _low = 0x80;
        _high = 0xbf;
        _failed = false;
    }

private:
    std::uint8_t _pending = 0;  // continuation bytes still owed by the current sequence
    // The range the next continuation byte must fall in. Only the second byte of a
    // sequence has a narrower range than 80..BF: that is where overlongs, surrogates
    // and code points above U+10FFFF are excluded (RFC 3629 §4).
    std::uint8_t _low = 0x80;
    std::uint8_t _high = 0xbf;
    bool _failed = false;
};

// A whole string (a close reason).
bool is_valid_utf8(std::string_view bytes);

}  // namespace dbridge::ws

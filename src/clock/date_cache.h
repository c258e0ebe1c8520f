// The IMF-fixdate Date header line (RFC 9110 §5.6.7, §6.6.1), formatted at most once a
// second. One per loop thread; the reactor refreshes it with the time it read anyway,
// so a response costs no clock call and no formatting.
#pragma once

#include <ctime>
#include <string_view>

namespace dbridge {

class date_cache {
public:
    date_cache();

    // Reformats only when the second changed.
    void refresh(std::time_t now);

    // "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    std::string_view line() const { return {_line, _length}; }
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    std::string_view value() const { return {_line + 6, _length - 8}; }

private:
    std::time_t _second = -1;
    char _line[48] = {};
    std::size_t _length = 0;
};

}  // namespace dbridge

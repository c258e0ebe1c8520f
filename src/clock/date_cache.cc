// IMF-fixdate (RFC 9110 §5.6.7) is always in English and always GMT, so it is built by
// hand: strftime's %a and %b follow the process locale, which an app may change.
#include "clock/date_cache.h"

#include <cstring>

namespace dbridge {

namespace {

constexpr char k_day_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr char k_month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

char* put_two_digits(char* out, int value) {
    out[0] = static_cast<char>('0' + value / 10);
    out[1] = static_cast<char>('0' + value % 10);
    return out + 2;
}

char* put(char* out, const char* text, std::size_t length) {
    std::memcpy(out, text, length);
    return out + length;
}

}  // namespace

date_cache::date_cache() {
    refresh(std::time(nullptr));
    if (_length == 0) {
        // The clock gave a time that cannot be written; any valid line beats none, and
        // value() needs one.
        refresh(0);
    }
}

void date_cache::refresh(std::time_t now) {
    // != rather than >: a clock stepped back must show the earlier time too.
    if (now == _second) {
        return;
    }
    std::tm utc{};
    if (gmtime_r(&now, &utc) == nullptr) {
        return;
    }
    // date-year is 4DIGIT; outside 0000..9999 the previous line stays.
    const int year = utc.tm_year + 1900;
    if (year < 0 || year > 9999) {
        return;
    }

    // "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    char* p = put(_line, "date: ", 6);
    p = put(p, k_day_names[utc.tm_wday], 3);
    p = put(p, ", ", 2);
    p = put_two_digits(p, utc.tm_mday);
    *p++ = ' ';
    p = put(p, k_month_names[utc.tm_mon], 3);
    *p++ = ' ';
    p = put_two_digits(p, year / 100);
    p = put_two_digits(p, year % 100);
    *p++ = ' ';
    p = put_two_digits(p, utc.tm_hour);
    *p++ = ':';
    p = put_two_digits(p, utc.tm_min);
    *p++ = ':';
    // tm_sec may be 60 in a leap second on systems with leap-second-aware zone data;
    // time-of-day allows it (RFC 9110 §5.6.7).
    p = put_two_digits(p, utc.tm_sec);
    p = put(p, " GMT\r\n", 6);
    _length = static_cast<std::size_t>(p - _line);
    _second = now;
}

}  // namespace dbridge

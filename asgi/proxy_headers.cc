#include "proxy_headers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace dbridge::asgi {

namespace {

// uvicorn decodes the values as Latin-1 and strips them with str.strip(): these are the
// Latin-1 characters Python counts as whitespace.
bool is_python_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0;
}

std::string_view strip(std::string_view s) {
    while (!s.empty() && is_python_space(static_cast<unsigned char>(s.front()))) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_python_space(static_cast<unsigned char>(s.back()))) {
        s.remove_suffix(1);
    }
    return s;
}

bool name_is(std::string_view name, std::string_view lower) {
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

// ipaddress.ip_address(text): an IPv4 address, else an IPv6 one with an optional zone.
bool parse_ip(std::string_view text, ip_address& out) {
    std::string_view zone;
    std::size_t percent = text.find('%');
    if (percent != std::string_view::npos) {
        zone = text.substr(percent + 1);
        text = text.substr(0, percent);
        // Python: an empty zone, or a second '%', is not an address.
        if (zone.empty() || zone.find('%') != std::string_view::npos) {
            return false;
        }
    }
    char buffer[INET6_ADDRSTRLEN];
    if (text.empty() || text.size() >= sizeof(buffer)) {
        return false;
    }
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';
    if (zone.empty() && ::inet_pton(AF_INET, buffer, out.bytes.data()) == 1) {
        out.version = 4;
        return true;
    }
    if (::inet_pton(AF_INET6, buffer, out.bytes.data()) == 1) {
        out.version = 6;
        out.zone.assign(zone);
        return true;
    }
    return false;
}

bool in_network(const ip_address& ip, const ip_network& net) {
    if (ip.version != net.version) {
        return false;
    }
    for (std::size_t i = 0; i < 16; ++i) {
        if ((ip.bytes[i] & net.mask[i]) != net.address[i]) {
            return false;
        }
    }
    return true;
}

bool trusts_address(const trusted_proxies& trusted, const ip_address& ip) {
    for (const ip_address& host : trusted.hosts) {
        if (host.version == ip.version && host.bytes == ip.bytes && host.zone == ip.zone) {
            return true;
        }
    }
    for (const ip_network& net : trusted.networks) {
        if (in_network(ip, net)) {
            return true;
        }
    }
    return false;
}

// uvicorn's `host in trusted_hosts`, "*" aside.
bool trusts_host(const trusted_proxies& trusted, std::string_view host) {
    if (host.empty()) {
        return false;
    }
    ip_address ip;
    if (parse_ip(host, ip)) {
        return trusts_address(trusted, ip);
    }
    for (const std::string& literal : trusted.literals) {
        if (literal == host) {
            return true;
        }
    }
    return false;
}

// int(text) of the Latin-1 text, or null (no error set) when Python's int() refuses it.
PyObject* python_int(std::string_view text) {
    py_ref str(PyUnicode_DecodeLatin1(text.data(), static_cast<Py_ssize_t>(text.size()), nullptr));
    if (!str) {
        return nullptr;
    }
    PyObject* value = PyLong_FromUnicodeObject(str.get(), 10);
    if (value == nullptr && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
    }
    return value;
}

struct host_port {
    std::string_view host;
    std::string_view port;  // null: none (port 0)
};

// uvicorn's reading of one X-Forwarded-For entry: "1.2.3.4", "1.2.3.4:5678", "[::1]:5678",
// "::1". A port that int() refuses makes the whole entry the host (IPv4 form) or drops the
// port (bracketed form), as there.
host_port split_host_port(std::string_view value, bool& whole_on_failure) {
    whole_on_failure = false;
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
        return {host, rest.substr(1)};
    }
    std::size_t colon = value.find(':');
    if (colon != std::string_view::npos && value.find(':', colon + 1) == std::string_view::npos) {
        whole_on_failure = true;  // an unparsable port turns the entry back into a host
        return {value.substr(0, colon), value.substr(colon + 1)};
    }
    return {value, {}};
}

// Host text and port object for one entry; `port` is a new reference (0 when absent).
bool read_entry(std::string_view value, std::string_view& host, py_ref& port) {
    bool whole_on_failure = false;
    host_port hp = split_host_port(value, whole_on_failure);
    host = hp.host;
    if (hp.port.data() != nullptr) {
        port = py_ref(python_int(hp.port));
        if (port) {
            return true;
        }
        if (PyErr_Occurred() != nullptr) {
            return false;
        }
        if (whole_on_failure) {
            host = value;
        }
    }
    port = py_ref(PyLong_FromLong(0));
    return static_cast<bool>(port);
}

// The entries of every X-Forwarded-For field, right to left. uvicorn joins the fields with
// ", " and splits on ','; walking each field's entries from the right, last field first,
// visits the same entries in the same order without building the joined string.
class forwarded_for_entries {
public:
    explicit forwarded_for_entries(const http1::request_head& head)
        : _head(head), _field(head.header_count()) {}

    // The next entry to the left (stripped), or false when there is none.
    bool previous(std::string_view& entry) {
        while (_rest.data() == nullptr) {
            if (_field == 0) {
                return false;
            }
            --_field;
            http1::header_field f = _head.header(_field);
            if (name_is(f.name, "x-forwarded-for")) {
                _rest = f.value;
            }
        }
        std::size_t comma = _rest.rfind(',');
        if (comma == std::string_view::npos) {
            entry = strip(_rest);
            _rest = {};
        } else {
            entry = strip(_rest.substr(comma + 1));
            _rest = _rest.substr(0, comma);
        }
        return true;
    }

private:
    const http1::request_head& _head;
    std::size_t _field;
    std::string_view _rest;  // the unvisited start of the current field; null: go to the previous field
};

// The left-most entry: the first entry of the first X-Forwarded-For field.
bool first_forwarded_for(const http1::request_head& head, std::string_view& entry) {
    for (std::size_t i = 0; i < head.header_count(); ++i) {
        http1::header_field f = head.header(i);
        if (name_is(f.name, "x-forwarded-for")) {
            entry = strip(f.value.substr(0, f.value.find(',')));
            return true;
        }
    }
    return false;
}

}  // namespace

bool peer_is_trusted(const trusted_proxies& trusted, const sockaddr_storage& peer) {
    if (!trusted.enabled) {
        return false;
    }
    if (trusted.everyone) {
        return true;
    }
    ip_address ip;
    if (peer.ss_family == AF_INET) {
        ip.version = 4;
        std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, 4);
    } else if (peer.ss_family == AF_INET6) {
        // The scope's client host carries no zone, so none is compared.
        ip.version = 6;
        std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr, 16);
    } else {
        return false;  // scope client None: uvicorn trusts it only with "*"
    }
    return trusts_address(trusted, ip);
}

bool apply_forwarded_headers(const trusted_proxies& trusted, const http1::request_head& head, py_ref& client,
                             std::string_view& scheme) {
    // uvicorn takes the last X-Forwarded-Proto field and accepts four values only.
    for (std::size_t i = head.header_count(); i-- > 0;) {
        http1::header_field f = head.header(i);
        if (name_is(f.name, "x-forwarded-proto")) {
            std::string_view proto = strip(f.value);
            // A WebSocket scope maps http→ws and https→wss; this builder makes HTTP scopes.
            if (proto == "http" || proto == "https" || proto == "ws" || proto == "wss") {
                scheme = proto;
            }
            break;
        }
    }

    // Each proxy appends the address it received from, so the client is the right-most
    // entry that is not a trusted proxy; if all are trusted, the left-most one. With "*"
    // it is the left-most one at once.
    std::string_view chosen;
    bool found = false;
    if (!trusted.everyone) {
        forwarded_for_entries entries(head);
        std::string_view entry;
        bool any = false;
        while (entries.previous(entry)) {
            any = true;
            std::string_view host;
            py_ref port;
            if (!read_entry(entry, host, port)) {
                return false;
            }
            if (!trusts_host(trusted, host)) {
                chosen = entry;
                found = true;
                break;
            }
        }
        if (!any) {
            return true;  // no X-Forwarded-For: the client stays the peer
        }
    }
    if (!found && !first_forwarded_for(head, chosen)) {
        return true;
    }
    std::string_view host;
    py_ref port;
    if (!read_entry(chosen, host, port)) {
        return false;
    }
    // An empty entry leaves the client alone (uvicorn: "only set the client if we got
    // something usable").
    if (host.empty()) {
        return true;
    }
    py_ref host_text(PyUnicode_DecodeLatin1(host.data(), static_cast<Py_ssize_t>(host.size()), nullptr));
    if (!host_text) {
        return false;
    }
    PyObject* pair = PyTuple_Pack(2, host_text.get(), port.get());
    if (pair == nullptr) {
        return false;
    }
    client = py_ref(pair);
    return true;
}

}  // namespace dbridge::asgi

#include "proxy_headers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <optional>

#include "forwarded_headers.h"

namespace dbridge::asgi {

namespace {

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

// Host text and port object for one entry; `port` is a new reference (0 when absent).
bool read_entry(std::string_view value, std::string_view& host, py_ref& port) {
    forwarded_entry entry = split_host_port(value);
    host = entry.host;
    if (entry.port.data() != nullptr) {
        port = py_ref(python_int(entry.port));
        if (port) {
            return true;
        }
        if (PyErr_Occurred() != nullptr) {
            return false;
        }
        if (entry.port_or_whole) {
            host = value;
        }
    }
    port = py_ref(PyLong_FromLong(0));
    return static_cast<bool>(port);
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
    std::string_view proto = forwarded_proto(head);
    if (!proto.empty()) {
        scheme = proto;
    }

    // Each proxy appends the address it received from, so the client is the right-most
    // entry that is not a trusted proxy; if all are trusted, the left-most one. With "*"
    // it is the left-most one at once.
    std::string_view chosen;
    bool found = false;
    if (!trusted.everyone) {
        forwarded_for_entries entries(head);
        bool any = false;
        while (std::optional<std::string_view> entry = entries.previous()) {
            any = true;
            std::string_view host;
            py_ref port;
            if (!read_entry(*entry, host, port)) {
                return false;
            }
            if (!trusts_host(trusted, host)) {
                chosen = *entry;
                found = true;
                break;
            }
        }
        if (!any) {
            return true;  // no X-Forwarded-For: the client stays the peer
        }
    }
    if (!found) {
        std::optional<std::string_view> first = first_forwarded_for(head);
        if (!first) {
            return true;
        }
        chosen = *first;
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

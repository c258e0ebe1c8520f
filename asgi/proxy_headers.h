// The client address and scheme a trusted proxy reports in X-Forwarded-For and
// X-Forwarded-Proto, applied to the scope as uvicorn's ProxyHeadersMiddleware applies
// them (uvicorn 0.54 is the reference: no RFC covers X-Forwarded-*, and the RFC 7239
// Forwarded header is not read, as uvicorn does not read it).
//
// The cost is paid where it is needed: whether the peer is a trusted proxy is decided once
// per connection; the headers are looked at only on a trusted connection.
#pragma once

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>
#include <sys/socket.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "http1/request_parser.h"
#include "py_ref.h"

namespace dbridge::asgi {

// An IP address as Python's ipaddress module sees one: the version tells IPv4 from IPv6
// (an IPv4 address never equals or falls inside an IPv6 one), and an IPv6 zone
// ("fe80::1%eth0") is part of equality but not of network membership.
struct ip_address {
    int version = 0;  // 4 or 6
    std::array<unsigned char, 16> bytes{};  // network order; IPv4 uses the first 4
    std::string zone;
};

struct ip_network {
    int version = 0;
    std::array<unsigned char, 16> address{};
    std::array<unsigned char, 16> mask{};
};

// --forwarded-allow-ips, parsed by Python's ipaddress module as uvicorn parses it (see
// Config.trusted_proxies): what parses as an address or a network is one, anything else is
// a literal compared as text.
struct trusted_proxies {
    bool enabled = false;   // --proxy-headers (the default)
    bool everyone = false;  // "*"
    std::vector<ip_address> hosts;
    std::vector<ip_network> networks;
    std::vector<std::string> literals;  // Latin-1, as header values are decoded
};

// Whether the connection's peer may set the client and scheme. A Unix socket peer has no
// address (scope client None), which uvicorn trusts only with "*".
bool peer_is_trusted(const trusted_proxies& trusted, const sockaddr_storage& peer);

// The client and scheme X-Forwarded-For/-Proto give, for a request from a trusted peer:
// `client` receives a new (host, port) tuple and `scheme` one of "http"/"https"/"ws"/"wss"
// when the headers say so; each is left alone otherwise. False with a Python error set if
// an object could not be made.
bool apply_forwarded_headers(const trusted_proxies& trusted, const http1::request_head& head, py_ref& client,
                             std::string_view& scheme);

}  // namespace dbridge::asgi

// Listening sockets: TCP over IPv4 or IPv6, Unix-domain, or one inherited from a parent
// (--fd, Gunicorn's arbiter). A listener owns its descriptor and closes it.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace dbridge::net {

struct listen_options {
    int backlog = 2048;       // uvicorn's --backlog default
    bool reuse_port = false;  // one socket per loop thread, the kernel spreads connections
};

class listener {
public:
    // Binds host:port; host may be a name, an IPv4 or an IPv6 literal ("::" listens on
    // both families where the system allows). Port 0 picks a free port (see port()).
    // Throws std::system_error with the address in the message.
    static listener tcp(const std::string& host, std::uint16_t port, const listen_options& options);
    // Binds a Unix-domain socket at `path`, replacing a stale socket file left there.
    static listener unix_domain(const std::string& path, const listen_options& options);
    // Takes over an already listening descriptor.
    static listener adopt(int fd);

    listener() = default;
    listener(listener&& other) noexcept;
    listener& operator=(listener&& other) noexcept;
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;
    ~listener();

    int fd() const { return _fd; }
    int family() const { return _address.ss_family; }
    std::uint16_t port() const;
    // "http://127.0.0.1:8000", "http://[::1]:8000", "unix:/tmp/app.sock" (uvicorn's forms).
    std::string url(const char* scheme = "http") const;

private:
    explicit listener(int fd);
    void read_address();

    int _fd = -1;
    sockaddr_storage _address{};
    std::string _path;  // for Unix-domain sockets
};

// "127.0.0.1", "::1", or the socket path, for logs and the ASGI scope.
std::string address_text(const sockaddr_storage& address);
std::uint16_t address_port(const sockaddr_storage& address);

}  // namespace dbridge::net

#include "net/listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

namespace dbridge::net {

namespace {

[[noreturn]] void fail(int error, const std::string& what) {
    throw std::system_error(error, std::generic_category(), what);
}

}  // namespace

listener::listener(int fd) : _fd(fd) {
    read_address();
}

listener::listener(listener&& other) noexcept
    : _fd(std::exchange(other._fd, -1)), _address(other._address), _path(std::move(other._path)) {}

listener& listener::operator=(listener&& other) noexcept {
    if (this != &other) {
        if (_fd >= 0) {
            ::close(_fd);
        }
        _fd = std::exchange(other._fd, -1);
        _address = other._address;
        _path = std::move(other._path);
    }
    return *this;
}

listener::~listener() {
    if (_fd >= 0) {
        ::close(_fd);
    }
}

void listener::read_address() {
    socklen_t len = sizeof(_address);
    if (::getsockname(_fd, reinterpret_cast<sockaddr*>(&_address), &len) != 0) {
        _address.ss_family = AF_UNSPEC;
    }
    if (_address.ss_family == AF_UNIX) {
        _path = reinterpret_cast<const sockaddr_un*>(&_address)->sun_path;
    }
}

listener listener::tcp(const std::string& host, std::uint16_t port, const listen_options& options) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    std::string service = std::to_string(port);
    int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
    if (rc != 0) {
        throw std::system_error(EINVAL, std::generic_category(),
                                "cannot resolve " + host + ": " + ::gai_strerror(rc));
    }
    int last_error = EADDRNOTAVAIL;
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_error = errno;
            continue;
        }
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (options.reuse_port) {
            ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        }
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, options.backlog) == 0) {
            ::freeaddrinfo(found);
            return listener(fd);
        }
        last_error = errno;
        ::close(fd);
    }
    ::freeaddrinfo(found);
    fail(last_error, "cannot listen on " + host + ":" + service);
}

listener listener::unix_domain(const std::string& path, const listen_options& options) {
    sockaddr_un addr{};
    if (path.size() >= sizeof(addr.sun_path)) {
        fail(ENAMETOOLONG, "unix socket path too long: " + path);
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    // A socket file left by a previous run would make bind() fail; uvicorn removes it
    // too. Only a socket is removed, never a regular file.
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        ::unlink(path.c_str());
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(errno, "socket(AF_UNIX)");
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd, options.backlog) != 0) {
        int err = errno;
        ::close(fd);
        fail(err, "cannot listen on unix socket " + path);
    }
    return listener(fd);
}

listener listener::adopt(int fd) {
    int type = 0;
    socklen_t len = sizeof(type);
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        fail(errno, "inherited fd " + std::to_string(fd) + " is not a socket");
    }
    int accepting = 0;
    len = sizeof(accepting);
    if (type != SOCK_STREAM || ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 ||
        accepting == 0) {
        fail(EINVAL, "inherited fd " + std::to_string(fd) + " is not a listening stream socket");
    }
    return listener(fd);
}

std::uint16_t listener::port() const {
    return address_port(_address);
}

std::string listener::url(const char* scheme) const {
    if (_address.ss_family == AF_UNIX) {
        return "unix:" + _path;
    }
    std::string host = address_text(_address);
    if (_address.ss_family == AF_INET6) {
        host = "[" + host + "]";
    }
    return std::string(scheme) + "://" + host + ":" + std::to_string(port());
}

std::string address_text(const sockaddr_storage& address) {
    char text[INET6_ADDRSTRLEN] = {};
    switch (address.ss_family) {
    case AF_INET:
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&address)->sin_addr, text, sizeof(text));
        return text;
    case AF_INET6:
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr, text,
                    sizeof(text));
        return text;
    case AF_UNIX:
        return reinterpret_cast<const sockaddr_un*>(&address)->sun_path;
    default:
        return {};
    }
}

std::uint16_t address_port(const sockaddr_storage& address) {
    switch (address.ss_family) {
    case AF_INET:
        return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
    case AF_INET6:
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
    default:
        return 0;
    }
}

}  // namespace dbridge::net

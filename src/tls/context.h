// A server's TLS configuration (OpenSSL SSL_CTX), built once from files and shared by
// every connection of the listener it is given to. The options are uvicorn's --ssl-*
// options, with the same numbers for cert_reqs and protocol versions (Python's ssl
// constants), so a uvicorn command line carries over.
#pragma once

#include <stdexcept>
#include <string>

using SSL_CTX = struct ssl_ctx_st;

namespace dbridge::tls {

// Python's ssl.CERT_NONE / CERT_OPTIONAL / CERT_REQUIRED.
enum class client_cert : int { none = 0, optional = 1, required = 2 };

// Python's ssl.PROTOCOL_* numbers, as uvicorn's --ssl-version takes them.
namespace protocol {
constexpr int tls = 2;         // PROTOCOL_TLS (PROTOCOL_SSLv23): any version OpenSSL allows
constexpr int tlsv1 = 3;       // PROTOCOL_TLSv1: TLS 1.0 only
constexpr int tlsv1_1 = 4;     // PROTOCOL_TLSv1_1: TLS 1.1 only
constexpr int tlsv1_2 = 5;     // PROTOCOL_TLSv1_2: TLS 1.2 only
constexpr int tls_client = 16; // PROTOCOL_TLS_CLIENT: not usable by a server
constexpr int tls_server = 17; // PROTOCOL_TLS_SERVER: uvicorn's default, any version
}  // namespace protocol

struct context_options {
    std::string certfile;           // certificate chain, PEM (leaf first)
    std::string keyfile;            // private key, PEM; empty: the key is in certfile
    std::string keyfile_password;   // for an encrypted key; empty: none
    std::string ca_certs;           // CA bundle that verifies client certificates
    client_cert cert_reqs = client_cert::none;
    std::string ciphers;            // OpenSSL cipher list (TLS 1.2 and older); empty: OpenSSL's, as uvicorn
    int version = protocol::tls_server;
};

// Thrown when the configuration cannot be loaded; what() names the file and gives
// OpenSSL's reason.
class context_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class context {
public:
    explicit context(const context_options& options);
    ~context();
    context(const context&) = delete;
    context& operator=(const context&) = delete;

    SSL_CTX* native() const { return _ctx; }
    const context_options& options() const { return _options; }

private:
    context_options _options;
    SSL_CTX* _ctx = nullptr;
};

// OpenSSL's error queue as text ("reason; reason"), emptied; `fallback` when it is empty.
std::string take_openssl_errors(const char* fallback = "unknown error");

}  // namespace dbridge::tls

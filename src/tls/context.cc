#include "tls/context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cctype>
#include <cstring>
#include <string_view>

namespace dbridge::tls {

namespace {

bool contains_ignoring_case(std::string_view text, std::string_view part) {
    auto lower = [](std::string_view s) {
        std::string out(s);
        for (char& c : out) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        return out;
    };
    return lower(text).find(lower(part)) != std::string::npos;
}

}  // namespace

std::string take_openssl_errors(const char* fallback) {
    std::string text;
    unsigned long code;
    bool system_error = false;
    while ((code = ERR_get_error()) != 0) {
        std::string part;
        if (ERR_SYSTEM_ERROR(code)) {
            // A failed fopen() and the like: errno is the reason ("No such file ...").
            part = std::strerror(ERR_GET_REASON(code));
            system_error = true;
        } else if (const char* reason = ERR_reason_error_string(code); reason != nullptr) {
            part = reason;
        } else {
            part = "error code " + std::to_string(code);
        }
        if (system_error && part == "system lib") {
            continue;  // the layer above the errno we already have
        }
        if (!contains_ignoring_case(text, part)) {  // OpenSSL repeats a reason per layer
            if (!text.empty()) {
                text += "; ";
            }
            text += part;
        }
    }
    return text.empty() ? fallback : text;
}

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
    throw context_error(what + " '" + path + "': " + take_openssl_errors());
}

// The password callback for an encrypted private key. Without one, OpenSSL would ask
// on the terminal; with no password configured we answer "none" and loading fails.
int give_password(char* buf, int size, int rwflag, void* userdata) {
    const auto* password = static_cast<const std::string*>(userdata);
    if (password == nullptr || password->empty() || password->size() > static_cast<std::size_t>(size)) {
        return 0;
    }
    std::memcpy(buf, password->data(), password->size());
    return static_cast<int>(password->size());
}

// RFC 7301 §3.2: pick "http/1.1" when the client offers it. A client that offers only
// other protocols (h2 alone) gets no ALPN answer rather than a fatal alert, and may go
// on with HTTP/1.1 or give up.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    constexpr std::string_view http11 = "http/1.1";
    unsigned int i = 0;
    while (i < inlen) {
        unsigned int len = in[i];
        if (i + 1 + len > inlen) {
            break;
        }
        if (std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == http11) {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

// Python's fixed-version constants pin one version, as ssl.SSLContext(PROTOCOL_TLSv1_2)
// does; the generic ones leave OpenSSL's own range (its configuration's minimum).
void set_version(SSL_CTX* ctx, int version) {
    int pinned = 0;
    switch (version) {
    case protocol::tls:
    case protocol::tls_server:
        return;
    case protocol::tlsv1:
        pinned = TLS1_VERSION;
        break;
    case protocol::tlsv1_1:
        pinned = TLS1_1_VERSION;
        break;
    case protocol::tlsv1_2:
        pinned = TLS1_2_VERSION;
        break;
    case protocol::tls_client:
        throw context_error("--ssl-version 16 (PROTOCOL_TLS_CLIENT) is for clients; a server needs 17 "
                            "(PROTOCOL_TLS_SERVER) or 2 (PROTOCOL_TLS)");
    default:
        throw context_error("--ssl-version " + std::to_string(version) +
                            " is not supported; use 17 (PROTOCOL_TLS_SERVER, the default), 2 (PROTOCOL_TLS), "
                            "3, 4 or 5 (TLS 1.0, 1.1 or 1.2 only)");
    }
    SSL_CTX_set_min_proto_version(ctx, pinned);
    SSL_CTX_set_max_proto_version(ctx, pinned);
}

}  // namespace

context::context(const context_options& options) : _options(options) {
    if (_options.certfile.empty()) {
        throw context_error("TLS needs a certificate file (--ssl-certfile)");
    }
    ERR_clear_error();
    _ctx = SSL_CTX_new(TLS_server_method());
    if (_ctx == nullptr) {
        throw context_error("cannot create a TLS context: " + take_openssl_errors());
    }
    try {
        set_version(_ctx, _options.version);
        // Renegotiation (TLS 1.2 and older) lets a client restart the handshake at will
        // on an established connection: a CPU sink with nothing for us in it.
        SSL_CTX_set_options(_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                      SSL_OP_CIPHER_SERVER_PREFERENCE);
        SSL_CTX_set_mode(_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

        const std::string& keyfile = _options.keyfile.empty() ? _options.certfile : _options.keyfile;
        SSL_CTX_set_default_passwd_cb(_ctx, give_password);
        SSL_CTX_set_default_passwd_cb_userdata(_ctx, &_options.keyfile_password);
        if (SSL_CTX_use_certificate_chain_file(_ctx, _options.certfile.c_str()) != 1) {
            fail("cannot load the certificate chain from", _options.certfile);
        }
        if (SSL_CTX_use_PrivateKey_file(_ctx, keyfile.c_str(), SSL_FILETYPE_PEM) != 1) {
            fail("cannot load the private key from", keyfile);
        }
        if (SSL_CTX_check_private_key(_ctx) != 1) {
            fail("the private key does not match the certificate in", _options.certfile);
        }
        // The password is needed only while loading.
        SSL_CTX_set_default_passwd_cb_userdata(_ctx, nullptr);

        if (!_options.ca_certs.empty()) {
            if (SSL_CTX_load_verify_locations(_ctx, _options.ca_certs.c_str(), nullptr) != 1) {
                fail("cannot load CA certificates from", _options.ca_certs);
            }
            // The CA names go into the CertificateRequest so a client can pick its cert.
            STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(_options.ca_certs.c_str());
            if (names != nullptr) {
                SSL_CTX_set_client_CA_list(_ctx, names);
            }
            ERR_clear_error();
        }
        switch (_options.cert_reqs) {
        case client_cert::none:
            SSL_CTX_set_verify(_ctx, SSL_VERIFY_NONE, nullptr);
            break;
        case client_cert::optional:
            SSL_CTX_set_verify(_ctx, SSL_VERIFY_PEER, nullptr);
            break;
        case client_cert::required:
            SSL_CTX_set_verify(_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
            break;
        default:
            throw context_error("--ssl-cert-reqs must be 0 (none), 1 (optional) or 2 (required), not " +
                                std::to_string(static_cast<int>(_options.cert_reqs)));
        }
        if (!_options.ciphers.empty() && SSL_CTX_set_cipher_list(_ctx, _options.ciphers.c_str()) != 1) {
            throw context_error("--ssl-ciphers '" + _options.ciphers + "' selects no cipher: " +
                                take_openssl_errors());
        }
        SSL_CTX_set_alpn_select_cb(_ctx, select_alpn, nullptr);
    } catch (...) {
        SSL_CTX_free(_ctx);
        throw;
    }
}

context::~context() {
    SSL_CTX_free(_ctx);
}

}  // namespace dbridge::tls

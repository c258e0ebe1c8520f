// An OpenSSL client over memory BIOs, for driving a server tls::session in tests
// without sockets.
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <string>
#include <string_view>
#include <vector>

namespace dbridge::testing {

class memory_client {
public:
    // `alpn`: protocols offered, in ALPN wire format ("\x08http/1.1"), empty for none.
    explicit memory_client(const std::string& ca_cert, const std::string& cert = "", const std::string& key = "",
                           std::string_view alpn = "") {
        _ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_load_verify_locations(_ctx, ca_cert.c_str(), nullptr);
        SSL_CTX_set_verify(_ctx, SSL_VERIFY_PEER, nullptr);
        if (!cert.empty()) {
            SSL_CTX_use_certificate_chain_file(_ctx, cert.c_str());
            SSL_CTX_use_PrivateKey_file(_ctx, key.c_str(), SSL_FILETYPE_PEM);
        }
        _ssl = SSL_new(_ctx);
        SSL_set_tlsext_host_name(_ssl, "localhost");
        SSL_set1_host(_ssl, "localhost");
        if (!alpn.empty()) {
            SSL_set_alpn_protos(_ssl, reinterpret_cast<const unsigned char*>(alpn.data()),
                                static_cast<unsigned>(alpn.size()));
        }
        _in = BIO_new(BIO_s_mem());
        _out = BIO_new(BIO_s_mem());
        BIO_set_mem_eof_return(_in, -1);
        BIO_set_mem_eof_return(_out, -1);
        SSL_set_bio(_ssl, _in, _out);
        SSL_set_connect_state(_ssl);
    }
    ~memory_client() {
        SSL_free(_ssl);
        SSL_CTX_free(_ctx);
    }
    memory_client(const memory_client&) = delete;
    memory_client& operator=(const memory_client&) = delete;

    // Advances the handshake; true once it is done, false while it waits; sets failed.
    bool handshake() {
        int rc = SSL_do_handshake(_ssl);
        if (rc == 1) {
            return true;
        }
        int e = SSL_get_error(_ssl, rc);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            failed = true;
            ERR_clear_error();
        }
        return false;
    }
    void receive(std::string_view ciphertext) { BIO_write(_in, ciphertext.data(), static_cast<int>(ciphertext.size())); }
    std::string take_output() {
        std::string out(BIO_ctrl_pending(_out), '\0');
        if (!out.empty()) {
            BIO_read(_out, out.data(), static_cast<int>(out.size()));
        }
        return out;
    }
    void write(std::string_view plaintext) {
        std::size_t written = 0;
        SSL_write_ex(_ssl, plaintext.data(), plaintext.size(), &written);
    }
    // All plaintext available now; sets peer_closed on close_notify, failed on an error.
    std::string read() {
        std::string text;
        char buf[4096];
        for (;;) {
            std::size_t got = 0;
            int rc = SSL_read_ex(_ssl, buf, sizeof(buf), &got);
            if (rc == 1) {
                text.append(buf, got);
                continue;
            }
            int e = SSL_get_error(_ssl, rc);
            if (e == SSL_ERROR_ZERO_RETURN) {
                peer_closed = true;
            } else if (e != SSL_ERROR_WANT_READ) {
                failed = true;
                ERR_clear_error();
            }
            return text;
        }
    }
    void shutdown() { SSL_shutdown(_ssl); }
    SSL* native() const { return _ssl; }

    bool failed = false;
    bool peer_closed = false;

private:
    SSL_CTX* _ctx = nullptr;
    SSL* _ssl = nullptr;
    BIO* _in = nullptr;
    BIO* _out = nullptr;
};

}  // namespace dbridge::testing

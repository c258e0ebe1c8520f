#include "tls/session.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <climits>

namespace dbridge::tls {

session::~session() {
    reset();
}

bool session::start(const context& ctx) {
    reset();
    ERR_clear_error();
    _ssl = SSL_new(ctx.native());
    _in = BIO_new(BIO_s_mem());
    _out = BIO_new(BIO_s_mem());
    if (_ssl == nullptr || _in == nullptr || _out == nullptr) {
        _error = take_openssl_errors("out of memory");
        BIO_free(_in);
        BIO_free(_out);
        SSL_free(_ssl);
        _ssl = nullptr;
        _in = _out = nullptr;
        _failed = true;
        return false;
    }
    // An empty memory BIO means "wait for more", not end of file.
    BIO_set_mem_eof_return(_in, -1);
    BIO_set_mem_eof_return(_out, -1);
    SSL_set_bio(_ssl, _in, _out);
    SSL_set_accept_state(_ssl);
    return true;
}

void session::reset() {
    if (_ssl != nullptr) {
        SSL_free(_ssl);  // frees both BIOs
    }
    _ssl = nullptr;
    _in = _out = nullptr;
    _failed = false;
    _shutdown_sent = false;
    _error.clear();
}

void session::receive(std::string_view ciphertext) {
    while (!ciphertext.empty()) {
        int chunk = ciphertext.size() > INT_MAX ? INT_MAX : static_cast<int>(ciphertext.size());
        int n = BIO_write(_in, ciphertext.data(), chunk);
        if (n <= 0) {
            break;  // only out of memory; the read that follows fails
        }
        ciphertext.remove_prefix(static_cast<std::size_t>(n));
    }
}

session::read_result session::read(char* buf, std::size_t size) {
    if (_failed) {
        return {status::failed};
    }
    std::size_t got = 0;
    ERR_clear_error();
    int rc = SSL_read_ex(_ssl, buf, size, &got);
    if (rc == 1) {
        return {status::data, got};
    }
    switch (SSL_get_error(_ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:  // a memory BIO never refuses a write
        return {status::want_more};
    case SSL_ERROR_ZERO_RETURN:
        return {status::closed};
    default:
        fail();
        return {status::failed};
    }
}

bool session::handshake_done() const {
    return _ssl != nullptr && SSL_is_init_finished(_ssl) != 0;
}

std::size_t session::write(std::string_view plaintext) {
    if (_failed || _shutdown_sent || !handshake_done() || plaintext.empty()) {
        return 0;
    }
    std::size_t written = 0;
    ERR_clear_error();
    int rc = SSL_write_ex(_ssl, plaintext.data(), plaintext.size(), &written);
    if (rc != 1) {
        int e = SSL_get_error(_ssl, rc);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            fail();
        }
        return 0;
    }
    return written;
}

void session::shutdown() {
    if (_shutdown_sent || _failed || !handshake_done()) {
        return;
    }
    _shutdown_sent = true;
    ERR_clear_error();
    SSL_shutdown(_ssl);  // 0: our close_notify is queued; we do not wait for the peer's
    ERR_clear_error();
}

std::size_t session::pending_output() const {
    return _out == nullptr ? 0 : BIO_ctrl_pending(_out);
}

void session::take_output(byte_buffer& out, std::size_t limit) {
    std::size_t pending = pending_output();
    std::size_t n = pending < limit ? pending : limit;
    if (n == 0) {
        return;
    }
    int got = BIO_read(_out, out.prepare(n), static_cast<int>(n));
    if (got > 0) {
        out.commit(static_cast<std::size_t>(got));
    }
}

void session::fail() {
    _failed = true;
    _error = take_openssl_errors("TLS protocol error");
}

std::string_view session::alpn() const {
    const unsigned char* data = nullptr;
    unsigned int len = 0;
    if (_ssl != nullptr) {
        SSL_get0_alpn_selected(_ssl, &data, &len);
    }
    return data == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(data), len);
}

const char* session::version() const {
    return _ssl == nullptr ? "" : SSL_get_version(_ssl);
}

const char* session::cipher() const {
    return _ssl == nullptr ? "" : SSL_get_cipher_name(_ssl);
}

}  // namespace dbridge::tls

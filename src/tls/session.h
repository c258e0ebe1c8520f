// One TLS connection, server side, over memory BIOs: the socket is someone else's
// (the reactor's). Ciphertext received goes in with receive(); read() gives the
// plaintext (driving the handshake first); write() encrypts; take_output() hands over
// what must be sent (handshake messages, records, alerts, close_notify).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "buffer/byte_buffer.h"
#include "tls/context.h"

using SSL = struct ssl_st;
using BIO = struct bio_st;

namespace dbridge::tls {

class session {
public:
    session() = default;
    ~session();
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    // Begin a new connection under `ctx`; false (with error() set) if OpenSSL cannot.
    bool start(const context& ctx);
    // Forget the connection (the object may be started again).
    void reset();
    bool started() const { return _ssl != nullptr; }

    enum class status { data, want_more, closed, failed };
    struct read_result {
        status what;
        std::size_t bytes = 0;
    };
    void receive(std::string_view ciphertext);
    // Plaintext into buf: `data` with bytes > 0; `want_more` when the received
    // ciphertext is used up; `closed` once the peer sent close_notify; `failed` on a
    // protocol error (error() says which; the alert for the peer is in the output).
    read_result read(char* buf, std::size_t size);

    bool handshake_done() const;
    // Encrypts what it can of `plaintext` and returns how much; 0 before the handshake
    // is done or after a failure.
    std::size_t write(std::string_view plaintext);
    // Queue close_notify (RFC 8446 §6.1), once, if the handshake finished.
    void shutdown();

    std::size_t pending_output() const;
    // Moves up to `limit` bytes of pending ciphertext to the back of `out`.
    void take_output(byte_buffer& out, std::size_t limit = static_cast<std::size_t>(-1));

    bool failed() const { return _failed; }
    const std::string& error() const { return _error; }
    // The negotiated ALPN protocol ("" if none), version and cipher, for logs and tests.
    std::string_view alpn() const;
    const char* version() const;
    const char* cipher() const;

    SSL* native() const { return _ssl; }

private:
    void fail();

    SSL* _ssl = nullptr;
    BIO* _in = nullptr;   // ciphertext from the peer (owned by _ssl)
    BIO* _out = nullptr;  // ciphertext for the peer (owned by _ssl)
    bool _failed = false;
    bool _shutdown_sent = false;
    std::string _error;
};

}  // namespace dbridge::tls

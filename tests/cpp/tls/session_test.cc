// tls::session against an OpenSSL client, both over memory: the handshake, data both
// ways, records split at every byte boundary, client certificates, ALPN, close_notify.
#include "tls/session.h"

#include <boost/test/unit_test.hpp>
#include <memory>
#include <string>

#include "memory_client.h"
#include "test_certificates.h"

using dbridge::byte_buffer;
using dbridge::testing::memory_client;
using dbridge::testing::test_certificates;
using dbridge::tls::client_cert;
using dbridge::tls::context;
using dbridge::tls::context_options;
using dbridge::tls::session;

namespace {

std::unique_ptr<context> server_context(client_cert reqs = client_cert::none, bool with_ca = false) {
    const auto& pki = test_certificates();
    context_options o;
    o.certfile = pki.server_cert;
    o.keyfile = pki.server_key;
    o.cert_reqs = reqs;
    if (with_ca) {
        o.ca_certs = pki.ca_cert;
    }
    return std::make_unique<context>(o);
}

// The server side of a test: a session and the plaintext it has read.
struct server_end {
    explicit server_end(const context& ctx) { BOOST_REQUIRE(s.start(ctx)); }

    // Feeds ciphertext in pieces of `piece` bytes (0: whole), reading after each.
    void receive(const std::string& ciphertext, std::size_t piece = 0) {
        std::size_t step = piece == 0 ? ciphertext.size() : piece;
        for (std::size_t at = 0; at < ciphertext.size(); at += step) {
            s.receive(std::string_view(ciphertext).substr(at, step));
            read_all();
        }
    }
    void read_all() {
        char buf[16384];
        for (;;) {
            session::read_result r = s.read(buf, sizeof(buf));
            if (r.what == session::status::data) {
                plaintext.append(buf, r.bytes);
                continue;
            }
            closed = closed || r.what == session::status::closed;
            failed = failed || r.what == session::status::failed;
            return;
        }
    }
    std::string take_output() {
        byte_buffer out;
        s.take_output(out);
        return std::string(out.view());
    }

    session s;
    std::string plaintext;
    bool closed = false;
    bool failed = false;
};

// Runs the handshake, moving every flight whole or in `piece`-byte pieces; true when
// both ends finished.
bool handshake(memory_client& client, server_end& server, std::size_t piece = 0) {
    for (int round = 0; round < 10; ++round) {
        bool client_done = client.handshake();
        std::string to_server = client.take_output();
        server.receive(to_server, piece);
        std::string to_client = server.take_output();
        for (std::size_t at = 0; at < to_client.size(); at += piece == 0 ? to_client.size() : piece) {
            client.receive(std::string_view(to_client).substr(at, piece == 0 ? std::string::npos : piece));
            client.handshake();
        }
        if (client.failed || server.failed) {
            return false;
        }
        if (client_done && server.s.handshake_done() && to_server.empty() && to_client.empty()) {
            return true;
        }
    }
    return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tls_session)

BOOST_AUTO_TEST_CASE(handshake_then_data_both_ways) {
    auto ctx = server_context();
    server_end server(*ctx);
    memory_client client(test_certificates().ca_cert);
    BOOST_REQUIRE(handshake(client, server));

    client.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    server.receive(client.take_output());
    BOOST_TEST(server.plaintext == "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");

    std::string response = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    BOOST_TEST(server.s.write(response) == response.size());
    client.receive(server.take_output());
    BOOST_TEST(client.read() == response);
    BOOST_TEST(std::string(server.s.version()) == "TLSv1.3");
}

BOOST_AUTO_TEST_CASE(every_flight_delivered_one_byte_at_a_time) {
    auto ctx = server_context();
    server_end server(*ctx);
    memory_client client(test_certificates().ca_cert);
    BOOST_REQUIRE(handshake(client, server, 1));
    client.write("ping");
    server.receive(client.take_output(), 1);
    BOOST_TEST(server.plaintext == "ping");
}

BOOST_AUTO_TEST_CASE(a_record_split_at_every_byte_boundary_arrives_whole) {
    auto ctx = server_context();
    const std::string request = "POST /x HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc";
    // Every split point of the client's record, each on a fresh connection (a record
    // cannot be replayed).
    for (std::size_t split = 1;; ++split) {
        server_end server(*ctx);
        memory_client client(test_certificates().ca_cert);
        BOOST_REQUIRE(handshake(client, server));
        client.write(request);
        std::string record = client.take_output();
        if (split >= record.size()) {
            break;
        }
        server.receive(record.substr(0, split));
        BOOST_TEST_INFO("split at " << split << " of " << record.size());
        BOOST_TEST(server.plaintext == "");
        server.receive(record.substr(split));
        BOOST_TEST(server.plaintext == request);
        BOOST_TEST(!server.failed);
    }
}

BOOST_AUTO_TEST_CASE(server_records_split_at_every_byte_boundary_reach_the_client) {
    auto ctx = server_context();
    server_end server(*ctx);
    memory_client client(test_certificates().ca_cert);
    BOOST_REQUIRE(handshake(client, server));
    BOOST_REQUIRE(server.s.write("pong") == 4);
    std::string record = server.take_output();
    for (char byte : record) {
        client.receive(std::string_view(&byte, 1));
        client.read();
    }
    // Everything delivered: what the client reads now is the whole record's content.
    server.s.write("!");
    client.receive(server.take_output());
    BOOST_TEST(client.read() == "!");
    BOOST_TEST(!client.failed);
}

BOOST_AUTO_TEST_CASE(plaintext_http_instead_of_a_client_hello_fails) {
    auto ctx = server_context();
    server_end server(*ctx);
    server.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    BOOST_TEST(server.failed);
    BOOST_TEST(!server.s.error().empty());
    BOOST_TEST(server.s.write("x") == 0);
}

BOOST_AUTO_TEST_CASE(required_client_certificate_missing_fails_the_handshake) {
    auto ctx = server_context(client_cert::required, true);
    server_end server(*ctx);
    memory_client client(test_certificates().ca_cert);
    handshake(client, server);
    client.write("x");
    server.receive(client.take_output());
    BOOST_TEST(server.failed);
    BOOST_TEST(server.plaintext == "");
}

BOOST_AUTO_TEST_CASE(required_client_certificate_present_is_accepted) {
    const auto& pki = test_certificates();
    auto ctx = server_context(client_cert::required, true);
    server_end server(*ctx);
    memory_client client(pki.ca_cert, pki.client_cert, pki.client_key);
    BOOST_REQUIRE(handshake(client, server));
    client.write("hello");
    server.receive(client.take_output());
    BOOST_TEST(server.plaintext == "hello");
    BOOST_TEST(SSL_get0_peer_certificate(server.s.native()) != nullptr);
}

BOOST_AUTO_TEST_CASE(optional_client_certificate_may_be_absent) {
    auto ctx = server_context(client_cert::optional, true);
    server_end server(*ctx);
    memory_client client(test_certificates().ca_cert);
    BOOST_REQUIRE(handshake(client, server));
    client.write("hello");
    server.receive(client.take_output());
    BOOST_TEST(server.plaintext == "hello");
    BOOST_TEST(SSL_get0_peer_certificate(server.s.native()) == nullptr);
}

BOOST_AUTO_TEST_CASE(no_client_certificate_is_asked_for_with_cert_none) {
    const auto& pki = test_certificates();
    auto ctx = server_context(client_cert::none, true);
    server_end server(*ctx);
    memory_client client(pki.ca_cert, pki.client_cert, pki.client_key);
    BOOST_REQUIRE(handshake(client, server));
    BOOST_TEST(SSL_get0_peer_certificate(server.s.native()) == nullptr);
}

BOOST_AUTO_TEST_CASE(alpn_picks_http11_when_offered) {
    auto ctx = server_context();
    server_end server(*ctx);
    memory_client client(test_certificates().ca_cert, "", "", std::string_view("\x02h2\x08http/1.1", 12));
    BOOST_REQUIRE(handshake(client, server));
    BOOST_TEST(server.s.alpn() == "http/1.1");
}

BOOST_AUTO_TEST_CASE(alpn_without_http11_is_not_answered) {
    auto ctx = server_context();
    server_end server(*ctx);
    memory_client client(test_certificates().ca_cert, "", "", std::string_view("\x02h2", 3));
    BOOST_REQUIRE(handshake(client, server));
    BOOST_TEST(server.s.alpn() == "");
}

BOOST_AUTO_TEST_CASE(close_notify_both_ways) {
    auto ctx = server_context();
    server_end server(*ctx);
    memory_client client(test_certificates().ca_cert);
    BOOST_REQUIRE(handshake(client, server));
    client.shutdown();
    server.receive(client.take_output());
    BOOST_TEST(server.closed);
    server.s.shutdown();
    client.receive(server.take_output());
    client.read();
    BOOST_TEST(client.peer_closed);
}

BOOST_AUTO_TEST_CASE(renegotiation_is_refused) {
    const auto& pki = test_certificates();
    context_options o;
    o.certfile = pki.server_cert;
    o.keyfile = pki.server_key;
    o.ciphers = "HIGH";
    o.version = dbridge::tls::protocol::tlsv1_2;  // TLS 1.3 has no renegotiation at all
    context ctx(o);
    server_end server(ctx);
    memory_client client(pki.ca_cert);
    BOOST_REQUIRE(handshake(client, server));
    BOOST_REQUIRE(std::string(server.s.version()) == "TLSv1.2");
    BOOST_REQUIRE(SSL_renegotiate(client.native()) == 1);
    client.handshake();
    server.receive(client.take_output());
    client.receive(server.take_output());
    client.handshake();
    // The server answered the new ClientHello with no_renegotiation, not a ServerHello.
    BOOST_TEST(SSL_renegotiate_pending(client.native()) == 1);
    BOOST_TEST(SSL_num_renegotiations(server.s.native()) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// tls::context: what loads, and that every failure names the file and OpenSSL's reason.
#include "tls/context.h"

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <fstream>
#include <string>

#include "test_certificates.h"

using dbridge::testing::test_certificates;
using dbridge::testing::test_pki;
using dbridge::tls::client_cert;
using dbridge::tls::context;
using dbridge::tls::context_error;
using dbridge::tls::context_options;

namespace {

context_options server_options() {
    const test_pki& pki = test_certificates();
    context_options o;
    o.certfile = pki.server_cert;
    o.keyfile = pki.server_key;
    return o;
}

// The message of the context_error that building `o` throws ("" if none is thrown).
std::string failure_of(const context_options& o) {
    try {
        context ctx(o);
    } catch (const context_error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tls_context)

BOOST_AUTO_TEST_CASE(loads_a_certificate_and_key_with_uvicorns_defaults) {
    context ctx(server_options());
    BOOST_TEST(ctx.native() != nullptr);
}

BOOST_AUTO_TEST_CASE(key_in_the_certificate_file_needs_no_keyfile) {
    const test_pki& pki = test_certificates();
    std::string combined = pki.dir + "/combined.pem";
    {
        std::ofstream out(combined);
        out << std::ifstream(pki.server_cert).rdbuf() << std::ifstream(pki.server_key).rdbuf();
    }
    context_options o;
    o.certfile = combined;
    std::string error = failure_of(o);
    std::remove(combined.c_str());
    BOOST_TEST(error == "");
}

BOOST_AUTO_TEST_CASE(missing_certificate_file_is_named_with_the_reason) {
    context_options o = server_options();
    o.certfile = test_certificates().dir + "/absent.pem";
    std::string error = failure_of(o);
    BOOST_TEST_MESSAGE("error: " << error);
    BOOST_TEST(contains(error, o.certfile));
    BOOST_TEST(contains(error, "No such file"));
}

BOOST_AUTO_TEST_CASE(missing_key_file_is_named_with_the_reason) {
    context_options o = server_options();
    o.keyfile = test_certificates().dir + "/absent.key";
    std::string error = failure_of(o);
    BOOST_TEST_MESSAGE("error: " << error);
    BOOST_TEST(contains(error, "private key"));
    BOOST_TEST(contains(error, o.keyfile));
    BOOST_TEST(contains(error, "No such file"));
}

BOOST_AUTO_TEST_CASE(encrypted_key_loads_with_its_password) {
    context_options o = server_options();
    o.keyfile = test_certificates().server_key_encrypted;
    o.keyfile_password = test_pki::key_password;
    BOOST_TEST(failure_of(o) == "");
}

BOOST_AUTO_TEST_CASE(encrypted_key_with_a_wrong_password_fails_naming_the_key) {
    context_options o = server_options();
    o.keyfile = test_certificates().server_key_encrypted;
    o.keyfile_password = "wrong password";
    std::string error = failure_of(o);
    BOOST_TEST_MESSAGE("error: " << error);
    BOOST_TEST(contains(error, o.keyfile));
    BOOST_TEST(contains(error, "bad decrypt"));
}

BOOST_AUTO_TEST_CASE(encrypted_key_without_a_password_fails_instead_of_prompting) {
    context_options o = server_options();
    o.keyfile = test_certificates().server_key_encrypted;
    std::string error = failure_of(o);
    BOOST_TEST_MESSAGE("error: " << error);
    BOOST_TEST(contains(error, o.keyfile));
}

BOOST_AUTO_TEST_CASE(key_that_does_not_match_the_certificate_is_refused) {
    context_options o = server_options();
    o.keyfile = test_certificates().unrelated_key;
    std::string error = failure_of(o);
    BOOST_TEST_MESSAGE("error: " << error);
    BOOST_TEST(contains(error, o.keyfile));
    BOOST_TEST(contains(error, "key values mismatch"));
}

BOOST_AUTO_TEST_CASE(missing_ca_file_is_named) {
    context_options o = server_options();
    o.ca_certs = test_certificates().dir + "/absent-ca.pem";
    o.cert_reqs = client_cert::required;
    std::string error = failure_of(o);
    BOOST_TEST_MESSAGE("error: " << error);
    BOOST_TEST(contains(error, o.ca_certs));
}

BOOST_AUTO_TEST_CASE(cipher_string_that_selects_nothing_is_refused) {
    context_options o = server_options();
    o.ciphers = "NO-SUCH-CIPHER";
    BOOST_TEST(contains(failure_of(o), "NO-SUCH-CIPHER"));
}

BOOST_AUTO_TEST_CASE(client_protocol_constant_is_refused) {
    context_options o = server_options();
    o.version = dbridge::tls::protocol::tls_client;
    BOOST_TEST(contains(failure_of(o), "PROTOCOL_TLS_CLIENT"));
}

BOOST_AUTO_TEST_CASE(unknown_cert_reqs_value_is_refused) {
    context_options o = server_options();
    o.cert_reqs = static_cast<client_cert>(3);
    BOOST_TEST(contains(failure_of(o), "--ssl-cert-reqs"));
}

BOOST_AUTO_TEST_CASE(certificate_file_is_required) {
    context_options o;
    BOOST_TEST(contains(failure_of(o), "--ssl-certfile"));
}

BOOST_AUTO_TEST_SUITE_END()

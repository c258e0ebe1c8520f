// A throwaway PKI for the TLS tests, made with OpenSSL once per test process in a
// temporary directory: a CA, a server certificate for localhost/127.0.0.1 signed by it,
// a client certificate signed by it, the server key again encrypted with a password,
// and an unrelated key (for the mismatch case).
#pragma once

#include <string>

namespace dbridge::testing {

struct test_pki {
    std::string dir;
    std::string ca_cert;
    std::string server_cert;
    std::string server_key;
    std::string server_key_encrypted;  // password: key_password
    std::string client_cert;
    std::string client_key;
    std::string unrelated_key;
    static constexpr const char* key_password = "correct horse";
};

const test_pki& test_certificates();

}  // namespace dbridge::testing

#include "test_certificates.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace dbridge::testing {

namespace {

EVP_PKEY* new_key() {
    EVP_PKEY* key = EVP_EC_gen("prime256v1");
    if (key == nullptr) {
        throw std::runtime_error("EVP_EC_gen failed");
    }
    return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) {
        throw std::runtime_error("bad extension");
    }
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// `issuer`/`issuer_key` null: self-signed.
X509* new_cert(const char* cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, bool ca, const char* san,
               long serial) {
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(cert, key);
    X509* signer = issuer != nullptr ? issuer : cert;
    add_extension(cert, signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_extension(cert, signer, NID_subject_key_identifier, "hash");
    if (ca) {
        add_extension(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_extension(cert, signer, NID_authority_key_identifier, "keyid");
        add_extension(cert, signer, NID_key_usage, "critical,digitalSignature");
        add_extension(cert, signer, NID_ext_key_usage, san != nullptr ? "serverAuth" : "clientAuth");
    }
    if (san != nullptr) {
        add_extension(cert, signer, NID_subject_alt_name, san);
    }
    X509_sign(cert, issuer_key != nullptr ? issuer_key : key, EVP_sha256());
    return cert;
}

FILE* open_for_writing(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) {
        throw std::runtime_error("cannot write " + path);
    }
    return f;
}

void write_cert(const std::string& path, X509* cert) {
    FILE* f = open_for_writing(path);
    PEM_write_X509(f, cert);
    std::fclose(f);
}

void write_key(const std::string& path, EVP_PKEY* key, const char* password = nullptr) {
    FILE* f = open_for_writing(path);
    if (password != nullptr) {
        PEM_write_PrivateKey(f, key, EVP_aes_128_cbc(), reinterpret_cast<const unsigned char*>(password),
                             static_cast<int>(std::strlen(password)), nullptr, nullptr);
    } else {
        PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    }
    std::fclose(f);
}

test_pki make() {
    test_pki pki;
    char dir[] = "/tmp/dbridge-tls-test-XXXXXX";
    if (::mkdtemp(dir) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    pki.dir = dir;
    pki.ca_cert = pki.dir + "/ca.pem";
    pki.server_cert = pki.dir + "/server.pem";
    pki.server_key = pki.dir + "/server.key";
    pki.server_key_encrypted = pki.dir + "/server-encrypted.key";
    pki.client_cert = pki.dir + "/client.pem";
    pki.client_key = pki.dir + "/client.key";
    pki.unrelated_key = pki.dir + "/unrelated.key";

    EVP_PKEY* ca_key = new_key();
    X509* ca = new_cert("dbridge test CA", ca_key, nullptr, nullptr, true, nullptr, 1);
    EVP_PKEY* server_key = new_key();
    X509* server = new_cert("localhost", server_key, ca, ca_key, false, "DNS:localhost,IP:127.0.0.1", 2);
    EVP_PKEY* client_key = new_key();
    X509* client = new_cert("test client", client_key, ca, ca_key, false, nullptr, 3);
    EVP_PKEY* unrelated = new_key();

    write_cert(pki.ca_cert, ca);
    write_cert(pki.server_cert, server);
    write_key(pki.server_key, server_key);
    write_key(pki.server_key_encrypted, server_key, test_pki::key_password);
    write_cert(pki.client_cert, client);
    write_key(pki.client_key, client_key);
    write_key(pki.unrelated_key, unrelated);

    X509_free(ca);
    X509_free(server);
    X509_free(client);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(client_key);
    EVP_PKEY_free(unrelated);
    return pki;
}

void remove_files() {
    const test_pki& pki = test_certificates();
    for (const std::string* path : {&pki.ca_cert, &pki.server_cert, &pki.server_key, &pki.server_key_encrypted,
                                    &pki.client_cert, &pki.client_key, &pki.unrelated_key}) {
        ::unlink(path->c_str());
    }
    ::rmdir(pki.dir.c_str());
}

}  // namespace

const test_pki& test_certificates() {
    static const test_pki pki = make();
    // Registered after pki is complete, so the files go before pki does.
    static const bool cleanup_registered = std::atexit(remove_files) == 0;
    (void)cleanup_registered;
    return pki;
}

}  // namespace dbridge::testing

#include "tests/fake_kube/test_pki.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>

namespace weft::fake_kube {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "test PKI: %s failed\n", what);
    std::abort();
  }
}

EVP_PKEY* NewKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  Check(key != nullptr, "EVP_EC_gen");
  return key;
}

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  Check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* NewCert(EVP_PKEY* key, const char* cn, const char* org, X509* issuer, EVP_PKEY* issuer_key, long serial) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  if (org != nullptr) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(org), -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  return cert;
}

std::string CertPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string KeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

}  // namespace

TestPki MakeTestPki() {
  TestPki pki;
  EVP_PKEY* ca_key = NewKey();
  X509* ca = NewCert(ca_key, "weft-test-ca", nullptr, nullptr, nullptr, 1);
  AddExt(ca, ca, NID_basic_constraints, "critical,CA:TRUE");
  AddExt(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExt(ca, ca, NID_subject_key_identifier, "hash");
  Check(X509_sign(ca, ca_key, EVP_sha256()) > 0, "sign CA");

  EVP_PKEY* server_key = NewKey();
  X509* server = NewCert(server_key, "kube-apiserver", nullptr, ca, ca_key, 2);
  AddExt(server, ca, NID_basic_constraints, "critical,CA:FALSE");
  AddExt(server, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment");
  AddExt(server, ca, NID_ext_key_usage, "serverAuth");
  AddExt(server, ca, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  Check(X509_sign(server, ca_key, EVP_sha256()) > 0, "sign server");

  EVP_PKEY* client_key = NewKey();
  X509* client = NewCert(client_key, "weft-test", "system:masters", ca, ca_key, 3);
  AddExt(client, ca, NID_basic_constraints, "critical,CA:FALSE");
  AddExt(client, ca, NID_key_usage, "critical,digitalSignature");
  AddExt(client, ca, NID_ext_key_usage, "clientAuth");
  Check(X509_sign(client, ca_key, EVP_sha256()) > 0, "sign client");

  pki.ca_cert_pem = CertPem(ca);
  pki.server_cert_pem = CertPem(server);
  pki.server_key_pem = KeyPem(server_key);
  pki.client_cert_pem = CertPem(client);
  pki.client_key_pem = KeyPem(client_key);
  X509_free(ca);
  X509_free(server);
  X509_free(client);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(server_key);
  EVP_PKEY_free(client_key);
  return pki;
}

}  // namespace weft::fake_kube

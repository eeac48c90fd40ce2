#include "ca/leaf_encoder.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "ca/der.h"

namespace weft::ca {
namespace {

using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<EVP_PKEY_CTX_free>>;

absl::Status Failed(absl::string_view what) { return OpenSslError(absl::StatusCode::kInternal, what); }

// AlgorithmIdentifiers, as encoded.
constexpr absl::string_view kEcdsaWithSha256 = der::Bytes("\x30\x0A\x06\x08\x2A\x86\x48\xCE\x3D\x04\x03\x02");
constexpr absl::string_view kSha256WithRsa =
    der::Bytes("\x30\x0D\x06\x09\x2A\x86\x48\x86\xF7\x0D\x01\x01\x0B\x05\x00");

// Extensions that are the same in every workload leaf, as encoded.
// basicConstraints, critical, CA:FALSE (an empty SEQUENCE).
constexpr absl::string_view kBasicConstraintsLeaf =
    der::Bytes("\x30\x0C\x06\x03\x55\x1D\x13\x01\x01\xFF\x04\x02\x30\x00");
// keyUsage, critical: digitalSignature; digitalSignature + keyEncipherment.
constexpr absl::string_view kKeyUsageSign =
    der::Bytes("\x30\x0E\x06\x03\x55\x1D\x0F\x01\x01\xFF\x04\x04\x03\x02\x07\x80");
constexpr absl::string_view kKeyUsageSignEncipher =
    der::Bytes("\x30\x0E\x06\x03\x55\x1D\x0F\x01\x01\xFF\x04\x04\x03\x02\x05\xA0");
// extKeyUsage: serverAuth, clientAuth.
constexpr absl::string_view kServerAndClientAuth = der::Bytes(
    "\x30\x1D\x06\x03\x55\x1D\x25\x04\x16\x30\x14\x06\x08\x2B\x06\x01\x05\x05\x07\x03\x01\x06\x08\x2B\x06\x01"
    "\x05"
    "\x05\x07\x03\x02");
constexpr absl::string_view kSanOid = der::Bytes("\x55\x1D\x11");
constexpr absl::string_view kSkiOid = der::Bytes("\x55\x1D\x0E");
constexpr absl::string_view kAkiOid = der::Bytes("\x55\x1D\x23");

absl::string_view View(const unsigned char* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
absl::StatusOr<std::string> EncodeTime(WallTime t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) return absl::InvalidArgumentError("time out of range");
  int year = tm.tm_year + 1900;
  if (year < 1950 || year > 9999) return absl::InvalidArgumentError("time out of range");
  char buf[32];
  if (year < 2050) {
    std::snprintf(buf, sizeof(buf), "%02d%02d%02d%02d%02d%02dZ", year % 100, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
    return der::Tlv(der::kUtcTime, buf);
  }
  std::snprintf(buf, sizeof(buf), "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec);
  return der::Tlv(der::kGeneralizedTime, buf);
}

void AppendExtension(std::string& out, absl::string_view oid, bool critical, absl::string_view value) {
  std::string ext = der::Tlv(der::kOid, oid);
  if (critical) ext.append("\x01\x01\xFF", 3);
  der::AppendTlv(ext, der::kOctetString, value);
  der::AppendTlv(out, der::kSequence, ext);
}

// One EVP_PKEY_CTX per thread and issuing key, initialised once: OpenSSL 3's
// per-signature context set-up is a third of an ECDSA signature. The cache
// holds a reference to the key, so its address cannot be reused while cached.
absl::StatusOr<std::string> SignSha256(EVP_PKEY* key, absl::string_view tbs) {
  struct Cache {
    EvpPkeyPtr key;
    PkeyCtxPtr ctx;
  };
  thread_local Cache cache;
  if (cache.key.get() != key || !cache.ctx) {
    cache.ctx.reset(EVP_PKEY_CTX_new(key, nullptr));
    cache.key = Share(key);
    if (!cache.ctx || EVP_PKEY_sign_init(cache.ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_signature_md(cache.ctx.get(), EVP_sha256()) != 1) {
      cache.ctx.reset();
      return Failed("initialising the signature");
    }
  }
  unsigned char digest[32];
  Sha256(tbs, digest);
  size_t len = static_cast<size_t>(EVP_PKEY_get_size(key));
  std::string sig(len, '\0');
  if (EVP_PKEY_sign(cache.ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, digest,
                    sizeof(digest)) != 1) {
    return Failed("signing the certificate");
  }
  sig.resize(len);
  return sig;
}

// Serial numbers from a per-thread pool filled 4 KiB at a time: one DRBG
// call per 256 certificates instead of one each.
bool RandomBytes(unsigned char* out, size_t n) {
  thread_local unsigned char pool[4096];
  thread_local size_t left = 0;
  if (left < n) {
    if (RAND_bytes(pool, sizeof(pool)) != 1) return false;
    left = sizeof(pool);
  }
  std::memcpy(out, pool + sizeof(pool) - left, n);
  OPENSSL_cleanse(pool + sizeof(pool) - left, n);
  left -= n;
  return true;
}

}  // namespace

absl::StatusOr<EncodedLeaf> EncodeLeaf(const LeafFields& fields, X509* issuer, EVP_PKEY* issuer_key) {
  absl::string_view algorithm;
  switch (EVP_PKEY_get_base_id(issuer_key)) {
    case EVP_PKEY_EC:
      algorithm = kEcdsaWithSha256;
      break;
    case EVP_PKEY_RSA:
      algorithm = kSha256WithRsa;
      break;
    default:
      return absl::FailedPreconditionError("the issuing key must be ECDSA or RSA");
  }
  const ASN1_OCTET_STRING* issuer_ski = X509_get0_subject_key_id(issuer);
  if (issuer_ski == nullptr)
    return absl::FailedPreconditionError("the issuing certificate has no subjectKeyIdentifier");
  unsigned char* name_der = nullptr;
  int name_len = i2d_X509_NAME(X509_get_subject_name(issuer), &name_der);
  if (name_len <= 0) return Failed("encoding the issuer name");
  std::string issuer_name(reinterpret_cast<const char*>(name_der), static_cast<size_t>(name_len));
  OPENSSL_free(name_der);

  EncodedLeaf out;
  unsigned char serial[17] = {0};
  if (!RandomBytes(serial + 1, 16)) return Failed("RAND_bytes");
  serial[1] |= 0x01;  // never a short (or zero) serial: keep all 16 octets significant
  out.serial_hex = absl::BytesToHexString(View(serial + 1, 16));
  // DER INTEGERs are signed: a leading 0x00 keeps the serial positive.
  absl::string_view serial_content = serial[1] & 0x80 ? View(serial, 17) : View(serial + 1, 16);

  std::string validity;
  {
    auto not_before = EncodeTime(fields.not_before);
    auto not_after = EncodeTime(fields.not_after);
    if (!not_before.ok()) return not_before.status();
    if (!not_after.ok()) return not_after.status();
    validity = der::Tlv(der::kSequence, *not_before + *not_after);
  }

  std::string extensions;
  extensions.reserve(256 + fields.uri.size());
  absl::StrAppend(&extensions, kBasicConstraintsLeaf);
  absl::StrAppend(&extensions, fields.key_encipherment ? kKeyUsageSignEncipher : kKeyUsageSign);
  absl::StrAppend(&extensions, kServerAndClientAuth);
  AppendExtension(extensions, kSanOid, true,
                  der::Tlv(der::kSequence, der::Tlv(der::ContextPrimitive(6), fields.uri)));
  unsigned char ski[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(fields.public_key.data()), fields.public_key.size(), ski);
  AppendExtension(extensions, kSkiOid, false, der::Tlv(der::kOctetString, View(ski, sizeof(ski))));
  AppendExtension(
      extensions, kAkiOid, false,
      der::Tlv(der::kSequence, der::Tlv(der::ContextPrimitive(0),
                                        View(ASN1_STRING_get0_data(issuer_ski),
                                             static_cast<size_t>(ASN1_STRING_length(issuer_ski))))));

  std::string tbs_content;
  tbs_content.reserve(512 + fields.public_key_info.size() + extensions.size());
  tbs_content.append("\xA0\x03\x02\x01\x02", 5);  // [0] EXPLICIT version v3
  der::AppendTlv(tbs_content, der::kInteger, serial_content);
  absl::StrAppend(&tbs_content, algorithm);
  absl::StrAppend(&tbs_content, issuer_name);
  absl::StrAppend(&tbs_content, validity);
  tbs_content.append("\x30\x00", 2);  // empty subject: the identity is in the SAN
  absl::StrAppend(&tbs_content, fields.public_key_info);
  der::AppendTlv(tbs_content, der::ContextConstructed(3), der::Tlv(der::kSequence, extensions));
  std::string tbs = der::Tlv(der::kSequence, tbs_content);

  auto signature = SignSha256(issuer_key, tbs);
  if (!signature.ok()) return signature.status();
  std::string cert_content = std::move(tbs);
  absl::StrAppend(&cert_content, algorithm);
  der::AppendTlv(cert_content, der::kBitString, std::string(1, '\0') + *signature);
  out.der = der::Tlv(der::kSequence, cert_content);
  return out;
}

std::string DerToPem(absl::string_view der, absl::string_view label) {
  std::string base64 = absl::Base64Escape(der);
  std::string out = absl::StrCat("-----BEGIN ", label, "-----\n");
  out.reserve(out.size() * 2 + base64.size() + base64.size() / 64 + 2);
  for (size_t i = 0; i < base64.size(); i += 64) {
    out.append(base64, i, 64);
    out.push_back('\n');
  }
  absl::StrAppend(&out, "-----END ", label, "-----\n");
  return out;
}

}  // namespace weft::ca

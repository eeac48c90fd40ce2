#include "ca/csr_parser.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "ca/der.h"
#include "common/status_macros.h"

namespace weft::ca {
namespace {

using der::Element;
using der::Reader;

// AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }
absl::Status ReadAlgorithm(Reader& r, absl::string_view field, absl::string_view& oid,
                           absl::string_view& params) {
  ASSIGN_OR_RETURN(Element seq, r.Read(der::kSequence, field));
  Reader in(seq.content);
  const std::string f = absl::StrCat(field, ".algorithm");
  ASSIGN_OR_RETURN(Element algorithm, in.Read(der::kOid, f));
  RETURN_IF_ERROR(der::CheckOid(algorithm.content, f));
  oid = algorithm.content;
  params = {};
  if (!in.AtEnd()) {
    ASSIGN_OR_RETURN(Element p, in.ReadAny(absl::StrCat(field, ".parameters")));
    params = p.whole;
  }
  return in.ExpectEnd(field);
}

// Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }; only the shape is checked.
absl::Status CheckName(const Element& name, absl::string_view field) {
  Reader rdns(name.content);
  while (!rdns.AtEnd()) {
    ASSIGN_OR_RETURN(Element rdn, rdns.Read(der::kSet, field));
    Reader atvs(rdn.content);
    if (atvs.AtEnd())
      return absl::InvalidArgumentError(absl::StrCat(field, ": empty RelativeDistinguishedName"));
    while (!atvs.AtEnd()) {
      ASSIGN_OR_RETURN(Element atv, atvs.Read(der::kSequence, field));
      Reader in(atv.content);
      ASSIGN_OR_RETURN(Element type, in.Read(der::kOid, field));
      RETURN_IF_ERROR(der::CheckOid(type.content, field));
      RETURN_IF_ERROR(in.ReadAny(field).status());
      RETURN_IF_ERROR(in.ExpectEnd(field));
    }
  }
  return absl::OkStatus();
}

// An extension's value that must be exactly one SEQUENCE: a reader over its content.
absl::StatusOr<Reader> OnlySequence(absl::string_view value, absl::string_view field) {
  Reader r(value);
  ASSIGN_OR_RETURN(Element seq, r.Read(der::kSequence, field));
  RETURN_IF_ERROR(r.ExpectEnd(field));
  return Reader(seq.content);
}

// GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName
absl::Status ReadSubjectAltName(absl::string_view value, ParsedCsr& out) {
  constexpr absl::string_view kField = "extensionRequest.subjectAltName";
  ASSIGN_OR_RETURN(Reader in, OnlySequence(value, kField));
  if (in.AtEnd()) return absl::InvalidArgumentError(absl::StrCat(kField, ": no names"));
  while (!in.AtEnd()) {
    ASSIGN_OR_RETURN(Element name, in.ReadAny(kField));
    if (name.tag == der::ContextPrimitive(6)) {  // uniformResourceIdentifier [6] IA5String
      for (char c : name.content) {
        if (static_cast<unsigned char>(c) > 0x7F || c == '\0') {
          return absl::InvalidArgumentError(absl::StrCat(kField, ": a URI that is not IA5String"));
        }
      }
      out.uris.push_back(name.content);
    } else if ((name.tag & 0xC0) == 0x80 && (name.tag & 0x1F) <= 8) {  // the other GeneralName choices
      ++out.other_names;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(kField, ": not a GeneralName (tag 0x", absl::Hex(name.tag, absl::kZeroPad2), ")"));
    }
  }
  return absl::OkStatus();
}

// BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }
absl::Status ReadBasicConstraints(absl::string_view value, ParsedCsr& out) {
  constexpr absl::string_view kField = "extensionRequest.basicConstraints";
  ASSIGN_OR_RETURN(Reader in, OnlySequence(value, kField));
  if (in.PeekTag() == der::kBoolean) {
    ASSIGN_OR_RETURN(Element ca, in.ReadAny(kField));
    ASSIGN_OR_RETURN(bool is_ca, der::Boolean(ca, kField));
    out.requests_ca = out.requests_ca || is_ca;
  }
  if (in.PeekTag() == der::kInteger) RETURN_IF_ERROR(in.ReadAny(kField).status());
  return in.ExpectEnd(kField);
}

// Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension
// Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
absl::Status ReadExtensions(const Element& values, ParsedCsr& out) {
  constexpr absl::string_view kField = "extensionRequest";
  Reader set(values.content);
  ASSIGN_OR_RETURN(Element exts, set.Read(der::kSequence, kField));
  RETURN_IF_ERROR(set.ExpectEnd(absl::StrCat(kField, " (exactly one value)")));
  Reader in(exts.content);
  while (!in.AtEnd()) {
    ASSIGN_OR_RETURN(Element ext, in.Read(der::kSequence, kField));
    Reader e(ext.content);
    ASSIGN_OR_RETURN(Element id, e.Read(der::kOid, absl::StrCat(kField, ".extnID")));
    RETURN_IF_ERROR(der::CheckOid(id.content, absl::StrCat(kField, ".extnID")));
    if (e.PeekTag() == der::kBoolean) {
      ASSIGN_OR_RETURN(Element critical, e.ReadAny(kField));
      RETURN_IF_ERROR(der::Boolean(critical, absl::StrCat(kField, ".critical")).status());
    }
    ASSIGN_OR_RETURN(Element value, e.Read(der::kOctetString, absl::StrCat(kField, ".extnValue")));
    RETURN_IF_ERROR(e.ExpectEnd(kField));
    if (id.content == oid::kSubjectAltName) {
      ++out.san_extensions;
      RETURN_IF_ERROR(ReadSubjectAltName(value.content, out));
    } else if (id.content == oid::kBasicConstraints) {
      RETURN_IF_ERROR(ReadBasicConstraints(value.content, out));
    }
    // Other requested extensions are ignored: the leaf's are the CA's choice.
  }
  return absl::OkStatus();
}

absl::Status ReadInfo(const Element& info, ParsedCsr& out) {
  Reader in(info.content);
  ASSIGN_OR_RETURN(Element version, in.Read(der::kInteger, "certificationRequestInfo.version"));
  if (version.content != absl::string_view("\0", 1)) {
    return absl::InvalidArgumentError("certificationRequestInfo.version: must be 0 (v1)");
  }
  ASSIGN_OR_RETURN(Element subject, in.Read(der::kSequence, "certificationRequestInfo.subject"));
  RETURN_IF_ERROR(CheckName(subject, "certificationRequestInfo.subject"));
  out.subject = subject.whole;

  constexpr absl::string_view kSpki = "certificationRequestInfo.subjectPKInfo";
  ASSIGN_OR_RETURN(Element spki, in.Read(der::kSequence, kSpki));
  out.public_key_info = spki.whole;
  Reader key(spki.content);
  RETURN_IF_ERROR(ReadAlgorithm(key, kSpki, out.key_algorithm, out.key_parameters));
  ASSIGN_OR_RETURN(Element bits, key.Read(der::kBitString, absl::StrCat(kSpki, ".subjectPublicKey")));
  ASSIGN_OR_RETURN(out.public_key, der::BitStringBytes(bits, absl::StrCat(kSpki, ".subjectPublicKey")));
  RETURN_IF_ERROR(key.ExpectEnd(kSpki));

  constexpr absl::string_view kAttributes = "certificationRequestInfo.attributes";
  ASSIGN_OR_RETURN(Element attributes, in.Read(der::ContextConstructed(0), kAttributes));
  RETURN_IF_ERROR(in.ExpectEnd("certificationRequestInfo"));
  Reader attrs(attributes.content);
  bool seen_extensions = false;
  while (!attrs.AtEnd()) {
    ASSIGN_OR_RETURN(Element attr, attrs.Read(der::kSequence, kAttributes));
    Reader a(attr.content);
    ASSIGN_OR_RETURN(Element type, a.Read(der::kOid, absl::StrCat(kAttributes, ".type")));
    RETURN_IF_ERROR(der::CheckOid(type.content, absl::StrCat(kAttributes, ".type")));
    ASSIGN_OR_RETURN(Element values, a.Read(der::kSet, absl::StrCat(kAttributes, ".values")));
    RETURN_IF_ERROR(a.ExpectEnd(kAttributes));
    if (type.content == oid::kExtensionRequest) {
      if (seen_extensions) return absl::InvalidArgumentError("extensionRequest: more than one attribute");
      seen_extensions = true;
      RETURN_IF_ERROR(ReadExtensions(values, out));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool ParsedCsr::IsEcP256() const {
  constexpr absl::string_view kNamedCurveP256 = der::Bytes("\x06\x08\x2A\x86\x48\xCE\x3D\x03\x01\x07");
  return key_algorithm == oid::kEcPublicKey && key_parameters == kNamedCurveP256;
}

bool ParsedCsr::IsRsa() const { return key_algorithm == oid::kRsaEncryption; }

bool ParsedCsr::SignedWithEcdsaSha256() const {
  return signature_algorithm == oid::kEcdsaWithSha256 && signature_parameters.empty();
}

absl::StatusOr<ParsedCsr> ParseCsr(absl::string_view der) {
  ParsedCsr out;
  Reader top(der);
  ASSIGN_OR_RETURN(Element request, top.Read(der::kSequence, "CertificationRequest"));
  RETURN_IF_ERROR(top.ExpectEnd("CertificationRequest"));
  out.der = request.whole;
  Reader in(request.content);
  ASSIGN_OR_RETURN(Element info, in.Read(der::kSequence, "certificationRequestInfo"));
  out.info = info.whole;
  RETURN_IF_ERROR(ReadInfo(info, out));
  RETURN_IF_ERROR(ReadAlgorithm(in, "signatureAlgorithm", out.signature_algorithm, out.signature_parameters));
  ASSIGN_OR_RETURN(Element signature, in.Read(der::kBitString, "signature"));
  ASSIGN_OR_RETURN(out.signature, der::BitStringBytes(signature, "signature"));
  RETURN_IF_ERROR(in.ExpectEnd("CertificationRequest"));
  return out;
}

absl::StatusOr<std::string> CsrPemToDer(absl::string_view pem) {
  pem = absl::StripAsciiWhitespace(pem);
  absl::string_view label;
  for (absl::string_view candidate : {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"}) {
    if (pem.substr(0, 16 + candidate.size()) == absl::StrCat("-----BEGIN ", candidate, "-----"))
      label = candidate;
  }
  if (label.empty())
    return absl::InvalidArgumentError("not a PEM certificate request (no BEGIN CERTIFICATE REQUEST line)");
  const std::string end = absl::StrCat("-----END ", label, "-----");
  if (pem.size() < end.size() || pem.substr(pem.size() - end.size()) != end) {
    return absl::InvalidArgumentError(absl::StrCat("PEM certificate request: the block must end with ", end));
  }
  absl::string_view body = pem.substr(16 + label.size(), pem.size() - end.size() - 16 - label.size());
  std::string base64;
  base64.reserve(body.size());
  for (char c : body) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) base64.push_back(c);
  }
  std::string out;
  if (base64.empty() || base64.size() % 4 != 0 || !absl::Base64Unescape(base64, &out)) {
    return absl::InvalidArgumentError("PEM certificate request: invalid base64");
  }
  return out;
}

}  // namespace weft::ca

#include "server/rpc/peer_identity.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <limits>
#include <memory>

namespace steritrack::rpc {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};

// The first entry `nid` of `name` as UTF-8; empty when there is none.
std::string Entry(const X509_NAME* name, int nid) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return "";
  std::string text(reinterpret_cast<const char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return text;
}

}  // namespace

std::optional<CertificateSubject> CertificateSubjectFromPem(std::string_view pem) {
  if (pem.empty() || pem.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return std::nullopt;
  }
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return std::nullopt;
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return std::nullopt;
  const X509_NAME* subject = X509_get_subject_name(cert.get());
  if (subject == nullptr) return std::nullopt;
  return CertificateSubject{.common_name = Entry(subject, NID_commonName),
                            .organizational_unit = Entry(subject, NID_organizationalUnitName)};
}

std::optional<CertificateSubject> PeerCertificateSubject(const grpc::AuthContext& context) {
  const std::vector<grpc::string_ref> certs =
      context.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (certs.empty()) return std::nullopt;
  return CertificateSubjectFromPem(std::string_view(certs.front().data(), certs.front().size()));
}

}  // namespace steritrack::rpc

#include "server/rpc/server_tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

absl::StatusOr<std::string> ReadFile(const std::string& what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        StrCat(what, " ", path, ": cannot be read (", std::strerror(errno), ")"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(StrCat(what, " ", path, ": cannot be read"));
  }
  return text.str();
}

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& text) {
  if (text.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return nullptr;
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// The first certificate in `pem`, or null.
std::unique_ptr<X509, X509Free> FirstCertificate(const std::string& pem) {
  std::unique_ptr<BIO, BioFree> bio = MemoryBio(pem);
  if (bio == nullptr) return nullptr;
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return cert;
}

// Never prompts for a pass phrase: steritrackd runs unattended, so an encrypted key is an error.
int NoPassphrase(char*, int, int, void*) { return -1; }

}  // namespace

absl::StatusOr<ServerTls> LoadServerTls(const ServerTlsFiles& files) {
  ServerTls tls;
  absl::StatusOr<std::string> cert = ReadFile("TLS certificate", files.cert);
  if (!cert.ok()) return cert.status();
  std::unique_ptr<X509, X509Free> leaf = FirstCertificate(*cert);
  if (leaf == nullptr) {
    return absl::InvalidArgumentError(
        StrCat("TLS certificate ", files.cert, ": no PEM certificate in it"));
  }

  absl::StatusOr<std::string> key = ReadFile("TLS key", files.key);
  if (!key.ok()) return key.status();
  std::unique_ptr<BIO, BioFree> key_bio = MemoryBio(*key);
  std::unique_ptr<EVP_PKEY, KeyFree> private_key(
      key_bio == nullptr ? nullptr
                         : PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (private_key == nullptr) {
    return absl::InvalidArgumentError(
        StrCat("TLS key ", files.key, ": no unencrypted PEM private key in it"));
  }
  if (X509_check_private_key(leaf.get(), private_key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        StrCat("TLS key ", files.key, ": is not the key of the certificate in ", files.cert));
  }
  tls.cert_chain_pem = *std::move(cert);
  tls.private_key_pem = *std::move(key);

  if (!files.client_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadFile("client CA", files.client_ca);
    if (!ca.ok()) return ca.status();
    if (FirstCertificate(*ca) == nullptr) {
      return absl::InvalidArgumentError(
          StrCat("client CA ", files.client_ca, ": no PEM certificate in it"));
    }
    tls.client_ca_pem = *std::move(ca);
  }
  return tls;
}

}  // namespace steritrack::rpc

// Sha256: the one cryptographic primitive core needs, for the audit trail's hash chain.
//
// A seam, so that core links absl only: the production implementation (OpenSSL's libcrypto) is in
// server/crypto, and whoever builds the core services hands it in. Implementations are stateless
// and safe to call from many threads at once.
#ifndef STERITRACK_SHA256_H_
#define STERITRACK_SHA256_H_

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

namespace steritrack {

class Sha256 {
 public:
  virtual ~Sha256() = default;
  // Lower-case hex SHA-256 of the concatenation of `parts`; empty only if hashing itself failed
  // (allocation), which then fails every comparison, the safe direction for a verifier.
  virtual std::string HexDigest(std::initializer_list<std::string_view> parts) const = 0;
};

// The production implementation (OpenSSL). Defined in server/crypto (library steritrack_crypto).
std::unique_ptr<Sha256> NewSha256();

}  // namespace steritrack

#endif  // STERITRACK_SHA256_H_

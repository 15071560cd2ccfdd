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

// SHA-256 of an input too large to hold at once (a database snapshot), fed in pieces. One thread
// at a time.
class Sha256Stream {
 public:
  virtual ~Sha256Stream() = default;
  virtual void Update(std::string_view data) = 0;
  // Lower-case hex digest of everything fed; empty if hashing failed. Call once, last.
  virtual std::string HexFinal() = 0;
};

// The production implementations (OpenSSL). Defined in server/crypto (library steritrack_crypto).
std::unique_ptr<Sha256> NewSha256();
std::unique_ptr<Sha256Stream> NewSha256Stream();

}  // namespace steritrack

#endif  // STERITRACK_SHA256_H_

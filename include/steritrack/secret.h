// SecretSource: where API token secrets come from (issue 9).
//
// A seam, like Sha256: the production implementation draws from OpenSSL's CSPRNG (server/crypto),
// tests hand in a predictable one. Implementations are safe to call from many threads at once.
#ifndef STERITRACK_SECRET_H_
#define STERITRACK_SECRET_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace steritrack {

class SecretSource {
 public:
  virtual ~SecretSource() = default;
  // `bytes` random bytes as lower-case hex (2 * bytes characters).
  virtual absl::StatusOr<std::string> NewSecretHex(int bytes) const = 0;
};

// The production implementation (OpenSSL RAND_bytes). Defined in server/crypto.
std::unique_ptr<SecretSource> NewSecretSource();

}  // namespace steritrack

#endif  // STERITRACK_SECRET_H_

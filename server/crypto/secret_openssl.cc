// steritrack::SecretSource over OpenSSL's CSPRNG (RAND_bytes, seeded by the OS).
#include <openssl/rand.h>

#include <memory>
#include <vector>

#include "steritrack/secret.h"

namespace steritrack {
namespace {

class OpenSslSecretSource final : public SecretSource {
 public:
  absl::StatusOr<std::string> NewSecretHex(int bytes) const override {
    if (bytes <= 0) return absl::InvalidArgumentError("a secret needs at least one byte");
    std::vector<unsigned char> raw(static_cast<size_t>(bytes));
    if (RAND_bytes(raw.data(), bytes) != 1) {
      return absl::UnavailableError("the random number generator is not available");
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(raw.size() * 2);
    for (unsigned char b : raw) {
      hex += kHex[b >> 4];
      hex += kHex[b & 0xf];
    }
    return hex;
  }
};

}  // namespace

std::unique_ptr<SecretSource> NewSecretSource() { return std::make_unique<OpenSslSecretSource>(); }

}  // namespace steritrack

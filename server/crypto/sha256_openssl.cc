// steritrack::Sha256 over OpenSSL's EVP interface (libssl-dev).
#include <openssl/evp.h>

#include <memory>

#include "steritrack/sha256.h"

namespace steritrack {
namespace {

std::string Hex(const unsigned char* digest, unsigned int length) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

// Given EVP_sha256(), OpenSSL 3 looks SHA-256 up among its providers on every EVP_DigestInit_ex:
// a quarter of the hashing's time on the write lane (an audit entry's hash, a token's). Fetched
// once here, it is not; kept for the life of the process.
const EVP_MD* Sha256Algorithm() {
  static const EVP_MD* const fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return fetched != nullptr ? fetched : EVP_sha256();
}

using DigestContext = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

class OpenSslSha256 final : public Sha256 {
 public:
  std::string HexDigest(std::initializer_list<std::string_view> parts) const override {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    DigestContext ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), Sha256Algorithm(), nullptr) != 1) {
      return std::string();
    }
    for (std::string_view part : parts) {
      if (EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) return std::string();
    }
    if (EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) return std::string();
    return Hex(digest, length);
  }
};

class OpenSslSha256Stream final : public Sha256Stream {
 public:
  OpenSslSha256Stream() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    ok_ = ctx_ != nullptr && EVP_DigestInit_ex(ctx_.get(), Sha256Algorithm(), nullptr) == 1;
  }

  void Update(std::string_view data) override {
    ok_ = ok_ && EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) == 1;
  }

  std::string HexFinal() override {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_.get(), digest, &length) != 1) return std::string();
    ok_ = false;  // finished: a second call answers empty
    return Hex(digest, length);
  }

 private:
  DigestContext ctx_;
  bool ok_ = false;
};

}  // namespace

std::unique_ptr<Sha256> NewSha256() { return std::make_unique<OpenSslSha256>(); }

std::unique_ptr<Sha256Stream> NewSha256Stream() { return std::make_unique<OpenSslSha256Stream>(); }

}  // namespace steritrack

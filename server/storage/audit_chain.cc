#include "server/storage/audit_chain.h"

#include <openssl/evp.h>

#include <cstdint>
#include <memory>

#include "steritrack/strings.h"

namespace steritrack::audit_chain {
namespace {

void Field(std::string& out, std::string_view value) {
  out += StrCat(value.size(), ":");
  out += value;
  out += ';';
}

void Field(std::string& out, int64_t value) { Field(out, StrCat(value)); }

}  // namespace

std::string Canonical(const Event& e) {
  std::string out = "steritrack.audit.v1;";
  Field(out, e.seq);
  Field(out, absl::ToUnixMicros(e.at));
  Field(out, e.actor);
  Field(out, e.action);
  Field(out, e.lot_id);
  Field(out, e.cartridge_id);
  Field(out, e.treatment_id);
  Field(out, e.item_id);
  Field(out, e.load_id);
  Field(out, e.sterilizer_id);
  Field(out, e.detail);
  Field(out, e.before);
  Field(out, e.after);
  Field(out, e.request_id);
  Field(out, e.corrects_seq);
  return out;
}

std::string EntryHash(std::string_view prev_hash, const Event& e) {
  const std::string canonical = Canonical(e);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  // SHA-256 over memory cannot fail short of allocation failure; an empty result then fails every
  // comparison, which is the safe direction for a verifier.
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), prev_hash.data(), prev_hash.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), canonical.data(), canonical.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
    return std::string();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

}  // namespace steritrack::audit_chain

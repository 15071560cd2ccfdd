#include "steritrack/site.h"

#include "steritrack/error.h"

namespace steritrack {
namespace {

thread_local const SiteScope* current_scope = nullptr;

}  // namespace

absl::Status CheckSiteId(std::string_view field, std::string_view site) {
  if (site.empty() || site.size() > 32) return InvalidField(field, "must be 1 to 32 characters");
  for (size_t i = 0; i < site.size(); ++i) {
    const char c = site[i];
    const bool letter_or_digit = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!letter_or_digit && !(c == '_' && i > 0)) {
      return InvalidField(field, "may hold only a-z, 0-9 and _ (not first)");
    }
  }
  return absl::OkStatus();
}

absl::Status SiteNotFound(std::string_view site, std::string_view message) {
  return MakeError(absl::StatusCode::kNotFound, message, "SITE_NOT_FOUND",
                   {{"site", std::string(site)}});
}

SiteScope::SiteScope(std::string site) : site_(std::move(site)), outer_(current_scope) {
  current_scope = this;
}

SiteScope::~SiteScope() { current_scope = outer_; }

std::string_view SiteScope::CurrentOr(std::string_view fallback) {
  return current_scope != nullptr ? std::string_view(current_scope->site_) : fallback;
}

}  // namespace steritrack

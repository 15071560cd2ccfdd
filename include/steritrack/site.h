// Sites (issue 13): every record belongs to a site, a clinic of a chain. A SQLite database is one
// site, "default"; a PostgreSQL database holds any number, each in a schema of its own (the
// default site in `public`, site ID in `site_ID`), so that no query of one clinic can read or
// change another's records, and each site keeps its own audit hash chain.
//
// Which site a transaction acts on is the calling thread's SiteScope: the rpc layer opens one for
// each call, for the caller's site, before core runs; a thread with none acts on the store's
// default site (start-up tasks, local tools, single-clinic servers).
#ifndef STERITRACK_SITE_H_
#define STERITRACK_SITE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace steritrack {

inline constexpr std::string_view kDefaultSite = "default";

// A site id: 1 to 32 of a-z, 0-9 and _, starting with a letter or digit. INVALID_ARGUMENT
// (INVALID_FIELD, naming `field`) for anything else.
absl::Status CheckSiteId(std::string_view field, std::string_view site);

// NOT_FOUND SITE_NOT_FOUND for `site`, which the database does not hold: the one refusal every
// layer gives (the rpc layer for a named site or a certificate's, each store for a scope it cannot
// serve). `message` says it in the words of the layer that found it.
absl::Status SiteNotFound(std::string_view site, std::string_view message);

// The site the calling thread acts on while this object lives; scopes nest, the innermost wins.
class SiteScope {
 public:
  explicit SiteScope(std::string site);
  ~SiteScope();
  SiteScope(const SiteScope&) = delete;
  SiteScope& operator=(const SiteScope&) = delete;

  // The calling thread's site, or `fallback` when it has no scope open.
  static std::string_view CurrentOr(std::string_view fallback);

 private:
  std::string site_;
  const SiteScope* outer_;
};

// The sites of a database. Sites are created, never removed. Thread-safe.
class SiteDirectory {
 public:
  virtual ~SiteDirectory() = default;
  // Every site, the default first, then by id.
  virtual absl::StatusOr<std::vector<std::string>> ListSites() = 0;
  // Whether `site` exists (NOT_FOUND is not an error here: false).
  virtual absl::StatusOr<bool> HasSite(std::string_view site) = 0;
};

// The directory of a database that holds one site, the default (SQLite).
class SingleSiteDirectory final : public SiteDirectory {
 public:
  absl::StatusOr<std::vector<std::string>> ListSites() override {
    return std::vector<std::string>{std::string(kDefaultSite)};
  }
  absl::StatusOr<bool> HasSite(std::string_view site) override { return site == kDefaultSite; }
};

}  // namespace steritrack

#endif  // STERITRACK_SITE_H_

// Helpers shared by the core services: field checks, keyset pagination, event paging and the
// idempotent write runner. Internal to server/core: include only from its .cc files.
//
// Pure functions, plus RunIdempotentWrite, which is as thread-safe as the Store it runs on.
#ifndef STERITRACK_SERVER_CORE_WRITE_HELPER_H_
#define STERITRACK_SERVER_CORE_WRITE_HELPER_H_

#ifndef STERITRACK_CORE_IMPLEMENTATION
#error \
    "server/core/write_helper.h is internal to server/core: include it only from there (see server/CMakeLists.txt)"
#endif

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "server/core/cartridge_service.h"
#include "server/core/commit_notifier.h"
#include "server/core/result_codec.h"
#include "steritrack/audit_chain.h"
#include "steritrack/clock.h"
#include "steritrack/commit_deferral.h"
#include "steritrack/error.h"
#include "steritrack/failpoint.h"
#include "steritrack/sha256.h"
#include "steritrack/status_macros.h"
#include "steritrack/store.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace core_internal {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;
inline constexpr std::string_view kPageTokenPrefix = "p1.";

// Code points that change how text around them is shown without being seen themselves: the
// bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069, U+061C, U+200E,
// U+200F), and zero-width ones (U+200B-U+200D, U+2060-U+2064, U+FEFF), and the line and paragraph
// separators (U+2028, U+2029). In a room or a client reference they can make one record read as
// another in a report.
constexpr bool IsInvisibleFormatting(char32_t cp) {
  return (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x061C ||
         cp == 0xFEFF || cp == 0x2028 || cp == 0x2029;
}

// Decodes the UTF-8 sequence at `text[*i]` and advances `*i` past it; nullopt (and `*i`
// unchanged) when it is not well-formed UTF-8 (overlong forms, surrogates and values past U+10FFFF
// included).
inline std::optional<char32_t> DecodeUtf8(std::string_view text, size_t* i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(*i);
  if (lead < 0x80) {
    ++*i;
    return static_cast<char32_t>(lead);
  }
  size_t length = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, cp = lead & 0x1F, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, cp = lead & 0x0F, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (*i + length > text.size()) return std::nullopt;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(*i + k) & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (byte(*i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  *i += length;
  return cp;
}

// Free text: `required` says whether empty is refused. The limit counts bytes of UTF-8 (what is
// stored). Never passes: text that is not UTF-8, control characters (C0, DEL, C1), and invisible
// formatting (IsInvisibleFormatting).
inline absl::Status CheckText(std::string_view field, std::string_view value, size_t max_length,
                              bool required = true) {
  if (value.empty()) {
    return required ? InvalidField(field, "is required") : absl::OkStatus();
  }
  if (value.size() > max_length) {
    return InvalidField(field, StrCat("is ", value.size(), " bytes long (UTF-8), at most ",
                                      max_length, " allowed"));
  }
  for (size_t i = 0; i < value.size();) {
    const size_t at = i;
    std::optional<char32_t> cp = DecodeUtf8(value, &i);
    if (!cp.has_value()) return InvalidField(field, StrCat("is not valid UTF-8 (byte ", at, ")"));
    if (*cp < 0x20 || (*cp >= 0x7F && *cp <= 0x9F)) {
      return InvalidField(field, "contains a control character");
    }
    if (IsInvisibleFormatting(*cp)) {
      return InvalidField(field, StrCat("contains an invisible formatting character (U+",
                                        absl::StrFormat("%04X", static_cast<uint32_t>(*cp)),
                                        ": a bidirectional override or zero-width character)"));
    }
  }
  return absl::OkStatus();
}

// The GS1 parser's refusal re-anchored on the request field `field`, keeping the AI it was about
// (metadata "ai") and its reason ("why"): INVALID_ARGUMENT BARCODE_INVALID, "<field>: not a valid
// <what>: <why>".
inline absl::Status BarcodeInvalid(std::string_view field, const absl::Status& parse_error,
                                   std::string_view what) {
  std::optional<ErrorInfo> info = GetErrorInfo(parse_error);
  std::map<std::string, std::string> metadata = {{"field", std::string(field)}};
  std::string why(parse_error.message());
  if (info) {
    if (auto it = info->metadata.find("why"); it != info->metadata.end()) why = it->second;
    if (auto it = info->metadata.find("field"); it != info->metadata.end()) {
      metadata["ai"] = it->second;
    }
  }
  metadata["why"] = why;
  return MakeError(absl::StatusCode::kInvalidArgument,
                   StrCat(field, ": not a valid ", what, ": ", why), "BARCODE_INVALID",
                   std::move(metadata));
}

inline absl::Status CheckRequestId(const WriteContext& ctx) {
  return CheckText("request_id", ctx.request_id, kMaxRequestIdLength, /*required=*/false);
}

// CANCELLED when the caller has given up: checked before a write starts and before it commits, so
// that work for a client that is gone never commits (a committed write stays, and a retry under
// the same request id gets its stored answer).
inline absl::Status CheckCallerWaiting(const WriteContext& ctx, std::string_view when) {
  if (!ctx.caller_gave_up || !ctx.caller_gave_up()) return absl::OkStatus();
  return MakeError(absl::StatusCode::kCancelled,
                   StrCat("the caller gave up ", when, ": nothing was stored"), "CALLER_GAVE_UP",
                   {{"when", std::string(when)}});
}

inline absl::StatusOr<int> PageSize(const PageRequest& page) {
  if (page.page_size < 0) return InvalidField("page_size", "must not be negative");
  if (page.page_size == 0) return kDefaultPageSize;
  return std::min(page.page_size, kMaxPageSize);
}

// Decimal digits without a sign or a leading zero ("0" itself is one): the one spelling of a
// number in an id, a token or a cursor.
constexpr bool IsCanonicalNumber(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text.front() == '0')) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The key after which the page starts: 0 for the first page, else what MakePage put in the token.
inline absl::StatusOr<int64_t> PageAfter(const PageRequest& page) {
  if (page.page_token.empty()) return 0;
  std::string_view token = page.page_token;
  int64_t after = 0;
  const char* end = token.data() + token.size();
  if (token.substr(0, kPageTokenPrefix.size()) != kPageTokenPrefix) {
    return InvalidField("page_token", "is not a token returned by a previous page");
  }
  auto [ptr, ec] = std::from_chars(token.data() + kPageTokenPrefix.size(), end, after);
  if (ec != std::errc() || ptr != end || after < 0 ||
      !IsCanonicalNumber(token.substr(kPageTokenPrefix.size()))) {
    return InvalidField("page_token", "is not a token returned by a previous page");
  }
  return after;
}

// `items` came from a store asked for limit + 1 rows; `key_of` gives the keyset key of a row.
template <typename T, typename KeyOf>
Page<T> MakePage(std::vector<T> items, int limit, KeyOf key_of) {
  Page<T> page;
  // The store was asked for one extra row: its presence says there is a next page.
  if (static_cast<int>(items.size()) > limit) {
    items.resize(static_cast<size_t>(limit));
    page.next_page_token = StrCat(kPageTokenPrefix, key_of(items.back()));
  }
  page.items = std::move(items);
  return page;
}

// Every event matching `filter`, in pages, so that a busy history is never cut short.
inline absl::StatusOr<std::vector<Event>> AllEvents(ReadTransaction& tx, EventFilter filter) {
  std::vector<Event> all;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<Event> batch, tx.audit().ListEvents(filter));
    if (batch.empty()) break;
    filter.after_seq = batch.back().seq;
    const size_t n = batch.size();
    all.insert(all.end(), std::make_move_iterator(batch.begin()),
               std::make_move_iterator(batch.end()));
    if (static_cast<int>(n) < filter.limit) break;
  }
  return all;
}

// The one text form of a time in the API (ErrorInfo metadata, report records): RFC 3339 in UTC
// with a 'Z', whole seconds, e.g. "2026-11-26T10:00:00Z".
inline std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// A write transaction as the core services see it: the store's repositories, plus AppendEvent,
// which links the entry into the audit hash chain (steritrack/audit_chain.h) in the same
// transaction.
class AuditedTransaction final : public WriteTransaction {
 public:
  // REQUIRES: `tx` and `sha256` outlive this object.
  AuditedTransaction(WriteTransaction& tx, const Sha256& sha256) : tx_(tx), sha256_(sha256) {}

  CartridgeWrites& cartridges() override { return tx_.cartridges(); }
  SterilizationWrites& sterilization() override { return tx_.sterilization(); }
  AuditLogWrites& audit() override { return tx_.audit(); }
  ReportReads& reports() override { return tx_.reports(); }
  AccessWrites& access() override { return tx_.access(); }
  absl::Status Commit() override { return tx_.Commit(); }

  // Appends `event` to the audit trail; returns its seq.
  absl::StatusOr<int64_t> AppendEvent(Event event) {
    return audit_chain::Append(tx_.audit(), sha256_, std::move(event));
  }

 private:
  WriteTransaction& tx_;
  const Sha256& sha256_;
};

// Runs `body` in one write transaction on `store`, with `now` from `clock`. With a request id, a
// repeat of the same request returns the stored first answer without running `body`; a different
// request under the same id is refused. Nothing is stored unless `body` succeeds and the commit
// does. REQUIRES: EncodeResult(const T&) and DecodeResult<T> exist (server/core/result_codec.h).
// After a successful commit, `commits` (when non-null) is notified.
template <typename T>
absl::StatusOr<T> RunIdempotentWrite(
    Store& store, const Clock& clock, const Sha256& sha256, CommitNotifier* commits,
    const WriteContext& ctx, std::string_view operation, std::string_view fingerprint,
    absl::FunctionRef<absl::StatusOr<T>(AuditedTransaction&, absl::Time)> body) {
  RETURN_IF_ERROR(CheckRequestId(ctx));
  RETURN_IF_ERROR(CheckCallerWaiting(ctx, "before the write started"));
  ASSIGN_OR_RETURN(std::unique_ptr<WriteTransaction> store_tx, store.BeginWrite());
  AuditedTransaction audited(*store_tx, sha256);
  AuditedTransaction* tx = &audited;
  if (!ctx.request_id.empty()) {
    ASSIGN_OR_RETURN(std::optional<StoredRequest> prior, tx->audit().FindRequest(ctx.request_id));
    if (prior.has_value()) {
      if (prior->operation != operation || prior->fingerprint != fingerprint) {
        return MakeError(absl::StatusCode::kInvalidArgument,
                         "request_id: was already used for a different request",
                         "REQUEST_ID_REUSED",
                         {{"field", "request_id"},
                          {"why", "was already used for a different request"},
                          {"first_operation", prior->operation}});
      }
      return DecodeResult<T>(prior->response);
    }
  }
  const absl::Time now = clock.Now();
  ASSIGN_OR_RETURN(T result, body(*tx, now));
  if (!ctx.request_id.empty()) {
    RETURN_IF_ERROR(tx->audit().SaveRequest(StoredRequest{.request_id = ctx.request_id,
                                                          .operation = std::string(operation),
                                                          .fingerprint = std::string(fingerprint),
                                                          .response = EncodeResult(result),
                                                          .at = now}));
  }
  RETURN_IF_ERROR(CheckCallerWaiting(ctx, "before the commit"));
  STERITRACK_FAILPOINT("before_commit");
  RETURN_IF_ERROR(tx->Commit());
  if (commits != nullptr) commits->Notify();
#ifdef STERITRACK_FAILPOINTS
  // A pending commit's point is hit by the thread that settles it, once durable.
  if (CommitDeferral* deferral = CommitDeferral::OnThisThread();
      deferral == nullptr || !deferral->HitAfterDurable("after_commit")) {
    STERITRACK_FAILPOINT("after_commit");  // committed, not yet answered
  }
#endif
  return result;
}

// Runs `body` in one write transaction without request-id replay: for writes whose answer must
// not be stored (a new token's secret). Nothing is stored unless `body` and the commit succeed.
template <typename T>
absl::StatusOr<T> RunWrite(
    Store& store, const Clock& clock, const Sha256& sha256, CommitNotifier* commits,
    absl::FunctionRef<absl::StatusOr<T>(AuditedTransaction&, absl::Time)> body) {
  ASSIGN_OR_RETURN(std::unique_ptr<WriteTransaction> store_tx, store.BeginWrite());
  AuditedTransaction audited(*store_tx, sha256);
  ASSIGN_OR_RETURN(T result, body(audited, clock.Now()));
  RETURN_IF_ERROR(audited.Commit());
  if (commits != nullptr) commits->Notify();
  return result;
}

}  // namespace core_internal
}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_WRITE_HELPER_H_

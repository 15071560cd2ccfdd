#include "server/core/audit_service.h"

#include <algorithm>
#include <charconv>
#include <memory>
#include <utility>

#include "server/core/write_helper.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

constexpr std::string_view kCursorPrefix = "e1.";
constexpr size_t kMaxFilterLength = 64;

}  // namespace

absl::StatusOr<AuditChainCheck> AuditService::Verify() {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  return tx->VerifyAuditChain();
}

absl::StatusOr<Page<Event>> AuditService::ListEntries(const AuditQuery& query) {
  RETURN_IF_ERROR(core_internal::CheckText("action", query.action, kMaxFilterLength, false));
  RETURN_IF_ERROR(core_internal::CheckText("actor", query.actor, kMaxFilterLength, false));
  if (query.from && query.to && *query.to <= *query.from) {
    return InvalidField("end_time", "must be after start_time");
  }
  ASSIGN_OR_RETURN(int limit, core_internal::PageSize(query.page));
  ASSIGN_OR_RETURN(int64_t after, core_internal::PageAfter(query.page));
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::vector<Event> events,
                   tx->ListAuditEntries(AuditEntryFilter{.after_seq = after,
                                                         .action = query.action,
                                                         .actor = query.actor,
                                                         .from = query.from,
                                                         .to = query.to,
                                                         .limit = limit + 1}));
  return core_internal::MakePage(std::move(events), limit, [](const Event& e) { return e.seq; });
}

absl::StatusOr<int64_t> AuditService::ParseCursor(std::string_view cursor) {
  if (cursor.empty()) return 0;
  if (cursor == "now") {
    ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
    return tx->LastEventSeq();
  }
  int64_t seq = 0;
  const char* end = cursor.data() + cursor.size();
  if (cursor.substr(0, kCursorPrefix.size()) == kCursorPrefix) {
    auto [ptr, ec] = std::from_chars(cursor.data() + kCursorPrefix.size(), end, seq);
    if (ec == std::errc() && ptr == end && seq >= 0) return seq;
  }
  return InvalidField("cursor", "is not a cursor from a previous event, empty or \"now\"");
}

std::string AuditService::CursorOf(int64_t seq) { return StrCat(kCursorPrefix, seq); }

absl::StatusOr<EventBatch> AuditService::EventsAfter(int64_t after_seq,
                                                     const std::vector<std::string>& actions,
                                                     int limit) {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::vector<Event> events,
                   tx->ListAuditEntries(AuditEntryFilter{.after_seq = after_seq, .limit = limit}));
  EventBatch batch;
  batch.scanned_to = events.empty() ? after_seq : events.back().seq;
  for (Event& e : events) {
    if (actions.empty() || std::find(actions.begin(), actions.end(), e.action) != actions.end()) {
      batch.events.push_back(std::move(e));
    }
  }
  return batch;
}

}  // namespace steritrack

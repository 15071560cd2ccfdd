#include "server/core/audit_service.h"

#include <algorithm>
#include <charconv>
#include <memory>
#include <optional>
#include <utility>

#include "server/core/write_helper.h"
#include "steritrack/audit_chain.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

using core_internal::AuditedTransaction;

constexpr std::string_view kCursorPrefix = "e1.";
constexpr size_t kMaxFilterLength = 64;

constexpr size_t kMaxNoteLength = kMaxReasonLength;

}  // namespace

AuditService::AuditService(AuditServiceOptions options)
    : store_(options.store),
      own_clock_(options.clock == nullptr ? NewSystemClock() : nullptr),
      clock_(options.clock != nullptr ? options.clock : own_clock_.get()),
      sha256_(options.sha256),
      commits_(options.commits) {}

absl::StatusOr<Event> AuditService::CorrectAuditEntry(const WriteContext& ctx, int64_t seq,
                                                      std::string_view note) {
  RETURN_IF_ERROR(core_internal::CheckText("actor", ctx.actor, kMaxNameLength));
  if (seq <= 0) return InvalidField("sequence", "must be a positive audit entry number");
  RETURN_IF_ERROR(core_internal::CheckText("note", note, kMaxNoteLength));
  const std::string fingerprint = StrCat(seq, "|", note);
  return core_internal::RunIdempotentWrite<Event>(
      *store_, *clock_, *sha256_, commits_, ctx, "CorrectAuditEntry", fingerprint,
      [&](AuditedTransaction& tx, absl::Time now) -> absl::StatusOr<Event> {
        ASSIGN_OR_RETURN(std::vector<Event> found, tx.audit().ListAuditEntries(AuditEntryFilter{
                                                       .after_seq = seq - 1, .limit = 1}));
        if (found.empty() || found.front().seq != seq) {
          return MakeError(absl::StatusCode::kNotFound,
                           StrCat("audit entry ", seq, " does not exist"), "AUDIT_ENTRY_NOT_FOUND",
                           {{"sequence", StrCat(seq)}});
        }
        const Event& corrected = found.front();
        // The correction is about the same records, so that their histories show it too.
        Event correction{.at = now,
                         .actor = ctx.actor,
                         .action = "AUDIT_CORRECTION",
                         .lot_id = corrected.lot_id,
                         .cartridge_id = corrected.cartridge_id,
                         .treatment_id = corrected.treatment_id,
                         .item_id = corrected.item_id,
                         .load_id = corrected.load_id,
                         .sterilizer_id = corrected.sterilizer_id,
                         .detail = std::string(note),
                         .request_id = ctx.request_id,
                         .before = StrCat("entry=", seq, " action=", corrected.action),
                         .after = StrCat("corrects=", seq),
                         .corrects_seq = seq};
        ASSIGN_OR_RETURN(correction.seq, tx.AppendEvent(correction));
        // Read it back for the hash the store gave it.
        ASSIGN_OR_RETURN(std::vector<Event> stored,
                         tx.audit().ListAuditEntries(
                             AuditEntryFilter{.after_seq = correction.seq - 1, .limit = 1}));
        if (!stored.empty() && stored.front().seq == correction.seq) return stored.front();
        return correction;
      });
}

absl::StatusOr<AuditChainCheck> AuditService::Verify(bool full) {
  ASSIGN_OR_RETURN(AuditChainCheck check, CheckChain(full));
  return KeepCheckpoint(std::move(check), full);
}

absl::StatusOr<AuditChainCheck> AuditService::CheckChain(bool full) {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  std::optional<AuditCheckpoint> checkpoint;
  if (!full) {
    ASSIGN_OR_RETURN(checkpoint, tx->audit().ReadVerifiedCheckpoint());
  }
  return audit_chain::VerifyAfter(tx->audit(), *sha256_, checkpoint);
}

AuditChainCheck AuditService::KeepCheckpoint(AuditChainCheck check, bool full) {
  if (check.intact && check.entries > 0) {
    // The answer stands whether or not the checkpoint could be stored: the next verification then
    // starts from the older one, which is slower, never wrong.
    if (absl::Status saved = SaveCheckpoint(check, full); !saved.ok()) {
      check.checkpoint_saved = false;
    }
  }
  return check;
}

absl::Status AuditService::SaveCheckpoint(const AuditChainCheck& check, bool full) {
  ASSIGN_OR_RETURN(std::unique_ptr<WriteTransaction> tx, store_->BeginWrite());
  ASSIGN_OR_RETURN(std::optional<AuditCheckpoint> stored, tx->audit().ReadVerifiedCheckpoint());
  // An incremental check only moves the checkpoint forward; a full one is authoritative and may
  // also repair a checkpoint row that no longer matches its entry.
  if (stored.has_value() && !full && stored->seq >= check.entries) return absl::OkStatus();
  RETURN_IF_ERROR(tx->audit().SaveVerifiedCheckpoint(AuditCheckpoint{
      .seq = check.entries, .hash = check.last_hash, .verified_at = clock_->Now()}));
  return tx->Commit();
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
                   tx->audit().ListAuditEntries(AuditEntryFilter{.after_seq = after,
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
    return tx->audit().LastEventSeq();
  }
  int64_t seq = 0;
  const char* end = cursor.data() + cursor.size();
  if (cursor.substr(0, kCursorPrefix.size()) == kCursorPrefix) {
    auto [ptr, ec] = std::from_chars(cursor.data() + kCursorPrefix.size(), end, seq);
    if (ec == std::errc() && ptr == end && seq >= 0 &&
        core_internal::IsCanonicalNumber(cursor.substr(kCursorPrefix.size()))) {
      return seq;
    }
  }
  return InvalidField("cursor", "is not a cursor from a previous event, empty or \"now\"");
}

std::string AuditService::CursorOf(int64_t seq) { return StrCat(kCursorPrefix, seq); }

absl::StatusOr<EventBatch> AuditService::EventsAfter(int64_t after_seq,
                                                     const std::vector<std::string>& actions,
                                                     int limit) {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadTransaction> tx, store_->BeginRead());
  ASSIGN_OR_RETURN(std::vector<Event> events, tx->audit().ListAuditEntries(AuditEntryFilter{
                                                  .after_seq = after_seq, .limit = limit}));
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

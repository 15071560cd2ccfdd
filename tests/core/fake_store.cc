#include "tests/core/fake_store.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

absl::Status CheckLimit(int limit) {
  if (limit <= 0) return absl::InvalidArgumentError(StrCat("limit must be positive, got ", limit));
  return absl::OkStatus();
}

// One page of a period read over rows by id: rows whose time (nullopt: none) is in [from, to),
// after `after` in (time, id) order, as SQLite's time indexes give them.
template <typename T, typename Row, typename TimeOf, typename Complete>
absl::StatusOr<std::vector<T>> PeriodPage(const std::map<int64_t, Row>& rows, absl::Time from,
                                          absl::Time to, const PeriodCursor& after, int limit,
                                          TimeOf time_of, Complete complete) {
  if (absl::Status s = CheckLimit(limit); !s.ok()) return s;
  std::vector<std::pair<absl::Time, int64_t>> keys;
  for (const auto& [id, row] : rows) {
    const std::optional<absl::Time> at = time_of(row);
    if (!at.has_value() || *at < from || *at >= to) continue;
    if (std::make_pair(*at, id) <= std::make_pair(after.at, after.id)) continue;
    keys.emplace_back(*at, id);
  }
  std::sort(keys.begin(), keys.end());
  if (static_cast<int>(keys.size()) > limit) keys.resize(limit);
  std::vector<T> out;
  for (const auto& [at, id] : keys) out.push_back(complete(rows.at(id)));
  return out;
}

// The read side, over one state object: a read transaction's snapshot or a write transaction's
// copy. Every repository of the fake, over one state object: a read transaction's snapshot or a
// write transaction's private copy. Each method is written once; writes fail on a read transaction
// and after the write transaction ended.
class FakeRepositories final : public CartridgeWrites,
                               public SterilizationWrites,
                               public AuditLogWrites,
                               public ReportReads,
                               public AccessWrites {
 public:
  // `writable` is null for a read transaction, else whether the write transaction is still live.
  FakeRepositories(FakeStoreState* state, const bool* writable)
      : state_(state), writable_(writable) {}

  absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin, std::string_view lot) override {
    for (const auto& [id, l] : state_->lots) {
      if (l.gtin == gtin && l.lot == lot) return l;
    }
    return std::optional<Lot>();
  }

  absl::StatusOr<std::optional<Lot>> FindLotById(int64_t id) override {
    auto it = state_->lots.find(id);
    if (it == state_->lots.end()) return std::optional<Lot>();
    return it->second;
  }

  absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& filter) override {
    if (absl::Status s = CheckLimit(filter.limit); !s.ok()) return s;
    std::vector<Lot> out;
    for (auto it = state_->lots.upper_bound(filter.after_id); it != state_->lots.end(); ++it) {
      if (static_cast<int>(out.size()) >= filter.limit) break;
      if (filter.state.has_value() && it->second.state != *filter.state) continue;
      out.push_back(it->second);
    }
    return out;
  }

  absl::StatusOr<int64_t> CountUnitsInStock(int64_t lot_id) override {
    int64_t n = 0;
    for (const auto& [id, c] : state_->cartridges) {
      if (c.lot.id == lot_id && c.state == CartridgeState::kReceived) ++n;
    }
    return n;
  }

  absl::StatusOr<std::vector<LotStock>> ListLotStock(std::string_view gtin,
                                                     absl::CivilDay expiring_from) override {
    std::vector<LotStock> out;
    for (const auto& [id, l] : state_->lots) {
      if (l.gtin != gtin || l.expiry < expiring_from) continue;
      ASSIGN_OR_RETURN(int64_t units, CountUnitsInStock(id));
      if (units > 0) out.push_back({.lot = l, .units_in_stock = units});
    }
    std::stable_sort(out.begin(), out.end(), [](const LotStock& a, const LotStock& b) {
      return std::tie(a.lot.expiry, a.lot.lot) < std::tie(b.lot.expiry, b.lot.lot);
    });
    return out;
  }

  absl::StatusOr<std::optional<ParLevel>> FindParLevel(std::string_view gtin) override {
    auto it = state_->par_levels.find(std::string(gtin));
    if (it == state_->par_levels.end()) return std::optional<ParLevel>();
    return it->second;
  }

  absl::StatusOr<std::vector<ParLevel>> ListParLevels() override {
    std::vector<ParLevel> out;
    for (const auto& [gtin, p] : state_->par_levels) out.push_back(p);
    return out;
  }

  absl::Status SaveParLevel(const ParLevel& par) override {
    RETURN_IF_ERROR(CheckWritable());
    state_->par_levels[par.gtin] = par;
    return absl::OkStatus();
  }

  absl::Status DeleteParLevel(std::string_view gtin) override {
    RETURN_IF_ERROR(CheckWritable());
    if (state_->par_levels.erase(std::string(gtin)) == 0) {
      return absl::NotFoundError(StrCat("no par level for ", gtin));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                         std::string_view serial) override {
    for (const auto& [id, c] : state_->cartridges) {
      if (c.gtin == gtin && c.serial == serial) return Joined(c);
    }
    return std::optional<Cartridge>();
  }

  absl::StatusOr<std::optional<Cartridge>> FindCartridgeById(int64_t id) override {
    auto it = state_->cartridges.find(id);
    if (it == state_->cartridges.end()) return std::optional<Cartridge>();
    return Joined(it->second);
  }

  absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& filter) override {
    if (absl::Status s = CheckLimit(filter.limit); !s.ok()) return s;
    std::vector<Cartridge> out;
    for (auto it = state_->cartridges.upper_bound(filter.after_id); it != state_->cartridges.end();
         ++it) {
      if (static_cast<int>(out.size()) >= filter.limit) break;
      const Cartridge& c = it->second;
      if (filter.state.has_value() && c.state != *filter.state) continue;
      if (filter.lot_id != 0 && c.lot.id != filter.lot_id) continue;
      if (filter.treatment_id != 0 && (!c.use || c.use->treatment_id != filter.treatment_id)) {
        continue;
      }
      out.push_back(Joined(c));
    }
    return out;
  }

  absl::StatusOr<std::optional<Treatment>> FindTreatment(int64_t id) override {
    auto it = state_->treatments.find(id);
    if (it == state_->treatments.end()) return std::optional<Treatment>();
    return it->second;
  }

  absl::StatusOr<std::vector<Treatment>> ListTreatments(const TreatmentFilter& filter) override {
    if (absl::Status s = CheckLimit(filter.limit); !s.ok()) return s;
    std::vector<Treatment> out;
    for (auto it = state_->treatments.upper_bound(filter.after_id); it != state_->treatments.end();
         ++it) {
      if (static_cast<int>(out.size()) >= filter.limit) break;
      const Treatment& t = it->second;
      if (filter.ended.has_value() && t.ended_at.has_value() != *filter.ended) continue;
      if (!filter.room.empty() && t.room != filter.room) continue;
      out.push_back(t);
    }
    return out;
  }

  absl::StatusOr<std::vector<Event>> ListEvents(const EventFilter& filter) override {
    if (absl::Status s = CheckLimit(filter.limit); !s.ok()) return s;
    const bool any_id = filter.lot_id != 0 || filter.cartridge_id != 0 ||
                        filter.treatment_id != 0 || filter.item_id != 0 || filter.load_id != 0 ||
                        filter.sterilizer_id != 0;
    std::vector<Event> out;
    for (const Event& e : state_->events) {
      if (static_cast<int>(out.size()) >= filter.limit) break;
      if (e.seq <= filter.after_seq) continue;
      if (filter.lot_wide_only && e.cartridge_id != 0) continue;
      const bool match = !any_id || (filter.lot_id != 0 && e.lot_id == filter.lot_id) ||
                         (filter.cartridge_id != 0 && e.cartridge_id == filter.cartridge_id) ||
                         (filter.treatment_id != 0 && e.treatment_id == filter.treatment_id) ||
                         (filter.item_id != 0 && e.item_id == filter.item_id) ||
                         (filter.load_id != 0 && e.load_id == filter.load_id) ||
                         (filter.sterilizer_id != 0 && e.sterilizer_id == filter.sterilizer_id);
      if (match) out.push_back(e);
    }
    return out;
  }

  // ---- The audit trail, stored as core links it (core's audit_chain verifies it).
  absl::StatusOr<std::vector<Event>> ListAuditEntries(const AuditEntryFilter& f) override {
    if (absl::Status s = CheckLimit(f.limit); !s.ok()) return s;
    std::vector<Event> out;
    for (const Event& e : state_->events) {
      if (static_cast<int>(out.size()) >= f.limit) break;
      if (e.seq <= f.after_seq) continue;
      if (!f.action.empty() && e.action != f.action) continue;
      if (!f.actor.empty() && e.actor != f.actor) continue;
      if (f.from && e.at < *f.from) continue;
      if (f.to && e.at >= *f.to) continue;
      out.push_back(e);
    }
    return out;
  }
  absl::StatusOr<int64_t> LastEventSeq() override {
    return state_->events.empty() ? 0 : state_->events.back().seq;
  }

  absl::StatusOr<std::optional<StoredRequest>> FindRequest(std::string_view request_id) override {
    auto it = state_->requests.find(std::string(request_id));
    if (it == state_->requests.end()) return std::optional<StoredRequest>();
    return it->second;
  }

  absl::StatusOr<std::optional<ReusableItem>> FindItem(std::string_view serial) override {
    for (const auto& [id, item] : state_->items) {
      if (item.serial == serial) return item;
    }
    return std::optional<ReusableItem>();
  }

  absl::StatusOr<std::optional<ReusableItem>> FindItemById(int64_t id) override {
    auto it = state_->items.find(id);
    if (it == state_->items.end()) return std::optional<ReusableItem>();
    return it->second;
  }

  absl::StatusOr<std::vector<ReusableItem>> ListItems(const ItemFilter& filter) override {
    if (absl::Status s = CheckLimit(filter.limit); !s.ok()) return s;
    std::vector<ReusableItem> out;
    for (auto it = state_->items.upper_bound(filter.after_id); it != state_->items.end(); ++it) {
      if (static_cast<int>(out.size()) >= filter.limit) break;
      const ReusableItem& item = it->second;
      if (filter.state.has_value() && item.state != *filter.state) continue;
      if (filter.treatment_id != 0 && item.treatment_id != filter.treatment_id) continue;
      out.push_back(item);
    }
    return out;
  }

  absl::StatusOr<std::optional<Sterilizer>> FindSterilizer(std::string_view name) override {
    for (const auto& [id, s] : state_->sterilizers) {
      if (s.name == name) return s;
    }
    return std::optional<Sterilizer>();
  }

  absl::StatusOr<std::optional<Sterilizer>> FindSterilizerById(int64_t id) override {
    auto it = state_->sterilizers.find(id);
    if (it == state_->sterilizers.end()) return std::optional<Sterilizer>();
    return it->second;
  }

  absl::StatusOr<std::vector<Sterilizer>> ListSterilizers(int64_t after_id, int limit) override {
    if (absl::Status s = CheckLimit(limit); !s.ok()) return s;
    std::vector<Sterilizer> out;
    for (auto it = state_->sterilizers.upper_bound(after_id); it != state_->sterilizers.end();
         ++it) {
      if (static_cast<int>(out.size()) >= limit) break;
      out.push_back(it->second);
    }
    return out;
  }

  absl::StatusOr<std::optional<Load>> FindLoad(int64_t id) override {
    auto it = state_->loads.find(id);
    if (it == state_->loads.end()) return std::optional<Load>();
    return Joined(it->second);
  }

  absl::StatusOr<std::optional<Load>> FindLoadByCycle(int64_t sterilizer_id,
                                                      int64_t cycle_number) override {
    for (const auto& [id, load] : state_->loads) {
      if (load.sterilizer_id == sterilizer_id && load.cycle_number == cycle_number) {
        return Joined(load);
      }
    }
    return std::optional<Load>();
  }

  absl::StatusOr<std::vector<Load>> ListLoads(const LoadFilter& filter) override {
    if (absl::Status s = CheckLimit(filter.limit); !s.ok()) return s;
    std::vector<const Load*> matching;
    for (const auto& [id, load] : state_->loads) {
      if (id <= filter.after_id) continue;
      if (filter.release_state.has_value() && load.release_state != *filter.release_state) continue;
      if (filter.sterilizer_id != 0) {
        if (load.sterilizer_id != filter.sterilizer_id) continue;
        if (load.cycle_number <= filter.after_cycle_number) continue;
      }
      matching.push_back(&load);
    }
    if (filter.sterilizer_id != 0) {
      std::sort(matching.begin(), matching.end(),
                [](const Load* a, const Load* b) { return a->cycle_number < b->cycle_number; });
    }
    std::vector<Load> out;
    for (const Load* load : matching) {
      if (static_cast<int>(out.size()) >= filter.limit) break;
      out.push_back(Joined(*load));
    }
    return out;
  }

  absl::StatusOr<std::optional<int64_t>> FindOpenLoadOfItem(int64_t item_id) override {
    for (const auto& [id, load] : state_->loads) {
      if (load.release_state != ReleaseState::kOpen) continue;
      if (std::find(load.item_ids.begin(), load.item_ids.end(), item_id) != load.item_ids.end()) {
        return std::optional<int64_t>(id);
      }
    }
    return std::optional<int64_t>();
  }

  absl::StatusOr<std::vector<BowieDickTest>> ListBowieDickTests(int64_t sterilizer_id,
                                                                absl::CivilDay day) override {
    std::vector<BowieDickTest> out;
    for (const auto& [id, test] : state_->bowie_dick_tests) {
      if (test.sterilizer_id == sterilizer_id && test.day == day) out.push_back(test);
    }
    return out;
  }

  absl::StatusOr<std::vector<ItemUse>> ListItemUses(const ItemUseFilter& filter) override {
    std::vector<ItemUse> out;
    for (const ItemUse& use : state_->item_uses) {
      if (filter.item_id != 0 && use.item_id != filter.item_id) continue;
      if (filter.load_id != 0 && use.load_id != filter.load_id) continue;
      if (filter.treatment_id != 0 && use.treatment_id != filter.treatment_id) continue;
      out.push_back(use);
    }
    return out;
  }

  // ---- Reporting reads (issue 5).
  absl::StatusOr<std::vector<Treatment>> ListTreatmentsStartedBetween(absl::Time from,
                                                                      absl::Time to,
                                                                      const PeriodCursor& after,
                                                                      int limit) override {
    return PeriodPage<Treatment>(
        state_->treatments, from, to, after, limit,
        [](const Treatment& t) -> std::optional<absl::Time> { return t.started_at; },
        [](const Treatment& t) { return t; });
  }
  absl::StatusOr<std::vector<Cartridge>> ListCartridgesOpenedBetween(absl::Time from, absl::Time to,
                                                                     const PeriodCursor& after,
                                                                     int limit) override {
    return PeriodPage<Cartridge>(
        state_->cartridges, from, to, after, limit,
        [](const Cartridge& c) -> std::optional<absl::Time> {
          if (!c.use.has_value()) return std::nullopt;
          return c.use->at;
        },
        [this](const Cartridge& c) { return Joined(c); });
  }
  absl::StatusOr<std::vector<Load>> ListLoadsCreatedBetween(absl::Time from, absl::Time to,
                                                            const PeriodCursor& after,
                                                            int limit) override {
    return PeriodPage<Load>(
        state_->loads, from, to, after, limit,
        [](const Load& l) -> std::optional<absl::Time> { return l.created_at; },
        [this](const Load& l) { return Joined(l); });
  }
  absl::StatusOr<std::vector<BowieDickTest>> ListBowieDickTestsBetween(
      absl::CivilDay first, absl::CivilDay last) override {
    std::vector<BowieDickTest> out;
    for (const auto& [id, test] : state_->bowie_dick_tests) {
      if (test.day >= first && test.day < last) out.push_back(test);
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const BowieDickTest& a, const BowieDickTest& b) { return a.day < b.day; });
    return out;
  }
  absl::StatusOr<std::vector<Event>> ListEventsBetween(absl::Time from, absl::Time to,
                                                       const PeriodCursor& after,
                                                       int limit) override {
    if (absl::Status s = CheckLimit(limit); !s.ok()) return s;
    std::vector<const Event*> matching;
    for (const Event& e : state_->events) {
      if (e.at < from || e.at >= to) continue;
      if (std::make_pair(e.at, e.seq) <= std::make_pair(after.at, after.id)) continue;
      matching.push_back(&e);
    }
    std::sort(matching.begin(), matching.end(), [](const Event* a, const Event* b) {
      return std::make_pair(a->at, a->seq) < std::make_pair(b->at, b->seq);
    });
    if (static_cast<int>(matching.size()) > limit) matching.resize(limit);
    std::vector<Event> out;
    for (const Event* e : matching) out.push_back(*e);
    return out;
  }
  // ---- End of reporting reads.

  absl::StatusOr<AuditHead> ReadHead() override {
    return AuditHead{.seq = state_->audit_head_seq,
                     .hash = state_->audit_head_hash,
                     .issued = state_->next_event_seq - 1};
  }

  absl::StatusOr<std::optional<AuditCheckpoint>> ReadVerifiedCheckpoint() override {
    return state_->audit_checkpoint;
  }

  // ---- Writes.

  absl::StatusOr<int64_t> InsertLot(const Lot& lot) override {
    RETURN_IF_ERROR(CheckWritable());
    for (const auto& [id, l] : state_->lots) {
      if (l.gtin == lot.gtin && l.lot == lot.lot) {
        return absl::AlreadyExistsError(StrCat("lot (", lot.gtin, ", ", lot.lot, ") exists"));
      }
    }
    Lot stored = lot;
    stored.id = state_->next_lot_id++;
    stored.expired = false;  // derived, never stored
    state_->lots[stored.id] = stored;
    return stored.id;
  }

  absl::Status UpdateLotState(int64_t lot_id, LotState state, std::string_view reason,
                              absl::Time at, std::string_view by) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->lots.find(lot_id);
    if (it == state_->lots.end()) return absl::NotFoundError(StrCat("no lot ", lot_id));
    it->second.state = state;
    it->second.state_reason = std::string(reason);
    it->second.state_changed_at = at;
    it->second.state_changed_by = std::string(by);
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> InsertCartridge(const Cartridge& cartridge) override {
    RETURN_IF_ERROR(CheckWritable());
    if (!state_->lots.contains(cartridge.lot.id)) {
      return absl::FailedPreconditionError(StrCat("no lot ", cartridge.lot.id));
    }
    for (const auto& [id, c] : state_->cartridges) {
      if (c.gtin == cartridge.gtin && c.serial == cartridge.serial) {
        return absl::AlreadyExistsError(
            StrCat("unit (", cartridge.gtin, ", ", cartridge.serial, ") exists"));
      }
    }
    Cartridge stored = cartridge;
    stored.id = state_->next_cartridge_id++;
    stored.lot = Lot{.id = cartridge.lot.id};
    state_->cartridges[stored.id] = stored;
    return stored.id;
  }

  absl::Status RecordUse(int64_t cartridge_id, const CartridgeUse& use) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->cartridges.find(cartridge_id);
    if (it == state_->cartridges.end())
      return absl::NotFoundError(StrCat("no unit ", cartridge_id));
    Cartridge& c = it->second;
    if (c.use.has_value()) {
      // As the schema's single-use guard answers (server/storage/sqlite_cartridges.cc).
      return MakeError(absl::StatusCode::kFailedPrecondition, "cartridge already used",
                       "CARTRIDGE_ALREADY_USED");
    }
    if (c.discard.has_value()) {
      return absl::FailedPreconditionError(StrCat("unit ", cartridge_id, " was discarded"));
    }
    if (!state_->treatments.contains(use.treatment_id)) {
      return absl::FailedPreconditionError(StrCat("no treatment ", use.treatment_id));
    }
    c.use = use;
    c.state = CartridgeState::kOpened;
    return absl::OkStatus();
  }

  absl::Status RecordDisposal(int64_t cartridge_id, const Disposal& disposal) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->cartridges.find(cartridge_id);
    if (it == state_->cartridges.end())
      return absl::NotFoundError(StrCat("no unit ", cartridge_id));
    Cartridge& c = it->second;
    if (!c.use.has_value()) {
      return absl::FailedPreconditionError(StrCat("unit ", cartridge_id, " was never opened"));
    }
    if (c.disposal.has_value()) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "cartridge already disposed",
                       "CARTRIDGE_DISPOSED");
    }
    c.disposal = disposal;
    c.state = CartridgeState::kDisposed;
    return absl::OkStatus();
  }

  absl::Status RecordDiscard(int64_t cartridge_id, const Discard& discard) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->cartridges.find(cartridge_id);
    if (it == state_->cartridges.end())
      return absl::NotFoundError(StrCat("no unit ", cartridge_id));
    Cartridge& c = it->second;
    if (c.use.has_value() || c.discard.has_value()) {
      return absl::FailedPreconditionError(StrCat("unit ", cartridge_id, " is not in stock"));
    }
    c.discard = discard;
    c.state = CartridgeState::kDiscarded;
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> InsertTreatment(const Treatment& treatment) override {
    RETURN_IF_ERROR(CheckWritable());
    Treatment stored = treatment;
    stored.id = state_->next_treatment_id++;
    state_->treatments[stored.id] = stored;
    return stored.id;
  }

  absl::Status EndTreatment(int64_t id, absl::Time at, std::string_view by) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->treatments.find(id);
    if (it == state_->treatments.end()) return absl::NotFoundError(StrCat("no treatment ", id));
    if (it->second.ended_at.has_value()) {
      return absl::FailedPreconditionError(StrCat("treatment ", id, " already ended"));
    }
    it->second.ended_at = at;
    it->second.ended_by = std::string(by);
    return absl::OkStatus();
  }

  absl::Status Append(const Event& entry) override {
    RETURN_IF_ERROR(CheckWritable());
    // After both the head and the highest seq issued, as SQLite's counter counts.
    const int64_t next = std::max(state_->audit_head_seq, state_->next_event_seq - 1) + 1;
    if (entry.seq != next) {
      return absl::AlreadyExistsError(
          StrCat("audit entry ", entry.seq, " is not the next one (", next, ")"));
    }
    state_->next_event_seq = entry.seq + 1;
    state_->events.push_back(entry);
    state_->audit_head_seq = entry.seq;
    state_->audit_head_hash = entry.hash;
    return absl::OkStatus();
  }

  absl::Status SaveVerifiedCheckpoint(const AuditCheckpoint& checkpoint) override {
    RETURN_IF_ERROR(CheckWritable());
    state_->audit_checkpoint = checkpoint;
    return absl::OkStatus();
  }

  absl::Status SaveRequest(const StoredRequest& request) override {
    RETURN_IF_ERROR(CheckWritable());
    if (request.request_id.empty()) return absl::InvalidArgumentError("empty request id");
    if (!state_->requests.emplace(request.request_id, request).second) {
      return absl::AlreadyExistsError(StrCat("request ", request.request_id, " exists"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> InsertItem(const ReusableItem& item) override {
    RETURN_IF_ERROR(CheckWritable());
    for (const auto& [id, i] : state_->items) {
      if (i.serial == item.serial) {
        return absl::AlreadyExistsError(StrCat("item ", item.serial, " exists"));
      }
    }
    ReusableItem stored = item;
    stored.id = state_->next_item_id++;
    state_->items[stored.id] = stored;
    return stored.id;
  }

  absl::Status UpdateItem(const ReusableItem& item) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->items.find(item.id);
    if (it == state_->items.end()) return absl::NotFoundError(StrCat("no item ", item.id));
    if (item.load_id != 0 && !state_->loads.contains(item.load_id)) {
      return absl::FailedPreconditionError(StrCat("no load ", item.load_id));
    }
    if (item.treatment_id != 0 && !state_->treatments.contains(item.treatment_id)) {
      return absl::FailedPreconditionError(StrCat("no treatment ", item.treatment_id));
    }
    ReusableItem& stored = it->second;
    stored.state = item.state;
    stored.cycles = item.cycles;
    stored.load_id = item.load_id;
    stored.sterile_until = item.sterile_until;
    stored.treatment_id = item.treatment_id;
    stored.state_reason = item.state_reason;
    stored.maintenance_due = item.maintenance_due;
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> InsertSterilizer(const Sterilizer& sterilizer) override {
    RETURN_IF_ERROR(CheckWritable());
    for (const auto& [id, st] : state_->sterilizers) {
      if (st.name == sterilizer.name) {
        return absl::AlreadyExistsError(StrCat("steriliser ", sterilizer.name, " exists"));
      }
    }
    Sterilizer stored = sterilizer;
    stored.id = state_->next_sterilizer_id++;
    state_->sterilizers[stored.id] = stored;
    return stored.id;
  }

  absl::Status UpdateSterilizer(const Sterilizer& sterilizer) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->sterilizers.find(sterilizer.id);
    if (it == state_->sterilizers.end()) {
      return absl::NotFoundError(StrCat("no steriliser ", sterilizer.id));
    }
    Sterilizer& stored = it->second;
    stored.last_cycle_number = sterilizer.last_cycle_number;
    stored.in_service = sterilizer.in_service;
    stored.out_of_service_reason = sterilizer.out_of_service_reason;
    stored.out_of_service_at = sterilizer.out_of_service_at;
    stored.negative_tests_since_out_of_service = sterilizer.negative_tests_since_out_of_service;
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> InsertLoad(const Load& load) override {
    RETURN_IF_ERROR(CheckWritable());
    if (!state_->sterilizers.contains(load.sterilizer_id)) {
      return absl::FailedPreconditionError(StrCat("no steriliser ", load.sterilizer_id));
    }
    for (const auto& [id, l] : state_->loads) {
      if (l.sterilizer_id == load.sterilizer_id && l.cycle_number == load.cycle_number) {
        return absl::AlreadyExistsError(
            StrCat("cycle ", load.cycle_number, " of steriliser ", load.sterilizer_id, " exists"));
      }
    }
    for (int64_t item_id : load.item_ids) {
      if (!state_->items.contains(item_id)) {
        return absl::FailedPreconditionError(StrCat("no item ", item_id));
      }
    }
    // Only the load and its contents; results come later, and joined fields are not stored.
    Load stored = load;
    stored.id = state_->next_load_id++;
    stored.sterilizer_name.clear();
    stored.item_serials.clear();
    stored.parameters.reset();
    stored.chemical_indicators.clear();
    stored.bi.reset();
    stored.signature.reset();
    state_->loads[stored.id] = stored;
    return stored.id;
  }

  absl::Status RecordParameters(int64_t load_id, const CycleParameters& parameters) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->loads.find(load_id);
    if (it == state_->loads.end()) return absl::NotFoundError(StrCat("no load ", load_id));
    if (it->second.parameters.has_value()) {
      return absl::AlreadyExistsError(StrCat("load ", load_id, " has parameters"));
    }
    it->second.parameters = parameters;
    return absl::OkStatus();
  }

  absl::Status RecordBi(int64_t load_id, const BiologicalIndicator& bi) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->loads.find(load_id);
    if (it == state_->loads.end()) return absl::NotFoundError(StrCat("no load ", load_id));
    if (it->second.bi.has_value()) {
      return absl::AlreadyExistsError(StrCat("load ", load_id, " has a BI result"));
    }
    it->second.bi = bi;
    return absl::OkStatus();
  }

  absl::Status AddChemicalIndicator(int64_t load_id, const ChemicalIndicator& ci) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->loads.find(load_id);
    if (it == state_->loads.end()) return absl::NotFoundError(StrCat("no load ", load_id));
    for (const ChemicalIndicator& existing : it->second.chemical_indicators) {
      if (existing.type == ci.type) {
        return absl::AlreadyExistsError(
            StrCat("load ", load_id, " has a type ", ci.type, " CI result"));
      }
    }
    it->second.chemical_indicators.push_back(ci);
    return absl::OkStatus();
  }

  absl::Status SetLoadReleaseState(int64_t load_id, ReleaseState state,
                                   const Signature& signature) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->loads.find(load_id);
    if (it == state_->loads.end()) return absl::NotFoundError(StrCat("no load ", load_id));
    // The schema's last guards (loads_release_flow, loads_release_needs_results).
    const Load& load = it->second;
    const ReleaseState from = load.release_state;
    if (from == ReleaseState::kRecalled || state == ReleaseState::kOpen ||
        (from == ReleaseState::kQuarantined && state == ReleaseState::kReleased) ||
        (from == ReleaseState::kReleased && state == ReleaseState::kReleased)) {
      return absl::FailedPreconditionError("load release state cannot change that way");
    }
    if (state == ReleaseState::kReleased) {
      const bool parameters_passed = load.parameters.has_value() && load.parameters->passed;
      const bool cis_passed =
          !load.chemical_indicators.empty() &&
          std::all_of(
              load.chemical_indicators.begin(), load.chemical_indicators.end(),
              [](const ChemicalIndicator& ci) { return ci.result == IndicatorResult::kPass; });
      const bool bi_ok =
          !load.bi_required || (load.bi.has_value() && load.bi->result == BiResult::kNegative &&
                                load.bi->control_result == BiResult::kPositive);
      if (!parameters_passed || !cis_passed || !bi_ok) {
        return absl::FailedPreconditionError("release needs passing parameters, CIs and BI");
      }
    }
    it->second.release_state = state;
    it->second.signature = signature;
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> InsertBowieDickTest(const BowieDickTest& test) override {
    RETURN_IF_ERROR(CheckWritable());
    if (!state_->sterilizers.contains(test.sterilizer_id)) {
      return absl::FailedPreconditionError(StrCat("no steriliser ", test.sterilizer_id));
    }
    BowieDickTest stored = test;
    stored.id = state_->next_bowie_dick_id++;
    state_->bowie_dick_tests[stored.id] = stored;
    return stored.id;
  }

  absl::Status RecordItemUse(const ItemUse& use) override {
    RETURN_IF_ERROR(CheckWritable());
    if (!state_->items.contains(use.item_id)) {
      return absl::FailedPreconditionError(StrCat("no item ", use.item_id));
    }
    if (!state_->treatments.contains(use.treatment_id)) {
      return absl::FailedPreconditionError(StrCat("no treatment ", use.treatment_id));
    }
    if (use.load_id != 0 && !state_->loads.contains(use.load_id)) {
      return absl::FailedPreconditionError(StrCat("no load ", use.load_id));
    }
    state_->item_uses.push_back(use);
    return absl::OkStatus();
  }

 private:
  Cartridge Joined(const Cartridge& stored) const {
    Cartridge c = stored;
    if (auto it = state_->lots.find(stored.lot.id); it != state_->lots.end()) c.lot = it->second;
    return c;
  }

  Load Joined(const Load& stored) const {
    Load load = stored;
    if (auto it = state_->sterilizers.find(stored.sterilizer_id); it != state_->sterilizers.end()) {
      load.sterilizer_name = it->second.name;
    }
    load.item_serials.clear();
    for (int64_t item_id : stored.item_ids) {
      auto it = state_->items.find(item_id);
      load.item_serials.push_back(it == state_->items.end() ? std::string() : it->second.serial);
    }
    return load;
  }

  // ---- AccessWrites

  absl::StatusOr<std::optional<ApiToken>> FindTokenBySecretSha256(
      std::string_view secret_sha256) override {
    for (const auto& [id, t] : state_->tokens) {
      if (t.secret_sha256 == secret_sha256) return t;
    }
    return std::optional<ApiToken>();
  }

  absl::StatusOr<std::optional<ApiToken>> FindActiveToken(std::string_view name) override {
    for (const auto& [id, t] : state_->tokens) {
      if (t.name == name && !t.revoked_at.has_value()) return t;
    }
    return std::optional<ApiToken>();
  }

  absl::StatusOr<std::vector<ApiToken>> ListTokens() override {
    std::vector<ApiToken> out;
    for (const auto& [id, t] : state_->tokens) out.push_back(t);
    return out;
  }

  absl::StatusOr<int64_t> InsertToken(const ApiToken& token) override {
    RETURN_IF_ERROR(CheckWritable());
    if (token.name.empty() || token.name.size() > 64 || token.secret_sha256.size() != 64) {
      return absl::FailedPreconditionError("CHECK constraint failed: api_tokens");
    }
    for (const auto& [id, t] : state_->tokens) {
      if (t.secret_sha256 == token.secret_sha256 ||
          (t.name == token.name && !t.revoked_at.has_value())) {
        return absl::AlreadyExistsError("already exists: token");
      }
    }
    ApiToken stored = token;
    stored.id = state_->next_token_id++;
    stored.revoked_at.reset();
    stored.revoked_by.clear();
    state_->tokens[stored.id] = stored;
    return stored.id;
  }

  absl::Status RevokeToken(int64_t id, absl::Time at, std::string_view by) override {
    RETURN_IF_ERROR(CheckWritable());
    auto it = state_->tokens.find(id);
    if (it == state_->tokens.end()) return absl::NotFoundError(StrCat("no token ", id));
    if (it->second.revoked_at.has_value()) {
      return absl::FailedPreconditionError(StrCat("token ", id, " is revoked"));
    }
    it->second.revoked_at = at;
    it->second.revoked_by = std::string(by);
    return absl::OkStatus();
  }

  absl::Status CheckWritable() const {
    if (writable_ == nullptr) return absl::FailedPreconditionError("read-only transaction");
    if (!*writable_) return absl::FailedPreconditionError("write transaction already ended");
    return absl::OkStatus();
  }

  FakeStoreState* const state_;
  const bool* const writable_;
};

class FakeReadTransaction final : public ReadTransaction {
 public:
  explicit FakeReadTransaction(FakeStoreState snapshot) : snapshot_(std::move(snapshot)) {}

  CartridgeReads& cartridges() override { return repos_; }
  SterilizationReads& sterilization() override { return repos_; }
  AuditLogReads& audit() override { return repos_; }
  ReportReads& reports() override { return repos_; }
  AccessReads& access() override { return repos_; }

 private:
  FakeStoreState snapshot_;
  FakeRepositories repos_{&snapshot_, nullptr};
};

}  // namespace

class FakeWriteTransaction final : public WriteTransaction {
 public:
  FakeWriteTransaction(FakeStore* store, std::unique_lock<std::mutex> writer, FakeStoreState state)
      : store_(store), writer_(std::move(writer)), state_(std::move(state)) {}

  CartridgeWrites& cartridges() override { return repos_; }
  SterilizationWrites& sterilization() override { return repos_; }
  AuditLogWrites& audit() override { return repos_; }
  ReportReads& reports() override { return repos_; }
  AccessWrites& access() override { return repos_; }

  absl::Status Commit() override {
    if (!live_) return absl::FailedPreconditionError("write transaction already committed");
    live_ = false;
    store_->Publish(std::move(state_));
    writer_.unlock();
    return absl::OkStatus();
  }

 private:
  FakeStore* const store_;
  std::unique_lock<std::mutex> writer_;
  FakeStoreState state_;
  bool live_ = true;
  FakeRepositories repos_{&state_, &live_};
};

absl::StatusOr<std::unique_ptr<ReadTransaction>> FakeStore::BeginRead() {
  return std::make_unique<FakeReadTransaction>(Snapshot());
}

absl::StatusOr<std::unique_ptr<WriteTransaction>> FakeStore::BeginWrite() {
  std::unique_lock<std::mutex> writer(writer_mu_);
  return std::make_unique<FakeWriteTransaction>(this, std::move(writer), Snapshot());
}

void FakeStore::RemoveEventForTest(int64_t seq) {
  absl::MutexLock lock(&state_mu_);
  std::erase_if(state_.events, [seq](const Event& e) { return e.seq == seq; });
}

void FakeStore::ForceLoadReleaseStateForTest(int64_t load_id, ReleaseState state,
                                             const Signature& signature) {
  absl::MutexLock lock(&state_mu_);
  if (auto it = state_.loads.find(load_id); it != state_.loads.end()) {
    it->second.release_state = state;
    it->second.signature = signature;
  }
}

void FakeStore::AlterEventForTest(int64_t seq, std::string_view detail) {
  absl::MutexLock lock(&state_mu_);
  for (Event& e : state_.events) {
    if (e.seq == seq) e.detail = std::string(detail);
  }
}

FakeStoreState FakeStore::Snapshot() const {
  absl::MutexLock lock(&state_mu_);
  return state_;
}

void FakeStore::Publish(FakeStoreState state) {
  {
    absl::MutexLock lock(&state_mu_);
    state_ = std::move(state);
  }
  commits_.fetch_add(1);
}

// ---------------------------------------------------------------------------------------------------
// FaultInjectingStore

namespace {

// Forwards the repositories untouched; only the commit can be made to fail.
class FaultInjectingWriteTransaction final : public WriteTransaction {
 public:
  FaultInjectingWriteTransaction(std::unique_ptr<WriteTransaction> base, FaultInjectingStore* store)
      : base_(std::move(base)), store_(store) {}
  ~FaultInjectingWriteTransaction() override {
    if (!committed_) store_->writes_rolled_back.fetch_add(1);
  }

  CartridgeWrites& cartridges() override { return base_->cartridges(); }
  SterilizationWrites& sterilization() override { return base_->sterilization(); }
  AuditLogWrites& audit() override { return base_->audit(); }
  ReportReads& reports() override { return base_->reports(); }
  AccessWrites& access() override { return base_->access(); }

  absl::Status Commit() override {
    // The base transaction is left uncommitted and rolls back when this one is destroyed.
    if (store_->fail_next_commit.exchange(false)) {
      return absl::UnavailableError("injected commit failure");
    }
    absl::Status status = base_->Commit();
    committed_ = status.ok();
    if (committed_ && store_->after_commit) store_->after_commit();
    return status;
  }

 private:
  std::unique_ptr<WriteTransaction> base_;
  FaultInjectingStore* store_;
  bool committed_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ReadTransaction>> FaultInjectingStore::BeginRead() {
  if (fail_next_begin_read.exchange(false)) return absl::UnavailableError("injected read failure");
  return base_->BeginRead();
}

absl::StatusOr<std::unique_ptr<WriteTransaction>> FaultInjectingStore::BeginWrite() {
  if (on_begin_write) on_begin_write();
  if (fail_next_begin_write.exchange(false)) {
    return absl::UnavailableError("injected write failure");
  }
  absl::StatusOr<std::unique_ptr<WriteTransaction>> base = base_->BeginWrite();
  if (!base.ok()) return base.status();
  return std::make_unique<FaultInjectingWriteTransaction>(*std::move(base), this);
}

}  // namespace steritrack

#include "tests/core/fake_store.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

#include "steritrack/strings.h"

namespace steritrack {
namespace {

absl::Status CheckLimit(int limit) {
  if (limit <= 0) return absl::InvalidArgumentError(StrCat("limit must be positive, got ", limit));
  return absl::OkStatus();
}

// The read side, over one state object: a read transaction's snapshot or a write transaction's copy.
class StateReader {
 public:
  explicit StateReader(const FakeStoreState* state) : state_(state) {}

  absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin, std::string_view lot) const {
    for (const auto& [id, l] : state_->lots) {
      if (l.gtin == gtin && l.lot == lot) return l;
    }
    return std::optional<Lot>();
  }

  absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& filter) const {
    if (absl::Status s = CheckLimit(filter.limit); !s.ok()) return s;
    std::vector<Lot> out;
    for (auto it = state_->lots.upper_bound(filter.after_id); it != state_->lots.end(); ++it) {
      if (static_cast<int>(out.size()) >= filter.limit) break;
      if (filter.state.has_value() && it->second.state != *filter.state) continue;
      out.push_back(it->second);
    }
    return out;
  }

  absl::StatusOr<int64_t> CountUnitsInStock(int64_t lot_id) const {
    int64_t n = 0;
    for (const auto& [id, c] : state_->cartridges) {
      if (c.lot.id == lot_id && c.state == CartridgeState::kReceived) ++n;
    }
    return n;
  }

  absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                         std::string_view serial) const {
    for (const auto& [id, c] : state_->cartridges) {
      if (c.gtin == gtin && c.serial == serial) return Joined(c);
    }
    return std::optional<Cartridge>();
  }

  absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& filter) const {
    if (absl::Status s = CheckLimit(filter.limit); !s.ok()) return s;
    std::vector<Cartridge> out;
    for (auto it = state_->cartridges.upper_bound(filter.after_id);
         it != state_->cartridges.end(); ++it) {
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

  absl::StatusOr<std::optional<Treatment>> FindTreatment(int64_t id) const {
    auto it = state_->treatments.find(id);
    if (it == state_->treatments.end()) return std::optional<Treatment>();
    return it->second;
  }

  absl::StatusOr<std::vector<Treatment>> ListTreatments(const TreatmentFilter& filter) const {
    if (absl::Status s = CheckLimit(filter.limit); !s.ok()) return s;
    std::vector<Treatment> out;
    for (auto it = state_->treatments.upper_bound(filter.after_id);
         it != state_->treatments.end(); ++it) {
      if (static_cast<int>(out.size()) >= filter.limit) break;
      const Treatment& t = it->second;
      if (filter.ended.has_value() && t.ended_at.has_value() != *filter.ended) continue;
      if (!filter.room.empty() && t.room != filter.room) continue;
      out.push_back(t);
    }
    return out;
  }

  absl::StatusOr<std::vector<Event>> ListEvents(const EventFilter& filter) const {
    if (absl::Status s = CheckLimit(filter.limit); !s.ok()) return s;
    const bool any_id = filter.lot_id != 0 || filter.cartridge_id != 0 || filter.treatment_id != 0;
    std::vector<Event> out;
    for (const Event& e : state_->events) {
      if (static_cast<int>(out.size()) >= filter.limit) break;
      if (e.seq <= filter.after_seq) continue;
      if (filter.lot_wide_only && e.cartridge_id != 0) continue;
      const bool match = !any_id || (filter.lot_id != 0 && e.lot_id == filter.lot_id) ||
                         (filter.cartridge_id != 0 && e.cartridge_id == filter.cartridge_id) ||
                         (filter.treatment_id != 0 && e.treatment_id == filter.treatment_id);
      if (match) out.push_back(e);
    }
    return out;
  }

  absl::StatusOr<std::optional<StoredRequest>> FindRequest(std::string_view request_id) const {
    auto it = state_->requests.find(std::string(request_id));
    if (it == state_->requests.end()) return std::optional<StoredRequest>();
    return it->second;
  }

 private:
  Cartridge Joined(const Cartridge& stored) const {
    Cartridge c = stored;
    if (auto it = state_->lots.find(stored.lot.id); it != state_->lots.end()) c.lot = it->second;
    return c;
  }

  const FakeStoreState* state_;
};

class FakeReadTransaction : public ReadTransaction {
 public:
  explicit FakeReadTransaction(FakeStoreState snapshot) : snapshot_(std::move(snapshot)) {}

  absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin, std::string_view lot) override {
    return reader_.FindLot(gtin, lot);
  }
  absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& filter) override {
    return reader_.ListLots(filter);
  }
  absl::StatusOr<int64_t> CountUnitsInStock(int64_t lot_id) override {
    return reader_.CountUnitsInStock(lot_id);
  }
  absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                         std::string_view serial) override {
    return reader_.FindCartridge(gtin, serial);
  }
  absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& filter) override {
    return reader_.ListCartridges(filter);
  }
  absl::StatusOr<std::optional<Treatment>> FindTreatment(int64_t id) override {
    return reader_.FindTreatment(id);
  }
  absl::StatusOr<std::vector<Treatment>> ListTreatments(const TreatmentFilter& filter) override {
    return reader_.ListTreatments(filter);
  }
  absl::StatusOr<std::vector<Event>> ListEvents(const EventFilter& filter) override {
    return reader_.ListEvents(filter);
  }
  absl::StatusOr<std::optional<StoredRequest>> FindRequest(std::string_view request_id) override {
    return reader_.FindRequest(request_id);
  }

 private:
  const FakeStoreState snapshot_;
  const StateReader reader_{&snapshot_};
};

}  // namespace

class FakeWriteTransaction : public WriteTransaction {
 public:
  FakeWriteTransaction(FakeStore* store, std::unique_lock<std::mutex> writer, FakeStoreState state)
      : store_(store), writer_(std::move(writer)), state_(std::move(state)) {}

  absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin, std::string_view lot) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    return reader_.FindLot(gtin, lot);
  }
  absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& filter) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    return reader_.ListLots(filter);
  }
  absl::StatusOr<int64_t> CountUnitsInStock(int64_t lot_id) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    return reader_.CountUnitsInStock(lot_id);
  }
  absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                         std::string_view serial) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    return reader_.FindCartridge(gtin, serial);
  }
  absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& filter) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    return reader_.ListCartridges(filter);
  }
  absl::StatusOr<std::optional<Treatment>> FindTreatment(int64_t id) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    return reader_.FindTreatment(id);
  }
  absl::StatusOr<std::vector<Treatment>> ListTreatments(const TreatmentFilter& filter) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    return reader_.ListTreatments(filter);
  }
  absl::StatusOr<std::vector<Event>> ListEvents(const EventFilter& filter) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    return reader_.ListEvents(filter);
  }
  absl::StatusOr<std::optional<StoredRequest>> FindRequest(std::string_view request_id) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    return reader_.FindRequest(request_id);
  }

  absl::StatusOr<int64_t> InsertLot(const Lot& lot) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    for (const auto& [id, l] : state_.lots) {
      if (l.gtin == lot.gtin && l.lot == lot.lot) {
        return absl::AlreadyExistsError(StrCat("lot (", lot.gtin, ", ", lot.lot, ") exists"));
      }
    }
    Lot stored = lot;
    stored.id = state_.next_lot_id++;
    stored.expired = false;  // derived, never stored
    state_.lots[stored.id] = stored;
    return stored.id;
  }

  absl::Status UpdateLotState(int64_t lot_id, LotState state, std::string_view reason,
                              absl::Time at, std::string_view by) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    auto it = state_.lots.find(lot_id);
    if (it == state_.lots.end()) return absl::NotFoundError(StrCat("no lot ", lot_id));
    it->second.state = state;
    it->second.state_reason = std::string(reason);
    it->second.state_changed_at = at;
    it->second.state_changed_by = std::string(by);
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> InsertCartridge(const Cartridge& cartridge) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (!state_.lots.contains(cartridge.lot.id)) {
      return absl::FailedPreconditionError(StrCat("no lot ", cartridge.lot.id));
    }
    for (const auto& [id, c] : state_.cartridges) {
      if (c.gtin == cartridge.gtin && c.serial == cartridge.serial) {
        return absl::AlreadyExistsError(
            StrCat("unit (", cartridge.gtin, ", ", cartridge.serial, ") exists"));
      }
    }
    Cartridge stored = cartridge;
    stored.id = state_.next_cartridge_id++;
    stored.lot = Lot{.id = cartridge.lot.id};
    state_.cartridges[stored.id] = stored;
    return stored.id;
  }

  absl::Status RecordUse(int64_t cartridge_id, const CartridgeUse& use) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    auto it = state_.cartridges.find(cartridge_id);
    if (it == state_.cartridges.end()) return absl::NotFoundError(StrCat("no unit ", cartridge_id));
    Cartridge& c = it->second;
    if (c.use.has_value()) {
      return absl::FailedPreconditionError(StrCat("unit ", cartridge_id, " already has a use"));
    }
    if (c.discard.has_value()) {
      return absl::FailedPreconditionError(StrCat("unit ", cartridge_id, " was discarded"));
    }
    if (!state_.treatments.contains(use.treatment_id)) {
      return absl::FailedPreconditionError(StrCat("no treatment ", use.treatment_id));
    }
    c.use = use;
    c.state = CartridgeState::kOpened;
    return absl::OkStatus();
  }

  absl::Status RecordDisposal(int64_t cartridge_id, const Disposal& disposal) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    auto it = state_.cartridges.find(cartridge_id);
    if (it == state_.cartridges.end()) return absl::NotFoundError(StrCat("no unit ", cartridge_id));
    Cartridge& c = it->second;
    if (!c.use.has_value()) {
      return absl::FailedPreconditionError(StrCat("unit ", cartridge_id, " was never opened"));
    }
    if (c.disposal.has_value()) {
      return absl::FailedPreconditionError(StrCat("unit ", cartridge_id, " already disposed"));
    }
    c.disposal = disposal;
    c.state = CartridgeState::kDisposed;
    return absl::OkStatus();
  }

  absl::Status RecordDiscard(int64_t cartridge_id, const Discard& discard) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    auto it = state_.cartridges.find(cartridge_id);
    if (it == state_.cartridges.end()) return absl::NotFoundError(StrCat("no unit ", cartridge_id));
    Cartridge& c = it->second;
    if (c.use.has_value() || c.discard.has_value()) {
      return absl::FailedPreconditionError(StrCat("unit ", cartridge_id, " is not in stock"));
    }
    c.discard = discard;
    c.state = CartridgeState::kDiscarded;
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> InsertTreatment(const Treatment& treatment) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    Treatment stored = treatment;
    stored.id = state_.next_treatment_id++;
    state_.treatments[stored.id] = stored;
    return stored.id;
  }

  absl::Status EndTreatment(int64_t id, absl::Time at, std::string_view by) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    auto it = state_.treatments.find(id);
    if (it == state_.treatments.end()) return absl::NotFoundError(StrCat("no treatment ", id));
    if (it->second.ended_at.has_value()) {
      return absl::FailedPreconditionError(StrCat("treatment ", id, " already ended"));
    }
    it->second.ended_at = at;
    it->second.ended_by = std::string(by);
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> AppendEvent(const Event& event) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    Event stored = event;
    stored.seq = state_.next_event_seq++;
    state_.events.push_back(stored);
    return stored.seq;
  }

  absl::Status SaveRequest(const StoredRequest& request) override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (request.request_id.empty()) return absl::InvalidArgumentError("empty request id");
    if (!state_.requests.emplace(request.request_id, request).second) {
      return absl::AlreadyExistsError(StrCat("request ", request.request_id, " exists"));
    }
    return absl::OkStatus();
  }

  absl::Status Commit() override {
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    store_->Publish(std::move(state_));
    done_ = true;
    writer_.unlock();
    return absl::OkStatus();
  }

 private:
  absl::Status CheckLive() const {
    if (done_) return absl::FailedPreconditionError("write transaction already committed");
    return absl::OkStatus();
  }

  FakeStore* const store_;
  std::unique_lock<std::mutex> writer_;
  FakeStoreState state_;
  const StateReader reader_{&state_};
  bool done_ = false;
};

absl::StatusOr<std::unique_ptr<ReadTransaction>> FakeStore::BeginRead() {
  return std::make_unique<FakeReadTransaction>(Snapshot());
}

absl::StatusOr<std::unique_ptr<WriteTransaction>> FakeStore::BeginWrite() {
  std::unique_lock<std::mutex> writer(writer_mu_);
  return std::make_unique<FakeWriteTransaction>(this, std::move(writer), Snapshot());
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

class FaultInjectingWriteTransaction : public WriteTransaction {
 public:
  FaultInjectingWriteTransaction(std::unique_ptr<WriteTransaction> base,
                                 std::atomic<bool>* fail_next_commit)
      : base_(std::move(base)), fail_next_commit_(fail_next_commit) {}

  absl::StatusOr<std::optional<Lot>> FindLot(std::string_view gtin, std::string_view lot) override {
    return base_->FindLot(gtin, lot);
  }
  absl::StatusOr<std::vector<Lot>> ListLots(const LotFilter& filter) override {
    return base_->ListLots(filter);
  }
  absl::StatusOr<int64_t> CountUnitsInStock(int64_t lot_id) override {
    return base_->CountUnitsInStock(lot_id);
  }
  absl::StatusOr<std::optional<Cartridge>> FindCartridge(std::string_view gtin,
                                                         std::string_view serial) override {
    return base_->FindCartridge(gtin, serial);
  }
  absl::StatusOr<std::vector<Cartridge>> ListCartridges(const CartridgeFilter& filter) override {
    return base_->ListCartridges(filter);
  }
  absl::StatusOr<std::optional<Treatment>> FindTreatment(int64_t id) override {
    return base_->FindTreatment(id);
  }
  absl::StatusOr<std::vector<Treatment>> ListTreatments(const TreatmentFilter& filter) override {
    return base_->ListTreatments(filter);
  }
  absl::StatusOr<std::vector<Event>> ListEvents(const EventFilter& filter) override {
    return base_->ListEvents(filter);
  }
  absl::StatusOr<std::optional<StoredRequest>> FindRequest(std::string_view request_id) override {
    return base_->FindRequest(request_id);
  }
  absl::StatusOr<int64_t> InsertLot(const Lot& lot) override { return base_->InsertLot(lot); }
  absl::Status UpdateLotState(int64_t lot_id, LotState state, std::string_view reason,
                              absl::Time at, std::string_view by) override {
    return base_->UpdateLotState(lot_id, state, reason, at, by);
  }
  absl::StatusOr<int64_t> InsertCartridge(const Cartridge& cartridge) override {
    return base_->InsertCartridge(cartridge);
  }
  absl::Status RecordUse(int64_t cartridge_id, const CartridgeUse& use) override {
    return base_->RecordUse(cartridge_id, use);
  }
  absl::Status RecordDisposal(int64_t cartridge_id, const Disposal& disposal) override {
    return base_->RecordDisposal(cartridge_id, disposal);
  }
  absl::Status RecordDiscard(int64_t cartridge_id, const Discard& discard) override {
    return base_->RecordDiscard(cartridge_id, discard);
  }
  absl::StatusOr<int64_t> InsertTreatment(const Treatment& treatment) override {
    return base_->InsertTreatment(treatment);
  }
  absl::Status EndTreatment(int64_t id, absl::Time at, std::string_view by) override {
    return base_->EndTreatment(id, at, by);
  }
  absl::StatusOr<int64_t> AppendEvent(const Event& event) override {
    return base_->AppendEvent(event);
  }
  absl::Status SaveRequest(const StoredRequest& request) override {
    return base_->SaveRequest(request);
  }
  absl::Status Commit() override {
    // The base transaction is left uncommitted and rolls back when this one is destroyed.
    if (fail_next_commit_->exchange(false)) return absl::UnavailableError("injected commit failure");
    return base_->Commit();
  }

 private:
  std::unique_ptr<WriteTransaction> base_;
  std::atomic<bool>* fail_next_commit_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ReadTransaction>> FaultInjectingStore::BeginRead() {
  if (fail_next_begin_read.exchange(false)) return absl::UnavailableError("injected read failure");
  return base_->BeginRead();
}

absl::StatusOr<std::unique_ptr<WriteTransaction>> FaultInjectingStore::BeginWrite() {
  if (fail_next_begin_write.exchange(false)) {
    return absl::UnavailableError("injected write failure");
  }
  absl::StatusOr<std::unique_ptr<WriteTransaction>> base = base_->BeginWrite();
  if (!base.ok()) return base.status();
  return std::make_unique<FaultInjectingWriteTransaction>(*std::move(base), &fail_next_commit);
}

}  // namespace steritrack

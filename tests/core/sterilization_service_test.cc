// Core-tier tests of SterilizationService (PRODUCT.md rules 5-8) against the in-memory FakeStore,
// with time from a FakeClock fixed at 2026-11-26 10:00 UTC unless a test moves it.
#include "server/core/sterilization_service.h"

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/cartridge_service.h"
#include "server/core/result_codec.h"
#include "steritrack/error.h"
#include "steritrack/gs1.h"
#include "steritrack/sterilization.h"
#include "steritrack/strings.h"
#include "tests/core/fake_store.h"
#include "tests/status_matchers.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr std::string_view kActor = "spd.ana";
constexpr std::string_view kNurse = "nurse.kim";

absl::Time Utc(int y, int m, int d, int hh = 0, int mm = 0, int ss = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss), absl::UTCTimeZone());
}

const absl::Time kNow = Utc(2026, 11, 26, 10, 0, 0);

BiologicalIndicator Bi(BiResult result, BiResult control = BiResult::kPositive) {
  return BiologicalIndicator{
      .product = "Attest 1292", .lot = "BI-2026-11", .result = result, .control_result = control};
}

std::vector<std::string> Actions(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(e.action);
  return out;
}

// The parts of a look-back entry a test compares.
using Entry = std::tuple<int64_t, std::string, int64_t, std::string, std::string, absl::Time>;
std::vector<Entry> EntriesOf(const LookBack& look_back) {
  std::vector<Entry> out;
  for (const LookBackEntry& e : look_back.entries) {
    out.emplace_back(e.load_id, e.item_serial, e.treatment.id, e.treatment.room,
                     e.treatment.client_ref, e.used_at);
  }
  return out;
}

std::vector<int64_t> IdsOf(const std::vector<Load>& loads) {
  std::vector<int64_t> out;
  for (const Load& l : loads) out.push_back(l.id);
  return out;
}

class SterilizationServiceTest : public ::testing::Test {
 protected:
  SterilizationServiceTest() { UseClinicTimeZone(absl::UTCTimeZone()); }

  void UseClinicTimeZone(absl::TimeZone zone) {
    zone_ = zone;
    service_ = std::make_unique<SterilizationService>(
        SterilizationServiceOptions{.store = &faulty_store_,
                                    .sha256 = TestSha256(),
                                    .clock = &clock_,
                                    .clinic_time_zone = zone});
    cartridges_ =
        std::make_unique<CartridgeService>(CartridgeServiceOptions{.store = &faulty_store_,
                                                                   .sha256 = TestSha256(),
                                                                   .clock = &clock_,
                                                                   .clinic_time_zone = zone});
  }

  SterilizationService& service() { return *service_; }
  CartridgeService& cartridges() { return *cartridges_; }

  static WriteContext Ctx(std::string request_id = "", std::string_view actor = kActor) {
    return WriteContext{.actor = std::string(actor), .request_id = std::move(request_id)};
  }

  ReusableItem MustCreateItem(std::string_view serial, int32_t ifu_max_cycles = 100,
                              std::optional<absl::CivilDay> maintenance_due = std::nullopt) {
    absl::StatusOr<ReusableItem> item =
        service().CreateItem(Ctx(), NewItem{.serial = std::string(serial),
                                            .type = "handpiece",
                                            .ifu_max_cycles = ifu_max_cycles,
                                            .maintenance_due = maintenance_due});
    EXPECT_TRUE(item.ok()) << item.status();
    return item.ok() ? *item : ReusableItem{};
  }

  Sterilizer MustCreateSterilizer(std::string_view name = "AC-1",
                                  SterilizerType type = SterilizerType::kPreVacuum) {
    absl::StatusOr<Sterilizer> s = service().CreateSterilizer(Ctx(), name, type);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : Sterilizer{};
  }

  void MustRecordBowieDick(std::string_view name = "AC-1",
                           IndicatorResult result = IndicatorResult::kPass) {
    absl::StatusOr<BowieDickTest> t = service().RecordBowieDickTest(Ctx(), name, result);
    EXPECT_TRUE(t.ok()) << t.status();
  }

  // A pre-vacuum steriliser ready for today's loads.
  void MustPrepareSterilizer(std::string_view name = "AC-1") {
    MustCreateSterilizer(name);
    MustRecordBowieDick(name);
  }

  ReusableItem MustPack(std::string_view serial) {
    absl::StatusOr<ReusableItem> item = service().PackItem(Ctx(), serial);
    EXPECT_TRUE(item.ok()) << item.status();
    return item.ok() ? *item : ReusableItem{};
  }

  Load MustCreateLoad(const NewLoad& request) {
    absl::StatusOr<Load> load = service().CreateLoad(Ctx(), request);
    EXPECT_TRUE(load.ok()) << load.status();
    return load.ok() ? *load : Load{};
  }

  // Packs the items (those not packed yet) and puts them in a new load.
  Load MustLoad(int64_t cycle, const std::vector<std::string>& serials, bool bi_required = false,
                int32_t shelf_life_days = 0, std::string_view sterilizer = "AC-1") {
    for (const std::string& serial : serials) {
      if (StoredItem(serial).state != ItemState::kPacked) MustPack(serial);
    }
    return MustCreateLoad(NewLoad{.sterilizer = std::string(sterilizer),
                                  .cycle_number = cycle,
                                  .cycle_type = "134C-4MIN",
                                  .item_serials = serials,
                                  .bi_required = bi_required,
                                  .shelf_life_days = shelf_life_days});
  }

  Load MustTestCycle(int64_t cycle, std::string_view sterilizer = "AC-1") {
    return MustCreateLoad(NewLoad{.sterilizer = std::string(sterilizer),
                                  .cycle_number = cycle,
                                  .cycle_type = "BI-TEST",
                                  .test_cycle = true});
  }

  // Parameters of a cycle that ran from 50 to 10 minutes ago and passed.
  CycleParameters GoodParameters() const {
    const absl::Time now = clock_.Now();
    return CycleParameters{.started_at = now - absl::Minutes(50),
                           .ended_at = now - absl::Minutes(10),
                           .exposure_seconds = 240,
                           .temperature_c = 134.2,
                           .pressure_kpa = 212.5,
                           .passed = true};
  }

  void MustRecordParameters(int64_t load_id) {
    absl::StatusOr<Load> l = service().RecordParameters(Ctx(), load_id, GoodParameters());
    EXPECT_TRUE(l.ok()) << l.status();
  }

  void MustRecordCi(int64_t load_id, int32_t type = 5,
                    IndicatorResult result = IndicatorResult::kPass) {
    absl::StatusOr<Load> l = service().RecordChemicalIndicator(Ctx(), load_id, type, result);
    EXPECT_TRUE(l.ok()) << l.status();
  }

  void MustRecordGoodResults(int64_t load_id) {
    MustRecordParameters(load_id);
    MustRecordCi(load_id);
  }

  BiOutcome MustRecordBi(int64_t load_id, BiResult result, BiResult control = BiResult::kPositive) {
    absl::StatusOr<BiOutcome> o =
        service().RecordBiologicalIndicator(Ctx(), load_id, Bi(result, control));
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? *o : BiOutcome{};
  }

  Load MustRelease(int64_t load_id) {
    absl::StatusOr<Load> l = service().ReleaseLoad(Ctx(), load_id, "parameters and CIs reviewed");
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? *l : Load{};
  }

  // A load with passing parameters and CI, released (not held for its BI).
  Load MustLoadAndRelease(int64_t cycle, const std::vector<std::string>& serials,
                          int32_t shelf_life_days = 0, std::string_view sterilizer = "AC-1") {
    Load load = MustLoad(cycle, serials, /*bi_required=*/false, shelf_life_days, sterilizer);
    MustRecordGoodResults(load.id);
    return MustRelease(load.id);
  }

  int64_t MustStartTreatment(std::string_view room = "Room 1",
                             std::string_view client_ref = "client-0042") {
    absl::StatusOr<Treatment> t =
        cartridges().StartTreatment(Ctx("", kNurse), room, "dr.lee", client_ref);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->id : 0;
  }

  ReusableItem MustUse(std::string_view serial, int64_t treatment_id) {
    absl::StatusOr<ReusableItem> item = service().UseItem(Ctx("", kNurse), serial, treatment_id);
    EXPECT_TRUE(item.ok()) << item.status();
    return item.ok() ? *item : ReusableItem{};
  }

  ReusableItem StoredItem(std::string_view serial) {
    std::unique_ptr<ReadTransaction> tx = *store_.BeginRead();
    std::optional<ReusableItem> item = *tx->sterilization().FindItem(serial);
    EXPECT_TRUE(item.has_value()) << serial;
    return item.value_or(ReusableItem{});
  }

  Load StoredLoad(int64_t id) {
    std::unique_ptr<ReadTransaction> tx = *store_.BeginRead();
    std::optional<Load> load = *tx->sterilization().FindLoad(id);
    EXPECT_TRUE(load.has_value()) << id;
    return load.value_or(Load{});
  }

  Sterilizer StoredSterilizer(std::string_view name = "AC-1") {
    std::unique_ptr<ReadTransaction> tx = *store_.BeginRead();
    std::optional<Sterilizer> s = *tx->sterilization().FindSterilizer(name);
    EXPECT_TRUE(s.has_value()) << name;
    return s.value_or(Sterilizer{});
  }

  size_t EventCount() { return store_.Snapshot().events.size(); }
  size_t EventCount(std::string_view action) {
    size_t n = 0;
    for (const Event& e : store_.Snapshot().events) n += e.action == action ? 1 : 0;
    return n;
  }
  std::vector<Event> EventsOf(std::string_view action) {
    std::vector<Event> out;
    for (const Event& e : store_.Snapshot().events) {
      if (e.action == action) out.push_back(e);
    }
    return out;
  }

  FakeClock clock_{kNow};
  FakeStore store_;
  FaultInjectingStore faulty_store_{&store_};
  absl::TimeZone zone_;
  std::unique_ptr<SterilizationService> service_;
  std::unique_ptr<CartridgeService> cartridges_;
};

// ---------------------------------------------------------------------------------------------------
// Items and rule 5

TEST_F(SterilizationServiceTest, NewItemStartsDirtyAndCannotBeUsedBeforeProcessing) {
  absl::StatusOr<ReusableItem> item =
      service().CreateItem(Ctx(), NewItem{.serial = "HP-0001",
                                          .type = "handpiece",
                                          .ifu_max_cycles = 500,
                                          .maintenance_due = absl::CivilDay(2027, 6, 30)});
  ASSERT_TRUE(item.ok()) << item.status();
  EXPECT_NE(item->id, 0);
  EXPECT_EQ(item->serial, "HP-0001");
  EXPECT_EQ(item->type, "handpiece");
  EXPECT_EQ(item->ifu_max_cycles, 500);
  EXPECT_EQ(item->cycles, 0);
  EXPECT_EQ(item->state, ItemState::kDirty);
  EXPECT_EQ(item->maintenance_due, absl::CivilDay(2027, 6, 30));
  EXPECT_EQ(item->created_at, kNow);
  EXPECT_EQ(StoredItem("HP-0001").state, ItemState::kDirty);
  ASSERT_THAT(EventsOf("ITEM_CREATED"), SizeIs(1));
  EXPECT_EQ(EventsOf("ITEM_CREATED")[0].item_id, item->id);
  EXPECT_EQ(EventsOf("ITEM_CREATED")[0].actor, kActor);

  const int64_t t = MustStartTreatment();
  absl::StatusOr<ReusableItem> used = service().UseItem(Ctx(), "HP-0001", t);
  EXPECT_THAT(used, IsRefusedWith("ITEM_NOT_STERILE"));
  EXPECT_EQ(MetaOf(used.status(), "state"), "DIRTY");
  EXPECT_EQ(EventCount("ITEM_USED"), 0u);
}

TEST_F(SterilizationServiceTest, DuplicateItemSerialIsAlreadyExists) {
  MustCreateItem("HP-0001");
  absl::StatusOr<ReusableItem> again = service().CreateItem(
      Ctx(), NewItem{.serial = "HP-0001", .type = "tray", .ifu_max_cycles = 10});
  EXPECT_THAT(again, IsRefused(absl::StatusCode::kAlreadyExists, "ITEM_EXISTS"));
  EXPECT_EQ(store_.Snapshot().items.size(), 1u);
}

TEST_F(SterilizationServiceTest, CreateItemNamesTheImpossibleField) {
  auto create = [&](std::string serial, std::string type, int32_t ifu) {
    return service().CreateItem(
        Ctx(),
        NewItem{.serial = std::move(serial), .type = std::move(type), .ifu_max_cycles = ifu});
  };
  EXPECT_THAT(create("", "tray", 10), IsInvalidField("serial"));
  EXPECT_THAT(create(std::string(21, 'A'), "tray", 10), IsInvalidField("serial"));
  EXPECT_THAT(create("HP 1", "tray", 10), IsInvalidField("serial"));  // space: not GS1 set 82
  EXPECT_THAT(create("HP#1", "tray", 10), IsInvalidField("serial"));
  EXPECT_THAT(create("HP-1", "", 10), IsInvalidField("type"));
  EXPECT_THAT(create("HP-1", std::string(65, 't'), 10), IsInvalidField("type"));
  EXPECT_THAT(create("HP-1", "tray", 0), IsInvalidField("ifu_max_cycles"));
  EXPECT_THAT(create("HP-1", "tray", -3), IsInvalidField("ifu_max_cycles"));
  EXPECT_THAT(create("HP-1", "tray", 100001), IsInvalidField("ifu_max_cycles"));
  EXPECT_TRUE(create(std::string(20, 'A'), std::string(64, 't'), 100000).ok());
  EXPECT_TRUE(create("a!\"%&'()*+,-./:;<=>?_", "tray", 1).status().code() ==
              absl::StatusCode::kInvalidArgument);  // 21 characters
  EXPECT_TRUE(create("!\"%&'()*+,-./:;<=>?_", "tray", 1).ok());
  EXPECT_EQ(store_.Snapshot().items.size(), 2u);
}

TEST_F(SterilizationServiceTest, ReleasedItemIsUsedThenComesBackDirtyWhenTheTreatmentEnds) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  MustCreateItem("TRAY-7");
  MustCreateItem("HP-OTHER");
  MustLoadAndRelease(1, {"HP-0001", "TRAY-7", "HP-OTHER"});
  ReusableItem sterile = StoredItem("HP-0001");
  EXPECT_EQ(sterile.state, ItemState::kSterile);
  EXPECT_EQ(sterile.sterile_until, kNow + absl::Hours(24 * 30));  // default shelf life

  const int64_t t = MustStartTreatment("Room 2", "client-0007");
  const int64_t other = MustStartTreatment("Room 3", "client-0008");
  clock_.Advance(absl::Minutes(5));
  ReusableItem used = MustUse("HP-0001", t);
  EXPECT_EQ(used.state, ItemState::kInUse);
  EXPECT_EQ(used.treatment_id, t);
  MustUse("TRAY-7", t);
  MustUse("HP-OTHER", other);
  ASSERT_THAT(EventsOf("ITEM_USED"), SizeIs(3));
  const Event use_event = EventsOf("ITEM_USED")[0];
  EXPECT_EQ(use_event.item_id, used.id);
  EXPECT_EQ(use_event.treatment_id, t);
  EXPECT_EQ(use_event.load_id, used.load_id);
  EXPECT_EQ(use_event.actor, kNurse);
  EXPECT_EQ(use_event.at, kNow + absl::Minutes(5));

  // A second use of the same pack is refused: it is in use.
  absl::StatusOr<ReusableItem> again = service().UseItem(Ctx(), "HP-0001", other);
  EXPECT_THAT(again, IsRefusedWith("ITEM_NOT_STERILE"));
  EXPECT_EQ(MetaOf(again.status(), "treatment"), StrCat(t));

  ASSERT_TRUE(cartridges().EndTreatment(Ctx(), t).ok());
  EXPECT_EQ(StoredItem("HP-0001").state, ItemState::kDirty);
  EXPECT_EQ(StoredItem("HP-0001").treatment_id, 0);
  EXPECT_EQ(StoredItem("TRAY-7").state, ItemState::kDirty);
  EXPECT_EQ(StoredItem("HP-OTHER").state, ItemState::kInUse);  // its treatment goes on
  std::vector<Event> returned = EventsOf("ITEM_RETURNED_DIRTY");
  ASSERT_THAT(returned, SizeIs(2));
  EXPECT_EQ(returned[0].treatment_id, t);
  EXPECT_EQ(returned[0].item_id, used.id);

  const int64_t next = MustStartTreatment();
  EXPECT_THAT(service().UseItem(Ctx(), "HP-0001", next), IsRefusedWith("ITEM_NOT_STERILE"));
}

TEST_F(SterilizationServiceTest, UseNeedsAKnownItemAndAnOngoingTreatment) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  MustLoadAndRelease(1, {"HP-0001"});
  EXPECT_THAT(service().UseItem(Ctx(), "HP-0001", 99),
              IsRefused(absl::StatusCode::kNotFound, "TREATMENT_NOT_FOUND"));
  EXPECT_THAT(service().UseItem(Ctx(), "HP-0001", 0), IsInvalidField("treatment_id"));
  const int64_t t = MustStartTreatment();
  EXPECT_THAT(service().UseItem(Ctx(), "NOPE", t),
              IsRefused(absl::StatusCode::kNotFound, "ITEM_NOT_FOUND"));
  ASSERT_TRUE(cartridges().EndTreatment(Ctx(), t).ok());
  EXPECT_THAT(service().UseItem(Ctx(), "HP-0001", t), IsRefusedWith("TREATMENT_ENDED"));
  EXPECT_EQ(StoredItem("HP-0001").state, ItemState::kSterile);
}

TEST_F(SterilizationServiceTest, ItemInAnOpenLoadIsRefusedForUseAndForASecondLoad) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  const Load open = MustLoad(1, {"HP-0001"});
  EXPECT_EQ(StoredItem("HP-0001").state, ItemState::kInLoad);
  const int64_t t = MustStartTreatment();
  absl::StatusOr<ReusableItem> used = service().UseItem(Ctx(), "HP-0001", t);
  EXPECT_THAT(used, IsRefusedWith("ITEM_IN_OPEN_LOAD"));
  EXPECT_EQ(MetaOf(used.status(), "load"), StrCat(open.id));

  absl::StatusOr<Load> second = service().CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                                                    .cycle_number = 2,
                                                                    .cycle_type = "134C-4MIN",
                                                                    .item_serials = {"HP-0001"}});
  EXPECT_THAT(second, IsRefusedWith("ITEM_IN_OPEN_LOAD"));
  EXPECT_EQ(MetaOf(second.status(), "load"), StrCat(open.id));
  EXPECT_THAT(service().PackItem(Ctx(), "HP-0001"), IsRefusedWith("ITEM_IN_OPEN_LOAD"));
  EXPECT_THAT(service().RetireItem(Ctx(), "HP-0001", "cracked"),
              IsRefusedWith("ITEM_IN_OPEN_LOAD"));
  EXPECT_EQ(store_.Snapshot().loads.size(), 1u);
  EXPECT_EQ(StoredItem("HP-0001").cycles, 1);
}

TEST_F(SterilizationServiceTest, OnlyPackedItemsGoIntoALoad) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  absl::StatusOr<Load> load = service().CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                                                  .cycle_number = 1,
                                                                  .cycle_type = "134C-4MIN",
                                                                  .item_serials = {"HP-0001"}});
  EXPECT_THAT(load, IsRefusedWith("ITEM_NOT_PACKED"));
  EXPECT_EQ(MetaOf(load.status(), "state"), "DIRTY");
  EXPECT_THAT(service().CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                                  .cycle_number = 1,
                                                  .cycle_type = "134C-4MIN",
                                                  .item_serials = {"NOPE"}}),
              IsRefused(absl::StatusCode::kNotFound, "ITEM_NOT_FOUND"));
  EXPECT_TRUE(store_.Snapshot().loads.empty());
  EXPECT_EQ(StoredSterilizer().last_cycle_number, 0);

  ReusableItem packed = MustPack("HP-0001");
  EXPECT_EQ(packed.state, ItemState::kPacked);
  EXPECT_EQ(EventCount("ITEM_PACKED"), 1u);
  EXPECT_THAT(service().PackItem(Ctx(), "HP-0001"), IsRefusedWith("ITEM_ALREADY_PACKED"));
  EXPECT_EQ(EventCount("ITEM_PACKED"), 1u);
}

TEST_F(SterilizationServiceTest, ItemRatedForNCyclesIsUsedAfterItsNthLoadAndTheNextLoadIsRefused) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001", /*ifu_max_cycles=*/2);
  const Load first = MustLoadAndRelease(1, {"HP-0001"});
  EXPECT_EQ(StoredItem("HP-0001").cycles, 1);
  EXPECT_EQ(StoredItem("HP-0001").load_id, first.id);
  const int64_t t = MustStartTreatment();
  MustUse("HP-0001", t);
  ASSERT_TRUE(cartridges().EndTreatment(Ctx(), t).ok());

  const Load second = MustLoadAndRelease(2, {"HP-0001"});
  ReusableItem item = StoredItem("HP-0001");
  EXPECT_EQ(item.cycles, 2);
  EXPECT_EQ(item.load_id, second.id);
  EXPECT_EQ(item.state, ItemState::kSterile);

  // Its N-th (last allowed) reprocessing is not wasted: it is used after it ...
  const int64_t t2 = MustStartTreatment();
  EXPECT_EQ(MustUse("HP-0001", t2).state, ItemState::kInUse);
  ASSERT_TRUE(cartridges().EndTreatment(Ctx(), t2).ok());
  // ... and the load that would take it past N is refused.
  MustPack("HP-0001");
  absl::StatusOr<Load> third = service().CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                                                   .cycle_number = 3,
                                                                   .cycle_type = "134C-4MIN",
                                                                   .item_serials = {"HP-0001"}});
  EXPECT_THAT(third, IsRefusedWith("ITEM_CYCLE_LIMIT_REACHED"));
  EXPECT_EQ(MetaOf(third.status(), "cycles"), "2");
  EXPECT_EQ(MetaOf(third.status(), "ifu_max_cycles"), "2");
  EXPECT_EQ(StoredItem("HP-0001").cycles, 2);
  EXPECT_EQ(StoredItem("HP-0001").state, ItemState::kPacked);
}

TEST_F(SterilizationServiceTest, ItemRatedForOneCycleIsUsedOnceAndNeverLoadedAgain) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001", /*ifu_max_cycles=*/1);
  MustLoadAndRelease(1, {"HP-0001"});
  const int64_t t = MustStartTreatment();
  MustUse("HP-0001", t);
  ASSERT_TRUE(cartridges().EndTreatment(Ctx(), t).ok());
  MustPack("HP-0001");
  EXPECT_THAT(service().CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                                  .cycle_number = 2,
                                                  .cycle_type = "134C-4MIN",
                                                  .item_serials = {"HP-0001"}}),
              IsRefusedWith("ITEM_CYCLE_LIMIT_REACHED"));
}

TEST_F(SterilizationServiceTest, ALabelFromAnEarlierLoadOfTheSameItemIsAStop) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  const Load first = MustLoadAndRelease(1, {"HP-0001"});
  const std::string old_label = ItemLabel(StoredItem("HP-0001"), first, zone_);
  const int64_t t = MustStartTreatment();
  MustUse("HP-0001", t);
  ASSERT_TRUE(cartridges().EndTreatment(Ctx(), t).ok());
  const Load second = MustLoadAndRelease(2, {"HP-0001"});
  const size_t events = EventCount();

  const int64_t t2 = MustStartTreatment();
  absl::StatusOr<ReusableItem> used = service().UseItem(Ctx("", kNurse), old_label, t2);
  EXPECT_THAT(used, IsRefusedWith("PACK_LABEL_NOT_CURRENT"));
  EXPECT_EQ(MetaOf(used.status(), "label_load"), StrCat(first.id));
  EXPECT_EQ(MetaOf(used.status(), "load"), StrCat(second.id));
  EXPECT_EQ(StoredItem("HP-0001").state, ItemState::kSterile);
  EXPECT_EQ(EventCount(), events + 1);  // only the treatment started

  // The current pack's label is accepted.
  absl::StatusOr<ReusableItem> current =
      service().UseItem(Ctx("", kNurse), ItemLabel(StoredItem("HP-0001"), second, zone_), t2);
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(current->state, ItemState::kInUse);
}

TEST_F(SterilizationServiceTest, AUseRetriedWithAnotherPackLabelIsNotAReplay) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  const Load first = MustLoadAndRelease(1, {"HP-0001"});
  const std::string old_label = ItemLabel(StoredItem("HP-0001"), first, zone_);
  const int64_t t = MustStartTreatment();
  MustUse("HP-0001", t);
  ASSERT_TRUE(cartridges().EndTreatment(Ctx(), t).ok());
  const Load second = MustLoadAndRelease(2, {"HP-0001"});
  const int64_t t2 = MustStartTreatment();
  ASSERT_TRUE(
      service()
          .UseItem(Ctx("use-1", kNurse), ItemLabel(StoredItem("HP-0001"), second, zone_), t2)
          .ok());
  // The same request id with the old pack's label is a different request, never "already done".
  EXPECT_THAT(service().UseItem(Ctx("use-1", kNurse), old_label, t2),
              IsRefused(absl::StatusCode::kInvalidArgument, "REQUEST_ID_REUSED"));
}

TEST_F(SterilizationServiceTest, ALabelNamingNoLoadOfTheItemIsAStop) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  MustCreateItem("HP-0002");
  MustLoadAndRelease(7, {"HP-0001"});
  const Load other = MustLoadAndRelease(8, {"HP-0002"});
  const int64_t t = MustStartTreatment();
  for (const std::string label : {
           "(8004)HP-0001(10)AC-1-99(11)261126",  // no such cycle
           "(8004)HP-0001(10)AC-9-7(11)261126",   // no such steriliser
           "(8004)HP-0001(10)AC-1-7(11)261125",   // cycle 7 ran on another day
           "(8004)HP-0001(10)AC-1-8(11)261126",   // a real load, but HP-0002's
           "(8004)HP-0001",                       // names no load at all
           "(8004)HP-0001(10)AC-1-(11)261126",    // no cycle number
       }) {
    absl::StatusOr<ReusableItem> used = service().UseItem(Ctx("", kNurse), label, t);
    EXPECT_THAT(used, IsRefusedWith("PACK_LABEL_UNKNOWN_LOAD")) << label;
    EXPECT_EQ(MetaOf(used.status(), "serial"), "HP-0001") << label;
  }
  EXPECT_EQ(StoredItem("HP-0001").state, ItemState::kSterile);
  EXPECT_EQ(other.item_serials, std::vector<std::string>{"HP-0002"});
  // The plain serial (typed, not a pack scan) still works.
  EXPECT_EQ(MustUse("HP-0001", t).state, ItemState::kInUse);
}

TEST_F(SterilizationServiceTest, ShelfLifeRunsFromReleaseAndThenTheItemIsRefused) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  MustCreateItem("HP-0002");
  const Load load = MustLoadAndRelease(1, {"HP-0001", "HP-0002"}, /*shelf_life_days=*/7);
  EXPECT_EQ(load.shelf_life_days, 7);
  EXPECT_EQ(StoredItem("HP-0001").sterile_until, kNow + absl::Hours(24 * 7));

  clock_.Advance(absl::Hours(24 * 7) - absl::Minutes(1));
  MustUse("HP-0001", MustStartTreatment());

  clock_.Advance(absl::Minutes(2));
  const int64_t t = MustStartTreatment();
  absl::StatusOr<ReusableItem> used = service().UseItem(Ctx(), "HP-0002", t);
  EXPECT_THAT(used, IsRefusedWith("ITEM_SHELF_LIFE_EXPIRED"));
  EXPECT_EQ(MetaOf(used.status(), "sterile_until"), "2026-12-03T10:00:00Z");
  EXPECT_EQ(StoredItem("HP-0002").state, ItemState::kSterile);

  // Reprocessing is the way back.
  EXPECT_EQ(MustPack("HP-0002").state, ItemState::kPacked);
}

TEST_F(SterilizationServiceTest, OverdueMaintenanceBlocksUseFromTheDayAfterItWasDue) {
  MustPrepareSterilizer();
  MustCreateItem("HP-DUE-TODAY", 100, absl::CivilDay(2026, 11, 27));
  MustCreateItem("HP-DUE-YESTERDAY", 100, absl::CivilDay(2026, 11, 26));
  MustLoadAndRelease(1, {"HP-DUE-TODAY", "HP-DUE-YESTERDAY"});
  clock_.Advance(absl::Hours(24));  // 2026-11-27
  const int64_t t = MustStartTreatment();
  MustUse("HP-DUE-TODAY", t);
  absl::StatusOr<ReusableItem> used = service().UseItem(Ctx(), "HP-DUE-YESTERDAY", t);
  EXPECT_THAT(used, IsRefusedWith("ITEM_MAINTENANCE_OVERDUE"));
  EXPECT_EQ(MetaOf(used.status(), "maintenance_due"), "2026-11-26");
  EXPECT_EQ(StoredItem("HP-DUE-YESTERDAY").state, ItemState::kSterile);
}

TEST_F(SterilizationServiceTest, AnItemWithOverdueMaintenanceIsNotLoaded) {
  MustPrepareSterilizer();
  MustCreateItem("HP-OK", 100, absl::CivilDay(2026, 11, 26));
  MustCreateItem("HP-OVERDUE", 100, absl::CivilDay(2026, 11, 25));
  MustPack("HP-OK");
  MustPack("HP-OVERDUE");
  const size_t loads_before = EventCount("LOAD_CREATED");
  absl::StatusOr<Load> load =
      service().CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                          .cycle_number = 1,
                                          .cycle_type = "134C-4MIN",
                                          .item_serials = {"HP-OK", "HP-OVERDUE"}});
  EXPECT_THAT(load, IsRefusedWith("ITEM_MAINTENANCE_OVERDUE"));
  EXPECT_EQ(MetaOf(load.status(), "serial"), "HP-OVERDUE");
  EXPECT_EQ(MetaOf(load.status(), "maintenance_due"), "2026-11-25");
  EXPECT_EQ(EventCount("LOAD_CREATED"), loads_before);
  EXPECT_EQ(StoredItem("HP-OK").state, ItemState::kPacked);
  EXPECT_EQ(StoredItem("HP-OK").cycles, 0);
  EXPECT_EQ(StoredItem("HP-OVERDUE").state, ItemState::kPacked);
}

TEST_F(SterilizationServiceTest, QuarantinedLoadQuarantinesItsSterileItems) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  MustCreateItem("HP-0002");
  const Load load = MustLoadAndRelease(1, {"HP-0001", "HP-0002"});
  const int64_t t = MustStartTreatment();
  MustUse("HP-0002", t);

  clock_.Advance(absl::Hours(1));
  absl::StatusOr<Load> q =
      service().QuarantineLoad(Ctx("", "manager.li"), load.id, "steriliser printout illegible");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->release_state, ReleaseState::kQuarantined);
  ASSERT_TRUE(q->signature.has_value());
  EXPECT_EQ(q->signature->by, "manager.li");
  EXPECT_EQ(q->signature->at, kNow + absl::Hours(1));
  EXPECT_EQ(q->signature->meaning, "steriliser printout illegible");

  ReusableItem item = StoredItem("HP-0001");
  EXPECT_EQ(item.state, ItemState::kQuarantined);
  EXPECT_EQ(item.state_reason, "steriliser printout illegible");
  EXPECT_EQ(StoredItem("HP-0002").state, ItemState::kInUse);  // already in the room
  ASSERT_THAT(EventsOf("ITEM_QUARANTINED"), SizeIs(1));
  EXPECT_EQ(EventsOf("ITEM_QUARANTINED")[0].load_id, load.id);
  EXPECT_EQ(EventCount("LOAD_QUARANTINED"), 1u);

  absl::StatusOr<ReusableItem> used = service().UseItem(Ctx(), "HP-0001", t);
  EXPECT_THAT(used, IsRefusedWith("ITEM_QUARANTINED"));
  EXPECT_EQ(MetaOf(used.status(), "reason"), "steriliser printout illegible");
  EXPECT_THAT(service().QuarantineLoad(Ctx(), load.id, "again"), IsRefusedWith("LOAD_NOT_OPEN"));
  EXPECT_THAT(service().ReleaseLoad(Ctx(), load.id, "ok"), IsRefusedWith("LOAD_NOT_OPEN"));

  // A quarantined item goes round again.
  EXPECT_EQ(MustPack("HP-0001").state, ItemState::kPacked);
}

TEST_F(SterilizationServiceTest, RecallQuarantinesItemsAndListsTheTreatmentsThatUsedThem) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  MustCreateItem("HP-0002");
  MustCreateItem("HP-0003");
  const Load load = MustLoadAndRelease(1, {"HP-0001", "HP-0002", "HP-0003"});
  const int64_t t1 = MustStartTreatment("Room 1", "client-A");
  MustUse("HP-0001", t1);
  clock_.Advance(absl::Minutes(20));
  const int64_t t2 = MustStartTreatment("Room 2", "client-B");
  MustUse("HP-0002", t2);

  clock_.Advance(absl::Hours(2));
  absl::StatusOr<LookBack> recall =
      service().RecallLoad(Ctx("", "manager.li"), load.id, "wrong cycle selected");
  ASSERT_TRUE(recall.ok()) << recall.status();
  ASSERT_THAT(recall->loads, SizeIs(1));
  EXPECT_EQ(recall->loads[0].release_state, ReleaseState::kRecalled);
  EXPECT_EQ(recall->loads[0].signature->by, "manager.li");
  EXPECT_EQ(recall->loads[0].signature->meaning, "wrong cycle selected");
  EXPECT_FALSE(recall->sterilizer.has_value());
  EXPECT_THAT(
      EntriesOf(*recall),
      ElementsAre(Entry{load.id, "HP-0001", t1, "Room 1", "client-A", kNow},
                  Entry{load.id, "HP-0002", t2, "Room 2", "client-B", kNow + absl::Minutes(20)}));
  EXPECT_EQ(StoredItem("HP-0003").state, ItemState::kQuarantined);
  EXPECT_EQ(EventCount("LOAD_RECALLED"), 1u);
  EXPECT_THAT(service().RecallLoad(Ctx(), load.id, "again"), IsRefusedWith("LOAD_NOT_OPEN"));

  absl::StatusOr<LookBack> look_back = service().GetLookBack(load.id);
  ASSERT_TRUE(look_back.ok()) << look_back.status();
  EXPECT_EQ(EntriesOf(*look_back), EntriesOf(*recall));
}

TEST_F(SterilizationServiceTest, SterileItemWhoseLoadIsNotReleasedIsRefused) {
  // Defence in depth: the state machine keeps this from happening, a store changed behind core's
  // back must not make an unreleased load's item usable.
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  const Load load = MustLoadAndRelease(1, {"HP-0001"});
  {
    std::unique_ptr<WriteTransaction> tx = *store_.BeginWrite();
    ASSERT_TRUE(tx->sterilization()
                    .SetLoadReleaseState(load.id, ReleaseState::kQuarantined,
                                         Signature{.by = "db", .at = kNow, .meaning = "manual"})
                    .ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  absl::StatusOr<ReusableItem> used = service().UseItem(Ctx(), "HP-0001", MustStartTreatment());
  EXPECT_THAT(used, IsRefusedWith("ITEM_LOAD_NOT_RELEASED"));
  EXPECT_EQ(MetaOf(used.status(), "release_state"), "QUARANTINED");
}

TEST_F(SterilizationServiceTest, RetiredItemIsNeverUsedOrProcessedAgain) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  MustLoadAndRelease(1, {"HP-0001"});
  absl::StatusOr<ReusableItem> retired = service().RetireItem(Ctx(), "HP-0001", "cracked housing");
  ASSERT_TRUE(retired.ok()) << retired.status();
  EXPECT_EQ(retired->state, ItemState::kRetired);
  EXPECT_EQ(retired->state_reason, "cracked housing");
  EXPECT_EQ(EventCount("ITEM_RETIRED"), 1u);
  EXPECT_THAT(service().UseItem(Ctx(), "HP-0001", MustStartTreatment()),
              IsRefusedWith("ITEM_NOT_STERILE"));
  EXPECT_THAT(service().PackItem(Ctx(), "HP-0001"), IsRefusedWith("ITEM_RETIRED"));
  EXPECT_THAT(service().RetireItem(Ctx(), "HP-0001", "again"), IsRefusedWith("ITEM_RETIRED"));
  EXPECT_THAT(service().RetireItem(Ctx(), "HP-0001", ""), IsInvalidField("reason"));
}

TEST_F(SterilizationServiceTest, TheItemViewsHistoryTellsTheWholeCycle) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  MustLoadAndRelease(1, {"HP-0001"});
  const int64_t t = MustStartTreatment();
  MustUse("HP-0001", t);
  ASSERT_TRUE(cartridges().EndTreatment(Ctx(), t).ok());
  absl::StatusOr<ItemView> view = service().GetItemView("HP-0001");
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_THAT(Actions(view->history),
              ElementsAre("ITEM_CREATED", "ITEM_PACKED", "ITEM_LOADED", "ITEM_STERILE", "ITEM_USED",
                          "ITEM_RETURNED_DIRTY"));
  EXPECT_THAT(service().GetItemView("NOPE"),
              IsRefused(absl::StatusCode::kNotFound, "ITEM_NOT_FOUND"));
}

// ---------------------------------------------------------------------------------------------------
// Labels

TEST_F(SterilizationServiceTest, ItemLabelRoundTripsThroughTheGs1Parser) {
  MustPrepareSterilizer();
  MustCreateItem("HP(7)-A");
  const Load load = MustLoad(42, {"HP(7)-A"});
  const ReusableItem item = StoredItem("HP(7)-A");
  const std::string label = ItemLabel(item, load, absl::UTCTimeZone());
  EXPECT_EQ(label, "(8004)HP\\(7)-A(10)AC-1-42(11)261126");
  EXPECT_EQ(LotControlNumber(load, absl::UTCTimeZone()), "AC-1/42/2026-11-26");

  absl::StatusOr<Gs1Data> parsed = ParseGs1(label, 2026);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_THAT(parsed->elements, SizeIs(3));
  EXPECT_EQ(parsed->elements[0].ai, "8004");
  EXPECT_EQ(parsed->elements[0].value, "HP(7)-A");
  EXPECT_EQ(parsed->lot, "AC-1-42");
  EXPECT_EQ(parsed->produced, absl::CivilDay(2026, 11, 26));
  EXPECT_EQ(FormatGs1Bracketed(*parsed), label);

  // The longest steriliser name with the highest cycle number still fits AI 10.
  MustCreateSterilizer("ABCDEFGHIJKL", SterilizerType::kGravity);
  MustCreateItem("X");
  const Load longest = MustLoad(9999999, {"X"}, false, 0, "ABCDEFGHIJKL");
  absl::StatusOr<Gs1Data> longest_parsed =
      ParseGs1(ItemLabel(StoredItem("X"), longest, absl::UTCTimeZone()), 2026);
  ASSERT_TRUE(longest_parsed.ok()) << longest_parsed.status();
  EXPECT_EQ(longest_parsed->lot, "ABCDEFGHIJKL-9999999");
}

TEST_F(SterilizationServiceTest, LabelDateIsTheLoadsDayInTheClinicTimeZone) {
  clock_.Set(Utc(2026, 11, 26, 23, 30));
  UseClinicTimeZone(absl::FixedTimeZone(10 * 60 * 60));  // 09:30 on the 27th there
  MustCreateSterilizer("GR-1", SterilizerType::kGravity);
  MustCreateItem("HP-0001");
  const Load load = MustLoad(3, {"HP-0001"}, false, 0, "GR-1");
  EXPECT_EQ(ItemLabel(StoredItem("HP-0001"), load, zone_), "(8004)HP-0001(10)GR-1-3(11)261127");
  EXPECT_EQ(LotControlNumber(load, zone_), "GR-1/3/2026-11-27");
}

TEST_F(SterilizationServiceTest, GetItemViewAndUseItemAcceptALabelScan) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  const Load load = MustLoadAndRelease(7, {"HP-0001"});
  const std::string label = ItemLabel(StoredItem("HP-0001"), load, zone_);

  absl::StatusOr<ItemView> by_label = service().GetItemView(label);
  ASSERT_TRUE(by_label.ok()) << by_label.status();
  EXPECT_EQ(by_label->item.serial, "HP-0001");
  // As a GS1-128 scanner sends it: AIM prefix, GS after variable-length fields.
  absl::StatusOr<ItemView> raw = service().GetItemView(
      "]C18004HP-0001\x1d"
      "10AC-1-7\x1d"
      "11261126");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->item.serial, "HP-0001");
  ASSERT_TRUE(service().GetItemView("HP-0001").ok());

  // A cartridge's barcode is not an item label; a broken scan names the AI.
  EXPECT_THAT(service().GetItemView("(01)09506000134352(17)271231(10)LOT-A(21)S1"),
              IsRefused(absl::StatusCode::kInvalidArgument, "BARCODE_INVALID"));
  absl::StatusOr<ItemView> broken = service().GetItemView("(8004)HP-0001(11)261332");
  EXPECT_THAT(broken, IsRefused(absl::StatusCode::kInvalidArgument, "BARCODE_INVALID"));
  EXPECT_EQ(MetaOf(broken.status(), "ai"), "11");
  EXPECT_THAT(service().GetItemView("NOPE"),
              IsRefused(absl::StatusCode::kNotFound, "ITEM_NOT_FOUND"));

  const int64_t t = MustStartTreatment();
  absl::StatusOr<ReusableItem> used = service().UseItem(Ctx(), label, t);
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(used->state, ItemState::kInUse);
}

// ---------------------------------------------------------------------------------------------------
// Rule 6: release

TEST_F(SterilizationServiceTest, ReleaseRecordsTheSignatureAndMakesItemsSterile) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  const Load load = MustLoad(1, {"HP-0001"}, /*bi_required=*/true, /*shelf_life_days=*/90);
  EXPECT_EQ(load.release_state, ReleaseState::kOpen);
  EXPECT_EQ(load.operator_name, kActor);
  EXPECT_EQ(load.sterilizer_name, "AC-1");
  EXPECT_THAT(load.item_serials, ElementsAre("HP-0001"));
  MustRecordGoodResults(load.id);
  clock_.Advance(absl::Hours(24));
  MustRecordBowieDick();
  const BiOutcome outcome = MustRecordBi(load.id, BiResult::kNegative);
  EXPECT_FALSE(outcome.look_back.has_value());
  EXPECT_EQ(outcome.load.bi->read_at, kNow + absl::Hours(24));

  absl::StatusOr<Load> released =
      service().ReleaseLoad(Ctx("", "lead.sam"), load.id, "parameters, CIs and BI reviewed");
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(released->release_state, ReleaseState::kReleased);
  ASSERT_TRUE(released->signature.has_value());
  EXPECT_EQ(released->signature->by, "lead.sam");
  EXPECT_EQ(released->signature->at, kNow + absl::Hours(24));
  EXPECT_EQ(released->signature->meaning, "parameters, CIs and BI reviewed");
  EXPECT_EQ(StoredLoad(load.id).signature->by, "lead.sam");
  EXPECT_EQ(StoredItem("HP-0001").state, ItemState::kSterile);
  EXPECT_EQ(StoredItem("HP-0001").sterile_until, kNow + absl::Hours(24) + absl::Hours(24 * 90));
  std::vector<Event> events = EventsOf("LOAD_RELEASED");
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].load_id, load.id);
  EXPECT_EQ(events[0].actor, "lead.sam");

  EXPECT_THAT(service().ReleaseLoad(Ctx(), load.id, "again"), IsRefusedWith("LOAD_NOT_OPEN"));
  EXPECT_THAT(service().ReleaseLoad(Ctx(), load.id, ""), IsInvalidField("meaning"));
  EXPECT_THAT(service().ReleaseLoad(Ctx(), 999, "x"),
              IsRefused(absl::StatusCode::kNotFound, "LOAD_NOT_FOUND"));
}

TEST_F(SterilizationServiceTest, ReleaseIsRefusedForEachMissingOrFailedResultAndChangesNothing) {
  MustPrepareSterilizer();
  int64_t cycle = 0;
  auto new_load = [&](bool bi_required) {
    const std::string serial = StrCat("HP-", ++cycle);
    MustCreateItem(serial);
    return MustLoad(cycle, {serial}, bi_required);
  };
  auto expect_refused = [&](const Load& load, std::string_view reason) {
    const int commits = store_.commits();
    const size_t events = EventCount();
    absl::StatusOr<Load> r = service().ReleaseLoad(Ctx(), load.id, "reviewed");
    EXPECT_THAT(r, IsRefusedWith(std::string(reason)));
    EXPECT_EQ(MetaOf(r.status(), "load"), StrCat(load.id));
    EXPECT_EQ(store_.commits(), commits);
    EXPECT_EQ(EventCount(), events);
    EXPECT_EQ(StoredLoad(load.id).release_state, ReleaseState::kOpen);
    EXPECT_FALSE(StoredLoad(load.id).signature.has_value());
    EXPECT_EQ(StoredItem(load.item_serials[0]).state, ItemState::kInLoad);
  };

  const Load no_parameters = new_load(false);
  MustRecordCi(no_parameters.id);
  expect_refused(no_parameters, "LOAD_PARAMETERS_MISSING");

  const Load failed_parameters = new_load(false);
  CycleParameters failed = GoodParameters();
  failed.passed = false;
  ASSERT_TRUE(service().RecordParameters(Ctx(), failed_parameters.id, failed).ok());
  MustRecordCi(failed_parameters.id);
  expect_refused(failed_parameters, "LOAD_PARAMETERS_FAILED");

  const Load no_ci = new_load(false);
  MustRecordParameters(no_ci.id);
  expect_refused(no_ci, "LOAD_CI_MISSING");

  const Load failed_ci = new_load(false);
  MustRecordParameters(failed_ci.id);
  MustRecordCi(failed_ci.id, 5, IndicatorResult::kPass);
  MustRecordCi(failed_ci.id, 4, IndicatorResult::kFail);
  expect_refused(failed_ci, "LOAD_CI_FAILED");

  const Load no_bi = new_load(true);
  MustRecordGoodResults(no_bi.id);
  expect_refused(no_bi, "LOAD_BI_MISSING");

  const Load control_failed = new_load(true);
  MustRecordGoodResults(control_failed.id);
  MustRecordBi(control_failed.id, BiResult::kNegative, /*control=*/BiResult::kNegative);
  expect_refused(control_failed, "LOAD_BI_CONTROL_FAILED");

  // A positive BI quarantines its load at once, so release meets LOAD_NOT_OPEN; only a store
  // changed behind core's back can hold an open load with a positive BI.
  const Load positive = new_load(true);
  MustRecordGoodResults(positive.id);
  {
    std::unique_ptr<WriteTransaction> tx = *store_.BeginWrite();
    BiologicalIndicator bi = Bi(BiResult::kPositive);
    bi.read_at = kNow;
    ASSERT_TRUE(tx->sterilization().RecordBi(positive.id, bi).ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  expect_refused(positive, "LOAD_BI_POSITIVE");

  // Without the BI hold, a load is released on parameters and CIs alone.
  const Load not_held = new_load(false);
  MustRecordGoodResults(not_held.id);
  EXPECT_EQ(MustRelease(not_held.id).release_state, ReleaseState::kReleased);
}

TEST_F(SterilizationServiceTest, LoadReleaseFindingsListEveryGapAndReleaseRefusesWithTheFirst) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  const Load load = MustLoad(1, {"HP-0001"}, /*bi_required=*/true);
  auto reasons = [](const Load& l) {
    std::vector<std::string> out;
    for (const LoadFinding& f : LoadReleaseFindings(l)) out.push_back(f.reason);
    return out;
  };
  EXPECT_THAT(reasons(StoredLoad(load.id)),
              ElementsAre("LOAD_PARAMETERS_MISSING", "LOAD_CI_MISSING", "LOAD_BI_MISSING"));
  EXPECT_THAT(service().ReleaseLoad(Ctx(), load.id, "reviewed"),
              IsRefusedWith("LOAD_PARAMETERS_MISSING"));

  CycleParameters failed = GoodParameters();
  failed.passed = false;
  ASSERT_TRUE(service().RecordParameters(Ctx(), load.id, failed).ok());
  MustRecordCi(load.id, 4, IndicatorResult::kFail);
  MustRecordCi(load.id, 5, IndicatorResult::kPass);
  MustRecordCi(load.id, 6, IndicatorResult::kFail);
  MustRecordBi(load.id, BiResult::kPositive, BiResult::kNegative);
  const Load recorded = StoredLoad(load.id);
  const std::vector<LoadFinding> findings = LoadReleaseFindings(recorded);
  EXPECT_THAT(reasons(recorded),
              ElementsAre("LOAD_PARAMETERS_FAILED", "LOAD_CI_FAILED", "LOAD_CI_FAILED",
                          "LOAD_BI_POSITIVE", "LOAD_BI_CONTROL_FAILED"));
  ASSERT_THAT(findings, SizeIs(5));
  EXPECT_EQ(findings[1].result, "CI type 4");
  EXPECT_EQ(findings[1].facts.at("type"), "4");
  EXPECT_EQ(findings[2].facts.at("type"), "6");
  for (const LoadFinding& f : findings) {
    EXPECT_FALSE(f.missing) << f.reason;
    EXPECT_EQ(f.facts.at("load"), StrCat(load.id)) << f.reason;
  }
}

TEST_F(SterilizationServiceTest, ALoadWithPassingResultsHasNoFindings) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  const Load held = MustLoad(1, {"HP-0001"}, /*bi_required=*/true);
  MustRecordGoodResults(held.id);
  MustRecordBi(held.id, BiResult::kNegative);
  EXPECT_THAT(LoadReleaseFindings(StoredLoad(held.id)), IsEmpty());
  MustRelease(held.id);
}

TEST_F(SterilizationServiceTest, ImpossibleParametersAreRefusedNamingTheField) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  const Load load = MustLoad(1, {"HP-0001"});
  auto with = [&](auto change) {
    CycleParameters p = GoodParameters();
    change(p);
    return service().RecordParameters(Ctx(), load.id, p);
  };
  EXPECT_THAT(with([](CycleParameters& p) { p.exposure_seconds = -240; }),
              IsInvalidField("exposure_seconds"));
  EXPECT_THAT(with([](CycleParameters& p) { p.exposure_seconds = 0; }),
              IsInvalidField("exposure_seconds"));
  EXPECT_THAT(with([](CycleParameters& p) { p.exposure_seconds = 7201; }),
              IsInvalidField("exposure_seconds"));
  EXPECT_THAT(with([](CycleParameters& p) { p.exposure_seconds = 3000; }),  // cycle is 40 min
              IsInvalidField("exposure_seconds"));
  EXPECT_THAT(with([](CycleParameters& p) { p.ended_at = p.started_at - absl::Minutes(1); }),
              IsInvalidField("ended_at"));
  EXPECT_THAT(with([](CycleParameters& p) { p.ended_at = p.started_at; }),
              IsInvalidField("ended_at"));
  EXPECT_THAT(with([&](CycleParameters& p) { p.ended_at = kNow + absl::Hours(1); }),
              IsInvalidField("ended_at"));
  EXPECT_THAT(with([](CycleParameters& p) { p.started_at = absl::UnixEpoch(); }),
              IsInvalidField("started_at"));
  EXPECT_THAT(with([](CycleParameters& p) { p.temperature_c = 99.9; }),
              IsInvalidField("temperature_c"));
  EXPECT_THAT(with([](CycleParameters& p) { p.temperature_c = 140.1; }),
              IsInvalidField("temperature_c"));
  EXPECT_THAT(with([](CycleParameters& p) { p.temperature_c = -5; }),
              IsInvalidField("temperature_c"));
  EXPECT_THAT(with([](CycleParameters& p) { p.temperature_c = std::nan(""); }),
              IsInvalidField("temperature_c"));
  EXPECT_THAT(with([](CycleParameters& p) { p.pressure_kpa = 49.9; }),
              IsInvalidField("pressure_kpa"));
  EXPECT_THAT(with([](CycleParameters& p) { p.pressure_kpa = 400.5; }),
              IsInvalidField("pressure_kpa"));
  EXPECT_FALSE(StoredLoad(load.id).parameters.has_value());
  EXPECT_EQ(EventCount("LOAD_PARAMETERS_RECORDED"), 0u);

  // The edges are possible.
  EXPECT_TRUE(with([](CycleParameters& p) {
                p.temperature_c = 140;
                p.pressure_kpa = 50;
                p.exposure_seconds = 2400;
              }).ok());
}

TEST_F(SterilizationServiceTest, ImpossibleIndicatorsAreRefusedNamingTheField) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  const Load load = MustLoad(1, {"HP-0001"}, /*bi_required=*/true);
  EXPECT_THAT(service().RecordChemicalIndicator(Ctx(), load.id, 0, IndicatorResult::kPass),
              IsInvalidField("type"));
  EXPECT_THAT(service().RecordChemicalIndicator(Ctx(), load.id, 7, IndicatorResult::kPass),
              IsInvalidField("type"));
  EXPECT_THAT(
      service().RecordChemicalIndicator(Ctx(), load.id, 5, static_cast<IndicatorResult>(17)),
      IsInvalidField("result"));
  EXPECT_THAT(service().RecordChemicalIndicator(Ctx(), 0, 5, IndicatorResult::kPass),
              IsInvalidField("load_id"));
  EXPECT_THAT(service().RecordChemicalIndicator(Ctx(), 999, 5, IndicatorResult::kPass),
              IsRefused(absl::StatusCode::kNotFound, "LOAD_NOT_FOUND"));

  auto bi_with = [&](auto change) {
    BiologicalIndicator bi = Bi(BiResult::kNegative);
    change(bi);
    return service().RecordBiologicalIndicator(Ctx(), load.id, bi);
  };
  EXPECT_THAT(bi_with([](BiologicalIndicator& b) { b.result = static_cast<BiResult>(-1); }),
              IsInvalidField("result"));
  EXPECT_THAT(bi_with([](BiologicalIndicator& b) { b.control_result = static_cast<BiResult>(9); }),
              IsInvalidField("control_result"));
  EXPECT_THAT(bi_with([](BiologicalIndicator& b) { b.product.clear(); }),
              IsInvalidField("product"));
  EXPECT_THAT(bi_with([](BiologicalIndicator& b) { b.product = std::string(65, 'p'); }),
              IsInvalidField("product"));
  EXPECT_THAT(bi_with([](BiologicalIndicator& b) { b.lot = std::string(21, 'L'); }),
              IsInvalidField("lot"));
  EXPECT_THAT(service().RecordBowieDickTest(Ctx(), "AC-1", static_cast<IndicatorResult>(5)),
              IsInvalidField("result"));

  const Load stored = StoredLoad(load.id);
  EXPECT_THAT(stored.chemical_indicators, IsEmpty());
  EXPECT_FALSE(stored.bi.has_value());
}

TEST_F(SterilizationServiceTest, AResultRecordedTwiceMustAgreeAndIsStoredOnce) {
  MustPrepareSterilizer();
  MustCreateItem("HP-0001");
  const Load load = MustLoad(1, {"HP-0001"}, /*bi_required=*/true);
  const CycleParameters parameters = GoodParameters();
  ASSERT_TRUE(service().RecordParameters(Ctx(), load.id, parameters).ok());
  MustRecordCi(load.id, 5, IndicatorResult::kPass);
  MustRecordBi(load.id, BiResult::kNegative);
  const size_t events = EventCount();
  const Load before = StoredLoad(load.id);

  // The same values again: accepted, nothing new recorded.
  clock_.Advance(absl::Minutes(5));
  absl::StatusOr<Load> same_parameters = service().RecordParameters(Ctx(), load.id, parameters);
  ASSERT_TRUE(same_parameters.ok()) << same_parameters.status();
  EXPECT_EQ(same_parameters->parameters->recorded_at, kNow);
  ASSERT_TRUE(service().RecordChemicalIndicator(Ctx(), load.id, 5, IndicatorResult::kPass).ok());
  ASSERT_TRUE(service().RecordBiologicalIndicator(Ctx(), load.id, Bi(BiResult::kNegative)).ok());
  EXPECT_EQ(EventCount(), events);

  // A different value is not a correction.
  CycleParameters hotter = parameters;
  hotter.temperature_c = 135;
  absl::StatusOr<Load> r = service().RecordParameters(Ctx(), load.id, hotter);
  EXPECT_THAT(r, IsRefusedWith("RESULT_ALREADY_RECORDED"));
  EXPECT_EQ(MetaOf(r.status(), "field"), "parameters");
  EXPECT_THAT(service().RecordChemicalIndicator(Ctx(), load.id, 5, IndicatorResult::kFail),
              IsRefusedWith("RESULT_ALREADY_RECORDED"));
  EXPECT_THAT(service().RecordBiologicalIndicator(Ctx(), load.id, Bi(BiResult::kPositive)),
              IsRefusedWith("RESULT_ALREADY_RECORDED"));
  EXPECT_THAT(service().RecordBiologicalIndicator(Ctx(), load.id,
                                                  Bi(BiResult::kNegative, BiResult::kNegative)),
              IsRefusedWith("RESULT_ALREADY_RECORDED"));
  EXPECT_EQ(EventCount(), events);
  const Load after = StoredLoad(load.id);
  EXPECT_EQ(after.parameters->temperature_c, before.parameters->temperature_c);
  ASSERT_THAT(after.chemical_indicators, SizeIs(1));
  EXPECT_EQ(after.chemical_indicators[0].result, IndicatorResult::kPass);
  EXPECT_EQ(after.bi->result, BiResult::kNegative);
  EXPECT_TRUE(StoredSterilizer().in_service);

  // Another indicator type is another result.
  MustRecordCi(load.id, 6, IndicatorResult::kPass);
  EXPECT_THAT(StoredLoad(load.id).chemical_indicators, SizeIs(2));

  // Once released, nothing more is recorded about the cycle itself.
  MustRelease(load.id);
  EXPECT_THAT(service().RecordChemicalIndicator(Ctx(), load.id, 4, IndicatorResult::kPass),
              IsRefusedWith("LOAD_NOT_OPEN"));
}

// ---------------------------------------------------------------------------------------------------
// Rule 7: positive BI, look-back, return to service

TEST_F(SterilizationServiceTest, PositiveBiStopsTheSterilizerQuarantinesSinceTheLastNegative) {
  MustPrepareSterilizer();
  for (std::string_view s : {"H0", "H1", "H2", "H3", "H4", "H5", "H6"}) MustCreateItem(s);
  const int64_t t0 = MustStartTreatment("Room 9", "client-Z");

  // Cycle 1: its BI is negative, so it and what came before stay as they are.
  const Load l1 = MustLoadAndRelease(1, {"H0", "H1"});
  MustUse("H1", t0);

  clock_.Advance(absl::Hours(1));
  const Load l2 = MustLoadAndRelease(2, {"H2", "H3"});
  const int64_t t1 = MustStartTreatment("Room 1", "client-A");
  const int64_t t2 = MustStartTreatment("Room 2", "client-B");
  const absl::Time h2_used_at = clock_.Now();
  MustUse("H2", t1);
  clock_.Advance(absl::Minutes(10));
  const absl::Time h3_used_at = clock_.Now();
  MustUse("H3", t2);

  clock_.Advance(absl::Hours(1));
  const Load l3 = MustLoadAndRelease(3, {"H4", "H6"});
  const int64_t t3 = MustStartTreatment("Room 3", "client-C");
  const absl::Time h4_used_at = clock_.Now();
  MustUse("H4", t3);
  ASSERT_TRUE(cartridges().EndTreatment(Ctx(), t3).ok());

  clock_.Advance(absl::Hours(1));
  const Load l4 = MustLoad(4, {"H5"}, /*bi_required=*/true);

  clock_.Advance(absl::Hours(1));
  const BiOutcome negative = MustRecordBi(l1.id, BiResult::kNegative);
  EXPECT_FALSE(negative.look_back.has_value());
  EXPECT_EQ(negative.load.release_state, ReleaseState::kReleased);  // read after release

  clock_.Advance(absl::Hours(1));
  const absl::Time positive_at = clock_.Now();
  absl::StatusOr<BiOutcome> positive = service().RecordBiologicalIndicator(
      Ctx("", "lab.jo"), l2.id, Bi(BiResult::kPositive, BiResult::kPositive));
  ASSERT_TRUE(positive.ok()) << positive.status();
  EXPECT_EQ(positive->load.id, l2.id);
  EXPECT_EQ(positive->load.release_state, ReleaseState::kQuarantined);
  ASSERT_TRUE(positive->look_back.has_value());
  const LookBack& look_back = *positive->look_back;

  // The steriliser is out of service.
  ASSERT_TRUE(look_back.sterilizer.has_value());
  EXPECT_FALSE(look_back.sterilizer->in_service);
  const Sterilizer stopped = StoredSterilizer();
  EXPECT_FALSE(stopped.in_service);
  EXPECT_EQ(stopped.out_of_service_at, positive_at);
  EXPECT_THAT(stopped.out_of_service_reason, HasSubstr("positive BI on load"));
  EXPECT_EQ(stopped.negative_tests_since_out_of_service, 0);
  ASSERT_THAT(EventsOf("STERILIZER_OUT_OF_SERVICE"), SizeIs(1));
  EXPECT_EQ(EventsOf("STERILIZER_OUT_OF_SERVICE")[0].sterilizer_id, stopped.id);

  // Every load since the last negative BI, released or not, is quarantined and signed.
  EXPECT_THAT(IdsOf(look_back.loads), ElementsAre(l2.id, l3.id, l4.id));
  EXPECT_EQ(StoredLoad(l1.id).release_state, ReleaseState::kReleased);
  for (const Load& l : {l2, l3, l4}) {
    const Load stored = StoredLoad(l.id);
    EXPECT_EQ(stored.release_state, ReleaseState::kQuarantined) << l.cycle_number;
    ASSERT_TRUE(stored.signature.has_value());
    EXPECT_EQ(stored.signature->by, "lab.jo");
    EXPECT_EQ(stored.signature->at, positive_at);
    EXPECT_EQ(stored.signature->meaning, StrCat("positive BI on load ", l2.id, " (AC-1 cycle 2)"));
  }
  EXPECT_EQ(EventCount("LOAD_QUARANTINED"), 3u);

  // Their items still on the shelf or in the steriliser are quarantined; what is elsewhere is not.
  EXPECT_EQ(StoredItem("H5").state, ItemState::kQuarantined);  // in the open load 4
  EXPECT_EQ(StoredItem("H6").state, ItemState::kQuarantined);  // sterile from load 3
  EXPECT_EQ(StoredItem("H0").state, ItemState::kSterile);      // load 1 is fine
  EXPECT_EQ(StoredItem("H4").state, ItemState::kDirty);        // back from its treatment
  EXPECT_EQ(StoredItem("H2").state, ItemState::kInUse);
  EXPECT_EQ(EventCount("ITEM_QUARANTINED"), 2u);

  // The look-back: exactly the treatments that used items from those loads.
  EXPECT_THAT(EntriesOf(look_back),
              ElementsAre(Entry{l2.id, "H2", t1, "Room 1", "client-A", h2_used_at},
                          Entry{l2.id, "H3", t2, "Room 2", "client-B", h3_used_at},
                          Entry{l3.id, "H4", t3, "Room 3", "client-C", h4_used_at}));
  EXPECT_EQ(look_back.entries[0].treatment.clinician, "dr.lee");

  // The quarantined pack is refused in a treatment, and only test cycles may run.
  EXPECT_THAT(service().UseItem(Ctx(), "H6", MustStartTreatment()),
              IsRefusedWith("ITEM_QUARANTINED"));
  MustCreateItem("H7");
  MustPack("H7");
  absl::StatusOr<Load> refused = service().CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                                                     .cycle_number = 5,
                                                                     .cycle_type = "134C-4MIN",
                                                                     .item_serials = {"H7"}});
  EXPECT_THAT(refused, IsRefusedWith("STERILIZER_OUT_OF_SERVICE"));
  EXPECT_THAT(MetaOf(refused.status(), "reason"), HasSubstr("positive BI"));

  // The look-back can be asked for again, later, with the same answer.
  clock_.Advance(absl::Hours(1));
  MustTestCycle(5);
  absl::StatusOr<LookBack> again = service().GetLookBack(l2.id);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(IdsOf(again->loads), ElementsAre(l2.id, l3.id, l4.id));
  EXPECT_EQ(EntriesOf(*again), EntriesOf(look_back));
  absl::StatusOr<LookBack> of_l1 = service().GetLookBack(l1.id);
  ASSERT_TRUE(of_l1.ok()) << of_l1.status();
  EXPECT_THAT(EntriesOf(*of_l1), ElementsAre(Entry{l1.id, "H1", t0, "Room 9", "client-Z", kNow}));
}

TEST_F(SterilizationServiceTest, PositiveBiWithoutAnyEarlierNegativeQuarantinesEveryLoad) {
  MustPrepareSterilizer();
  MustCreateItem("H1");
  MustCreateItem("H2");
  const Load l1 = MustLoadAndRelease(1, {"H1"});
  const Load l2 = MustLoadAndRelease(2, {"H2"});
  // A positive BI whose control did not grow is still positive.
  const BiOutcome outcome = MustRecordBi(l2.id, BiResult::kPositive, BiResult::kNegative);
  ASSERT_TRUE(outcome.look_back.has_value());
  EXPECT_THAT(IdsOf(outcome.look_back->loads), ElementsAre(l1.id, l2.id));
  EXPECT_EQ(StoredItem("H1").state, ItemState::kQuarantined);
  EXPECT_EQ(StoredItem("H2").state, ItemState::kQuarantined);
  EXPECT_FALSE(StoredSterilizer().in_service);
}

TEST_F(SterilizationServiceTest, ANegativeWithAFailedControlDoesNotCountAsTheLastNegative) {
  MustPrepareSterilizer();
  MustCreateItem("H1");
  MustCreateItem("H2");
  const Load l1 = MustLoadAndRelease(1, {"H1"});
  const Load l2 = MustLoadAndRelease(2, {"H2"});
  MustRecordBi(l1.id, BiResult::kNegative, /*control=*/BiResult::kNegative);
  const BiOutcome outcome = MustRecordBi(l2.id, BiResult::kPositive);
  EXPECT_THAT(IdsOf(outcome.look_back->loads), ElementsAre(l1.id, l2.id));
}

TEST_F(SterilizationServiceTest, ThreeConsecutiveNegativeTestCyclesReturnTheSterilizerToService) {
  MustPrepareSterilizer();
  MustCreateItem("H1");
  const Load l1 = MustLoadAndRelease(1, {"H1"});
  clock_.Advance(absl::Minutes(10));
  MustRecordBi(l1.id, BiResult::kPositive);
  ASSERT_FALSE(StoredSterilizer().in_service);

  // A test cycle has no contents and is always held for its BI.
  EXPECT_THAT(service().CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                                  .cycle_number = 2,
                                                  .cycle_type = "BI-TEST",
                                                  .item_serials = {"H1"},
                                                  .test_cycle = true}),
              IsInvalidField("item_serials"));

  int64_t cycle = 1;
  auto test_cycle = [&](BiResult result, BiResult control = BiResult::kPositive) {
    clock_.Advance(absl::Minutes(10));
    const Load t = MustTestCycle(++cycle);
    EXPECT_TRUE(t.test_cycle);
    EXPECT_TRUE(t.bi_required);
    EXPECT_THAT(t.item_ids, IsEmpty());
    clock_.Advance(absl::Minutes(10));
    MustRecordBi(t.id, result, control);
    return StoredSterilizer();
  };

  EXPECT_EQ(test_cycle(BiResult::kNegative).negative_tests_since_out_of_service, 1);
  EXPECT_EQ(test_cycle(BiResult::kNegative).negative_tests_since_out_of_service, 2);
  // A positive in between starts the count again.
  Sterilizer s = test_cycle(BiResult::kPositive);
  EXPECT_EQ(s.negative_tests_since_out_of_service, 0);
  EXPECT_FALSE(s.in_service);
  EXPECT_EQ(test_cycle(BiResult::kNegative).negative_tests_since_out_of_service, 1);
  // So does a test whose control did not grow: it proves nothing.
  EXPECT_EQ(
      test_cycle(BiResult::kNegative, BiResult::kNegative).negative_tests_since_out_of_service, 0);
  EXPECT_EQ(test_cycle(BiResult::kNegative).negative_tests_since_out_of_service, 1);
  s = test_cycle(BiResult::kNegative);
  EXPECT_EQ(s.negative_tests_since_out_of_service, 2);
  EXPECT_FALSE(s.in_service);
  EXPECT_EQ(EventCount("STERILIZER_IN_SERVICE"), 0u);
  s = test_cycle(BiResult::kNegative);
  EXPECT_TRUE(s.in_service);
  EXPECT_TRUE(s.out_of_service_reason.empty());
  ASSERT_THAT(EventsOf("STERILIZER_IN_SERVICE"), SizeIs(1));
  EXPECT_EQ(EventsOf("STERILIZER_IN_SERVICE")[0].sterilizer_id, s.id);

  // Back in service: ordinary loads run again.
  MustPack("H1");
  clock_.Advance(absl::Minutes(10));
  absl::StatusOr<Load> load = service().CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                                                  .cycle_number = cycle + 1,
                                                                  .cycle_type = "134C-4MIN",
                                                                  .item_serials = {"H1"}});
  EXPECT_TRUE(load.ok()) << load.status();
}

TEST_F(SterilizationServiceTest, NegativeTestCyclesWhileInServiceChangeNothing) {
  MustPrepareSterilizer();
  const Load t = MustTestCycle(1);
  MustRecordBi(t.id, BiResult::kNegative);
  const Sterilizer s = StoredSterilizer();
  EXPECT_TRUE(s.in_service);
  EXPECT_EQ(s.negative_tests_since_out_of_service, 0);
  EXPECT_EQ(EventCount("STERILIZER_IN_SERVICE"), 0u);
  // Its release needs the same results as any held load.
  EXPECT_THAT(service().ReleaseLoad(Ctx(), t.id, "ok"), IsRefusedWith("LOAD_PARAMETERS_MISSING"));
}

// ---------------------------------------------------------------------------------------------------
// Rule 8: Bowie-Dick and cycle numbers

TEST_F(SterilizationServiceTest, PreVacuumNeedsAPassingBowieDickTheSameDay) {
  MustCreateSterilizer("AC-1", SterilizerType::kPreVacuum);
  MustCreateItem("H1");
  MustPack("H1");
  auto create = [&](int64_t cycle) {
    return service().CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                               .cycle_number = cycle,
                                               .cycle_type = "134C-4MIN",
                                               .item_serials = {"H1"}});
  };
  absl::StatusOr<Load> none = create(1);
  EXPECT_THAT(none, IsRefusedWith("BOWIE_DICK_REQUIRED"));
  EXPECT_EQ(MetaOf(none.status(), "day"), "2026-11-26");
  EXPECT_FALSE(service().GetSterilizerView("AC-1")->bowie_dick_passed_today);

  MustRecordBowieDick("AC-1", IndicatorResult::kFail);
  EXPECT_THAT(create(1), IsRefusedWith("BOWIE_DICK_REQUIRED"));
  EXPECT_EQ(EventCount("BOWIE_DICK_RECORDED"), 1u);

  clock_.Advance(absl::Minutes(30));
  absl::StatusOr<BowieDickTest> pass =
      service().RecordBowieDickTest(Ctx(), "AC-1", IndicatorResult::kPass);
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->day, absl::CivilDay(2026, 11, 26));
  EXPECT_EQ(pass->operator_name, kActor);
  EXPECT_TRUE(service().GetSterilizerView("AC-1")->bowie_dick_passed_today);
  absl::StatusOr<Load> first = create(1);
  ASSERT_TRUE(first.ok()) << first.status();
  MustRecordGoodResults(first->id);
  MustRelease(first->id);
  MustPack("H1");

  // Yesterday's pass does not count today.
  clock_.Advance(absl::Hours(24));
  EXPECT_FALSE(service().GetSterilizerView("AC-1")->bowie_dick_passed_today);
  EXPECT_THAT(create(2), IsRefusedWith("BOWIE_DICK_REQUIRED"));
  MustRecordBowieDick("AC-1");
  EXPECT_TRUE(create(2).ok());

  // A failing retest after a pass stops the day's loads.
  MustCreateItem("H2");
  MustPack("H2");
  clock_.Advance(absl::Minutes(1));
  MustRecordBowieDick("AC-1", IndicatorResult::kFail);
  EXPECT_THAT(service().CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                                  .cycle_number = 3,
                                                  .cycle_type = "134C-4MIN",
                                                  .item_serials = {"H2"}}),
              IsRefusedWith("BOWIE_DICK_REQUIRED"));
}

TEST_F(SterilizationServiceTest, BowieDickDayIsTheClinicsCivilDayNearMidnight) {
  absl::TimeZone auckland;
  ASSERT_TRUE(absl::LoadTimeZone("Pacific/Auckland", &auckland));
  UseClinicTimeZone(auckland);  // 2026-11-26 10:00 UTC is 23:00 NZDT
  MustCreateSterilizer("AC-1", SterilizerType::kPreVacuum);
  absl::StatusOr<BowieDickTest> pass =
      service().RecordBowieDickTest(Ctx(), "AC-1", IndicatorResult::kPass);
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->day, absl::CivilDay(2026, 11, 26));
  clock_.Advance(absl::Minutes(30));  // 23:30 there
  EXPECT_TRUE(service()
                  .CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                             .cycle_number = 1,
                                             .cycle_type = "BI-TEST",
                                             .test_cycle = true})
                  .ok());

  // 00:30 in Auckland: a new clinic day, though still the same day in UTC.
  clock_.Advance(absl::Hours(1));
  ASSERT_EQ(absl::ToCivilDay(clock_.Now(), absl::UTCTimeZone()), absl::CivilDay(2026, 11, 26));
  EXPECT_FALSE(service().GetSterilizerView("AC-1")->bowie_dick_passed_today);
  absl::StatusOr<Load> refused = service().CreateLoad(
      Ctx(),
      NewLoad{
          .sterilizer = "AC-1", .cycle_number = 2, .cycle_type = "BI-TEST", .test_cycle = true});
  EXPECT_THAT(refused, IsRefusedWith("BOWIE_DICK_REQUIRED"));
  EXPECT_EQ(MetaOf(refused.status(), "day"), "2026-11-27");

  // A pass at 00:30 there still counts at 23:30 there, a different UTC day.
  MustRecordBowieDick("AC-1");
  clock_.Advance(absl::Hours(23));
  ASSERT_EQ(absl::ToCivilDay(clock_.Now(), absl::UTCTimeZone()), absl::CivilDay(2026, 11, 27));
  EXPECT_TRUE(service().GetSterilizerView("AC-1")->bowie_dick_passed_today);
  EXPECT_TRUE(service()
                  .CreateLoad(Ctx(), NewLoad{.sterilizer = "AC-1",
                                             .cycle_number = 2,
                                             .cycle_type = "BI-TEST",
                                             .test_cycle = true})
                  .ok());
}

TEST_F(SterilizationServiceTest, GravitySterilizerNeedsNoBowieDick) {
  MustCreateSterilizer("GR-1", SterilizerType::kGravity);
  EXPECT_TRUE(service().GetSterilizerView("GR-1")->bowie_dick_passed_today);
  MustCreateItem("H1");
  EXPECT_EQ(MustLoad(1, {"H1"}, false, 0, "GR-1").cycle_number, 1);
}

TEST_F(SterilizationServiceTest, CycleNumbersAreUniqueAndRisingPerSterilizer) {
  MustPrepareSterilizer("AC-1");
  MustPrepareSterilizer("AC-2");
  for (std::string_view s : {"H1", "H2", "H3", "H4", "H5"}) MustCreateItem(s);
  MustLoadAndRelease(5, {"H1"});
  EXPECT_EQ(StoredSterilizer("AC-1").last_cycle_number, 5);
  MustPack("H2");
  auto create = [&](std::string_view sterilizer, int64_t cycle) {
    return service().CreateLoad(Ctx(), NewLoad{.sterilizer = std::string(sterilizer),
                                               .cycle_number = cycle,
                                               .cycle_type = "134C-4MIN",
                                               .item_serials = {"H2"}});
  };
  absl::StatusOr<Load> same = create("AC-1", 5);
  EXPECT_THAT(same, IsRefused(absl::StatusCode::kAlreadyExists, "CYCLE_NUMBER_EXISTS"));
  absl::StatusOr<Load> lower = create("AC-1", 4);
  EXPECT_THAT(lower, IsRefusedWith("CYCLE_NUMBER_NOT_RISING"));
  EXPECT_EQ(MetaOf(lower.status(), "last_cycle_number"), "5");
  EXPECT_EQ(StoredItem("H2").state, ItemState::kPacked);
  EXPECT_EQ(store_.Snapshot().loads.size(), 1u);

  // Numbers are per steriliser.
  absl::StatusOr<Load> other = create("AC-2", 5);
  ASSERT_TRUE(other.ok()) << other.status();
  MustLoad(9, {"H3"});
  EXPECT_EQ(StoredSterilizer("AC-1").last_cycle_number, 9);
  EXPECT_THAT(create("AC-9", 1), IsRefused(absl::StatusCode::kNotFound, "STERILIZER_NOT_FOUND"));
}

TEST_F(SterilizationServiceTest, CreateLoadNamesTheImpossibleField) {
  MustPrepareSterilizer();
  MustCreateItem("H1");
  MustPack("H1");
  auto create = [&](auto change) {
    NewLoad load{
        .sterilizer = "AC-1", .cycle_number = 1, .cycle_type = "134C-4MIN", .item_serials = {"H1"}};
    change(load);
    return service().CreateLoad(Ctx(), load);
  };
  EXPECT_THAT(create([](NewLoad& l) { l.cycle_number = 0; }), IsInvalidField("cycle_number"));
  EXPECT_THAT(create([](NewLoad& l) { l.cycle_number = -1; }), IsInvalidField("cycle_number"));
  EXPECT_THAT(create([](NewLoad& l) { l.cycle_number = 10000000; }),
              IsInvalidField("cycle_number"));
  EXPECT_THAT(create([](NewLoad& l) { l.cycle_type.clear(); }), IsInvalidField("cycle_type"));
  EXPECT_THAT(create([](NewLoad& l) { l.cycle_type = std::string(33, 'c'); }),
              IsInvalidField("cycle_type"));
  EXPECT_THAT(create([](NewLoad& l) { l.shelf_life_days = -1; }),
              IsInvalidField("shelf_life_days"));
  EXPECT_THAT(create([](NewLoad& l) { l.shelf_life_days = 3651; }),
              IsInvalidField("shelf_life_days"));
  EXPECT_THAT(create([](NewLoad& l) { l.sterilizer = "AC 1"; }), IsInvalidField("sterilizer"));
  EXPECT_THAT(create([](NewLoad& l) { l.sterilizer = "AUTOCLAVE-123"; }),
              IsInvalidField("sterilizer"));
  EXPECT_THAT(create([](NewLoad& l) { l.item_serials.clear(); }), IsInvalidField("item_serials"));
  EXPECT_THAT(create([](NewLoad& l) {
                l.item_serials = {"H1", "H1"};
              }),
              IsInvalidField("item_serials"));
  EXPECT_THAT(create([](NewLoad& l) { l.item_serials = {"H 1"}; }), IsInvalidField("item_serials"));
  EXPECT_TRUE(store_.Snapshot().loads.empty());
  absl::StatusOr<Load> ok = create([](NewLoad& l) { l.shelf_life_days = 3650; });
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->shelf_life_days, 3650);
}

TEST_F(SterilizationServiceTest, SterilizerNamesAreUniqueAndFitTheLabel) {
  absl::StatusOr<Sterilizer> s =
      service().CreateSterilizer(Ctx(), "AUTOCLAVE-1", SterilizerType::kGravity);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->in_service);
  EXPECT_EQ(s->type, SterilizerType::kGravity);
  EXPECT_EQ(s->last_cycle_number, 0);
  EXPECT_EQ(EventsOf("STERILIZER_CREATED")[0].sterilizer_id, s->id);
  EXPECT_THAT(service().CreateSterilizer(Ctx(), "AUTOCLAVE-1", SterilizerType::kPreVacuum),
              IsRefused(absl::StatusCode::kAlreadyExists, "STERILIZER_EXISTS"));
  EXPECT_THAT(service().CreateSterilizer(Ctx(), "", SterilizerType::kGravity),
              IsInvalidField("name"));
  EXPECT_THAT(service().CreateSterilizer(Ctx(), "AUTOCLAVE-123", SterilizerType::kGravity),
              IsInvalidField("name"));
  EXPECT_THAT(service().CreateSterilizer(Ctx(), "AC/1", SterilizerType::kGravity),
              IsInvalidField("name"));
  EXPECT_THAT(service().CreateSterilizer(Ctx(), "AC-2", static_cast<SterilizerType>(7)),
              IsInvalidField("type"));
  EXPECT_THAT(service().GetSterilizerView("AC-9"),
              IsRefused(absl::StatusCode::kNotFound, "STERILIZER_NOT_FOUND"));
  EXPECT_EQ(service().GetSterilizerView("AUTOCLAVE-1")->sterilizer.id, s->id);
}

// ---------------------------------------------------------------------------------------------------
// Idempotent writes (rule 10)

TEST_F(SterilizationServiceTest, ARepeatedRequestIdReturnsTheFirstAnswerAndRecordsNothingTwice) {
  const NewItem new_item{.serial = "H1", .type = "tray", .ifu_max_cycles = 5};
  absl::StatusOr<ReusableItem> first = service().CreateItem(Ctx("r-item"), new_item);
  absl::StatusOr<ReusableItem> second = service().CreateItem(Ctx("r-item"), new_item);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->id, second->id);
  EXPECT_EQ(EventCount("ITEM_CREATED"), 1u);

  ASSERT_TRUE(service().CreateSterilizer(Ctx("r-st"), "AC-1", SterilizerType::kPreVacuum).ok());
  ASSERT_TRUE(service().CreateSterilizer(Ctx("r-st"), "AC-1", SterilizerType::kPreVacuum).ok());
  ASSERT_TRUE(service().RecordBowieDickTest(Ctx("r-bd"), "AC-1", IndicatorResult::kPass).ok());
  ASSERT_TRUE(service().RecordBowieDickTest(Ctx("r-bd"), "AC-1", IndicatorResult::kPass).ok());
  EXPECT_EQ(store_.Snapshot().bowie_dick_tests.size(), 1u);
  ASSERT_TRUE(service().PackItem(Ctx("r-pack"), "H1").ok());
  absl::StatusOr<ReusableItem> packed_again = service().PackItem(Ctx("r-pack"), "H1");
  ASSERT_TRUE(packed_again.ok()) << packed_again.status();
  EXPECT_EQ(packed_again->state, ItemState::kPacked);

  const NewLoad new_load{.sterilizer = "AC-1",
                         .cycle_number = 1,
                         .cycle_type = "134C-4MIN",
                         .item_serials = {"H1"},
                         .bi_required = true};
  absl::StatusOr<Load> load = service().CreateLoad(Ctx("r-load"), new_load);
  absl::StatusOr<Load> load_again = service().CreateLoad(Ctx("r-load"), new_load);
  ASSERT_TRUE(load.ok() && load_again.ok()) << load.status() << load_again.status();
  EXPECT_EQ(load->id, load_again->id);
  EXPECT_EQ(EncodeResult(*load), EncodeResult(*load_again));
  EXPECT_EQ(StoredItem("H1").cycles, 1);
  EXPECT_EQ(EventCount("LOAD_CREATED"), 1u);

  const CycleParameters parameters = GoodParameters();
  ASSERT_TRUE(service().RecordParameters(Ctx("r-par"), load->id, parameters).ok());
  ASSERT_TRUE(service().RecordParameters(Ctx("r-par"), load->id, parameters).ok());
  ASSERT_TRUE(
      service().RecordChemicalIndicator(Ctx("r-ci"), load->id, 5, IndicatorResult::kPass).ok());
  ASSERT_TRUE(
      service().RecordChemicalIndicator(Ctx("r-ci"), load->id, 5, IndicatorResult::kPass).ok());
  ASSERT_TRUE(
      service().RecordBiologicalIndicator(Ctx("r-bi"), load->id, Bi(BiResult::kNegative)).ok());
  clock_.Advance(absl::Minutes(1));
  ASSERT_TRUE(
      service().RecordBiologicalIndicator(Ctx("r-bi"), load->id, Bi(BiResult::kNegative)).ok());
  absl::StatusOr<Load> released = service().ReleaseLoad(Ctx("r-rel"), load->id, "reviewed");
  clock_.Advance(absl::Minutes(1));
  absl::StatusOr<Load> released_again = service().ReleaseLoad(Ctx("r-rel"), load->id, "reviewed");
  ASSERT_TRUE(released.ok() && released_again.ok()) << released_again.status();
  EXPECT_EQ(released_again->signature->at, released->signature->at);
  EXPECT_EQ(EventCount("LOAD_PARAMETERS_RECORDED"), 1u);
  EXPECT_EQ(EventCount("LOAD_CI_RECORDED"), 1u);
  EXPECT_EQ(EventCount("LOAD_BI_RECORDED"), 1u);
  EXPECT_EQ(EventCount("LOAD_RELEASED"), 1u);

  const int64_t t = MustStartTreatment();
  ASSERT_TRUE(service().UseItem(Ctx("r-use"), "H1", t).ok());
  absl::StatusOr<ReusableItem> used_again = service().UseItem(Ctx("r-use"), "H1", t);
  ASSERT_TRUE(used_again.ok()) << used_again.status();
  EXPECT_EQ(used_again->state, ItemState::kInUse);
  EXPECT_EQ(EventCount("ITEM_USED"), 1u);
  EXPECT_THAT(store_.Snapshot().item_uses, SizeIs(1));

  // The same id for a different request is refused.
  EXPECT_THAT(service().UseItem(Ctx("r-use"), "H1", t + 1),
              IsRefused(absl::StatusCode::kInvalidArgument, "REQUEST_ID_REUSED"));
  EXPECT_THAT(service().RetireItem(Ctx("r-use"), "H1", "worn"),
              IsRefused(absl::StatusCode::kInvalidArgument, "REQUEST_ID_REUSED"));
}

TEST_F(SterilizationServiceTest, LookBackTellsWhetherTheSterilizerPassedItsBowieDickToday) {
  MustPrepareSterilizer();  // pre-vacuum, passing Bowie-Dick test today
  MustCreateItem("H1");
  const Load l1 = MustLoadAndRelease(1, {"H1"});
  const BiOutcome positive = MustRecordBi(l1.id, BiResult::kPositive);
  ASSERT_TRUE(positive.look_back.has_value());
  ASSERT_TRUE(positive.look_back->sterilizer.has_value());
  EXPECT_TRUE(positive.look_back->bowie_dick_passed_today);

  // The next day, before a passing test of that day, it has not.
  clock_.Advance(absl::Hours(24));
  absl::StatusOr<LookBack> next_day = service().GetLookBack(l1.id);
  ASSERT_TRUE(next_day.ok()) << next_day.status();
  EXPECT_FALSE(next_day->bowie_dick_passed_today);
  MustRecordBowieDick("AC-1", IndicatorResult::kFail);
  EXPECT_FALSE(service().GetLookBack(l1.id)->bowie_dick_passed_today);
  MustRecordBowieDick("AC-1");
  EXPECT_TRUE(service().GetLookBack(l1.id)->bowie_dick_passed_today);
}

TEST_F(SterilizationServiceTest, ARepeatedPositiveBiReturnsTheSameLookBackWithoutRecordingAgain) {
  MustPrepareSterilizer();
  MustCreateItem("H1");
  const Load l1 = MustLoadAndRelease(1, {"H1"});
  const int64_t t = MustStartTreatment("Room 4", "client-Q");
  MustUse("H1", t);
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<BiOutcome> first =
      service().RecordBiologicalIndicator(Ctx("r-pos"), l1.id, Bi(BiResult::kPositive));
  ASSERT_TRUE(first.ok()) << first.status();
  const size_t events = EventCount();
  clock_.Advance(absl::Minutes(5));
  absl::StatusOr<BiOutcome> replay =
      service().RecordBiologicalIndicator(Ctx("r-pos"), l1.id, Bi(BiResult::kPositive));
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(EncodeResult(*replay), EncodeResult(*first));
  ASSERT_TRUE(replay->look_back.has_value());
  EXPECT_THAT(EntriesOf(*replay->look_back),
              ElementsAre(Entry{l1.id, "H1", t, "Room 4", "client-Q", kNow}));
  EXPECT_EQ(EventCount(), events);

  // Without a request id the same value is accepted too, and tells the same look-back.
  absl::StatusOr<BiOutcome> same =
      service().RecordBiologicalIndicator(Ctx(), l1.id, Bi(BiResult::kPositive));
  ASSERT_TRUE(same.ok()) << same.status();
  ASSERT_TRUE(same->look_back.has_value());
  EXPECT_EQ(EntriesOf(*same->look_back), EntriesOf(*first->look_back));
  EXPECT_EQ(EventCount(), events);
  EXPECT_EQ(EventCount("STERILIZER_OUT_OF_SERVICE"), 1u);
}

TEST_F(SterilizationServiceTest, AFailedCommitLeavesNothingBehind) {
  MustPrepareSterilizer();
  MustCreateItem("H1");
  MustPack("H1");
  const int commits = store_.commits();
  faulty_store_.fail_next_commit = true;
  absl::StatusOr<Load> load = service().CreateLoad(Ctx("r-1"), NewLoad{.sterilizer = "AC-1",
                                                                       .cycle_number = 1,
                                                                       .cycle_type = "134C-4MIN",
                                                                       .item_serials = {"H1"}});
  EXPECT_EQ(load.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_.commits(), commits);
  EXPECT_EQ(StoredItem("H1").state, ItemState::kPacked);
  EXPECT_EQ(StoredSterilizer().last_cycle_number, 0);
  // The retry does the work once.
  absl::StatusOr<Load> retry = service().CreateLoad(Ctx("r-1"), NewLoad{.sterilizer = "AC-1",
                                                                        .cycle_number = 1,
                                                                        .cycle_type = "134C-4MIN",
                                                                        .item_serials = {"H1"}});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(StoredItem("H1").cycles, 1);
}

// ---------------------------------------------------------------------------------------------------
// Lists

TEST_F(SterilizationServiceTest, ListsPageByKeyAndFilter) {
  MustPrepareSterilizer("AC-1");
  MustCreateSterilizer("GR-1", SterilizerType::kGravity);
  for (std::string_view s : {"H1", "H2", "H3", "H4"}) MustCreateItem(s);
  const Load a = MustLoadAndRelease(10, {"H1"});
  const Load b = MustLoad(20, {"H2"}, false, 0, "GR-1");
  const Load c = MustLoad(30, {"H3"});
  const Load d = MustLoad(40, {"H4"});

  absl::StatusOr<Page<Load>> p1 = service().ListLoads({.page_size = 2}, "AC-1", std::nullopt);
  ASSERT_TRUE(p1.ok()) << p1.status();
  EXPECT_THAT(IdsOf(p1->items), ElementsAre(a.id, c.id));
  EXPECT_EQ(p1->next_page_token, "p1.30");
  absl::StatusOr<Page<Load>> p2 = service().ListLoads(
      {.page_size = 2, .page_token = p1->next_page_token}, "AC-1", std::nullopt);
  ASSERT_TRUE(p2.ok()) << p2.status();
  EXPECT_THAT(IdsOf(p2->items), ElementsAre(d.id));
  EXPECT_TRUE(p2->next_page_token.empty());

  absl::StatusOr<Page<Load>> open = service().ListLoads({}, "", ReleaseState::kOpen);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_THAT(IdsOf(open->items), ElementsAre(b.id, c.id, d.id));
  EXPECT_THAT(service().ListLoads({}, "NOPE", std::nullopt)->items, IsEmpty());
  EXPECT_THAT(service().ListLoads({.page_token = "bogus"}, "", std::nullopt),
              IsInvalidField("page_token"));

  absl::StatusOr<Page<ItemView>> in_load =
      service().ListItemViews({.page_size = 1}, ItemState::kInLoad);
  ASSERT_TRUE(in_load.ok()) << in_load.status();
  ASSERT_THAT(in_load->items, SizeIs(1));
  EXPECT_EQ(in_load->items[0].item.serial, "H2");
  absl::StatusOr<Page<ItemView>> rest = service().ListItemViews(
      {.page_size = 5, .page_token = in_load->next_page_token}, ItemState::kInLoad);
  ASSERT_TRUE(rest.ok()) << rest.status();
  ASSERT_THAT(rest->items, SizeIs(2));
  EXPECT_EQ(rest->items[1].item.serial, "H4");

  absl::StatusOr<Page<SterilizerView>> sterilizers =
      service().ListSterilizerViews({.page_size = 1});
  ASSERT_TRUE(sterilizers.ok()) << sterilizers.status();
  ASSERT_THAT(sterilizers->items, SizeIs(1));
  EXPECT_EQ(sterilizers->items[0].sterilizer.name, "AC-1");
  EXPECT_FALSE(sterilizers->next_page_token.empty());

  absl::StatusOr<Load> got = service().GetLoad(c.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->cycle_number, 30);
  EXPECT_THAT(service().GetLoad(0), IsInvalidField("load_id"));
}

// ---------------------------------------------------------------------------------------------------
// Result encoding for idempotent replay

TEST(SterilizationResultCodecTest, EveryFieldSurvivesTheRoundTrip) {
  Load load{.id = 7,
            .sterilizer_id = 2,
            .sterilizer_name = "AC-1",
            .cycle_number = 42,
            .cycle_type = "134C-4MIN",
            .test_cycle = false,
            .bi_required = true,
            .shelf_life_days = 90,
            .operator_name = "spd.ana",
            .created_at = kNow,
            .item_ids = {3, 4},
            .item_serials = {"H|1", "H:2"},
            .parameters = CycleParameters{.started_at = kNow - absl::Minutes(40),
                                          .ended_at = kNow,
                                          .exposure_seconds = 240,
                                          .temperature_c = 134.1,
                                          .pressure_kpa = 212.123456789,
                                          .passed = true,
                                          .recorded_by = "a",
                                          .recorded_at = kNow},
            .chemical_indicators = {{.type = 5,
                                     .result = IndicatorResult::kFail,
                                     .recorded_by = "b",
                                     .recorded_at = kNow}},
            .bi = BiologicalIndicator{.product = "P",
                                      .lot = "L",
                                      .result = BiResult::kPositive,
                                      .control_result = BiResult::kNegative,
                                      .read_at = kNow,
                                      .recorded_by = "c"},
            .release_state = ReleaseState::kQuarantined,
            .signature = Signature{.by = "d", .at = kNow, .meaning = "positive BI"}};
  absl::StatusOr<Load> decoded = DecodeResult<Load>(EncodeResult(load));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(EncodeResult(*decoded), EncodeResult(load));
  EXPECT_EQ(decoded->parameters->temperature_c, 134.1);
  EXPECT_EQ(decoded->parameters->pressure_kpa, 212.123456789);
  EXPECT_THAT(decoded->item_serials, ElementsAre("H|1", "H:2"));
  EXPECT_EQ(decoded->bi->control_result, BiResult::kNegative);
  EXPECT_EQ(decoded->signature->meaning, "positive BI");

  BiOutcome outcome{.load = load};
  outcome.look_back =
      LookBack{.loads = {load, load},
               .entries = {LookBackEntry{.load_id = 7,
                                         .item_serial = "H|1",
                                         .treatment = Treatment{.id = 9,
                                                                .room = "Room 1",
                                                                .clinician = "dr.lee",
                                                                .client_ref = "client-1",
                                                                .started_at = kNow,
                                                                .ended_at = kNow + absl::Hours(1)},
                                         .used_at = kNow}},
               .sterilizer = Sterilizer{.id = 2,
                                        .name = "AC-1",
                                        .in_service = false,
                                        .out_of_service_reason = "positive BI",
                                        .out_of_service_at = kNow,
                                        .negative_tests_since_out_of_service = 2}};
  absl::StatusOr<BiOutcome> decoded_outcome = DecodeResult<BiOutcome>(EncodeResult(outcome));
  ASSERT_TRUE(decoded_outcome.ok()) << decoded_outcome.status();
  EXPECT_EQ(EncodeResult(*decoded_outcome), EncodeResult(outcome));
  EXPECT_EQ(decoded_outcome->look_back->entries[0].treatment.client_ref, "client-1");
  EXPECT_EQ(decoded_outcome->look_back->sterilizer->negative_tests_since_out_of_service, 2);

  BiOutcome plain{.load = Load{.id = 1}};
  absl::StatusOr<BiOutcome> decoded_plain = DecodeResult<BiOutcome>(EncodeResult(plain));
  ASSERT_TRUE(decoded_plain.ok());
  EXPECT_FALSE(decoded_plain->look_back.has_value());
  EXPECT_FALSE(decoded_plain->load.parameters.has_value());

  ReusableItem item{.id = 3,
                    .serial = "H1",
                    .type = "tray",
                    .ifu_max_cycles = 5,
                    .cycles = 2,
                    .maintenance_due = absl::CivilDay(2027, 1, 31),
                    .state = ItemState::kSterile,
                    .load_id = 7,
                    .sterile_until = kNow + absl::Hours(1),
                    .treatment_id = 0,
                    .state_reason = "",
                    .created_at = kNow};
  absl::StatusOr<ReusableItem> decoded_item = DecodeResult<ReusableItem>(EncodeResult(item));
  ASSERT_TRUE(decoded_item.ok());
  EXPECT_EQ(decoded_item->maintenance_due, absl::CivilDay(2027, 1, 31));
  EXPECT_EQ(decoded_item->sterile_until, kNow + absl::Hours(1));
  EXPECT_EQ(decoded_item->state, ItemState::kSterile);

  BowieDickTest test{.id = 1,
                     .sterilizer_id = 2,
                     .day = absl::CivilDay(2026, 11, 26),
                     .result = IndicatorResult::kFail,
                     .operator_name = "e",
                     .at = kNow};
  absl::StatusOr<BowieDickTest> decoded_test = DecodeResult<BowieDickTest>(EncodeResult(test));
  ASSERT_TRUE(decoded_test.ok());
  EXPECT_EQ(decoded_test->day, absl::CivilDay(2026, 11, 26));
  EXPECT_EQ(decoded_test->result, IndicatorResult::kFail);

  EXPECT_FALSE(DecodeResult<Load>("r1garbage").ok());
  EXPECT_FALSE(DecodeResult<LookBack>(EncodeResult(item)).ok());
}

TEST(SterilizationNamesTest, StatesHaveTheApiNames) {
  EXPECT_EQ(ItemStateName(ItemState::kInLoad), "IN_LOAD");
  EXPECT_EQ(ItemStateFromName("OUT_OF_SERVICE"), ItemState::kOutOfService);
  EXPECT_EQ(ItemStateFromName("nope"), std::nullopt);
  for (ItemState s : {ItemState::kDirty, ItemState::kPacked, ItemState::kInLoad,
                      ItemState::kSterile, ItemState::kInUse, ItemState::kQuarantined,
                      ItemState::kOutOfService, ItemState::kRetired}) {
    EXPECT_EQ(ItemStateFromName(ItemStateName(s)), s);
  }
  EXPECT_EQ(SterilizerTypeName(SterilizerType::kPreVacuum), "PRE_VACUUM");
  EXPECT_EQ(ReleaseStateName(ReleaseState::kRecalled), "RECALLED");
  EXPECT_EQ(BiResultName(BiResult::kPositive), "POSITIVE");
  EXPECT_EQ(IndicatorResultName(IndicatorResult::kFail), "FAIL");
}

}  // namespace
}  // namespace steritrack

namespace steritrack {
namespace {

TEST_F(SterilizationServiceTest, ListSterilizerViewsFiltersByTypeAndServiceAndPagesThroughAll) {
  MustCreateSterilizer("AC-1", SterilizerType::kPreVacuum);
  MustCreateSterilizer("AC-2", SterilizerType::kGravity);
  MustCreateSterilizer("AC-3", SterilizerType::kGravity);
  auto gravity = service().ListSterilizerViews({.page_size = 1}, SterilizerType::kGravity);
  ASSERT_TRUE(gravity.ok()) << gravity.status();
  ASSERT_EQ(gravity->items.size(), 1u);
  EXPECT_EQ(gravity->items[0].sterilizer.name, "AC-2");
  ASSERT_FALSE(gravity->next_page_token.empty());
  auto next = service().ListSterilizerViews(
      {.page_size = 1, .page_token = gravity->next_page_token}, SterilizerType::kGravity);
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->items.size(), 1u);
  EXPECT_EQ(next->items[0].sterilizer.name, "AC-3");
  EXPECT_TRUE(next->next_page_token.empty());
  auto out = service().ListSterilizerViews({}, std::nullopt, /*out_of_service_only=*/true);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->items.empty()) << "all three are in service";
}

}  // namespace
}  // namespace steritrack

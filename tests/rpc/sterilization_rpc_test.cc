// RPC-tier tests of the SterilizationService adapter: a real server on port 0 over a SQLite file
// (rpc_fixture.h), driven through the generated stub. They check what a client sees: the happy
// path of each method, refusals with their status code and ErrorInfo reason, unknown enum values
// refused naming the field, pagination, and the item and steriliser views core builds.
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/rpc/rpc_fixture.h"

namespace steritrack::rpc_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

const absl::Time kNow = Utc(2026, 11, 26, 10, 0, 0);

class SterilizationRpcTest : public FullServerTest {
 protected:
  SterilizationRpcTest() : FullServerTest(kNow) {}

  grpc::Status CreateSterilizer(const std::string& name, v1::SterilizerType type,
                                v1::Sterilizer* out = nullptr) {
    v1::CreateSterilizerRequest req;
    req.set_name(name);
    req.set_type(type);
    v1::Sterilizer resp;
    grpc::Status s = sterilization_->CreateSterilizer(Context().get(), req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }

  v1::Sterilizer MustGetSterilizer(const std::string& name) {
    v1::GetSterilizerRequest req;
    req.set_name(name);
    v1::Sterilizer resp;
    grpc::Status s = sterilization_->GetSterilizer(Context().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return resp;
  }

  grpc::Status BowieDick(const std::string& sterilizer, v1::IndicatorResult result) {
    v1::RecordBowieDickTestRequest req;
    req.set_sterilizer(sterilizer);
    req.set_result(result);
    v1::BowieDickTest resp;
    return sterilization_->RecordBowieDickTest(Context().get(), req, &resp);
  }

  grpc::Status CreateItem(const std::string& serial) {
    v1::CreateItemRequest req;
    req.set_serial(serial);
    req.set_type("handpiece");
    req.set_ifu_max_cycles(500);
    v1::ReusableItem resp;
    return sterilization_->CreateItem(Context().get(), req, &resp);
  }

  grpc::Status Pack(const std::string& serial) {
    v1::PackItemRequest req;
    req.set_serial(serial);
    v1::ReusableItem resp;
    return sterilization_->PackItem(Context().get(), req, &resp);
  }

  v1::ReusableItem MustGetItem(const std::string& serial) {
    v1::GetItemRequest req;
    req.set_serial(serial);
    v1::ReusableItem resp;
    grpc::Status s = sterilization_->GetItem(Context().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return resp;
  }

  grpc::Status CreateLoad(const std::string& sterilizer, int64_t cycle,
                          const std::vector<std::string>& items, v1::Load* out = nullptr,
                          bool test_cycle = false, bool bi_required = false) {
    v1::CreateLoadRequest req;
    req.set_sterilizer(sterilizer);
    req.set_cycle_number(cycle);
    req.set_cycle_type("134C-4MIN");
    for (const std::string& serial : items) req.add_item_serials(serial);
    req.set_test_cycle(test_cycle);
    req.set_bi_required(bi_required);
    v1::Load resp;
    grpc::Status s = sterilization_->CreateLoad(Context().get(), req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }

  grpc::Status Parameters(const std::string& load_id, bool passed = true) {
    v1::RecordCycleParametersRequest req;
    req.set_load_id(load_id);
    req.mutable_start_time()->set_seconds(absl::ToUnixSeconds(kNow - absl::Minutes(30)));
    req.mutable_end_time()->set_seconds(absl::ToUnixSeconds(kNow - absl::Minutes(10)));
    req.set_exposure_seconds(240);
    req.set_temperature_c(134);
    req.set_pressure_kpa(210);
    req.set_passed(passed);
    v1::Load resp;
    return sterilization_->RecordCycleParameters(Context().get(), req, &resp);
  }

  grpc::Status Ci(const std::string& load_id, v1::IndicatorResult result) {
    v1::RecordChemicalIndicatorRequest req;
    req.set_load_id(load_id);
    req.set_type(5);
    req.set_result(result);
    v1::Load resp;
    return sterilization_->RecordChemicalIndicator(Context().get(), req, &resp);
  }

  grpc::Status Bi(const std::string& load_id, v1::BiResult result, v1::BiResult control,
                  v1::RecordBiologicalIndicatorResponse* out = nullptr) {
    v1::RecordBiologicalIndicatorRequest req;
    req.set_load_id(load_id);
    req.set_product("Attest 1292");
    req.set_lot("BI-LOT-7");
    req.set_result(result);
    req.set_control_result(control);
    v1::RecordBiologicalIndicatorResponse resp;
    grpc::Status s = sterilization_->RecordBiologicalIndicator(Context().get(), req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }

  grpc::Status Release(const std::string& load_id, v1::Load* out = nullptr) {
    v1::ReleaseLoadRequest req;
    req.set_load_id(load_id);
    req.set_meaning("parameters and CI reviewed");
    v1::Load resp;
    grpc::Status s = sterilization_->ReleaseLoad(Context("lead.tech").get(), req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }

  grpc::Status Use(const std::string& serial, const std::string& treatment_id,
                   v1::ReusableItem* out = nullptr) {
    v1::UseItemRequest req;
    req.set_serial(serial);
    req.set_treatment_id(treatment_id);
    v1::ReusableItem resp;
    grpc::Status s = sterilization_->UseItem(Context("nurse.kim").get(), req, &resp);
    if (out != nullptr) *out = resp;
    return s;
  }

  // A gravity steriliser (no Bowie-Dick needed) and a released load holding `items`.
  v1::Load MustReleaseLoadOf(const std::vector<std::string>& items, int64_t cycle = 1,
                             const std::string& sterilizer = "GRAV-1") {
    v1::Load load;
    if (cycle == 1) {
      EXPECT_TRUE(CreateSterilizer(sterilizer, v1::STERILIZER_TYPE_GRAVITY).ok());
    }
    for (const std::string& serial : items) {
      if (cycle == 1) {
        EXPECT_TRUE(CreateItem(serial).ok());
      }
      EXPECT_TRUE(Pack(serial).ok());
    }
    grpc::Status s = CreateLoad(sterilizer, cycle, items, &load);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(Parameters(load.id()).ok());
    EXPECT_TRUE(Ci(load.id(), v1::INDICATOR_RESULT_PASS).ok());
    s = Release(load.id(), &load);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return load;
  }
};

// ---------------------------------------------------------------------------------------------------
// Happy paths and views

TEST_F(SterilizationRpcTest, AReleasedItemReadsWithItsPackLabelLotControlNumberAndHistory) {
  const v1::Load load = MustReleaseLoadOf({"HP-1"});
  EXPECT_EQ(load.release_state(), v1::RELEASE_STATE_RELEASED);
  EXPECT_EQ(load.signature().signed_by(), "lead.tech");
  ASSERT_THAT(load.pack_labels(), SizeIs(1));

  const v1::ReusableItem item = MustGetItem("HP-1");
  EXPECT_EQ(item.state(), v1::ITEM_STATE_STERILE);
  EXPECT_EQ(item.load_id(), load.id());
  EXPECT_EQ(item.label(), load.pack_labels(0));
  EXPECT_EQ(item.label(), "(8004)HP-1(10)GRAV-1-1(11)261126");
  EXPECT_EQ(item.lot_control_number(), load.lot_control_number());
  EXPECT_EQ(item.lot_control_number(), "GRAV-1/1/2026-11-26");
  EXPECT_TRUE(item.has_sterile_until());
  EXPECT_THAT(item.history(), Not(IsEmpty()));

  // The label is the pack: reading it finds the item.
  EXPECT_EQ(MustGetItem(item.label()).serial(), "HP-1");
}

TEST_F(SterilizationRpcTest, UsingAReleasedItemBindsItToTheTreatment) {
  MustReleaseLoadOf({"HP-1"});
  const std::string t = MustStartTreatment();
  v1::ReusableItem used;
  ASSERT_RPC_OK(Use("HP-1", t, &used));
  EXPECT_EQ(used.state(), v1::ITEM_STATE_IN_USE);
  EXPECT_EQ(used.treatment_id(), t);
  EXPECT_EQ(used.label(), "(8004)HP-1(10)GRAV-1-1(11)261126");
}

TEST_F(SterilizationRpcTest, ANewItemHasNoLabelUntilItsFirstLoad) {
  ASSERT_RPC_OK(CreateItem("HP-1"));
  const v1::ReusableItem item = MustGetItem("HP-1");
  EXPECT_EQ(item.state(), v1::ITEM_STATE_DIRTY);
  EXPECT_EQ(item.label(), "");
  EXPECT_EQ(item.lot_control_number(), "");
  EXPECT_EQ(item.load_id(), "");
}

// A write's answer is rendered from core's view, read after the commit; a failed read must not turn
// a recorded write into an error (the client would retry or give up on something that happened).
TEST_F(SterilizationRpcTest, ACreatedSterilizerIsAnsweredEvenIfItsViewCannotBeReadAfterTheCommit) {
  faulty_store_->fail_next_begin_read = true;
  v1::Sterilizer created;
  ASSERT_RPC_OK(CreateSterilizer("PV-1", v1::STERILIZER_TYPE_PRE_VACUUM, &created));
  EXPECT_FALSE(faulty_store_->fail_next_begin_read) << "the answer's view read was attempted";
  EXPECT_EQ(created.name(), "PV-1");
  EXPECT_EQ(created.type(), v1::STERILIZER_TYPE_PRE_VACUUM);
  EXPECT_TRUE(created.in_service());
  EXPECT_FALSE(created.bowie_dick_passed_today()) << "not known without the read: not passed";
  EXPECT_EQ(MustGetSterilizer("PV-1").name(), "PV-1") << "the write was recorded";
}

TEST_F(SterilizationRpcTest, ACreatedItemIsAnsweredEvenIfItsViewCannotBeReadAfterTheCommit) {
  faulty_store_->fail_next_begin_read = true;
  v1::CreateItemRequest req;
  req.set_serial("HP-1");
  req.set_type("handpiece");
  req.set_ifu_max_cycles(500);
  v1::ReusableItem created;
  ASSERT_RPC_OK(sterilization_->CreateItem(Context().get(), req, &created));
  EXPECT_FALSE(faulty_store_->fail_next_begin_read) << "the answer's view read was attempted";
  EXPECT_EQ(created.serial(), "HP-1");
  EXPECT_EQ(created.state(), v1::ITEM_STATE_DIRTY);
  EXPECT_EQ(MustGetItem("HP-1").serial(), "HP-1") << "the write was recorded";
}

TEST_F(SterilizationRpcTest, ListedItemsEachCarryTheLabelOfTheirOwnPack) {
  const v1::Load load = MustReleaseLoadOf({"HP-1", "HP-2", "HP-3"});
  v1::ListItemsRequest req;
  req.set_state(v1::ITEM_STATE_STERILE);
  v1::ListItemsResponse resp;
  ASSERT_RPC_OK(sterilization_->ListItems(Context().get(), req, &resp));
  ASSERT_THAT(resp.items(), SizeIs(3));
  std::set<std::string> labels;
  for (const v1::ReusableItem& item : resp.items()) {
    EXPECT_EQ(item.label(), StrCat("(8004)", item.serial(), "(10)GRAV-1-1(11)261126"));
    EXPECT_EQ(item.lot_control_number(), load.lot_control_number());
    labels.insert(item.label());
  }
  EXPECT_THAT(labels, SizeIs(3));
}

TEST_F(SterilizationRpcTest, PagingThroughListItemsVisitsEveryItemExactlyOnce) {
  for (int i = 1; i <= 5; ++i) ASSERT_RPC_OK(CreateItem(StrCat("HP-", i)));
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListItemsRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    v1::ListItemsResponse resp;
    ASSERT_RPC_OK(sterilization_->ListItems(Context().get(), req, &resp));
    EXPECT_LE(resp.items_size(), 2);
    for (const v1::ReusableItem& item : resp.items()) seen.push_back(item.serial());
    token = resp.next_page_token();
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_THAT(seen, ElementsAre("HP-1", "HP-2", "HP-3", "HP-4", "HP-5"));
  EXPECT_EQ(pages, 3);
}

TEST_F(SterilizationRpcTest, PagingThroughListSterilizersWithATypeFilterVisitsEachMatchOnce) {
  for (int i = 1; i <= 3; ++i) {
    ASSERT_RPC_OK(CreateSterilizer(StrCat("PV-", i), v1::STERILIZER_TYPE_PRE_VACUUM));
    ASSERT_RPC_OK(CreateSterilizer(StrCat("GR-", i), v1::STERILIZER_TYPE_GRAVITY));
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListSterilizersRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    req.set_type(v1::STERILIZER_TYPE_GRAVITY);
    v1::ListSterilizersResponse resp;
    ASSERT_RPC_OK(sterilization_->ListSterilizers(Context().get(), req, &resp));
    for (const v1::Sterilizer& s : resp.sterilizers()) {
      EXPECT_EQ(s.type(), v1::STERILIZER_TYPE_GRAVITY);
      EXPECT_TRUE(s.bowie_dick_passed_today()) << "gravity needs no Bowie-Dick test";
      EXPECT_EQ(s.negative_tests_required(), 3);
      EXPECT_EQ(s.negative_tests_to_return(), 0);
      seen.push_back(s.name());
    }
    token = resp.next_page_token();
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_THAT(seen, ElementsAre("GR-1", "GR-2", "GR-3"));
}

TEST_F(SterilizationRpcTest, PagingThroughOneSterilizersLoadsVisitsEachLoadOnce) {
  MustReleaseLoadOf({"HP-1"}, 1);
  for (int cycle = 2; cycle <= 5; ++cycle) MustReleaseLoadOf({"HP-1"}, cycle);
  std::vector<int64_t> cycles;
  std::string token;
  int pages = 0;
  do {
    v1::ListLoadsRequest req;
    req.set_page_size(2);
    req.set_page_token(token);
    req.set_sterilizer("GRAV-1");
    v1::ListLoadsResponse resp;
    ASSERT_RPC_OK(sterilization_->ListLoads(Context().get(), req, &resp));
    for (const v1::Load& l : resp.loads()) cycles.push_back(l.cycle_number());
    token = resp.next_page_token();
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_THAT(cycles, ElementsAre(1, 2, 3, 4, 5));
}

TEST_F(SterilizationRpcTest, APreVacuumSterilizerShowsTodaysBowieDickVerdict) {
  v1::Sterilizer created;
  ASSERT_RPC_OK(CreateSterilizer("PV-1", v1::STERILIZER_TYPE_PRE_VACUUM, &created));
  EXPECT_EQ(created.type(), v1::STERILIZER_TYPE_PRE_VACUUM);
  EXPECT_TRUE(created.in_service());
  EXPECT_FALSE(created.bowie_dick_passed_today());
  EXPECT_FALSE(MustGetSterilizer("PV-1").bowie_dick_passed_today());

  ASSERT_RPC_OK(BowieDick("PV-1", v1::INDICATOR_RESULT_PASS));
  EXPECT_TRUE(MustGetSterilizer("PV-1").bowie_dick_passed_today());
  // The next day needs its own test.
  clock_.Set(kNow + absl::Hours(24));
  EXPECT_FALSE(MustGetSterilizer("PV-1").bowie_dick_passed_today());
}

TEST_F(SterilizationRpcTest, APositiveBiTakesTheSterilizerOutUntilThreeValidNegativeTestCycles) {
  ASSERT_RPC_OK(CreateSterilizer("GRAV-1", v1::STERILIZER_TYPE_GRAVITY));
  ASSERT_RPC_OK(CreateItem("HP-1"));
  ASSERT_RPC_OK(Pack("HP-1"));
  v1::Load load;
  ASSERT_RPC_OK(CreateLoad("GRAV-1", 1, {"HP-1"}, &load, false, /*bi_required=*/true));

  v1::RecordBiologicalIndicatorResponse positive;
  ASSERT_RPC_OK(Bi(load.id(), v1::BI_RESULT_POSITIVE, v1::BI_RESULT_POSITIVE, &positive));
  EXPECT_TRUE(positive.load().biological_indicator().valid());
  EXPECT_EQ(positive.load().release_state(), v1::RELEASE_STATE_QUARANTINED);
  EXPECT_FALSE(positive.look_back().sterilizer().in_service());
  v1::Sterilizer s = MustGetSterilizer("GRAV-1");
  EXPECT_FALSE(s.in_service());
  EXPECT_EQ(s.negative_tests_required(), 3);
  EXPECT_EQ(s.negative_tests_to_return(), 3);

  // A load is refused while it is out of service; a test cycle is not.
  ASSERT_RPC_OK(Pack("HP-1"));
  EXPECT_TRUE(IsRefusal(CreateLoad("GRAV-1", 2, {"HP-1"}), grpc::StatusCode::FAILED_PRECONDITION,
                        "STERILIZER_OUT_OF_SERVICE"));

  v1::Load test;
  ASSERT_RPC_OK(CreateLoad("GRAV-1", 3, {}, &test, /*test_cycle=*/true));
  v1::RecordBiologicalIndicatorResponse negative;
  ASSERT_RPC_OK(Bi(test.id(), v1::BI_RESULT_NEGATIVE, v1::BI_RESULT_POSITIVE, &negative));
  EXPECT_TRUE(negative.load().biological_indicator().valid());
  EXPECT_EQ(MustGetSterilizer("GRAV-1").negative_tests_to_return(), 2);

  // A negative BI whose control did not grow proves nothing: the run starts again.
  ASSERT_RPC_OK(CreateLoad("GRAV-1", 4, {}, &test, true));
  ASSERT_RPC_OK(Bi(test.id(), v1::BI_RESULT_NEGATIVE, v1::BI_RESULT_NEGATIVE, &negative));
  EXPECT_FALSE(negative.load().biological_indicator().valid());
  EXPECT_EQ(MustGetSterilizer("GRAV-1").negative_tests_to_return(), 3);

  for (int cycle = 5; cycle <= 7; ++cycle) {
    ASSERT_RPC_OK(CreateLoad("GRAV-1", cycle, {}, &test, true));
    ASSERT_RPC_OK(Bi(test.id(), v1::BI_RESULT_NEGATIVE, v1::BI_RESULT_POSITIVE));
    EXPECT_EQ(MustGetSterilizer("GRAV-1").negative_tests_to_return(), 7 - cycle);
  }
  s = MustGetSterilizer("GRAV-1");
  EXPECT_TRUE(s.in_service());
  EXPECT_EQ(s.negative_tests_to_return(), 0);
}

TEST_F(SterilizationRpcTest, ThePositiveBiLookBackCarriesTheSterilizersVerdictsFromCore) {
  ASSERT_RPC_OK(CreateSterilizer("PV-1", v1::STERILIZER_TYPE_PRE_VACUUM));
  ASSERT_RPC_OK(BowieDick("PV-1", v1::INDICATOR_RESULT_PASS));
  ASSERT_RPC_OK(CreateItem("HP-1"));
  ASSERT_RPC_OK(Pack("HP-1"));
  v1::Load load;
  ASSERT_RPC_OK(CreateLoad("PV-1", 1, {"HP-1"}, &load, false, /*bi_required=*/true));

  v1::RecordBiologicalIndicatorResponse positive;
  ASSERT_RPC_OK(Bi(load.id(), v1::BI_RESULT_POSITIVE, v1::BI_RESULT_POSITIVE, &positive));
  const v1::Sterilizer& answered = positive.look_back().sterilizer();
  EXPECT_EQ(answered.name(), "PV-1");
  EXPECT_FALSE(answered.in_service());
  EXPECT_TRUE(answered.bowie_dick_passed_today());
  EXPECT_EQ(answered.negative_tests_required(), 3);
  EXPECT_EQ(answered.negative_tests_to_return(), 3);

  v1::GetLoadLookBackRequest req;
  req.set_load_id(load.id());
  v1::LookBack read;
  ASSERT_RPC_OK(sterilization_->GetLoadLookBack(Context().get(), req, &read));
  EXPECT_TRUE(read.sterilizer().bowie_dick_passed_today());
  EXPECT_EQ(read.sterilizer().negative_tests_required(), 3);
  EXPECT_EQ(read.sterilizer().negative_tests_to_return(), 3);
}

TEST_F(SterilizationRpcTest, RecallingAUsedLoadListsTheTreatmentsThatUsedItsItems) {
  const v1::Load load = MustReleaseLoadOf({"HP-1"});
  const std::string t = MustStartTreatment("Room 7");
  ASSERT_RPC_OK(Use("HP-1", t));

  v1::RecallLoadRequest req;
  req.set_load_id(load.id());
  req.set_reason("wet packs found");
  v1::LookBack recalled;
  ASSERT_RPC_OK(sterilization_->RecallLoad(Context("lead.tech").get(), req, &recalled));
  ASSERT_THAT(recalled.loads(), SizeIs(1));
  EXPECT_EQ(recalled.loads(0).release_state(), v1::RELEASE_STATE_RECALLED);
  ASSERT_THAT(recalled.entries(), SizeIs(1));
  EXPECT_EQ(recalled.entries(0).item_serial(), "HP-1");
  EXPECT_EQ(recalled.entries(0).treatment_id(), t);
  EXPECT_EQ(recalled.entries(0).room(), "Room 7");

  v1::GetLoadLookBackRequest look;
  look.set_load_id(load.id());
  v1::LookBack again;
  ASSERT_RPC_OK(sterilization_->GetLoadLookBack(Context().get(), look, &again));
  ASSERT_THAT(again.entries(), SizeIs(1));
  EXPECT_EQ(again.entries(0).treatment_id(), t);
}

TEST_F(SterilizationRpcTest, AQuarantinedLoadsItemsCannotBeUsed) {
  ASSERT_RPC_OK(CreateSterilizer("GRAV-1", v1::STERILIZER_TYPE_GRAVITY));
  ASSERT_RPC_OK(CreateItem("HP-1"));
  ASSERT_RPC_OK(Pack("HP-1"));
  v1::Load load;
  ASSERT_RPC_OK(CreateLoad("GRAV-1", 1, {"HP-1"}, &load));
  v1::QuarantineLoadRequest req;
  req.set_load_id(load.id());
  req.set_reason("door seal alarm");
  v1::Load quarantined;
  ASSERT_RPC_OK(sterilization_->QuarantineLoad(Context("lead.tech").get(), req, &quarantined));
  EXPECT_EQ(quarantined.release_state(), v1::RELEASE_STATE_QUARANTINED);
  EXPECT_EQ(quarantined.signature().meaning(), "door seal alarm");
  EXPECT_EQ(MustGetItem("HP-1").state(), v1::ITEM_STATE_QUARANTINED);
  EXPECT_TRUE(IsRefusal(Use("HP-1", MustStartTreatment()), grpc::StatusCode::FAILED_PRECONDITION,
                        "ITEM_QUARANTINED"));
}

TEST_F(SterilizationRpcTest, RetiringAnItemTakesItOutForGood) {
  ASSERT_RPC_OK(CreateItem("HP-1"));
  v1::RetireItemRequest req;
  req.set_serial("HP-1");
  req.set_reason("cracked housing");
  v1::ReusableItem retired;
  ASSERT_RPC_OK(sterilization_->RetireItem(Context().get(), req, &retired));
  EXPECT_EQ(retired.state(), v1::ITEM_STATE_RETIRED);
  EXPECT_TRUE(IsRefusal(Pack("HP-1"), grpc::StatusCode::FAILED_PRECONDITION, "ITEM_RETIRED"));
}

// ---------------------------------------------------------------------------------------------------
// Refusals on the wire

TEST_F(SterilizationRpcTest, APreVacuumLoadWithoutTodaysBowieDickIsRefused) {
  ASSERT_RPC_OK(CreateSterilizer("PV-1", v1::STERILIZER_TYPE_PRE_VACUUM));
  ASSERT_RPC_OK(CreateItem("HP-1"));
  ASSERT_RPC_OK(Pack("HP-1"));
  WireError e;
  EXPECT_TRUE(IsRefusal(CreateLoad("PV-1", 1, {"HP-1"}), grpc::StatusCode::FAILED_PRECONDITION,
                        "BOWIE_DICK_REQUIRED", &e));
  EXPECT_EQ(Meta(e, "day"), "2026-11-26");
  // A failed test does not count either; a passing one does.
  ASSERT_RPC_OK(BowieDick("PV-1", v1::INDICATOR_RESULT_FAIL));
  EXPECT_TRUE(IsRefusal(CreateLoad("PV-1", 1, {"HP-1"}), grpc::StatusCode::FAILED_PRECONDITION,
                        "BOWIE_DICK_REQUIRED"));
  ASSERT_RPC_OK(BowieDick("PV-1", v1::INDICATOR_RESULT_PASS));
  ASSERT_RPC_OK(CreateLoad("PV-1", 1, {"HP-1"}));
}

TEST_F(SterilizationRpcTest, ASecondLoadWithTheSameCycleNumberIsAlreadyExists) {
  MustReleaseLoadOf({"HP-1"});
  ASSERT_RPC_OK(Pack("HP-1"));
  EXPECT_TRUE(IsRefusal(CreateLoad("GRAV-1", 1, {"HP-1"}), grpc::StatusCode::ALREADY_EXISTS,
                        "CYCLE_NUMBER_EXISTS"));
}

TEST_F(SterilizationRpcTest, ReleaseWithoutParametersOrCiIsRefusedNamingWhatIsMissing) {
  ASSERT_RPC_OK(CreateSterilizer("GRAV-1", v1::STERILIZER_TYPE_GRAVITY));
  ASSERT_RPC_OK(CreateItem("HP-1"));
  ASSERT_RPC_OK(Pack("HP-1"));
  v1::Load load;
  ASSERT_RPC_OK(CreateLoad("GRAV-1", 1, {"HP-1"}, &load));
  EXPECT_TRUE(IsRefusal(Release(load.id()), grpc::StatusCode::FAILED_PRECONDITION,
                        "LOAD_PARAMETERS_MISSING"));
  ASSERT_RPC_OK(Parameters(load.id()));
  EXPECT_TRUE(
      IsRefusal(Release(load.id()), grpc::StatusCode::FAILED_PRECONDITION, "LOAD_CI_MISSING"));
  ASSERT_RPC_OK(Ci(load.id(), v1::INDICATOR_RESULT_FAIL));
  EXPECT_TRUE(
      IsRefusal(Release(load.id()), grpc::StatusCode::FAILED_PRECONDITION, "LOAD_CI_FAILED"));
  EXPECT_EQ(MustGetItem("HP-1").state(), v1::ITEM_STATE_IN_LOAD);
}

TEST_F(SterilizationRpcTest, UsingAnItemThatWasNeverProcessedIsRefusedAsNotSterile) {
  ASSERT_RPC_OK(CreateItem("HP-1"));
  EXPECT_TRUE(IsRefusal(Use("HP-1", MustStartTreatment()), grpc::StatusCode::FAILED_PRECONDITION,
                        "ITEM_NOT_STERILE"));
}

TEST_F(SterilizationRpcTest, UnknownThingsAreNotFound) {
  v1::GetSterilizerRequest s;
  s.set_name("NOPE");
  v1::Sterilizer sterilizer;
  EXPECT_TRUE(IsRefusal(sterilization_->GetSterilizer(Context().get(), s, &sterilizer),
                        grpc::StatusCode::NOT_FOUND, "STERILIZER_NOT_FOUND"));
  v1::GetItemRequest i;
  i.set_serial("NOPE");
  v1::ReusableItem item;
  EXPECT_TRUE(IsRefusal(sterilization_->GetItem(Context().get(), i, &item),
                        grpc::StatusCode::NOT_FOUND, "ITEM_NOT_FOUND"));
  v1::GetLoadRequest l;
  l.set_id("999");
  v1::Load load;
  EXPECT_TRUE(IsRefusal(sterilization_->GetLoad(Context().get(), l, &load),
                        grpc::StatusCode::NOT_FOUND, "LOAD_NOT_FOUND"));
}

TEST_F(SterilizationRpcTest, UnspecifiedOrUnknownEnumValuesAreInvalidArgumentNamingTheField) {
  // Required enums: unspecified and unknown alike.
  EXPECT_TRUE(IsInvalidField(CreateSterilizer("X-1", v1::STERILIZER_TYPE_UNSPECIFIED), "type"));
  EXPECT_TRUE(IsInvalidField(CreateSterilizer("X-1", static_cast<v1::SterilizerType>(7)), "type"));
  ASSERT_RPC_OK(CreateSterilizer("GRAV-1", v1::STERILIZER_TYPE_GRAVITY));
  EXPECT_TRUE(IsInvalidField(BowieDick("GRAV-1", v1::INDICATOR_RESULT_UNSPECIFIED), "result"));
  EXPECT_TRUE(IsInvalidField(BowieDick("GRAV-1", static_cast<v1::IndicatorResult>(9)), "result"));
  ASSERT_RPC_OK(CreateItem("HP-1"));
  ASSERT_RPC_OK(Pack("HP-1"));
  v1::Load load;
  ASSERT_RPC_OK(CreateLoad("GRAV-1", 1, {"HP-1"}, &load));
  EXPECT_TRUE(IsInvalidField(Ci(load.id(), static_cast<v1::IndicatorResult>(3)), "result"));
  EXPECT_TRUE(IsInvalidField(Bi(load.id(), static_cast<v1::BiResult>(5), v1::BI_RESULT_POSITIVE),
                             "result"));
  EXPECT_TRUE(IsInvalidField(Bi(load.id(), v1::BI_RESULT_NEGATIVE, v1::BI_RESULT_UNSPECIFIED),
                             "control_result"));

  // Filters: unspecified means any, an unknown value is refused rather than read as some default.
  v1::ListSterilizersRequest sterilizers;
  sterilizers.set_type(static_cast<v1::SterilizerType>(7));
  v1::ListSterilizersResponse sterilizers_resp;
  EXPECT_TRUE(IsInvalidField(
      sterilization_->ListSterilizers(Context().get(), sterilizers, &sterilizers_resp), "type"));
  v1::ListItemsRequest items;
  items.set_state(static_cast<v1::ItemState>(42));
  v1::ListItemsResponse items_resp;
  EXPECT_TRUE(
      IsInvalidField(sterilization_->ListItems(Context().get(), items, &items_resp), "state"));
  v1::ListLoadsRequest loads;
  loads.set_release_state(static_cast<v1::ReleaseState>(42));
  v1::ListLoadsResponse loads_resp;
  EXPECT_TRUE(IsInvalidField(sterilization_->ListLoads(Context().get(), loads, &loads_resp),
                             "release_state"));
  v1::ListCartridgesRequest cartridges;
  cartridges.set_state(static_cast<v1::CartridgeState>(42));
  v1::ListCartridgesResponse cartridges_resp;
  EXPECT_TRUE(IsInvalidField(
      inventory_->ListCartridges(Context().get(), cartridges, &cartridges_resp), "state"));
  v1::ListTreatmentsRequest treatments;
  treatments.set_state(static_cast<v1::TreatmentState>(42));
  v1::ListTreatmentsResponse treatments_resp;
  EXPECT_TRUE(IsInvalidField(
      treatments_->ListTreatments(Context().get(), treatments, &treatments_resp), "state"));
}

TEST_F(SterilizationRpcTest, ANonNumericLoadIdIsInvalidArgumentNamingTheField) {
  EXPECT_TRUE(IsInvalidField(Release("forty-two"), "load_id"));
  v1::GetLoadRequest req;
  req.set_id("x");
  v1::Load load;
  EXPECT_TRUE(IsInvalidField(sterilization_->GetLoad(Context().get(), req, &load), "id"));
}

}  // namespace
}  // namespace steritrack::rpc_test

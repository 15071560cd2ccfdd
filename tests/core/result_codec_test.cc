// Golden-bytes tests of the stored answers of idempotent writes (server/core/result_codec).
//
// A stored answer outlives the server that wrote it: a client retrying across an upgrade must get
// the first answer back, never DATA_LOSS. The byte strings below are what earlier versions wrote;
// they are committed here and never change. A new layout of a type is a new version of it, with
// its own golden string added beside the old ones.
#include "server/core/result_codec.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/sterilization_service.h"
#include "steritrack/error.h"
#include "steritrack/strings.h"
#include "tests/core/fake_store.h"
#include "tests/status_matchers.h"
#include "tests/test_sha256.h"

namespace steritrack {
namespace {

absl::Time Micros(int64_t us) { return absl::FromUnixMicros(us); }

// ---- sample values: every field set to something distinctive

Lot SampleLot() {
  return Lot{.id = 3,
             .gtin = "09506000134352",
             .lot = "LOT(A)",
             .expiry = absl::CivilDay(2027, 12, 31),
             .state = LotState::kRecalled,
             .state_reason = "supplier notice 12",
             .state_changed_by = "mgr.sam",
             .state_changed_at = Micros(1795000000000001),
             .created_at = Micros(1790000000000002),
             .expired = true};
}

Cartridge SampleCartridge() {
  return Cartridge{
      .id = 11,
      .gtin = "09506000134352",
      .serial = "CRT:0001",  // a colon, as the length prefix uses
      .lot = SampleLot(),
      .state = CartridgeState::kDisposed,
      .received_at = Micros(1790000000000003),
      .received_by = "stock.lee",
      .use =
          CartridgeUse{
              .treatment_id = 18, .room = "3", .at = Micros(1796000000000004), .by = "nurse.kim"},
      .disposal =
          Disposal{.container_id = "SHARPS-2", .at = Micros(1796000000000005), .by = "nurse.kim"},
      .discard = std::nullopt};
}

Cartridge SampleDiscarded() {
  Cartridge c{.id = 12,
              .gtin = "09506000134352",
              .serial = "CRT-0002",
              .lot = Lot{.id = 3},
              .state = CartridgeState::kDiscarded,
              .received_at = Micros(1790000000000006),
              .received_by = "stock.lee"};
  c.discard = Discard{.reason = "pouch torn", .at = Micros(1791000000000007), .by = "stock.lee"};
  return c;
}

Treatment SampleTreatment() {
  return Treatment{.id = 18,
                   .room = "3",
                   .clinician = "dr.lee",
                   .client_ref = "CLIENT-0042",
                   .started_at = Micros(1796000000000000),
                   .started_by = "nurse.kim",
                   .ended_at = Micros(1796000900000000),
                   .ended_by = "nurse.kim"};
}

ReusableItem SampleItem() {
  return ReusableItem{.id = 5,
                      .serial = "HP-0001",
                      .type = "handpiece",
                      .ifu_max_cycles = 500,
                      .cycles = 42,
                      .maintenance_due = absl::CivilDay(2027, 3, 1),
                      .state = ItemState::kSterile,
                      .load_id = 9,
                      .sterile_until = Micros(1798000000000000),
                      .treatment_id = 0,
                      .state_reason = "",
                      .created_at = Micros(1780000000000000)};
}

Sterilizer SampleSterilizer() {
  return Sterilizer{.id = 2,
                    .name = "AUTOCLAVE1",
                    .type = SterilizerType::kGravity,
                    .last_cycle_number = 77,
                    .in_service = false,
                    .out_of_service_reason = "positive BI on load 9",
                    .out_of_service_at = Micros(1797000000000000),
                    .negative_tests_since_out_of_service = 2,
                    .created_at = Micros(1780000000000001)};
}

BowieDickTest SampleBowieDick() {
  return BowieDickTest{.id = 4,
                       .sterilizer_id = 2,
                       .day = absl::CivilDay(2026, 11, 26),
                       .result = IndicatorResult::kFail,
                       .operator_name = "spd.ana",
                       .at = Micros(1795650000000000)};
}

Load SampleLoad() {
  return Load{
      .id = 9,
      .sterilizer_id = 2,
      .sterilizer_name = "AUTOCLAVE1",
      .cycle_number = 77,
      .cycle_type = "134C-4MIN",
      .test_cycle = false,
      .bi_required = true,
      .shelf_life_days = 30,
      .operator_name = "spd.ana",
      .created_at = Micros(1795660000000000),
      .item_ids = {5, 6},
      .item_serials = {"HP-0001", "TRAY-0001"},
      .parameters = CycleParameters{.started_at = Micros(1795660000000000),
                                    .ended_at = Micros(1795662400000000),
                                    .exposure_seconds = 240,
                                    .temperature_c = 134.2,
                                    .pressure_kpa = 212.5,
                                    .passed = true,
                                    .recorded_by = "spd.ana",
                                    .recorded_at = Micros(1795663000000000)},
      .chemical_indicators = {ChemicalIndicator{.type = 5,
                                                .result = IndicatorResult::kPass,
                                                .recorded_by = "spd.ana",
                                                .recorded_at = Micros(1795663100000000)},
                              ChemicalIndicator{.type = 6,
                                                .result = IndicatorResult::kFail,
                                                .recorded_by = "spd.bo",
                                                .recorded_at = Micros(1795663200000000)}},
      .bi = BiologicalIndicator{.product = "Attest 1292",
                                .lot = "BI-2026-11",
                                .result = BiResult::kPositive,
                                .control_result = BiResult::kPositive,
                                .read_at = Micros(1795750000000000),
                                .recorded_by = "spd.ana"},
      .release_state = ReleaseState::kQuarantined,
      .signature = Signature{
          .by = "spd.ana", .at = Micros(1795750000000000), .meaning = "positive BI on load 9"}};
}

LookBack SampleLookBack() {
  LookBack lb;
  lb.loads = {SampleLoad()};
  lb.entries = {LookBackEntry{.load_id = 9,
                              .item_serial = "HP-0001",
                              .treatment = SampleTreatment(),
                              .used_at = Micros(1796000100000000)}};
  lb.sterilizer = SampleSterilizer();
  lb.bowie_dick_passed_today = true;
  return lb;
}

Event SampleEvent() {
  return Event{.seq = 1234,
               .at = Micros(1796000100000000),
               .actor = "nurse.kim",
               .action = "ITEM_USED",
               .lot_id = 3,
               .cartridge_id = 11,
               .treatment_id = 18,
               .item_id = 5,
               .load_id = 9,
               .sterilizer_id = 2,
               .detail = "item HP-0001 used in treatment 18 in room 3",
               .request_id = "req-7",
               .before = "state=STERILE",
               .after = "state=IN_USE treatment=18 room=3",
               .corrects_seq = 1200,
               .hash = "ab12"};
}

// ---- field-by-field comparison

void ExpectSame(const Lot& a, const Lot& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.gtin, b.gtin);
  EXPECT_EQ(a.lot, b.lot);
  EXPECT_EQ(a.expiry, b.expiry);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.state_reason, b.state_reason);
  EXPECT_EQ(a.state_changed_by, b.state_changed_by);
  EXPECT_EQ(a.state_changed_at, b.state_changed_at);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.expired, b.expired);
}

void ExpectSame(const Cartridge& a, const Cartridge& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.gtin, b.gtin);
  EXPECT_EQ(a.serial, b.serial);
  ExpectSame(a.lot, b.lot);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.received_at, b.received_at);
  EXPECT_EQ(a.received_by, b.received_by);
  ASSERT_EQ(a.use.has_value(), b.use.has_value());
  if (a.use) {
    EXPECT_EQ(a.use->treatment_id, b.use->treatment_id);
    EXPECT_EQ(a.use->room, b.use->room);
    EXPECT_EQ(a.use->at, b.use->at);
    EXPECT_EQ(a.use->by, b.use->by);
  }
  ASSERT_EQ(a.disposal.has_value(), b.disposal.has_value());
  if (a.disposal) {
    EXPECT_EQ(a.disposal->container_id, b.disposal->container_id);
    EXPECT_EQ(a.disposal->at, b.disposal->at);
    EXPECT_EQ(a.disposal->by, b.disposal->by);
  }
  ASSERT_EQ(a.discard.has_value(), b.discard.has_value());
  if (a.discard) {
    EXPECT_EQ(a.discard->reason, b.discard->reason);
    EXPECT_EQ(a.discard->at, b.discard->at);
    EXPECT_EQ(a.discard->by, b.discard->by);
  }
}

void ExpectSame(const std::vector<Cartridge>& a, const std::vector<Cartridge>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ExpectSame(a[i], b[i]);
}

void ExpectSame(const Treatment& a, const Treatment& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.room, b.room);
  EXPECT_EQ(a.clinician, b.clinician);
  EXPECT_EQ(a.client_ref, b.client_ref);
  EXPECT_EQ(a.started_at, b.started_at);
  EXPECT_EQ(a.started_by, b.started_by);
  EXPECT_EQ(a.ended_at, b.ended_at);
  EXPECT_EQ(a.ended_by, b.ended_by);
}

void ExpectSame(const TreatmentDetail& a, const TreatmentDetail& b) {
  ExpectSame(a.treatment, b.treatment);
  ExpectSame(a.cartridges, b.cartridges);
}

void ExpectSame(const RecallResult& a, const RecallResult& b) {
  ExpectSame(a.lot, b.lot);
  ExpectSame(a.opened, b.opened);
}

void ExpectSame(const ReusableItem& a, const ReusableItem& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.serial, b.serial);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.ifu_max_cycles, b.ifu_max_cycles);
  EXPECT_EQ(a.cycles, b.cycles);
  EXPECT_EQ(a.maintenance_due, b.maintenance_due);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.load_id, b.load_id);
  EXPECT_EQ(a.sterile_until, b.sterile_until);
  EXPECT_EQ(a.treatment_id, b.treatment_id);
  EXPECT_EQ(a.state_reason, b.state_reason);
  EXPECT_EQ(a.created_at, b.created_at);
}

void ExpectSame(const Sterilizer& a, const Sterilizer& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.last_cycle_number, b.last_cycle_number);
  EXPECT_EQ(a.in_service, b.in_service);
  EXPECT_EQ(a.out_of_service_reason, b.out_of_service_reason);
  EXPECT_EQ(a.out_of_service_at, b.out_of_service_at);
  EXPECT_EQ(a.negative_tests_since_out_of_service, b.negative_tests_since_out_of_service);
  EXPECT_EQ(a.created_at, b.created_at);
}

void ExpectSame(const BowieDickTest& a, const BowieDickTest& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.sterilizer_id, b.sterilizer_id);
  EXPECT_EQ(a.day, b.day);
  EXPECT_EQ(a.result, b.result);
  EXPECT_EQ(a.operator_name, b.operator_name);
  EXPECT_EQ(a.at, b.at);
}

void ExpectSame(const Load& a, const Load& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.sterilizer_id, b.sterilizer_id);
  EXPECT_EQ(a.sterilizer_name, b.sterilizer_name);
  EXPECT_EQ(a.cycle_number, b.cycle_number);
  EXPECT_EQ(a.cycle_type, b.cycle_type);
  EXPECT_EQ(a.test_cycle, b.test_cycle);
  EXPECT_EQ(a.bi_required, b.bi_required);
  EXPECT_EQ(a.shelf_life_days, b.shelf_life_days);
  EXPECT_EQ(a.operator_name, b.operator_name);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.item_ids, b.item_ids);
  EXPECT_EQ(a.item_serials, b.item_serials);
  ASSERT_EQ(a.parameters.has_value(), b.parameters.has_value());
  if (a.parameters) {
    EXPECT_EQ(a.parameters->started_at, b.parameters->started_at);
    EXPECT_EQ(a.parameters->ended_at, b.parameters->ended_at);
    EXPECT_EQ(a.parameters->exposure_seconds, b.parameters->exposure_seconds);
    EXPECT_EQ(a.parameters->temperature_c, b.parameters->temperature_c);
    EXPECT_EQ(a.parameters->pressure_kpa, b.parameters->pressure_kpa);
    EXPECT_EQ(a.parameters->passed, b.parameters->passed);
    EXPECT_EQ(a.parameters->recorded_by, b.parameters->recorded_by);
    EXPECT_EQ(a.parameters->recorded_at, b.parameters->recorded_at);
  }
  ASSERT_EQ(a.chemical_indicators.size(), b.chemical_indicators.size());
  for (size_t i = 0; i < a.chemical_indicators.size(); ++i) {
    EXPECT_EQ(a.chemical_indicators[i].type, b.chemical_indicators[i].type);
    EXPECT_EQ(a.chemical_indicators[i].result, b.chemical_indicators[i].result);
    EXPECT_EQ(a.chemical_indicators[i].recorded_by, b.chemical_indicators[i].recorded_by);
    EXPECT_EQ(a.chemical_indicators[i].recorded_at, b.chemical_indicators[i].recorded_at);
  }
  ASSERT_EQ(a.bi.has_value(), b.bi.has_value());
  if (a.bi) {
    EXPECT_EQ(a.bi->product, b.bi->product);
    EXPECT_EQ(a.bi->lot, b.bi->lot);
    EXPECT_EQ(a.bi->result, b.bi->result);
    EXPECT_EQ(a.bi->control_result, b.bi->control_result);
    EXPECT_EQ(a.bi->read_at, b.bi->read_at);
    EXPECT_EQ(a.bi->recorded_by, b.bi->recorded_by);
  }
  EXPECT_EQ(a.release_state, b.release_state);
  ASSERT_EQ(a.signature.has_value(), b.signature.has_value());
  if (a.signature) {
    EXPECT_EQ(a.signature->by, b.signature->by);
    EXPECT_EQ(a.signature->at, b.signature->at);
    EXPECT_EQ(a.signature->meaning, b.signature->meaning);
  }
}

void ExpectSame(const LookBack& a, const LookBack& b) {
  ASSERT_EQ(a.loads.size(), b.loads.size());
  for (size_t i = 0; i < a.loads.size(); ++i) ExpectSame(a.loads[i], b.loads[i]);
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (size_t i = 0; i < a.entries.size(); ++i) {
    EXPECT_EQ(a.entries[i].load_id, b.entries[i].load_id);
    EXPECT_EQ(a.entries[i].item_serial, b.entries[i].item_serial);
    ExpectSame(a.entries[i].treatment, b.entries[i].treatment);
    EXPECT_EQ(a.entries[i].used_at, b.entries[i].used_at);
  }
  ASSERT_EQ(a.sterilizer.has_value(), b.sterilizer.has_value());
  if (a.sterilizer) ExpectSame(*a.sterilizer, *b.sterilizer);
  EXPECT_EQ(a.bowie_dick_passed_today, b.bowie_dick_passed_today);
}

void ExpectSame(const BiOutcome& a, const BiOutcome& b) {
  ExpectSame(a.load, b.load);
  ASSERT_EQ(a.look_back.has_value(), b.look_back.has_value());
  if (a.look_back) ExpectSame(*a.look_back, *b.look_back);
}

void ExpectSame(const Event& a, const Event& b) {
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.at, b.at);
  EXPECT_EQ(a.actor, b.actor);
  EXPECT_EQ(a.action, b.action);
  EXPECT_EQ(a.lot_id, b.lot_id);
  EXPECT_EQ(a.cartridge_id, b.cartridge_id);
  EXPECT_EQ(a.treatment_id, b.treatment_id);
  EXPECT_EQ(a.item_id, b.item_id);
  EXPECT_EQ(a.load_id, b.load_id);
  EXPECT_EQ(a.sterilizer_id, b.sterilizer_id);
  EXPECT_EQ(a.detail, b.detail);
  EXPECT_EQ(a.request_id, b.request_id);
  EXPECT_EQ(a.before, b.before);
  EXPECT_EQ(a.after, b.after);
  EXPECT_EQ(a.corrects_seq, b.corrects_seq);
  EXPECT_EQ(a.hash, b.hash);
}

// ---- golden bytes

// Version 1 as written before answers carried a type tag (header "r1"): what stores hold today.
constexpr std::string_view kUntaggedCartridgeV1 =
    "2:r12:1114:095060001343528:CRT:00011:314:095060001343526:LOT(A)10:2027-12-311:218:suppli"
    "er notice 127:mgr.sam16:179500000000000116:17900000000000021:11:216:17900000000000039:st"
    "ock.lee1:12:181:316:17960000000000049:nurse.kim1:18:SHARPS-216:17960000000000059:nurse.k"
    "im1:0";
constexpr std::string_view kUntaggedCartridgesV1 =
    "2:r11:22:1114:095060001343528:CRT:00011:314:095060001343526:LOT(A)10:2027-12-311:218:sup"
    "plier notice 127:mgr.sam16:179500000000000116:17900000000000021:11:216:17900000000000039"
    ":stock.lee1:12:181:316:17960000000000049:nurse.kim1:18:SHARPS-216:17960000000000059:nurs"
    "e.kim1:02:1214:095060001343528:CRT-00021:30:0:10:1970-01-011:00:0:1:-1:-1:01:316:1790000"
    "0000000069:stock.lee1:01:01:110:pouch torn16:17910000000000079:stock.lee";
constexpr std::string_view kUntaggedTreatmentV1 =
    "2:r12:181:36:dr.lee11:CLIENT-004216:17960000000000009:nurse.kim1:116:17960009000000009:n"
    "urse.kim";
constexpr std::string_view kUntaggedTreatmentDetailV1 =
    "2:r12:181:36:dr.lee11:CLIENT-004216:17960000000000009:nurse.kim1:116:17960009000000009:n"
    "urse.kim1:12:1114:095060001343528:CRT:00011:314:095060001343526:LOT(A)10:2027-12-311:218"
    ":supplier notice 127:mgr.sam16:179500000000000116:17900000000000021:11:216:1790000000000"
    "0039:stock.lee1:12:181:316:17960000000000049:nurse.kim1:18:SHARPS-216:17960000000000059:"
    "nurse.kim1:0";
constexpr std::string_view kUntaggedRecallResultV1 =
    "2:r11:314:095060001343526:LOT(A)10:2027-12-311:218:supplier notice 127:mgr.sam16:1795000"
    "00000000116:17900000000000021:11:12:1114:095060001343528:CRT:00011:314:095060001343526:L"
    "OT(A)10:2027-12-311:218:supplier notice 127:mgr.sam16:179500000000000116:179000000000000"
    "21:11:216:17900000000000039:stock.lee1:12:181:316:17960000000000049:nurse.kim1:18:SHARPS"
    "-216:17960000000000059:nurse.kim1:0";
constexpr std::string_view kUntaggedItemV1 =
    "2:r11:57:HP-00019:handpiece3:5002:421:110:2027-03-011:31:916:17980000000000001:00:16:178"
    "0000000000000";
constexpr std::string_view kUntaggedSterilizerV1 =
    "2:r11:210:AUTOCLAVE11:12:771:021:positive BI on load 916:17970000000000001:216:178000000"
    "0000001";
constexpr std::string_view kUntaggedBowieDickTestV1 =
    "2:r11:41:210:2026-11-261:17:spd.ana16:1795650000000000";
constexpr std::string_view kUntaggedLoadV1 =
    "2:r11:91:210:AUTOCLAVE12:779:134C-4MIN1:01:12:307:spd.ana16:17956600000000001:21:51:61:2"
    "7:HP-00019:TRAY-00011:116:179566000000000016:17956624000000003:2405:134.25:212.51:17:spd"
    ".ana16:17956630000000001:21:51:07:spd.ana16:17956631000000001:61:16:spd.bo16:17956632000"
    "000001:111:Attest 129210:BI-2026-111:11:116:17957500000000007:spd.ana1:21:17:spd.ana16:1"
    "79575000000000021:positive BI on load 9";
constexpr std::string_view kUntaggedLookBackV1 =
    "2:r11:11:91:210:AUTOCLAVE12:779:134C-4MIN1:01:12:307:spd.ana16:17956600000000001:21:51:6"
    "1:27:HP-00019:TRAY-00011:116:179566000000000016:17956624000000003:2405:134.25:212.51:17:"
    "spd.ana16:17956630000000001:21:51:07:spd.ana16:17956631000000001:61:16:spd.bo16:17956632"
    "000000001:111:Attest 129210:BI-2026-111:11:116:17957500000000007:spd.ana1:21:17:spd.ana1"
    "6:179575000000000021:positive BI on load 91:11:97:HP-00012:181:36:dr.lee11:CLIENT-004216"
    ":17960000000000009:nurse.kim1:116:17960009000000009:nurse.kim16:17960001000000001:11:210"
    ":AUTOCLAVE11:12:771:021:positive BI on load 916:17970000000000001:216:1780000000000001";
constexpr std::string_view kUntaggedBiOutcomeV1 =
    "2:r11:91:210:AUTOCLAVE12:779:134C-4MIN1:01:12:307:spd.ana16:17956600000000001:21:51:61:2"
    "7:HP-00019:TRAY-00011:116:179566000000000016:17956624000000003:2405:134.25:212.51:17:spd"
    ".ana16:17956630000000001:21:51:07:spd.ana16:17956631000000001:61:16:spd.bo16:17956632000"
    "000001:111:Attest 129210:BI-2026-111:11:116:17957500000000007:spd.ana1:21:17:spd.ana16:1"
    "79575000000000021:positive BI on load 91:11:11:91:210:AUTOCLAVE12:779:134C-4MIN1:01:12:3"
    "07:spd.ana16:17956600000000001:21:51:61:27:HP-00019:TRAY-00011:116:179566000000000016:17"
    "956624000000003:2405:134.25:212.51:17:spd.ana16:17956630000000001:21:51:07:spd.ana16:179"
    "56631000000001:61:16:spd.bo16:17956632000000001:111:Attest 129210:BI-2026-111:11:116:179"
    "57500000000007:spd.ana1:21:17:spd.ana16:179575000000000021:positive BI on load 91:11:97:"
    "HP-00012:181:36:dr.lee11:CLIENT-004216:17960000000000009:nurse.kim1:116:1796000900000000"
    "9:nurse.kim16:17960001000000001:11:210:AUTOCLAVE11:12:771:021:positive BI on load 916:17"
    "970000000000001:216:1780000000000001";
constexpr std::string_view kUntaggedEventV1 =
    "2:r14:123416:17960001000000009:nurse.kim9:ITEM_USED1:32:112:181:51:91:243:item HP-0001 u"
    "sed in treatment 18 in room 35:req-713:state=STERILE32:state=IN_USE treatment=18 room=34"
    ":12004:ab12";

// Today's versions: "<type>/<version>", then the body.
constexpr std::string_view kCartridgeV1 =
    "11:cartridge/12:1114:095060001343528:CRT:00011:314:095060001343526:LOT(A)10:2027-12-311:"
    "218:supplier notice 127:mgr.sam16:179500000000000116:17900000000000021:11:216:1790000000"
    "0000039:stock.lee1:12:181:316:17960000000000049:nurse.kim1:18:SHARPS-216:179600000000000"
    "59:nurse.kim1:0";
constexpr std::string_view kCartridgesV1 =
    "12:cartridges/11:22:1114:095060001343528:CRT:00011:314:095060001343526:LOT(A)10:2027-12-"
    "311:218:supplier notice 127:mgr.sam16:179500000000000116:17900000000000021:11:216:179000"
    "00000000039:stock.lee1:12:181:316:17960000000000049:nurse.kim1:18:SHARPS-216:17960000000"
    "000059:nurse.kim1:02:1214:095060001343528:CRT-00021:30:0:10:1970-01-011:00:0:1:-1:-1:01:"
    "316:17900000000000069:stock.lee1:01:01:110:pouch torn16:17910000000000079:stock.lee";
constexpr std::string_view kTreatmentV1 =
    "11:treatment/12:181:36:dr.lee11:CLIENT-004216:17960000000000009:nurse.kim1:116:179600090"
    "00000009:nurse.kim";
constexpr std::string_view kTreatmentDetailV1 =
    "18:treatment_detail/12:181:36:dr.lee11:CLIENT-004216:17960000000000009:nurse.kim1:116:17"
    "960009000000009:nurse.kim1:12:1114:095060001343528:CRT:00011:314:095060001343526:LOT(A)1"
    "0:2027-12-311:218:supplier notice 127:mgr.sam16:179500000000000116:17900000000000021:11:"
    "216:17900000000000039:stock.lee1:12:181:316:17960000000000049:nurse.kim1:18:SHARPS-216:1"
    "7960000000000059:nurse.kim1:0";
constexpr std::string_view kRecallResultV1 =
    "15:recall_result/11:314:095060001343526:LOT(A)10:2027-12-311:218:supplier notice 127:mgr"
    ".sam16:179500000000000116:17900000000000021:11:12:1114:095060001343528:CRT:00011:314:095"
    "060001343526:LOT(A)10:2027-12-311:218:supplier notice 127:mgr.sam16:179500000000000116:1"
    "7900000000000021:11:216:17900000000000039:stock.lee1:12:181:316:17960000000000049:nurse."
    "kim1:18:SHARPS-216:17960000000000059:nurse.kim1:0";
constexpr std::string_view kItemV1 =
    "6:item/11:57:HP-00019:handpiece3:5002:421:110:2027-03-011:31:916:17980000000000001:00:16"
    ":1780000000000000";
constexpr std::string_view kSterilizerV1 =
    "12:sterilizer/11:210:AUTOCLAVE11:12:771:021:positive BI on load 916:17970000000000001:21"
    "6:1780000000000001";
constexpr std::string_view kBowieDickTestV1 =
    "17:bowie_dick_test/11:41:210:2026-11-261:17:spd.ana16:1795650000000000";
constexpr std::string_view kLoadV1 =
    "6:load/11:91:210:AUTOCLAVE12:779:134C-4MIN1:01:12:307:spd.ana16:17956600000000001:21:51:"
    "61:27:HP-00019:TRAY-00011:116:179566000000000016:17956624000000003:2405:134.25:212.51:17"
    ":spd.ana16:17956630000000001:21:51:07:spd.ana16:17956631000000001:61:16:spd.bo16:1795663"
    "2000000001:111:Attest 129210:BI-2026-111:11:116:17957500000000007:spd.ana1:21:17:spd.ana"
    "16:179575000000000021:positive BI on load 9";
constexpr std::string_view kLookBackV2 =
    "11:look_back/21:11:91:210:AUTOCLAVE12:779:134C-4MIN1:01:12:307:spd.ana16:179566000000000"
    "01:21:51:61:27:HP-00019:TRAY-00011:116:179566000000000016:17956624000000003:2405:134.25:"
    "212.51:17:spd.ana16:17956630000000001:21:51:07:spd.ana16:17956631000000001:61:16:spd.bo1"
    "6:17956632000000001:111:Attest 129210:BI-2026-111:11:116:17957500000000007:spd.ana1:21:1"
    "7:spd.ana16:179575000000000021:positive BI on load 91:11:97:HP-00012:181:36:dr.lee11:CLI"
    "ENT-004216:17960000000000009:nurse.kim1:116:17960009000000009:nurse.kim16:17960001000000"
    "001:11:210:AUTOCLAVE11:12:771:021:positive BI on load 916:17970000000000001:216:17800000"
    "000000011:1";
constexpr std::string_view kBiOutcomeV2 =
    "12:bi_outcome/21:91:210:AUTOCLAVE12:779:134C-4MIN1:01:12:307:spd.ana16:17956600000000001"
    ":21:51:61:27:HP-00019:TRAY-00011:116:179566000000000016:17956624000000003:2405:134.25:21"
    "2.51:17:spd.ana16:17956630000000001:21:51:07:spd.ana16:17956631000000001:61:16:spd.bo16:"
    "17956632000000001:111:Attest 129210:BI-2026-111:11:116:17957500000000007:spd.ana1:21:17:"
    "spd.ana16:179575000000000021:positive BI on load 91:11:11:91:210:AUTOCLAVE12:779:134C-4M"
    "IN1:01:12:307:spd.ana16:17956600000000001:21:51:61:27:HP-00019:TRAY-00011:116:1795660000"
    "00000016:17956624000000003:2405:134.25:212.51:17:spd.ana16:17956630000000001:21:51:07:sp"
    "d.ana16:17956631000000001:61:16:spd.bo16:17956632000000001:111:Attest 129210:BI-2026-111"
    ":11:116:17957500000000007:spd.ana1:21:17:spd.ana16:179575000000000021:positive BI on loa"
    "d 91:11:97:HP-00012:181:36:dr.lee11:CLIENT-004216:17960000000000009:nurse.kim1:116:17960"
    "009000000009:nurse.kim16:17960001000000001:11:210:AUTOCLAVE11:12:771:021:positive BI on "
    "load 916:17970000000000001:216:17800000000000011:1";
constexpr std::string_view kEventV1 =
    "7:event/14:123416:17960001000000009:nurse.kim9:ITEM_USED1:32:112:181:51:91:243:item HP-0"
    "001 used in treatment 18 in room 35:req-713:state=STERILE32:state=IN_USE treatment=18 ro"
    "om=34:12004:ab12";

constexpr std::string_view kParLevelV1 =
    "11:par_level/114:095060001343522:102:301:116:17960000000000037:mgr.ana";
constexpr std::string_view kLotV1 =
    "5:lot/11:314:095060001343526:LOT(A)10:2027-12-311:218:supplier notice 127:mgr.sam16:1795"
    "00000000000116:17900000000000021:1";

ParLevel SampleParLevel() {
  return ParLevel{.gtin = "09506000134352",
                  .min_units = 10,
                  .expiry_window_days = 30,
                  .below_par = true,
                  .set_at = Micros(1796000000000003),
                  .set_by = "mgr.ana"};
}
void ExpectSame(const ParLevel& a, const ParLevel& b) {
  EXPECT_EQ(a.gtin, b.gtin);
  EXPECT_EQ(a.min_units, b.min_units);
  EXPECT_EQ(a.expiry_window_days, b.expiry_window_days);
  EXPECT_EQ(a.below_par, b.below_par);
  EXPECT_EQ(a.set_at, b.set_at);
  EXPECT_EQ(a.set_by, b.set_by);
}

TreatmentDetail SampleTreatmentDetail() {
  return TreatmentDetail{.treatment = SampleTreatment(), .cartridges = {SampleCartridge()}};
}
RecallResult SampleRecallResult() {
  return RecallResult{.lot = SampleLot(), .opened = {SampleCartridge()}};
}
std::vector<Cartridge> SampleCartridges() { return {SampleCartridge(), SampleDiscarded()}; }
BiOutcome SampleBiOutcome() {
  return BiOutcome{.load = SampleLoad(), .look_back = SampleLookBack()};
}

template <typename T>
void ExpectDecodesTo(std::string_view bytes, const T& expected) {
  absl::StatusOr<T> decoded = DecodeResult<T>(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSame(*decoded, expected);
}

TEST(ResultCodecTest, EveryTypeDecodesTheUntaggedVersion1BytesStoresHoldToday) {
  ExpectDecodesTo(kUntaggedCartridgeV1, SampleCartridge());
  ExpectDecodesTo(kUntaggedCartridgesV1, SampleCartridges());
  ExpectDecodesTo(kUntaggedTreatmentV1, SampleTreatment());
  ExpectDecodesTo(kUntaggedTreatmentDetailV1, SampleTreatmentDetail());
  ExpectDecodesTo(kUntaggedRecallResultV1, SampleRecallResult());
  ExpectDecodesTo(kUntaggedItemV1, SampleItem());
  ExpectDecodesTo(kUntaggedSterilizerV1, SampleSterilizer());
  ExpectDecodesTo(kUntaggedBowieDickTestV1, SampleBowieDick());
  ExpectDecodesTo(kUntaggedLoadV1, SampleLoad());
  ExpectDecodesTo(kUntaggedEventV1, SampleEvent());
  // Version 1 of a look-back had no Bowie-Dick verdict: it reads as not passed.
  LookBack look_back = SampleLookBack();
  look_back.bowie_dick_passed_today = false;
  ExpectDecodesTo(kUntaggedLookBackV1, look_back);
  BiOutcome outcome = SampleBiOutcome();
  outcome.look_back->bowie_dick_passed_today = false;
  ExpectDecodesTo(kUntaggedBiOutcomeV1, outcome);
}

TEST(ResultCodecTest, TodaysEncodingOfEveryTypeIsItsGoldenBytesAndDecodesBack) {
  EXPECT_EQ(EncodeResult(SampleCartridge()), kCartridgeV1);
  EXPECT_EQ(EncodeResult(SampleCartridges()), kCartridgesV1);
  EXPECT_EQ(EncodeResult(SampleTreatment()), kTreatmentV1);
  EXPECT_EQ(EncodeResult(SampleTreatmentDetail()), kTreatmentDetailV1);
  EXPECT_EQ(EncodeResult(SampleRecallResult()), kRecallResultV1);
  EXPECT_EQ(EncodeResult(SampleItem()), kItemV1);
  EXPECT_EQ(EncodeResult(SampleSterilizer()), kSterilizerV1);
  EXPECT_EQ(EncodeResult(SampleBowieDick()), kBowieDickTestV1);
  EXPECT_EQ(EncodeResult(SampleLoad()), kLoadV1);
  EXPECT_EQ(EncodeResult(SampleLookBack()), kLookBackV2);
  EXPECT_EQ(EncodeResult(SampleBiOutcome()), kBiOutcomeV2);
  EXPECT_EQ(EncodeResult(SampleEvent()), kEventV1);
  EXPECT_EQ(EncodeResult(SampleParLevel()), kParLevelV1);
  EXPECT_EQ(EncodeResult(SampleLot()), kLotV1);

  ExpectDecodesTo(kCartridgeV1, SampleCartridge());
  ExpectDecodesTo(kCartridgesV1, SampleCartridges());
  ExpectDecodesTo(kTreatmentV1, SampleTreatment());
  ExpectDecodesTo(kTreatmentDetailV1, SampleTreatmentDetail());
  ExpectDecodesTo(kRecallResultV1, SampleRecallResult());
  ExpectDecodesTo(kItemV1, SampleItem());
  ExpectDecodesTo(kSterilizerV1, SampleSterilizer());
  ExpectDecodesTo(kBowieDickTestV1, SampleBowieDick());
  ExpectDecodesTo(kLoadV1, SampleLoad());
  ExpectDecodesTo(kLookBackV2, SampleLookBack());
  ExpectDecodesTo(kBiOutcomeV2, SampleBiOutcome());
  ExpectDecodesTo(kEventV1, SampleEvent());
  ExpectDecodesTo(kParLevelV1, SampleParLevel());
  ExpectDecodesTo(kLotV1, SampleLot());
}

TEST(ResultCodecTest, ATaggedVersion1LookBackStillDecodes) {
  const std::string tagged =
      StrCat("11:look_back/1", kUntaggedLookBackV1.substr(std::string_view("2:r1").size()));
  LookBack expected = SampleLookBack();
  expected.bowie_dick_passed_today = false;
  ExpectDecodesTo(tagged, expected);
}

TEST(ResultCodecTest, AnAnswerOfAnotherTypeIsAClearError) {
  absl::StatusOr<Load> load = DecodeResult<Load>(kCartridgeV1);
  EXPECT_THAT(load, IsRefused(absl::StatusCode::kDataLoss, "STORED_ANSWER_WRONG_TYPE"));
  EXPECT_EQ(MetaOf(load.status(), "type"), "cartridge");
  EXPECT_EQ(MetaOf(load.status(), "expected_type"), "load");
  EXPECT_THAT(load.status().message(), ::testing::HasSubstr("is a cartridge, not a load"));
}

TEST(ResultCodecTest, AVersionNewerThanThisServerKnowsIsAClearError) {
  const std::string v3 =
      StrCat("11:look_back/3", kLookBackV2.substr(std::string_view("11:look_back/2").size()));
  absl::StatusOr<LookBack> newer = DecodeResult<LookBack>(v3);
  EXPECT_THAT(newer,
              IsRefused(absl::StatusCode::kFailedPrecondition, "STORED_ANSWER_VERSION_UNKNOWN"));
  EXPECT_EQ(MetaOf(newer.status(), "version"), "3");
  EXPECT_EQ(MetaOf(newer.status(), "max_version"), "2");
  EXPECT_THAT(DecodeResult<ReusableItem>("6:item/x"),
              IsRefused(absl::StatusCode::kFailedPrecondition, "STORED_ANSWER_VERSION_UNKNOWN"));
  EXPECT_THAT(DecodeResult<Cartridge>("2:r2"),
              IsRefused(absl::StatusCode::kDataLoss, "STORED_ANSWER_UNREADABLE"));
}

TEST(ResultCodecTest, TruncatedOrTrailingBytesAreDataLoss) {
  EXPECT_THAT(DecodeResult<Load>(kLoadV1.substr(0, kLoadV1.size() - 3)),
              IsRefused(absl::StatusCode::kDataLoss, "STORED_ANSWER_UNREADABLE"));
  EXPECT_THAT(DecodeResult<Load>(StrCat(kLoadV1, "1:x")),
              IsRefused(absl::StatusCode::kDataLoss, "STORED_ANSWER_UNREADABLE"));
  // A version 2 look-back cut back to version 1's length lacks its last field.
  const std::string cut = StrCat("11:look_back/2", kUntaggedLookBackV1.substr(4));
  EXPECT_THAT(DecodeResult<LookBack>(cut),
              IsRefused(absl::StatusCode::kDataLoss, "STORED_ANSWER_UNREADABLE"));
}

// A retry across an upgrade: the first answer was stored by the version before tags.
TEST(ResultCodecTest, ARetryAfterAnUpgradeGetsTheAnswerTheOldVersionStored) {
  FakeStore store;
  FakeClock clock(absl::FromUnixSeconds(1796000000));
  {
    std::unique_ptr<WriteTransaction> tx = *store.BeginWrite();
    ASSERT_TRUE(tx->audit()
                    .SaveRequest(StoredRequest{.request_id = "req-1",
                                               .operation = "CreateSterilizer",
                                               .fingerprint = "AUTOCLAVE1|GRAVITY",
                                               .response = std::string(kUntaggedSterilizerV1),
                                               .at = clock.Now()})
                    .ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  SterilizationService service({.store = &store, .sha256 = TestSha256(), .clock = &clock});
  absl::StatusOr<Sterilizer> replayed =
      service.CreateSterilizer(WriteContext{.actor = "spd.ana", .request_id = "req-1"},
                               "AUTOCLAVE1", SterilizerType::kGravity);
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  ExpectSame(*replayed, SampleSterilizer());
  EXPECT_TRUE(store.Snapshot().sterilizers.empty());  // nothing ran twice
}

}  // namespace
}  // namespace steritrack

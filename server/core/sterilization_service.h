// SterilizationService: the rules for reusable equipment (PRODUCT.md rules 5-8).
//
// Items, sterilisers, loads with parameters and indicators, release with an electronic signature,
// Bowie-Dick tests, positive-BI look-back and return to service. Plain C++ over the Store interface
// with an injected Clock; every write is one transaction and idempotent under a request id (same
// mechanism as CartridgeService). Thread-safe.
//
// Refusals are FAILED_PRECONDITION with an ErrorInfo reason (a contract):
//   using an item (rule 5): ITEM_NOT_STERILE, ITEM_LOAD_NOT_RELEASED, ITEM_SHELF_LIFE_EXPIRED,
//     ITEM_CYCLE_LIMIT_REACHED (more loads than its IFU maximum), ITEM_MAINTENANCE_OVERDUE,
//     ITEM_QUARANTINED, ITEM_IN_OPEN_LOAD, TREATMENT_ENDED; for a scanned pack label also
//     PACK_LABEL_UNKNOWN_LOAD (it names no load that held the item: unknown steriliser, cycle or
//     day, or no cycle at all) and PACK_LABEL_NOT_CURRENT (a load of the item, but not the one that
//     last made it sterile: an old pack);
//   packing and retiring an item: ITEM_ALREADY_PACKED, ITEM_IN_OPEN_LOAD, ITEM_RETIRED,
//     ITEM_OUT_OF_SERVICE;
//   loads: ITEM_CYCLE_LIMIT_REACHED (an item rated for N cycles already went through N loads),
//     STERILIZER_OUT_OF_SERVICE, BOWIE_DICK_REQUIRED (pre-vacuum, no passing test today),
//     CYCLE_NUMBER_NOT_RISING, ITEM_NOT_PACKED, LOAD_NOT_OPEN, RESULT_ALREADY_RECORDED (a second,
//     different value), LOAD_PARAMETERS_MISSING, LOAD_PARAMETERS_FAILED, LOAD_CI_MISSING,
//     LOAD_CI_FAILED, LOAD_BI_MISSING, LOAD_BI_POSITIVE, LOAD_BI_CONTROL_FAILED;
//   ALREADY_EXISTS: ITEM_EXISTS, STERILIZER_EXISTS, CYCLE_NUMBER_EXISTS;
//   NOT_FOUND: ITEM_NOT_FOUND, STERILIZER_NOT_FOUND, LOAD_NOT_FOUND, TREATMENT_NOT_FOUND;
//   INVALID_ARGUMENT naming the field for impossible values (reason INVALID_FIELD).
#ifndef STERITRACK_SERVER_CORE_STERILIZATION_SERVICE_H_
#define STERITRACK_SERVER_CORE_STERILIZATION_SERVICE_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/cartridge_service.h"
#include "steritrack/sha256.h"
#include "steritrack/sterilization.h"

namespace steritrack {

struct NewItem {
  std::string serial;          // 1..20 characters of GS1 set 82
  std::string type;            // 1..64
  int32_t ifu_max_cycles = 0;  // 1..100000
  std::optional<absl::CivilDay> maintenance_due;
};

struct NewLoad {
  std::string sterilizer;  // name
  int64_t cycle_number = 0;
  std::string cycle_type;                 // 1..32, e.g. "134C-4MIN"
  std::vector<std::string> item_serials;  // packed items; empty only for a test cycle
  bool test_cycle = false;                // a BI test cycle (no contents); always held for its BI
  bool bi_required = false;
  int32_t shelf_life_days = 0;  // 0: 30 days; at most 3650
};

// Everything a look-back reports: the loads, and for each item of them every treatment that used
// it.
struct LookBackEntry {
  int64_t load_id = 0;
  std::string item_serial;
  Treatment treatment;  // room, clinician, client reference, start
  absl::Time used_at;
};

struct LookBack {
  std::vector<Load> loads;
  std::vector<LookBackEntry> entries;
  std::optional<Sterilizer> sterilizer;  // set after a positive BI: now out of service
  // With `sterilizer`: whether it has a passing Bowie-Dick test today (gravity: always), as of the
  // answer (a repeated request gets the first answer's value).
  bool bowie_dick_passed_today = false;
};

struct BiOutcome {
  Load load;
  std::optional<LookBack> look_back;  // set when the BI was positive
};

// An item as the edges show it: the record, the load it last went through, and the text of its
// pack's lot-control label, so no edge reads the load itself or formats the label.
struct ItemView {
  ReusableItem item;
  std::optional<Load> last_load;   // item.load_id's load; nullopt before its first load
  std::string label;               // ItemLabel of the pack; empty without a load
  std::string lot_control_number;  // LotControlNumber of last_load; empty without a load
  std::vector<Event> history;      // GetItemView only: the item's events, oldest first
};

// A steriliser with the verdicts the edges show (rules 7 and 8).
struct SterilizerView {
  Sterilizer sterilizer;
  // Rule 8: a load may start today as far as Bowie-Dick goes (pre-vacuum: today's latest test
  // passed; gravity: always, it needs none).
  bool bowie_dick_passed_today = false;
  // Rule 7: how many consecutive negative BI test cycles return it to service, and how many more
  // it needs now (0 in service).
  int32_t negative_tests_required = 0;
  int32_t negative_tests_to_return = 0;
};

struct SterilizationServiceOptions {
  Store* store = nullptr;  // REQUIRES: non-null, outlives the service
  // The audit trail's hash function (steritrack/sha256.h). REQUIRES: non-null, outlives the
  // service.
  const Sha256* sha256 = nullptr;
  const Clock* clock = nullptr;  // REQUIRES: non-null, outlives the service
  absl::TimeZone clinic_time_zone = absl::UTCTimeZone();  // "that day" for Bowie-Dick
  // Told after every committed write (the event stream waits on it). Optional; outlives the
  // service.
  CommitNotifier* commits = nullptr;
};

class SterilizationService {
 public:
  explicit SterilizationService(SterilizationServiceOptions options);

  // Items. A new item starts DIRTY: it must be processed before its first use.
  absl::StatusOr<ReusableItem> CreateItem(const WriteContext& ctx, const NewItem& item);
  // DIRTY or IN_USE (back from the treatment room) -> PACKED; also STERILE (shelf life ran out,
  // pack opened) and QUARANTINED (its load was quarantined or recalled): reprocessing is the way
  // back.
  absl::StatusOr<ReusableItem> PackItem(const WriteContext& ctx, std::string_view serial);
  // Rule 5. STERILE -> IN_USE bound to the treatment; CartridgeService::EndTreatment makes it
  // DIRTY.
  absl::StatusOr<ReusableItem> UseItem(const WriteContext& ctx, std::string_view serial_or_label,
                                       int64_t treatment_id);
  absl::StatusOr<ReusableItem> RetireItem(const WriteContext& ctx, std::string_view serial,
                                          std::string_view reason);

  // Sterilisers and Bowie-Dick (rule 8).
  absl::StatusOr<Sterilizer> CreateSterilizer(const WriteContext& ctx, std::string_view name,
                                              SterilizerType type);
  absl::StatusOr<BowieDickTest> RecordBowieDickTest(const WriteContext& ctx,
                                                    std::string_view sterilizer,
                                                    IndicatorResult result);

  // Views for the edges, each built in one read transaction: Get/List read the records and
  // everything the view needs together; *ViewOf completes a record a write just returned.
  // `serial_or_label`: the item's serial or a scan of its lot-control label (see ItemLabel).
  absl::StatusOr<ItemView> GetItemView(std::string_view serial_or_label);
  absl::StatusOr<Page<ItemView>> ListItemViews(const PageRequest& page,
                                               std::optional<ItemState> state);
  absl::StatusOr<ItemView> ItemViewOf(ReusableItem item);
  absl::StatusOr<SterilizerView> GetSterilizerView(std::string_view name);
  // Filters: a type (nullopt: any), and only those out of service.
  absl::StatusOr<Page<SterilizerView>> ListSterilizerViews(
      const PageRequest& page, std::optional<SterilizerType> type = std::nullopt,
      bool out_of_service_only = false);
  absl::StatusOr<SterilizerView> SterilizerViewOf(Sterilizer sterilizer);

  // Loads (rules 6-8).
  absl::StatusOr<Load> CreateLoad(const WriteContext& ctx, const NewLoad& load);
  absl::StatusOr<Load> GetLoad(int64_t id);
  absl::StatusOr<Page<Load>> ListLoads(const PageRequest& page, std::string_view sterilizer,
                                       std::optional<ReleaseState> state);
  absl::StatusOr<Load> RecordParameters(const WriteContext& ctx, int64_t load_id,
                                        const CycleParameters& parameters);
  absl::StatusOr<Load> RecordChemicalIndicator(const WriteContext& ctx, int64_t load_id,
                                               int32_t type, IndicatorResult result);
  absl::StatusOr<BiOutcome> RecordBiologicalIndicator(const WriteContext& ctx, int64_t load_id,
                                                      const BiologicalIndicator& bi);
  absl::StatusOr<Load> ReleaseLoad(const WriteContext& ctx, int64_t load_id,
                                   std::string_view meaning);
  absl::StatusOr<Load> QuarantineLoad(const WriteContext& ctx, int64_t load_id,
                                      std::string_view reason);
  absl::StatusOr<LookBack> RecallLoad(const WriteContext& ctx, int64_t load_id,
                                      std::string_view reason);
  // The load's items and the treatments that used them; for a load whose BI was positive, the
  // whole rule-7 look-back (every load it put in doubt, and the steriliser) as of that BI's
  // reading.
  absl::StatusOr<LookBack> GetLookBack(int64_t load_id);

 private:
  Store* const store_;
  const Clock* const clock_;
  const Sha256* const sha256_;
  const absl::TimeZone zone_;
  CommitNotifier* const commits_;
};

// Rule 6, the one place it is written: what stands between `load` and its release, in the order
// release checks them. Empty: the load may be released. ReleaseLoad refuses with the first finding;
// the compliance report lists them all (the schema's trigger stays as a last guard).
struct LoadFinding {
  // LOAD_PARAMETERS_MISSING, LOAD_PARAMETERS_FAILED, LOAD_CI_MISSING, LOAD_CI_FAILED,
  // LOAD_BI_MISSING, LOAD_BI_POSITIVE or LOAD_BI_CONTROL_FAILED.
  std::string reason;
  std::string message;   // plain words naming the load
  std::string result;    // the result concerned, e.g. "parameters", "CI type 4", "BI positive"
  bool missing = false;  // not recorded yet; else recorded and not passing
  std::map<std::string, std::string> facts;  // the load's, and e.g. the CI type
};
std::vector<LoadFinding> LoadReleaseFindings(const Load& load);

// The lot-control label of a pack: GS1 element string in bracketed form,
// (8004)<item serial>(10)<steriliser>-<cycle number>(11)<YYMMDD of the load>, so a scanner in room
// mode identifies the item and the label shows the load.
std::string ItemLabel(const ReusableItem& item, const Load& load, absl::TimeZone zone);
// Lot-control number of a load: "<steriliser>/<cycle number>/<YYYY-MM-DD>".
std::string LotControlNumber(const Load& load, absl::TimeZone zone);
// Whether a BI reading proves anything: only when its unprocessed control grew (POSITIVE). A
// negative BI with a failed control must be repeated (LOAD_BI_CONTROL_FAILED at release). The one
// definition: release's findings, rule 7's counting and the edges all ask this.
bool IsBiReadingValid(const BiologicalIndicator& bi);

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_STERILIZATION_SERVICE_H_

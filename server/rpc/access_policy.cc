#include "server/rpc/access_policy.h"

#include <algorithm>
#include <array>

#include "steritrack/strings.h"

namespace steritrack::rpc {
namespace {

constexpr RoleSet kNurse = Roles({Role::kNurse});
constexpr RoleSet kSpd = Roles({Role::kSterileProcessing});
constexpr RoleSet kManager = Roles({Role::kManager});
constexpr RoleSet kIntegrator = Roles({Role::kIntegrator});
constexpr RoleSet kAdmin = Roles({Role::kAdmin});
constexpr RoleSet kEveryone = kNurse | kSpd | kManager | kIntegrator | kAdmin;

// Reads open to every role but the ones named elsewhere.
constexpr RoleSet kAllReads = kEveryone;  // cartridges, lots, items: nurses read them too
constexpr RoleSet kEquipmentReads = kSpd | kManager | kIntegrator | kAdmin;
constexpr RoleSet kClinicalReads = kNurse | kManager | kIntegrator | kAdmin;  // treatments

#define M(service, method) "/steritrack.v1." service "/" method

// The matrix. Keep it sorted by method (checked at compile time below).
constexpr std::array kPolicy = std::to_array<MethodAccess>({
    {M("AdminService", "Backup"), kAdmin},
    {M("AdminService", "CreateToken"), kAdmin},
    {M("AdminService", "GetStatus"), kAdmin},
    {M("AdminService", "ListTokens"), kAdmin},
    {M("AdminService", "RevokeToken"), kAdmin},
    {M("AdminService", "WhoAmI"), kEveryone},
    {M("AuditService", "CorrectAuditEntry"), kManager | kAdmin},
    {M("AuditService", "ListAuditEntries"), kManager | kAdmin},
    {M("AuditService", "VerifyAuditTrail"), kManager | kAdmin},
    {M("EventService", "WatchEvents"), kIntegrator | kAdmin},
    {M("ExportService", "ExportEpcis"), kManager | kIntegrator | kAdmin},
    {M("ExportService", "ExportFhir"), kManager | kIntegrator | kAdmin},
    {M("InventoryService", "ClearParLevel"), kManager | kAdmin},
    {M("InventoryService", "DiscardCartridge"), kSpd | kManager | kAdmin},
    {M("InventoryService", "GetCartridge"), kAllReads},
    {M("InventoryService", "GetLot"), kAllReads},
    {M("InventoryService", "LiftLotQuarantine"), kManager | kAdmin},
    {M("InventoryService", "ListCartridges"), kAllReads},
    {M("InventoryService", "ListLots"), kAllReads},
    {M("InventoryService", "ListStockLevels"), kSpd | kManager | kIntegrator | kAdmin},
    {M("InventoryService", "QuarantineLot"), kManager | kAdmin},
    {M("InventoryService", "RecallLot"), kManager | kAdmin},
    {M("InventoryService", "ReceiveCartridges"), kSpd | kManager | kAdmin},
    {M("InventoryService", "SetParLevel"), kManager | kAdmin},
    {M("ReportService", "GetComplianceReport"), kManager | kAdmin},
    {M("ReportService", "GetLotLookBack"), kManager | kAdmin},
    {M("ReportService", "GetStock"), kSpd | kManager | kIntegrator | kAdmin},
    {M("SterilizationService", "CreateItem"), kSpd | kAdmin},
    {M("SterilizationService", "CreateLoad"), kSpd | kAdmin},
    {M("SterilizationService", "CreateSterilizer"), kSpd | kAdmin},
    {M("SterilizationService", "GetItem"), kAllReads},
    {M("SterilizationService", "GetLoad"), kEquipmentReads},
    {M("SterilizationService", "GetLoadLookBack"), kSpd | kManager | kAdmin},
    {M("SterilizationService", "GetSterilizer"), kEquipmentReads},
    {M("SterilizationService", "ListItems"), kAllReads},
    {M("SterilizationService", "ListLoads"), kEquipmentReads},
    {M("SterilizationService", "ListSterilizers"), kEquipmentReads},
    {M("SterilizationService", "PackItem"), kSpd | kAdmin},
    {M("SterilizationService", "QuarantineLoad"), kManager | kAdmin},
    {M("SterilizationService", "RecallLoad"), kManager | kAdmin},
    {M("SterilizationService", "RecordBiologicalIndicator"), kSpd | kAdmin},
    {M("SterilizationService", "RecordBowieDickTest"), kSpd | kAdmin},
    {M("SterilizationService", "RecordChemicalIndicator"), kSpd | kAdmin},
    {M("SterilizationService", "RecordCycleParameters"), kSpd | kAdmin},
    {M("SterilizationService", "ReleaseLoad"), kSpd | kAdmin},
    {M("SterilizationService", "RetireItem"), kSpd | kAdmin},
    {M("SterilizationService", "UseItem"), kNurse | kAdmin},
    {M("TreatmentService", "DisposeCartridge"), kNurse | kAdmin},
    {M("TreatmentService", "EndTreatment"), kNurse | kIntegrator | kAdmin},
    {M("TreatmentService", "GetTreatment"), kClinicalReads},
    {M("TreatmentService", "ListTreatments"), kClinicalReads},
    {M("TreatmentService", "OpenCartridge"), kNurse | kAdmin},
    {M("TreatmentService", "StartTreatment"), kNurse | kIntegrator | kAdmin},
});

#undef M

constexpr bool SortedAndUnique() {
  for (size_t i = 1; i < kPolicy.size(); ++i) {
    if (!(kPolicy[i - 1].method < kPolicy[i].method)) return false;
  }
  return true;
}
static_assert(SortedAndUnique(), "kPolicy must be sorted by method, each method once");

constexpr bool AdminMayCallEverything() {
  for (const MethodAccess& m : kPolicy) {
    if (!Contains(m.roles, Role::kAdmin)) return false;
  }
  return true;
}
static_assert(AdminMayCallEverything(), "admin may call every method in the table");

}  // namespace

std::span<const MethodAccess> AccessPolicy() { return kPolicy; }

bool MayCall(Role role, std::string_view method) {
  auto it = std::lower_bound(
      kPolicy.begin(), kPolicy.end(), method,
      [](const MethodAccess& m, std::string_view name) { return m.method < name; });
  return it != kPolicy.end() && it->method == method && Contains(it->roles, role);
}

std::string AccessMatrixMarkdown() {
  std::string out = "| Method |";
  for (Role r : kAllRoles) StrAppend(&out, " ", RoleName(r), " |");
  out += "\n|---|";
  for (size_t i = 0; i < kAllRoles.size(); ++i) out += ":-:|";
  out += "\n";
  for (const MethodAccess& m : kPolicy) {
    StrAppend(&out, "| `", m.method.substr(m.method.find(".v1.") + 4), "` |");
    for (Role r : kAllRoles) StrAppend(&out, Contains(m.roles, r) ? " yes |" : " |");
    out += "\n";
  }
  return out;
}

}  // namespace steritrack::rpc

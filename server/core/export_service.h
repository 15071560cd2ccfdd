// ExportService: the record in two standards other clinic systems speak (issue 14).
//
// - HL7 FHIR R4, for an EHR: one Bundle (type "collection") per treatment with its Procedure, a
//   Device per cartridge opened (focalDevice, with its GS1 UDI) and per reusable item used
//   (usedReference, with its load's lot-control number and release), and a Provenance whose
//   entities are the treatment's audit entries. The client appears only as the clinic's
//   pseudonymous reference, an identifier in a configurable system.
// - GS1 EPCIS 2.0, for a supply chain: one EPCISDocument (JSON-LD) with an ObjectEvent for every
//   cartridge receipt, opening, disposal and write-off and every lot recall recorded in a period.
//   Each event's eventID is a UUID made from its audit entry's hash, and it names the entry's
//   sequence ("steritrack:auditSequence").
//
// Read-only views of the audit trail and the records it proves: nothing here writes, and every
// byte comes from stored records. A period is closed kClosedAfter past its end; until then it is
// exported as it stands now. A closed period is exported as it stood at its end (a treatment
// ended or a cartridge disposed after it shows as in progress or open), so it gives the same bytes
// every time; an EPCIS document's creationDate is then the period's end.
//
// Bounded memory: a period is read in pages, each in its own read transaction, and handed to the
// caller page by page; no transaction is held while the caller writes to its client. Plain C++ and
// absl. Thread-safe: any number of threads may call any method.
#ifndef STERITRACK_SERVER_CORE_EXPORT_SERVICE_H_
#define STERITRACK_SERVER_CORE_EXPORT_SERVICE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "steritrack/clock.h"
#include "steritrack/sha256.h"
#include "steritrack/store.h"

namespace steritrack {

// The identifier system of client references in FHIR (Procedure.subject.identifier.system) is
// "<site_uri>/client-ref" unless configured: each clinic's references stay apart in an EHR.
inline constexpr std::string_view kClientRefSuffix = "/client-ref";
// The clinic site: the EPCIS readPoint of what happens at the site (receipts, write-offs,
// recalls), and the base of each room's ("<site>/room/<room>"); FHIR identifiers live under it.
inline constexpr std::string_view kDefaultSiteUri = "urn:steritrack:site:default";
// The JSON-LD namespace of steritrack's own EPCIS fields, prefix "steritrack".
inline constexpr std::string_view kEpcisNamespace = "urn:steritrack:epcis:";

// One treatment's FHIR Bundle.
struct FhirBundle {
  int64_t treatment_id = 0;
  std::string json;                 // one line, UTF-8
  std::vector<int64_t> audit_seqs;  // the entries the Provenance names, by seq
};

struct EpcisExportSummary {
  int64_t events = 0;
  int64_t first_seq = 0;  // smallest audit seq of an event; 0: none
  int64_t last_seq = 0;   // largest
  int64_t size_bytes = 0;
};

struct ExportServiceOptions {
  Store* store = nullptr;          // REQUIRES: non-null, outlives the service
  const Sha256* sha256 = nullptr;  // names the FHIR resources' UUIDs. REQUIRES: non-null, outlives
  const Clock* clock = nullptr;    // REQUIRES: non-null, outlives the service
  absl::TimeZone clinic_time_zone = absl::UTCTimeZone();
  // REQUIRES: CheckExportUri accepts both (client_ref_system may be empty:
  // "<site_uri>/client-ref").
  std::string client_ref_system;
  std::string site_uri = std::string(kDefaultSiteUri);
  // Treatments (FHIR) or audit entries (EPCIS) read per page. REQUIRES: >= 1.
  int page_size = 256;
};

// OK when `uri` can stand as a FHIR system or an EPCIS location and be the base of others
// ("<uri>/room/3"): an absolute URI (a scheme, ':', then at least one character) of at most 200
// characters without spaces, quotes, control characters, '?' or '#', not ending in '/'; else
// INVALID_ARGUMENT naming `key`.
absl::Status CheckExportUri(std::string_view key, std::string_view uri);

class ExportService {
 public:
  explicit ExportService(ExportServiceOptions options);

  // An entry's time is taken when its write begins; it commits a moment later. A period is
  // treated as closed only this long after its end.
  static constexpr absl::Duration kClosedAfter = absl::Minutes(5);

  ExportService(const ExportService&) = delete;
  ExportService& operator=(const ExportService&) = delete;

  // NOT_FOUND (TREATMENT_NOT_FOUND) for an unknown treatment.
  absl::StatusOr<FhirBundle> FhirBundleFor(int64_t treatment_id);
  // Calls `emit` with the Bundle of every treatment started in [from, to), clinic days, by start
  // time; stops at the first error `emit` returns and returns it. INVALID_ARGUMENT as
  // ReportService::CheckPeriod.
  absl::Status FhirBundlesFor(absl::CivilDay from, absl::CivilDay to,
                              absl::FunctionRef<absl::Status(FhirBundle)> emit);
  // Calls `emit` with the pieces of the EPCISDocument for the entries recorded in [from, to), in
  // order, once per page read (a piece may be empty); their concatenation is the document. Stops
  // at the first error `emit` returns.
  absl::StatusOr<EpcisExportSummary> EpcisDocumentFor(
      absl::CivilDay from, absl::CivilDay to,
      absl::FunctionRef<absl::Status(std::string_view)> emit);

 private:
  // The Bundle of `treatment` as it stood before `as_of` (InfiniteFuture: as it stands).
  absl::StatusOr<FhirBundle> BuildBundle(ReadTransaction& tx, const Treatment& treatment,
                                         absl::Time as_of) const;
  // Appends the ObjectEvent of `entry` to `out` (with a leading comma unless `first`); false when
  // the entry's action has no EPCIS event.
  absl::StatusOr<bool> AppendEpcisEvent(ReadTransaction& tx, const Event& entry, bool first,
                                        std::string* out) const;
  // The URI of the site the calling thread acts on (steritrack/site.h): site_uri for the default
  // site, "<site_uri>/site/<id>" for another of the chain, so that two clinics' treatment 5 are
  // two resources; and the client-reference system under it (or the configured one, likewise).
  std::string SiteUri() const;
  std::string ClientRefSystem() const;
  // "urn:uuid:..." named by `name` within this site: the same name, the same UUID.
  std::string ResourceUuid(std::string_view name) const;
  std::string RoomUri(std::string_view room) const;

  Store* const store_;
  const Sha256* const sha256_;
  const Clock* const clock_;
  const absl::TimeZone zone_;
  const std::string client_ref_system_;  // configured; empty: "<site uri>/client-ref"
  const std::string site_uri_;           // the default site's
  const int page_size_;
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_CORE_EXPORT_SERVICE_H_

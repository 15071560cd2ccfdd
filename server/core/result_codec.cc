#include "server/core/result_codec.h"

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <system_error>

#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

// Every answer opens with a header field "<type tag>/<version>". Answers written before types
// carried tags open with "r1" instead, which is version 1 of whichever type is asked for. A
// version number counts layouts of the type's body: a new field is a new version, and every
// version ever written stays decodable (tests/core/result_codec_test.cc holds their bytes).
constexpr std::string_view kUntaggedVersion1 = "r1";

class Writer {
 public:
  explicit Writer(std::string_view header) { Put(header); }
  void Put(std::string_view s) { StrAppend(&out_, s.size(), ":", s); }
  void Put(int64_t v) { Put(std::string_view(StrCat(v))); }
  void Put(int32_t v) { Put(int64_t{v}); }
  void Put(bool v) { Put(int64_t{v ? 1 : 0}); }
  // Shortest form that reads back to the same double.
  void Put(double v) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    Put(std::string_view(buf, ec == std::errc() ? static_cast<size_t>(end - buf) : 0));
  }
  void Put(absl::Time t) {
    if (t == absl::InfinitePast()) {
      Put(std::string_view("-"));
    } else {
      Put(absl::ToUnixMicros(t));
    }
  }
  void Put(absl::CivilDay d) { Put(std::string_view(absl::FormatCivilTime(d))); }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_ && in_.empty(); }

  void Get(std::string& s) {
    size_t colon = in_.find(':');
    size_t n = 0;
    if (!ok_ || colon == std::string_view::npos ||
        std::from_chars(in_.data(), in_.data() + colon, n).ec != std::errc() ||
        colon + 1 + n > in_.size()) {
      ok_ = false;
      return;
    }
    s.assign(in_.substr(colon + 1, n));
    in_.remove_prefix(colon + 1 + n);
  }
  void Get(int64_t& v) {
    std::string s;
    Get(s);
    if (ok_ && std::from_chars(s.data(), s.data() + s.size(), v).ec != std::errc()) ok_ = false;
  }
  void Get(int32_t& v) {
    int64_t i = 0;
    Get(i);
    if (i < std::numeric_limits<int32_t>::min() || i > std::numeric_limits<int32_t>::max()) {
      ok_ = false;
    }
    v = static_cast<int32_t>(i);
  }
  void Get(double& v) {
    std::string s;
    Get(s);
    if (ok_ && std::from_chars(s.data(), s.data() + s.size(), v).ec != std::errc()) ok_ = false;
  }
  void Get(bool& v) {
    int64_t i = 0;
    Get(i);
    v = i != 0;
  }
  void Get(absl::Time& t) {
    std::string s;
    Get(s);
    if (s == "-") {
      t = absl::InfinitePast();
      return;
    }
    int64_t micros = 0;
    if (ok_ && std::from_chars(s.data(), s.data() + s.size(), micros).ec != std::errc())
      ok_ = false;
    t = absl::FromUnixMicros(micros);
  }
  void Get(absl::CivilDay& d) {
    std::string s;
    Get(s);
    if (ok_ && !absl::ParseCivilTime(s, &d)) ok_ = false;
  }
  template <typename E>
  void GetEnum(E& e) {
    int64_t i = 0;
    Get(i);
    e = static_cast<E>(i);
  }

 private:
  std::string_view in_;
  bool ok_ = true;
};

void Put(Writer& w, const Lot& lot) {
  w.Put(lot.id);
  w.Put(lot.gtin);
  w.Put(lot.lot);
  w.Put(lot.expiry);
  w.Put(static_cast<int64_t>(lot.state));
  w.Put(lot.state_reason);
  w.Put(lot.state_changed_by);
  w.Put(lot.state_changed_at);
  w.Put(lot.created_at);
  w.Put(lot.expired);
}

void Get(Reader& r, Lot& lot) {
  r.Get(lot.id);
  r.Get(lot.gtin);
  r.Get(lot.lot);
  r.Get(lot.expiry);
  r.GetEnum(lot.state);
  r.Get(lot.state_reason);
  r.Get(lot.state_changed_by);
  r.Get(lot.state_changed_at);
  r.Get(lot.created_at);
  r.Get(lot.expired);
}

void Put(Writer& w, const Cartridge& c) {
  w.Put(c.id);
  w.Put(c.gtin);
  w.Put(c.serial);
  Put(w, c.lot);
  w.Put(static_cast<int64_t>(c.state));
  w.Put(c.received_at);
  w.Put(c.received_by);
  w.Put(c.use.has_value());
  if (c.use) {
    w.Put(c.use->treatment_id);
    w.Put(c.use->room);
    w.Put(c.use->at);
    w.Put(c.use->by);
  }
  w.Put(c.disposal.has_value());
  if (c.disposal) {
    w.Put(c.disposal->container_id);
    w.Put(c.disposal->at);
    w.Put(c.disposal->by);
  }
  w.Put(c.discard.has_value());
  if (c.discard) {
    w.Put(c.discard->reason);
    w.Put(c.discard->at);
    w.Put(c.discard->by);
  }
}

void Get(Reader& r, Cartridge& c) {
  r.Get(c.id);
  r.Get(c.gtin);
  r.Get(c.serial);
  Get(r, c.lot);
  r.GetEnum(c.state);
  r.Get(c.received_at);
  r.Get(c.received_by);
  bool has = false;
  r.Get(has);
  if (has) {
    c.use.emplace();
    r.Get(c.use->treatment_id);
    r.Get(c.use->room);
    r.Get(c.use->at);
    r.Get(c.use->by);
  }
  r.Get(has);
  if (has) {
    c.disposal.emplace();
    r.Get(c.disposal->container_id);
    r.Get(c.disposal->at);
    r.Get(c.disposal->by);
  }
  r.Get(has);
  if (has) {
    c.discard.emplace();
    r.Get(c.discard->reason);
    r.Get(c.discard->at);
    r.Get(c.discard->by);
  }
}

void Put(Writer& w, const std::vector<Cartridge>& v) {
  w.Put(static_cast<int64_t>(v.size()));
  for (const Cartridge& c : v) Put(w, c);
}

void Get(Reader& r, std::vector<Cartridge>& v) {
  int64_t n = 0;
  r.Get(n);
  if (n < 0 || n > 100000) n = 0;
  v.resize(static_cast<size_t>(n));
  for (Cartridge& c : v) Get(r, c);
}

void Put(Writer& w, const Treatment& t) {
  w.Put(t.id);
  w.Put(t.room);
  w.Put(t.clinician);
  w.Put(t.client_ref);
  w.Put(t.started_at);
  w.Put(t.started_by);
  w.Put(t.ended_at.has_value());
  if (t.ended_at) w.Put(*t.ended_at);
  w.Put(t.ended_by);
}

void Get(Reader& r, Treatment& t) {
  r.Get(t.id);
  r.Get(t.room);
  r.Get(t.clinician);
  r.Get(t.client_ref);
  r.Get(t.started_at);
  r.Get(t.started_by);
  bool has = false;
  r.Get(has);
  if (has) {
    t.ended_at.emplace();
    r.Get(*t.ended_at);
  }
  r.Get(t.ended_by);
}

void Put(Writer& w, const TreatmentDetail& d) {
  Put(w, d.treatment);
  Put(w, d.cartridges);
}
void Get(Reader& r, TreatmentDetail& d) {
  Get(r, d.treatment);
  Get(r, d.cartridges);
}
void Put(Writer& w, const RecallResult& d) {
  Put(w, d.lot);
  Put(w, d.opened);
}
void Get(Reader& r, RecallResult& d) {
  Get(r, d.lot);
  Get(r, d.opened);
}

void Put(Writer& w, const ParLevel& p) {
  w.Put(p.gtin);
  w.Put(p.min_units);
  w.Put(int64_t{p.expiry_window_days});
  w.Put(p.below_par);
  w.Put(p.set_at);
  w.Put(p.set_by);
}
void Get(Reader& r, ParLevel& p) {
  r.Get(p.gtin);
  r.Get(p.min_units);
  int64_t window = 0;
  r.Get(window);
  p.expiry_window_days = static_cast<int>(window);
  r.Get(p.below_par);
  r.Get(p.set_at);
  r.Get(p.set_by);
}

// Optional values: a presence flag, then the value.
template <typename T, typename PutValue>
void PutOptional(Writer& w, const std::optional<T>& v, PutValue put) {
  w.Put(v.has_value());
  if (v) put(*v);
}
template <typename T, typename GetValue>
void GetOptional(Reader& r, std::optional<T>& v, GetValue get) {
  bool has = false;
  r.Get(has);
  v.reset();
  if (has) get(v.emplace());
}

// Repeated values: a count, then each value.
template <typename T, typename PutValue>
void PutVector(Writer& w, const std::vector<T>& v, PutValue put) {
  w.Put(static_cast<int64_t>(v.size()));
  for (const T& e : v) put(e);
}
template <typename T, typename GetValue>
void GetVector(Reader& r, std::vector<T>& v, GetValue get) {
  int64_t n = 0;
  r.Get(n);
  if (n < 0 || n > 100000) n = 0;
  v.resize(static_cast<size_t>(n));
  for (T& e : v) get(e);
}

void Put(Writer& w, const ReusableItem& i) {
  w.Put(i.id);
  w.Put(i.serial);
  w.Put(i.type);
  w.Put(i.ifu_max_cycles);
  w.Put(i.cycles);
  PutOptional(w, i.maintenance_due, [&](absl::CivilDay d) { w.Put(d); });
  w.Put(static_cast<int64_t>(i.state));
  w.Put(i.load_id);
  w.Put(i.sterile_until);
  w.Put(i.treatment_id);
  w.Put(i.state_reason);
  w.Put(i.created_at);
}

void Get(Reader& r, ReusableItem& i) {
  r.Get(i.id);
  r.Get(i.serial);
  r.Get(i.type);
  r.Get(i.ifu_max_cycles);
  r.Get(i.cycles);
  GetOptional(r, i.maintenance_due, [&](absl::CivilDay& d) { r.Get(d); });
  r.GetEnum(i.state);
  r.Get(i.load_id);
  r.Get(i.sterile_until);
  r.Get(i.treatment_id);
  r.Get(i.state_reason);
  r.Get(i.created_at);
}

void Put(Writer& w, const Sterilizer& s) {
  w.Put(s.id);
  w.Put(s.name);
  w.Put(static_cast<int64_t>(s.type));
  w.Put(s.last_cycle_number);
  w.Put(s.in_service);
  w.Put(s.out_of_service_reason);
  w.Put(s.out_of_service_at);
  w.Put(s.negative_tests_since_out_of_service);
  w.Put(s.created_at);
}

void Get(Reader& r, Sterilizer& s) {
  r.Get(s.id);
  r.Get(s.name);
  r.GetEnum(s.type);
  r.Get(s.last_cycle_number);
  r.Get(s.in_service);
  r.Get(s.out_of_service_reason);
  r.Get(s.out_of_service_at);
  r.Get(s.negative_tests_since_out_of_service);
  r.Get(s.created_at);
}

void Put(Writer& w, const BowieDickTest& t) {
  w.Put(t.id);
  w.Put(t.sterilizer_id);
  w.Put(t.day);
  w.Put(static_cast<int64_t>(t.result));
  w.Put(t.operator_name);
  w.Put(t.at);
}

void Get(Reader& r, BowieDickTest& t) {
  r.Get(t.id);
  r.Get(t.sterilizer_id);
  r.Get(t.day);
  r.GetEnum(t.result);
  r.Get(t.operator_name);
  r.Get(t.at);
}

void Put(Writer& w, const CycleParameters& p) {
  w.Put(p.started_at);
  w.Put(p.ended_at);
  w.Put(p.exposure_seconds);
  w.Put(p.temperature_c);
  w.Put(p.pressure_kpa);
  w.Put(p.passed);
  w.Put(p.recorded_by);
  w.Put(p.recorded_at);
}

void Get(Reader& r, CycleParameters& p) {
  r.Get(p.started_at);
  r.Get(p.ended_at);
  r.Get(p.exposure_seconds);
  r.Get(p.temperature_c);
  r.Get(p.pressure_kpa);
  r.Get(p.passed);
  r.Get(p.recorded_by);
  r.Get(p.recorded_at);
}

void Put(Writer& w, const ChemicalIndicator& c) {
  w.Put(c.type);
  w.Put(static_cast<int64_t>(c.result));
  w.Put(c.recorded_by);
  w.Put(c.recorded_at);
}

void Get(Reader& r, ChemicalIndicator& c) {
  r.Get(c.type);
  r.GetEnum(c.result);
  r.Get(c.recorded_by);
  r.Get(c.recorded_at);
}

void Put(Writer& w, const BiologicalIndicator& b) {
  w.Put(b.product);
  w.Put(b.lot);
  w.Put(static_cast<int64_t>(b.result));
  w.Put(static_cast<int64_t>(b.control_result));
  w.Put(b.read_at);
  w.Put(b.recorded_by);
}

void Get(Reader& r, BiologicalIndicator& b) {
  r.Get(b.product);
  r.Get(b.lot);
  r.GetEnum(b.result);
  r.GetEnum(b.control_result);
  r.Get(b.read_at);
  r.Get(b.recorded_by);
}

void Put(Writer& w, const Signature& s) {
  w.Put(s.by);
  w.Put(s.at);
  w.Put(s.meaning);
}

void Get(Reader& r, Signature& s) {
  r.Get(s.by);
  r.Get(s.at);
  r.Get(s.meaning);
}

void Put(Writer& w, const Load& l) {
  w.Put(l.id);
  w.Put(l.sterilizer_id);
  w.Put(l.sterilizer_name);
  w.Put(l.cycle_number);
  w.Put(l.cycle_type);
  w.Put(l.test_cycle);
  w.Put(l.bi_required);
  w.Put(l.shelf_life_days);
  w.Put(l.operator_name);
  w.Put(l.created_at);
  PutVector(w, l.item_ids, [&](int64_t id) { w.Put(id); });
  PutVector(w, l.item_serials, [&](const std::string& s) { w.Put(s); });
  PutOptional(w, l.parameters, [&](const CycleParameters& p) { Put(w, p); });
  PutVector(w, l.chemical_indicators, [&](const ChemicalIndicator& c) { Put(w, c); });
  PutOptional(w, l.bi, [&](const BiologicalIndicator& b) { Put(w, b); });
  w.Put(static_cast<int64_t>(l.release_state));
  PutOptional(w, l.signature, [&](const Signature& s) { Put(w, s); });
}

void Get(Reader& r, Load& l) {
  r.Get(l.id);
  r.Get(l.sterilizer_id);
  r.Get(l.sterilizer_name);
  r.Get(l.cycle_number);
  r.Get(l.cycle_type);
  r.Get(l.test_cycle);
  r.Get(l.bi_required);
  r.Get(l.shelf_life_days);
  r.Get(l.operator_name);
  r.Get(l.created_at);
  GetVector(r, l.item_ids, [&](int64_t& id) { r.Get(id); });
  GetVector(r, l.item_serials, [&](std::string& s) { r.Get(s); });
  GetOptional(r, l.parameters, [&](CycleParameters& p) { Get(r, p); });
  GetVector(r, l.chemical_indicators, [&](ChemicalIndicator& c) { Get(r, c); });
  GetOptional(r, l.bi, [&](BiologicalIndicator& b) { Get(r, b); });
  r.GetEnum(l.release_state);
  GetOptional(r, l.signature, [&](Signature& s) { Get(r, s); });
}

// Version 2 adds bowie_dick_passed_today; version 1 answers read it as false.
void Put(Writer& w, const LookBack& lb) {
  PutVector(w, lb.loads, [&](const Load& l) { Put(w, l); });
  PutVector(w, lb.entries, [&](const LookBackEntry& e) {
    w.Put(e.load_id);
    w.Put(e.item_serial);
    Put(w, e.treatment);
    w.Put(e.used_at);
  });
  PutOptional(w, lb.sterilizer, [&](const Sterilizer& s) { Put(w, s); });
  w.Put(lb.bowie_dick_passed_today);
}

void Get(Reader& r, LookBack& lb, int version) {
  GetVector(r, lb.loads, [&](Load& l) { Get(r, l); });
  GetVector(r, lb.entries, [&](LookBackEntry& e) {
    r.Get(e.load_id);
    r.Get(e.item_serial);
    Get(r, e.treatment);
    r.Get(e.used_at);
  });
  GetOptional(r, lb.sterilizer, [&](Sterilizer& s) { Get(r, s); });
  lb.bowie_dick_passed_today = false;
  if (version >= 2) r.Get(lb.bowie_dick_passed_today);
}

// Version 2: its look-back is a version 2 LookBack.
void Put(Writer& w, const BiOutcome& o) {
  Put(w, o.load);
  PutOptional(w, o.look_back, [&](const LookBack& lb) { Put(w, lb); });
}

void Get(Reader& r, BiOutcome& o, int version) {
  Get(r, o.load);
  GetOptional(r, o.look_back, [&](LookBack& lb) { Get(r, lb, version); });
}

void Put(Writer& w, const Event& e) {
  w.Put(e.seq);
  w.Put(e.at);
  w.Put(e.actor);
  w.Put(e.action);
  w.Put(e.lot_id);
  w.Put(e.cartridge_id);
  w.Put(e.treatment_id);
  w.Put(e.item_id);
  w.Put(e.load_id);
  w.Put(e.sterilizer_id);
  w.Put(e.detail);
  w.Put(e.request_id);
  w.Put(e.before);
  w.Put(e.after);
  w.Put(e.corrects_seq);
  w.Put(e.hash);
}

void Get(Reader& r, Event& e) {
  r.Get(e.seq);
  r.Get(e.at);
  r.Get(e.actor);
  r.Get(e.action);
  r.Get(e.lot_id);
  r.Get(e.cartridge_id);
  r.Get(e.treatment_id);
  r.Get(e.item_id);
  r.Get(e.load_id);
  r.Get(e.sterilizer_id);
  r.Get(e.detail);
  r.Get(e.request_id);
  r.Get(e.before);
  r.Get(e.after);
  r.Get(e.corrects_seq);
  r.Get(e.hash);
}

// Each type's tag and the version its answers are written in today.
template <typename T>
struct Codec;
#define STERITRACK_RESULT_TYPE(T, tag, version)     \
  template <>                                       \
  struct Codec<T> {                                 \
    static constexpr std::string_view kTag = tag;   \
    static constexpr int kCurrentVersion = version; \
  }
STERITRACK_RESULT_TYPE(Cartridge, "cartridge", 1);
STERITRACK_RESULT_TYPE(std::vector<Cartridge>, "cartridges", 1);
STERITRACK_RESULT_TYPE(Treatment, "treatment", 1);
STERITRACK_RESULT_TYPE(TreatmentDetail, "treatment_detail", 1);
STERITRACK_RESULT_TYPE(RecallResult, "recall_result", 1);
STERITRACK_RESULT_TYPE(ReusableItem, "item", 1);
STERITRACK_RESULT_TYPE(Sterilizer, "sterilizer", 1);
STERITRACK_RESULT_TYPE(BowieDickTest, "bowie_dick_test", 1);
STERITRACK_RESULT_TYPE(Load, "load", 1);
STERITRACK_RESULT_TYPE(BiOutcome, "bi_outcome", 2);
STERITRACK_RESULT_TYPE(LookBack, "look_back", 2);
STERITRACK_RESULT_TYPE(Event, "event", 1);
STERITRACK_RESULT_TYPE(ParLevel, "par_level", 1);
STERITRACK_RESULT_TYPE(Lot, "lot", 1);
#undef STERITRACK_RESULT_TYPE

// A type with one layout so far ignores the version.
template <typename T>
void Get(Reader& r, T& value, int /*version*/) {
  Get(r, value);
}

template <typename T>
std::string Encode(const T& value) {
  Writer w(StrCat(Codec<T>::kTag, "/", Codec<T>::kCurrentVersion));
  Put(w, value);
  return w.Take();
}

// The version of a T answer from its header, or why it cannot be read as a T.
template <typename T>
absl::StatusOr<int> VersionOf(std::string_view header) {
  if (header == kUntaggedVersion1) return 1;
  const size_t slash = header.rfind('/');
  if (slash == std::string_view::npos) {
    return MakeError(absl::StatusCode::kDataLoss,
                     "stored answer for this request id cannot be decoded: no type and version",
                     "STORED_ANSWER_UNREADABLE", {{"expected_type", std::string(Codec<T>::kTag)}});
  }
  const std::string_view tag = header.substr(0, slash);
  int version = 0;
  const char* const end = header.data() + header.size();
  const bool numeric = std::from_chars(header.data() + slash + 1, end, version).ptr == end;
  if (tag != Codec<T>::kTag) {
    return MakeError(
        absl::StatusCode::kDataLoss,
        StrCat("stored answer for this request id is a ", tag, ", not a ", Codec<T>::kTag),
        "STORED_ANSWER_WRONG_TYPE",
        {{"type", std::string(tag)}, {"expected_type", std::string(Codec<T>::kTag)}});
  }
  if (!numeric || version < 1 || version > Codec<T>::kCurrentVersion) {
    // Written by a newer server (this one was downgraded): the answer exists but this version
    // cannot read it.
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     StrCat("stored answer for this request id is ", header,
                            ", a version this server does not know (it reads ", Codec<T>::kTag,
                            " up to version ", Codec<T>::kCurrentVersion, ")"),
                     "STORED_ANSWER_VERSION_UNKNOWN",
                     {{"type", std::string(tag)},
                      {"version", std::string(header.substr(slash + 1))},
                      {"max_version", StrCat(Codec<T>::kCurrentVersion)}});
  }
  return version;
}

}  // namespace

std::string EncodeResult(const Cartridge& value) { return Encode(value); }
std::string EncodeResult(const std::vector<Cartridge>& value) { return Encode(value); }
std::string EncodeResult(const Treatment& value) { return Encode(value); }
std::string EncodeResult(const TreatmentDetail& value) { return Encode(value); }
std::string EncodeResult(const RecallResult& value) { return Encode(value); }
std::string EncodeResult(const ReusableItem& value) { return Encode(value); }
std::string EncodeResult(const Sterilizer& value) { return Encode(value); }
std::string EncodeResult(const BowieDickTest& value) { return Encode(value); }
std::string EncodeResult(const Load& value) { return Encode(value); }
std::string EncodeResult(const BiOutcome& value) { return Encode(value); }
std::string EncodeResult(const LookBack& value) { return Encode(value); }
std::string EncodeResult(const Event& value) { return Encode(value); }
std::string EncodeResult(const ParLevel& value) { return Encode(value); }
std::string EncodeResult(const Lot& value) { return Encode(value); }

template <typename T>
absl::StatusOr<T> DecodeResult(std::string_view encoded) {
  Reader r(encoded);
  std::string header;
  r.Get(header);
  ASSIGN_OR_RETURN(int version, VersionOf<T>(header));
  T value;
  Get(r, value, version);
  if (!r.ok()) {
    return MakeError(absl::StatusCode::kDataLoss,
                     StrCat("stored answer for this request id cannot be decoded as ",
                            Codec<T>::kTag, " version ", version),
                     "STORED_ANSWER_UNREADABLE",
                     {{"type", std::string(Codec<T>::kTag)}, {"version", StrCat(version)}});
  }
  return value;
}

template absl::StatusOr<Cartridge> DecodeResult<Cartridge>(std::string_view);
template absl::StatusOr<std::vector<Cartridge>> DecodeResult<std::vector<Cartridge>>(
    std::string_view);
template absl::StatusOr<Treatment> DecodeResult<Treatment>(std::string_view);
template absl::StatusOr<TreatmentDetail> DecodeResult<TreatmentDetail>(std::string_view);
template absl::StatusOr<RecallResult> DecodeResult<RecallResult>(std::string_view);
template absl::StatusOr<ReusableItem> DecodeResult<ReusableItem>(std::string_view);
template absl::StatusOr<Sterilizer> DecodeResult<Sterilizer>(std::string_view);
template absl::StatusOr<BowieDickTest> DecodeResult<BowieDickTest>(std::string_view);
template absl::StatusOr<Load> DecodeResult<Load>(std::string_view);
template absl::StatusOr<BiOutcome> DecodeResult<BiOutcome>(std::string_view);
template absl::StatusOr<LookBack> DecodeResult<LookBack>(std::string_view);
template absl::StatusOr<Event> DecodeResult<Event>(std::string_view);
template absl::StatusOr<ParLevel> DecodeResult<ParLevel>(std::string_view);
template absl::StatusOr<Lot> DecodeResult<Lot>(std::string_view);

}  // namespace steritrack

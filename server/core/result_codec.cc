#include "server/core/result_codec.h"

#include <charconv>
#include <cstdint>

#include "steritrack/strings.h"

namespace steritrack {
namespace {

constexpr std::string_view kVersion = "r1";

class Writer {
 public:
  Writer() { Put(kVersion); }
  void Put(std::string_view s) { StrAppend(&out_, s.size(), ":", s); }
  void Put(int64_t v) { Put(std::string_view(StrCat(v))); }
  void Put(bool v) { Put(int64_t{v ? 1 : 0}); }
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
  explicit Reader(std::string_view in) : in_(in) {
    std::string version;
    Get(version);
    if (version != kVersion) ok_ = false;
  }
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
    if (ok_ && std::from_chars(s.data(), s.data() + s.size(), micros).ec != std::errc()) ok_ = false;
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

template <typename T>
std::string Encode(const T& value) {
  Writer w;
  Put(w, value);
  return w.Take();
}

}  // namespace

std::string EncodeResult(const Cartridge& value) { return Encode(value); }
std::string EncodeResult(const std::vector<Cartridge>& value) { return Encode(value); }
std::string EncodeResult(const Treatment& value) { return Encode(value); }
std::string EncodeResult(const TreatmentDetail& value) { return Encode(value); }
std::string EncodeResult(const RecallResult& value) { return Encode(value); }

template <typename T>
absl::StatusOr<T> DecodeResult(std::string_view encoded) {
  Reader r(encoded);
  T value;
  Get(r, value);
  if (!r.ok()) return absl::DataLossError("stored answer for this request id cannot be decoded");
  return value;
}

template absl::StatusOr<Cartridge> DecodeResult<Cartridge>(std::string_view);
template absl::StatusOr<std::vector<Cartridge>> DecodeResult<std::vector<Cartridge>>(
    std::string_view);
template absl::StatusOr<Treatment> DecodeResult<Treatment>(std::string_view);
template absl::StatusOr<TreatmentDetail> DecodeResult<TreatmentDetail>(std::string_view);
template absl::StatusOr<RecallResult> DecodeResult<RecallResult>(std::string_view);

}  // namespace steritrack

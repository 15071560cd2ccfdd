#include "steritrack/gs1.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "steritrack/error.h"
#include "steritrack/status_macros.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

constexpr std::string_view kReason = "BARCODE_INVALID";
// Metadata "field" for faults that belong to no single AI.
constexpr std::string_view kWholeInput = "barcode";

absl::Status Reject(std::string_view field, std::string_view why) {
  return InvalidField(field, why, kReason);
}

// ---------------------------------------------------------------------------------------------
// The AI table. Formats follow the GS1 Barcode Syntax Dictionary; only the AIs a medical-device
// supply chain plausibly prints are listed, because an unknown AI is rejected rather than guessed.

enum class Charset { kNumeric, kCset82 };

// Content checks beyond the character set.
enum class Lint {
  kNone,
  kCheckDigit,  // GS1 mod-10 over the whole component
  kDateDay00,   // YYMMDD, DD = 00 means "end of month"
  kDate,        // YYMMDD, DD must be a real day
  kHourMinute,  // HHMM
  kZero,        // the single digit 0 (GRAI filler)
};

struct Component {
  Charset charset;
  int min_length;  // 0 marks an optional trailing component
  int max_length;
  Lint lint;
};

constexpr Component N(int length, Lint lint = Lint::kNone) {
  return {Charset::kNumeric, length, length, lint};
}
constexpr Component NUpTo(int max) { return {Charset::kNumeric, 1, max, Lint::kNone}; }
constexpr Component XUpTo(int max) { return {Charset::kCset82, 1, max, Lint::kNone}; }
constexpr Component Optional(Component c) {
  c.min_length = 0;
  return c;
}

struct AiSpec {
  // An inclusive range of equal-length AIs, e.g. "410".."417". For the measure families
  // ("3100".."3165") the last digit is a decimal-point position limited to `max_last_digit`.
  std::string_view first;
  std::string_view last;
  std::string_view name;  // plain words for messages; empty → "AI nnnn"
  // In GS1's predefined-length table (prefixes 00–04, 11–20, 31–36, 41): never needs a GS.
  bool predefined_length;
  std::array<Component, 3> components;
  int component_count;
  char max_last_digit = '9';
};

constexpr Lint kCsum = Lint::kCheckDigit;
constexpr Lint kDay00 = Lint::kDateDay00;
constexpr Lint kDate = Lint::kDate;
constexpr Lint kHhmm = Lint::kHourMinute;

// clang-format off
constexpr AiSpec kAiTable[] = {
    {"00",   "00",   "SSCC",                      true,  {N(18, kCsum)}, 1},
    {"01",   "01",   "GTIN",                      true,  {N(14, kCsum)}, 1},
    {"02",   "02",   "content GTIN",              true,  {N(14, kCsum)}, 1},
    {"10",   "10",   "lot",                       false, {XUpTo(20)}, 1},
    {"11",   "11",   "production date",           true,  {N(6, kDay00)}, 1},
    {"12",   "12",   "due date",                  true,  {N(6, kDay00)}, 1},
    {"13",   "13",   "packaging date",            true,  {N(6, kDay00)}, 1},
    {"15",   "15",   "best before date",          true,  {N(6, kDay00)}, 1},
    {"16",   "16",   "sell by date",              true,  {N(6, kDay00)}, 1},
    {"17",   "17",   "expiry date",               true,  {N(6, kDay00)}, 1},
    {"20",   "20",   "variant",                   true,  {N(2)}, 1},
    {"21",   "21",   "serial",                    false, {XUpTo(20)}, 1},
    {"22",   "22",   "consumer product variant",  false, {XUpTo(20)}, 1},
    {"235",  "235",  "third-party serial extension", false, {XUpTo(28)}, 1},
    {"240",  "240",  "additional product ID",     false, {XUpTo(30)}, 1},
    {"241",  "241",  "customer part number",      false, {XUpTo(30)}, 1},
    {"242",  "242",  "made-to-order variant",     false, {NUpTo(6)}, 1},
    {"243",  "243",  "packaging component number", false, {XUpTo(20)}, 1},
    {"250",  "250",  "secondary serial",          false, {XUpTo(30)}, 1},
    {"251",  "251",  "reference to source",       false, {XUpTo(30)}, 1},
    {"253",  "253",  "document ID (GDTI)",        false, {N(13, kCsum), Optional(XUpTo(17))}, 2},
    {"254",  "254",  "GLN extension",             false, {XUpTo(20)}, 1},
    {"255",  "255",  "coupon code (GCN)",         false, {N(13, kCsum), Optional(NUpTo(12))}, 2},
    {"30",   "30",   "count",                     false, {NUpTo(8)}, 1},
    {"3100", "3165", "",                          true,  {N(6)}, 1, '5'},
    {"3200", "3295", "",                          true,  {N(6)}, 1, '5'},
    {"3300", "3375", "",                          true,  {N(6)}, 1, '5'},
    {"3400", "3495", "",                          true,  {N(6)}, 1, '5'},
    {"3500", "3575", "",                          true,  {N(6)}, 1, '5'},
    {"3600", "3695", "",                          true,  {N(6)}, 1, '5'},
    {"37",   "37",   "count of trade items",      false, {NUpTo(8)}, 1},
    {"3900", "3909", "amount payable",            false, {NUpTo(15)}, 1},
    {"3910", "3919", "amount payable with currency", false, {N(3), NUpTo(15)}, 2},
    {"3920", "3929", "price",                     false, {NUpTo(15)}, 1},
    {"3930", "3939", "price with currency",       false, {N(3), NUpTo(15)}, 2},
    {"3940", "3943", "percentage discount",       false, {N(4)}, 1},
    {"3950", "3955", "price per unit of measure", false, {N(6)}, 1},
    {"400",  "400",  "order number",              false, {XUpTo(30)}, 1},
    {"401",  "401",  "consignment number",        false, {XUpTo(30)}, 1},
    {"402",  "402",  "shipment ID",               false, {N(17, kCsum)}, 1},
    {"403",  "403",  "routing code",              false, {XUpTo(30)}, 1},
    {"410",  "417",  "location number (GLN)",     true,  {N(13, kCsum)}, 1},
    {"420",  "420",  "ship-to postal code",       false, {XUpTo(20)}, 1},
    {"421",  "421",  "ship-to postal code",       false, {N(3), XUpTo(9)}, 2},
    {"422",  "422",  "country of origin",         false, {N(3)}, 1},
    {"423",  "423",  "country of initial processing", false, {NUpTo(15)}, 1},
    {"424",  "424",  "country of processing",     false, {N(3)}, 1},
    {"425",  "425",  "country of disassembly",    false, {NUpTo(15)}, 1},
    {"426",  "426",  "country of full process",   false, {N(3)}, 1},
    {"427",  "427",  "country subdivision of origin", false, {XUpTo(3)}, 1},
    {"7001", "7001", "NATO stock number",         false, {N(13)}, 1},
    {"7002", "7002", "meat cut classification",   false, {XUpTo(30)}, 1},
    {"7003", "7003", "expiry date and time",      false, {N(6, kDate), N(4, kHhmm)}, 2},
    {"7004", "7004", "active potency",            false, {NUpTo(4)}, 1},
    {"7006", "7006", "first freeze date",         false, {N(6, kDate)}, 1},
    {"710",  "715",  "national healthcare reimbursement number", false, {XUpTo(20)}, 1},
    {"7240", "7240", "protocol ID",               false, {XUpTo(20)}, 1},
    {"8002", "8002", "mobile phone ID",           false, {XUpTo(20)}, 1},
    {"8003", "8003", "returnable asset ID (GRAI)", false,
        {N(1, Lint::kZero), N(13, kCsum), Optional(XUpTo(16))}, 3},
    {"8004", "8004", "individual asset ID (GIAI)", false, {XUpTo(30)}, 1},
    {"8005", "8005", "price per unit",            false, {N(6)}, 1},
    {"8012", "8012", "software version",          false, {XUpTo(20)}, 1},
    {"8020", "8020", "payment slip reference",    false, {XUpTo(25)}, 1},
    {"8200", "8200", "product URL",               false, {XUpTo(70)}, 1},
    {"90",   "90",   "internal data",             false, {XUpTo(30)}, 1},
    {"91",   "99",   "company internal data",     false, {XUpTo(90)}, 1},
};
// clang-format on

// The raw form has no AI delimiters: reading digits until one matches is only sound when no AI is
// a prefix of another (nor listed twice).
constexpr bool TableIsPrefixFree() {
  for (const AiSpec& a : kAiTable) {
    for (const AiSpec& b : kAiTable) {
      if (&a == &b || a.first.size() > b.first.size()) continue;
      const std::size_t k = a.first.size();
      if (a.first <= b.last.substr(0, k) && b.first.substr(0, k) <= a.last) return false;
    }
  }
  return true;
}
static_assert(TableIsPrefixFree());

// GS1 General Specifications figure 7.8.5-2: the two-digit prefixes whose AIs need no separator.
constexpr bool HasPredefinedPrefix(std::string_view ai) {
  const int prefix = (ai[0] - '0') * 10 + (ai[1] - '0');
  return prefix <= 4 || (prefix >= 11 && prefix <= 20) || (prefix >= 31 && prefix <= 36) ||
         prefix == 41;
}

constexpr bool PredefinedFlagsMatchPrefixes() {
  for (const AiSpec& spec : kAiTable) {
    if (spec.predefined_length != HasPredefinedPrefix(spec.first)) return false;
  }
  return true;
}
static_assert(PredefinedFlagsMatchPrefixes());

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

const AiSpec* FindAi(std::string_view ai) {
  if (!AllDigits(ai)) return nullptr;
  for (const AiSpec& spec : kAiTable) {
    if (spec.first.size() != ai.size() || ai < spec.first || ai > spec.last) continue;
    if (ai.back() > spec.max_last_digit) continue;
    return &spec;
  }
  return nullptr;
}

// True when some AI in the table begins with `prefix`, i.e. reading more digits may still match.
bool SomeAiStartsWith(std::string_view prefix) {
  for (const AiSpec& spec : kAiTable) {
    if (spec.first.size() <= prefix.size()) continue;
    if (prefix >= spec.first.substr(0, prefix.size()) &&
        prefix <= spec.last.substr(0, prefix.size())) {
      return true;
    }
  }
  return false;
}

std::string NameOf(const AiSpec& spec, std::string_view ai) {
  return spec.name.empty() ? StrCat("AI ", ai) : std::string(spec.name);
}

bool IsFixedLength(const AiSpec& spec) {
  for (int i = 0; i < spec.component_count; ++i) {
    const Component& c = spec.components[i];
    if (c.min_length != c.max_length) return false;
  }
  return true;
}

int MinLength(const AiSpec& spec) {
  int total = 0;
  for (int i = 0; i < spec.component_count; ++i) total += spec.components[i].min_length;
  return total;
}

int MaxLength(const AiSpec& spec) {
  int total = 0;
  for (int i = 0; i < spec.component_count; ++i) total += spec.components[i].max_length;
  return total;
}

bool IsAllNumeric(const AiSpec& spec) {
  for (int i = 0; i < spec.component_count; ++i) {
    if (spec.components[i].charset != Charset::kNumeric) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Value checks.

// GS1 character set 82 (General Specifications figure 7.11-1).
bool IsCset82(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!\"%&'()*+,-./:;<=>?_").find(c) != std::string_view::npos;
}

// Renders one character so a clerk can recognise it, including invisible ones.
std::string Describe(char c) {
  if (c == kGs1Separator) return "a group separator (GS)";
  if (c == ' ') return "a space";
  const auto u = static_cast<unsigned char>(c);
  if (u > 0x20 && u < 0x7f) return StrCat("character '", c, "'");
  return absl::StrFormat("byte 0x%02X", u);
}

int CheckDigitFor(std::string_view payload) {
  int sum = 0;
  int weight = 3;  // the digit next to the check digit carries weight 3
  for (auto it = payload.rbegin(); it != payload.rend(); ++it) {
    sum += (*it - '0') * weight;
    weight = 4 - weight;
  }
  return (10 - sum % 10) % 10;
}

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

constexpr std::string_view kMonthNames[] = {"January",   "February", "March",    "April",
                                            "May",       "June",     "July",     "August",
                                            "September", "October",  "November", "December"};

int TwoDigits(std::string_view s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

// GS1 General Specifications 7.12: a two-digit year more than 50 years ahead of the current one
// belongs to the previous century, one 50 or more years behind to the next.
int ResolveYear(int yy, int current_year) {
  const int century = current_year - current_year % 100;
  const int difference = yy - current_year % 100;
  if (difference >= 51) return century - 100 + yy;
  if (difference <= -50) return century + 100 + yy;
  return century + yy;
}

// Returns why `yymmdd` is not a real date, or "" when it is. REQUIRES: six digits.
std::string DateProblem(std::string_view yymmdd, bool day00_allowed, int current_year) {
  const int year = ResolveYear(TwoDigits(yymmdd.substr(0, 2)), current_year);
  const int month = TwoDigits(yymmdd.substr(2, 2));
  const int day = TwoDigits(yymmdd.substr(4, 2));
  if (month < 1 || month > 12) return absl::StrFormat("month %02d does not exist", month);
  if (day == 0) return day00_allowed ? "" : "day 00 is not allowed here";
  if (day > DaysInMonth(year, month)) {
    const bool leap_day = month == 2 && day == 29;
    return StrCat("day ", day, " does not exist in ", kMonthNames[month - 1], " ", year,
                  leap_day ? " (not a leap year)" : "");
  }
  return "";
}

// REQUIRES: a value DateProblem() found no problem with.
absl::CivilDay ResolveDate(std::string_view yymmdd, int current_year) {
  const int year = ResolveYear(TwoDigits(yymmdd.substr(0, 2)), current_year);
  const int month = TwoDigits(yymmdd.substr(2, 2));
  int day = TwoDigits(yymmdd.substr(4, 2));
  if (day == 0) day = DaysInMonth(year, month);
  return absl::CivilDay(year, month, day);
}

// Returns why `hhmm` is not a time of day, or "" when it is. REQUIRES: four digits.
std::string TimeProblem(std::string_view hhmm) {
  const int hour = TwoDigits(hhmm.substr(0, 2));
  const int minute = TwoDigits(hhmm.substr(2, 2));
  if (hour > 23) return absl::StrFormat("hour %02d does not exist", hour);
  if (minute > 59) return absl::StrFormat("minute %02d does not exist", minute);
  return "";
}

// Checks one element's value against its table entry; the error names the AI and says why.
absl::Status ValidateValue(const AiSpec& spec, std::string_view ai, std::string_view value,
                           int current_year) {
  const std::string name = NameOf(spec, ai);
  const int size = static_cast<int>(value.size());
  if (value.empty()) return Reject(ai, StrCat(name, " is empty"));
  const bool numeric = IsAllNumeric(spec) && AllDigits(value);
  const std::string_view unit = numeric ? "digits" : "characters";
  if (IsFixedLength(spec) && size != MaxLength(spec)) {
    return Reject(
        ai, StrCat(name, " is ", size, " ", unit, ", exactly ", MaxLength(spec), " required"));
  }
  if (size > MaxLength(spec)) {
    return Reject(ai,
                  StrCat(name, " is ", size, " ", unit, ", at most ", MaxLength(spec), " allowed"));
  }
  if (size < MinLength(spec)) {
    return Reject(
        ai, StrCat(name, " is ", size, " ", unit, ", at least ", MinLength(spec), " required"));
  }

  // Only the last component may vary in length, so the split is unambiguous.
  std::size_t pos = 0;
  for (int i = 0; i < spec.component_count; ++i) {
    const Component& c = spec.components[i];
    const std::string_view part = value.substr(pos, c.max_length);
    pos += part.size();
    if (part.empty()) continue;  // an absent optional component
    for (char ch : part) {
      if (c.charset == Charset::kNumeric && !IsDigit(ch)) {
        return Reject(ai, StrCat(Describe(ch), " is not allowed: ", name, " takes digits only"));
      }
      if (c.charset == Charset::kCset82 && !IsCset82(ch)) {
        return Reject(ai, StrCat(Describe(ch), " is not allowed (GS1 character set 82)"));
      }
    }
    std::string problem;
    switch (c.lint) {
      case Lint::kNone:
        break;
      case Lint::kCheckDigit: {
        const int expected = CheckDigitFor(part.substr(0, part.size() - 1));
        const int actual = part.back() - '0';
        if (actual != expected) {
          return Reject(ai, StrCat("check digit is ", actual, ", expected ", expected));
        }
        break;
      }
      case Lint::kDateDay00:
      case Lint::kDate:
        problem = DateProblem(part, c.lint == Lint::kDateDay00, current_year);
        break;
      case Lint::kHourMinute:
        problem = TimeProblem(part);
        break;
      case Lint::kZero:
        if (part != "0") return Reject(ai, StrCat(name, " must start with 0"));
        break;
    }
    if (!problem.empty()) return Reject(ai, problem);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// The three input forms. Each collects validated elements; Finish() applies whole-scan rules.

class Parser {
 public:
  explicit Parser(int current_year) : current_year_(current_year) {}

  // `offset` is where `data` starts in the scan, so messages can point at a character.
  absl::Status ParseRaw(std::string_view data, std::size_t offset);
  absl::Status ParseBracketed(std::string_view data);
  absl::Status ParseDigitalLink(std::string_view uri);
  absl::StatusOr<Gs1Data> Finish() &&;

 private:
  absl::Status Add(const AiSpec& spec, std::string_view ai, std::string value) {
    RETURN_IF_ERROR(ValidateValue(spec, ai, value, current_year_));
    elements_.push_back(Gs1Element{std::string(ai), std::move(value)});
    return absl::OkStatus();
  }

  int current_year_;
  std::vector<Gs1Element> elements_;
};

struct AiMatch {
  const AiSpec* spec;
  std::string_view ai;
};

// Reads the AI at the start of `rest` (AIs are 2–4 digits and the table is prefix-free).
// `offset` is rest's position in the scan, for messages.
absl::StatusOr<AiMatch> ReadAi(std::string_view rest, std::size_t offset) {
  for (std::size_t length = 1; length <= 4; ++length) {
    if (rest.size() < length) {
      return Reject(kWholeInput, StrCat("the data ends in the middle of an application "
                                        "identifier ('",
                                        rest, "')"));
    }
    if (!IsDigit(rest[length - 1])) {
      return Reject(kWholeInput, StrCat("expected an application identifier (digits) at character ",
                                        offset + length, ", found ", Describe(rest[length - 1])));
    }
    if (length < 2) continue;
    const std::string_view candidate = rest.substr(0, length);
    if (const AiSpec* spec = FindAi(candidate); spec != nullptr) return AiMatch{spec, candidate};
    if (!SomeAiStartsWith(candidate)) {
      return Reject(candidate, StrCat("unknown application identifier ", candidate));
    }
  }
  return Reject(rest.substr(0, 4), StrCat("unknown application identifier ", rest.substr(0, 4)));
}

absl::Status Parser::ParseRaw(std::string_view data, std::size_t offset) {
  std::size_t pos = 0;
  // Some scanners transmit the leading FNC1 itself as a GS.
  if (!data.empty() && data[0] == kGs1Separator) pos = 1;
  if (pos == data.size()) return Reject(kWholeInput, "the scan holds no data");
  while (pos < data.size()) {
    if (data[pos] == kGs1Separator) {
      return Reject(kWholeInput, StrCat("two group separators in a row (an empty element) "
                                        "at character ",
                                        offset + pos + 1));
    }
    ASSIGN_OR_RETURN(const AiMatch match, ReadAi(data.substr(pos), offset + pos));
    pos += match.ai.size();
    const std::size_t separator = data.find(kGs1Separator, pos);
    std::size_t end = separator == std::string_view::npos ? data.size() : separator;
    const bool fixed = IsFixedLength(*match.spec);
    if (fixed) end = std::min(end, pos + MaxLength(*match.spec));
    RETURN_IF_ERROR(Add(*match.spec, match.ai, std::string(data.substr(pos, end - pos))));
    pos = end;
    if (pos == data.size()) break;
    if (data[pos] == kGs1Separator) {
      // Ends the element: required after variable-length and non-predefined fields, redundant
      // but harmless after predefined ones (many encoders emit it anyway).
      ++pos;
    } else if (!match.spec->predefined_length) {
      return Reject(match.ai, StrCat(NameOf(*match.spec, match.ai), " (", match.ai,
                                     ") must be followed by a group separator (GS) "
                                     "when more data follows"));
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseBracketed(std::string_view data) {
  std::size_t pos = 0;
  while (pos < data.size()) {
    // Values stop only at an unescaped '(', so here we are always at one.
    const std::size_t close = data.find(')', pos);
    const std::string_view ai = close == std::string_view::npos
                                    ? std::string_view()
                                    : data.substr(pos + 1, close - pos - 1);
    if (data[pos] != '(' || ai.size() < 2 || ai.size() > 4 || !AllDigits(ai)) {
      return Reject(kWholeInput,
                    StrCat("expected an application identifier such as (01) at character ", pos + 1,
                           "; a '(' inside a value must be written as \\( in this form"));
    }
    const AiSpec* spec = FindAi(ai);
    if (spec == nullptr) return Reject(ai, StrCat("unknown application identifier ", ai));
    pos = close + 1;
    std::string value;
    while (pos < data.size() && data[pos] != '(') {
      if (data[pos] == '\\' && pos + 1 < data.size() && data[pos + 1] == '(') ++pos;
      value.push_back(data[pos++]);
    }
    RETURN_IF_ERROR(Add(*spec, ai, std::move(value)));
  }
  return absl::OkStatus();
}

std::vector<std::string_view> Split(std::string_view s, char separator) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t end = s.find(separator, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  const char lower = absl::ascii_tolower(static_cast<unsigned char>(c));
  if (lower >= 'a' && lower <= 'f') return lower - 'a' + 10;
  return -1;
}

absl::StatusOr<std::string> PercentDecode(std::string_view ai, std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    const int high = i + 1 < in.size() ? HexValue(in[i + 1]) : -1;
    const int low = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
    if (high < 0 || low < 0) {
      return Reject(ai, StrCat("'", in.substr(i, 3), "' is not a valid percent-encoding"));
    }
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

// GS1 Digital Link 1.x: the GTIN's qualifiers, in the order they must appear in the path.
constexpr std::string_view kGtinQualifiers[] = {"22", "10", "21"};

int QualifierRank(std::string_view ai) {
  for (int i = 0; i < 3; ++i) {
    if (kGtinQualifiers[i] == ai) return i;
  }
  return -1;
}

absl::Status Parser::ParseDigitalLink(std::string_view uri) {
  const std::size_t scheme_end = uri.find("://") + 3;
  uri = uri.substr(0, uri.find('#'));  // the fragment never reaches the server
  const std::size_t host_end = std::min(uri.find_first_of("/?", scheme_end), uri.size());
  if (host_end == scheme_end) return Reject(kWholeInput, "the web address has no host name");
  const std::size_t query_start = std::min(uri.find('?', host_end), uri.size());
  const std::string_view path = uri.substr(host_end, query_start - host_end);
  const std::string_view query = uri.substr(std::min(query_start + 1, uri.size()));

  std::vector<std::string_view> segments =
      path.empty() ? std::vector<std::string_view>() : Split(path.substr(1), '/');
  // Drop a trailing slash, unless it ends an AI whose value is then empty ("/10/").
  if (segments.size() > 1 && segments.back().empty()) {
    const std::string_view key = segments[segments.size() - 2];
    if (key != "01" && QualifierRank(key) < 0) segments.pop_back();
  }

  // Read key/value pairs from the end back to /01/: whatever precedes it is the resolver's own
  // path prefix and may contain anything, even "01".
  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  std::size_t end = segments.size();
  bool found_gtin = false;
  while (end >= 2) {
    const std::string_view key = segments[end - 2];
    pairs.emplace_back(key, segments[end - 1]);
    if (key == "01") {
      found_gtin = true;
      break;
    }
    if (QualifierRank(key) < 0) {
      // Only worth a specific message when this really looks like a Digital Link.
      const auto before = segments.begin() + static_cast<std::ptrdiff_t>(end - 2);
      if (FindAi(key) != nullptr && std::find(segments.begin(), before, "01") != before) {
        return Reject(key, StrCat("AI ", key,
                                  " cannot be in a Digital Link path; it belongs in the "
                                  "query, e.g. ?",
                                  key, "=..."));
      }
      break;
    }
    end -= 2;
  }
  if (!found_gtin) {
    return Reject(kWholeInput,
                  "the web address is not a GS1 Digital Link: its path needs /01/ followed by the "
                  "14-digit GTIN");
  }

  int last_rank = -1;
  for (auto it = pairs.rbegin(); it != pairs.rend(); ++it) {
    const auto& [ai, encoded] = *it;
    if (ai != "01") {
      const int rank = QualifierRank(ai);
      if (rank <= last_rank) {
        return Reject(ai,
                      "in a Digital Link path, 22, 10 and 21 may each appear once after 01, "
                      "in that order");
      }
      last_rank = rank;
    }
    ASSIGN_OR_RETURN(std::string value, PercentDecode(ai, encoded));
    RETURN_IF_ERROR(Add(*FindAi(ai), ai, std::move(value)));
  }

  for (std::string_view parameter : Split(query, '&')) {
    const std::size_t equals = parameter.find('=');
    const std::string_view key = parameter.substr(0, equals);
    // Non-numeric keys (linkType, campaign tags, ...) are allowed by the standard and mean nothing
    // to us.
    if (key.empty() || !AllDigits(key)) continue;
    if (key == "01" || QualifierRank(key) >= 0) {
      return Reject(key,
                    StrCat("AI ", key, " belongs in the path of a Digital Link, not the query"));
    }
    const AiSpec* spec = FindAi(key);
    if (spec == nullptr) return Reject(key, StrCat("unknown application identifier ", key));
    const std::string_view encoded =
        equals == std::string_view::npos ? std::string_view() : parameter.substr(equals + 1);
    ASSIGN_OR_RETURN(std::string value, PercentDecode(key, encoded));
    RETURN_IF_ERROR(Add(*spec, key, std::move(value)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Gs1Data> Parser::Finish() && {
  Gs1Data data;
  for (Gs1Element& element : elements_) {
    bool duplicate = false;
    for (const Gs1Element& kept : data.elements) {
      if (kept.ai != element.ai) continue;
      if (kept.value != element.value) {
        return Reject(element.ai,
                      StrCat("AI ", element.ai, " appears twice with different values (",
                             kept.value, " and ", element.value, ")"));
      }
      duplicate = true;
    }
    if (!duplicate) data.elements.push_back(std::move(element));
  }

  for (const Gs1Element& element : data.elements) {
    if (element.ai == "01") data.gtin = element.value;
    if (element.ai == "10") data.lot = element.value;
    if (element.ai == "21") data.serial = element.value;
    if (element.ai == "17") data.expiry = ResolveDate(element.value, current_year_);
    if (element.ai == "11") data.produced = ResolveDate(element.value, current_year_);
  }

  // A lot, serial or date means nothing without the product it belongs to. GS1 would also let 02
  // stand in for 10, 11 and 17, but a cartridge is always identified by 01.
  // The one exception: a reusable item's lot-control label identifies the item by its individual
  // asset ID (8004), and carries the load as 10 and its date as 11.
  bool asset = false;
  for (const Gs1Element& element : data.elements) asset = asset || element.ai == "8004";
  if (data.gtin.empty()) {
    for (const Gs1Element& element : data.elements) {
      for (std::string_view ai : {"21", "10", "17", "11"}) {
        if (element.ai != ai) continue;
        if (asset && (ai == "10" || ai == "11")) continue;
        return Reject(ai, StrCat(NameOf(*FindAi(ai), ai), " (", ai, ") without a GTIN (01)"));
      }
    }
  }
  return data;
}

std::string_view TrimLineEnd(std::string_view input) {
  while (!input.empty() && (input.back() == '\r' || input.back() == '\n')) input.remove_suffix(1);
  return input;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

bool IsWebAddress(std::string_view s) {
  return StartsWithIgnoreCase(s, "https://") || StartsWithIgnoreCase(s, "http://");
}

// AIM symbology identifiers of the GS1 carriers whose payload is an element string.
constexpr std::string_view kGs1Symbologies[] = {"]d2", "]C1", "]Q3", "]e0"};
// Plain Data Matrix and QR: how a Digital Link URI is carried, and nothing else is accepted in
// them.
constexpr std::string_view kUriSymbologies[] = {"]d1", "]Q1"};

}  // namespace

absl::StatusOr<Gs1Data> ParseGs1(std::string_view input, int current_year) {
  input = TrimLineEnd(input);
  if (input.empty()) return Reject(kWholeInput, "the scan is empty");

  Parser parser(current_year);
  if (input[0] == ']') {
    const std::string_view symbology = input.substr(0, 3);
    const std::string_view body = input.substr(symbology.size());
    bool known = false;
    for (std::string_view gs1 : kGs1Symbologies) {
      if (symbology != gs1) continue;
      if (body.empty()) {
        return Reject(kWholeInput, StrCat("the scan holds no data after ", symbology));
      }
      RETURN_IF_ERROR(parser.ParseRaw(body, symbology.size()));
      known = true;
    }
    for (std::string_view plain : kUriSymbologies) {
      if (symbology != plain || !IsWebAddress(body)) continue;
      RETURN_IF_ERROR(parser.ParseDigitalLink(body));
      known = true;
    }
    if (!known) {
      return Reject(kWholeInput,
                    StrCat("not a GS1 barcode (symbology identifier ", symbology, ")"));
    }
  } else if (input[0] == '(') {
    RETURN_IF_ERROR(parser.ParseBracketed(input));
  } else if (IsWebAddress(input)) {
    RETURN_IF_ERROR(parser.ParseDigitalLink(input));
  } else if (IsDigit(input[0]) || input[0] == kGs1Separator) {
    // Scanners configured without AIM identifiers send the element string as it is.
    RETURN_IF_ERROR(parser.ParseRaw(input, 0));
  } else {
    return Reject(kWholeInput,
                  "not a GS1 barcode: expected a symbology identifier such as ]d2, the bracketed "
                  "form (01)..., or a Digital Link web address");
  }
  return std::move(parser).Finish();
}

std::string FormatGs1Bracketed(const Gs1Data& data) {
  std::string out;
  for (const Gs1Element& element : data.elements) {
    StrAppend(&out, "(", element.ai, ")");
    // '(' is legal in set 82 but would read as the next AI; GS1's bracketed syntax escapes it.
    for (char c : element.value) {
      if (c == '(') out.push_back('\\');
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatGs1Unit(std::string_view gtin, absl::CivilDay expiry, std::string_view lot,
                          std::string_view serial) {
  char yymmdd[16];
  std::snprintf(yymmdd, sizeof yymmdd, "%02d%02d%02d", static_cast<int>(expiry.year() % 100),
                expiry.month(), expiry.day());
  Gs1Data data;
  data.elements = {Gs1Element{.ai = "01", .value = std::string(gtin)},
                   Gs1Element{.ai = "17", .value = yymmdd},
                   Gs1Element{.ai = "10", .value = std::string(lot)},
                   Gs1Element{.ai = "21", .value = std::string(serial)}};
  return FormatGs1Bracketed(data);
}

bool IsValidGtin(std::string_view gtin) {
  if (gtin.size() != 14 || !AllDigits(gtin)) return false;
  return CheckDigitFor(gtin.substr(0, 13)) == gtin.back() - '0';
}

}  // namespace steritrack

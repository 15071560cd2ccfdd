#include "steritrack/gs1.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "steritrack/error.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kYear = 2026;
constexpr std::string_view kGtin = "09506000134352";
const std::string kGs(1, kGs1Separator);

// ---------------------------------------------------------------------------------------------
// Helpers.

std::string Show(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      StrAppend(&out, absl::StrFormat("\\x%02x", u));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string Show(const Gs1Data& data) {
  std::string out = "{";
  for (const Gs1Element& e : data.elements) StrAppend(&out, "(", e.ai, ")", Show(e.value));
  StrAppend(&out, " gtin=", data.gtin, " lot=", Show(data.lot), " serial=", Show(data.serial),
            " expiry=", data.expiry ? absl::FormatCivilTime(*data.expiry) : "-",
            " produced=", data.produced ? absl::FormatCivilTime(*data.produced) : "-", "}");
  return out;
}

::testing::AssertionResult SameData(const Gs1Data& a, const Gs1Data& b) {
  bool same = a.elements.size() == b.elements.size() && a.gtin == b.gtin && a.lot == b.lot &&
              a.serial == b.serial && a.expiry == b.expiry && a.produced == b.produced;
  for (std::size_t i = 0; same && i < a.elements.size(); ++i) {
    same = a.elements[i].ai == b.elements[i].ai && a.elements[i].value == b.elements[i].value;
  }
  if (same) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << Show(a) << " differs from " << Show(b);
}

// What a rejection carried, flattened so a test can compare each part.
struct Rejection {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string reason;
  std::string field;
  std::string why;
};

Rejection RejectionOf(std::string_view input, int current_year = kYear) {
  absl::StatusOr<Gs1Data> parsed = ParseGs1(input, current_year);
  Rejection rejection;
  if (parsed.ok()) {
    rejection.why = StrCat("accepted as ", Show(*parsed));
    return rejection;
  }
  rejection.code = parsed.status().code();
  std::optional<ErrorInfo> info = GetErrorInfo(parsed.status());
  if (info.has_value()) {
    rejection.reason = info->reason;
    rejection.field = info->metadata["field"];
    rejection.why = info->metadata["why"];
  }
  return rejection;
}

// Every rejection must be INVALID_ARGUMENT / BARCODE_INVALID naming `field`; `why` is a substring.
void ExpectRejected(std::string_view input, std::string_view field, std::string_view why,
                    int current_year = kYear) {
  SCOPED_TRACE(StrCat("input: ", Show(input)));
  const Rejection r = RejectionOf(input, current_year);
  EXPECT_EQ(r.code, absl::StatusCode::kInvalidArgument) << r.why;
  EXPECT_EQ(r.reason, "BARCODE_INVALID");
  EXPECT_EQ(r.field, field) << r.why;
  EXPECT_THAT(r.why, HasSubstr(std::string(why)));
}

Gs1Data ParseOk(std::string_view input, int current_year = kYear) {
  absl::StatusOr<Gs1Data> parsed = ParseGs1(input, current_year);
  EXPECT_TRUE(parsed.ok()) << Show(input) << ": " << parsed.status();
  return parsed.ok() ? *std::move(parsed) : Gs1Data{};
}

std::string Day(const std::optional<absl::CivilDay>& day) {
  return day.has_value() ? absl::FormatCivilTime(*day) : "";
}

// ---------------------------------------------------------------------------------------------
// Shared vectors: the file is the contract with the other implementations, so it is read as is.

// The file writes GS as the four characters \x1d; any \xHH is decoded alike so CR/LF can be too.
std::string Unescape(std::string_view field) {
  std::string out;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field.substr(i, 2) == "\\x" && i + 3 < field.size() &&
        std::isxdigit(static_cast<unsigned char>(field[i + 2])) &&
        std::isxdigit(static_cast<unsigned char>(field[i + 3]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(field.substr(i + 2, 2)), nullptr, 16)));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

std::string VectorsPath() {
  if (const char* env = std::getenv("STERITRACK_GS1_VECTORS"); env != nullptr && *env != '\0') {
    return env;
  }
  return STERITRACK_TESTDATA_DIR "/gs1-vectors.tsv";
}

TEST(Gs1VectorsTest, EveryVectorParsesAsDocumented) {
  const std::string path = VectorsPath();
  std::ifstream file(path);
  ASSERT_TRUE(file.is_open()) << "cannot read the GS1 vectors at " << path;
  std::string line;
  int line_number = 0;
  int vectors = 0;
  while (std::getline(file, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols = absl::StrSplit(line, '\t');
    if (cols[0] == "input") continue;  // header
    cols.resize(std::max<std::size_t>(cols.size(), 8));
    SCOPED_TRACE(StrCat(path, ":", line_number, " (", cols[7], "): ", cols[0]));
    ++vectors;
    const std::string input = Unescape(cols[0]);
    absl::StatusOr<Gs1Data> parsed = ParseGs1(input, kYear);
    if (cols[1] == "no") {
      EXPECT_FALSE(parsed.ok()) << "accepted as " << Show(*parsed);
      if (!parsed.ok()) {
        EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
        std::optional<ErrorInfo> info = GetErrorInfo(parsed.status());
        ASSERT_TRUE(info.has_value());
        EXPECT_EQ(info->reason, "BARCODE_INVALID");
        EXPECT_FALSE(info->metadata["field"].empty());
        EXPECT_FALSE(info->metadata["why"].empty());
      }
      continue;
    }
    ASSERT_EQ(cols[1], "yes") << "the valid column must say yes or no";
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->gtin, cols[2]);
    EXPECT_EQ(parsed->lot, cols[3]);
    EXPECT_EQ(parsed->serial, cols[4]);
    EXPECT_EQ(Day(parsed->expiry), cols[5]);
    EXPECT_EQ(Day(parsed->produced), cols[6]);
  }
  EXPECT_GT(vectors, 0) << path << " holds no vectors";
}

// ---------------------------------------------------------------------------------------------
// Input forms.

TEST(Gs1FormTest, EveryGs1SymbologyIdentifierIsAccepted) {
  for (std::string_view aim : {"]d2", "]C1", "]Q3", "]e0"}) {
    const Gs1Data data = ParseOk(StrCat(aim, "01", kGtin, "10LOT1"));
    EXPECT_EQ(data.gtin, kGtin) << aim;
    EXPECT_EQ(data.lot, "LOT1") << aim;
  }
}

TEST(Gs1FormTest, RawDataWithoutSymbologyIdentifierIsAccepted) {
  const Gs1Data data = ParseOk(StrCat("01", kGtin, "10LOT1", kGs, "21S1"));
  EXPECT_EQ(data.gtin, kGtin);
  EXPECT_EQ(data.lot, "LOT1");
  EXPECT_EQ(data.serial, "S1");
}

TEST(Gs1FormTest, LeadingSeparatorStandingForFnc1IsTolerated) {
  EXPECT_EQ(ParseOk(StrCat(kGs, "01", kGtin)).gtin, kGtin);
  EXPECT_EQ(ParseOk(StrCat("]d2", kGs, "01", kGtin)).gtin, kGtin);
}

TEST(Gs1FormTest, TrailingCarriageReturnAndLineFeedAreTrimmed) {
  EXPECT_EQ(ParseOk(StrCat("]d201", kGtin, "10LOT1\r\n")).lot, "LOT1");
  EXPECT_EQ(ParseOk(StrCat("(01)", kGtin, "(21)S9\n")).serial, "S9");
  EXPECT_EQ(ParseOk(StrCat("https://example.com/01/", kGtin, "/21/S9\r")).serial, "S9");
}

TEST(Gs1FormTest, TrailingSeparatorIsIgnored) {
  EXPECT_EQ(ParseOk(StrCat("]d201", kGtin, "10LOT1", kGs)).lot, "LOT1");
  EXPECT_EQ(ParseOk(StrCat("]d201", kGtin, kGs)).elements.size(), 1u);
}

TEST(Gs1FormTest, TwoSeparatorsInARowAreAnEmptyElement) {
  ExpectRejected(StrCat("]d210LOT1", kGs, kGs, "01", kGtin), "barcode",
                 "two group separators in a row");
  ExpectRejected(StrCat("]d201", kGtin, "10LOT1", kGs, kGs), "barcode",
                 "two group separators in a row");
  ExpectRejected(StrCat("]d2", kGs, kGs, "01", kGtin), "barcode", "two group separators in a row");
}

TEST(Gs1FormTest, SeparatorAfterPredefinedFixedLengthFieldIsTolerated) {
  const Gs1Data data = ParseOk(StrCat("]d201", kGtin, kGs, "17271231", kGs, "10A"));
  EXPECT_EQ(data.gtin, kGtin);
  EXPECT_EQ(Day(data.expiry), "2027-12-31");
  EXPECT_EQ(data.lot, "A");
}

TEST(Gs1FormTest, FixedLengthFieldOutsidePredefinedTableNeedsSeparator) {
  // 422 (country of origin) is N3 but not in the predefined-length table.
  ExpectRejected(StrCat("]d201", kGtin, "42225010LOT1"), "422",
                 "must be followed by a group separator");
  EXPECT_EQ(ParseOk(StrCat("]d201", kGtin, "422250", kGs, "10LOT1")).lot, "LOT1");
  EXPECT_EQ(ParseOk(StrCat("]d201", kGtin, "10LOT1", kGs, "422250")).elements.size(), 3u);
}

TEST(Gs1FormTest, LotMayContainBracketsInRawForm) {
  const Gs1Data data = ParseOk(StrCat("]d201", kGtin, "10LOT(A)", kGs, "21(S)"));
  EXPECT_EQ(data.lot, "LOT(A)");
  EXPECT_EQ(data.serial, "(S)");
  EXPECT_EQ(FormatGs1Bracketed(data), StrCat("(01)", kGtin, "(10)LOT\\(A)(21)\\(S)"));
}

TEST(Gs1FormTest, BracketedFormUnescapesBracketInValue) {
  const Gs1Data data = ParseOk(StrCat("(01)", kGtin, "(10)LOT\\(A)(21)X"));
  EXPECT_EQ(data.lot, "LOT(A)");
  EXPECT_EQ(data.serial, "X");
}

TEST(Gs1FormTest, UnescapedBracketInBracketedValueIsRejected) {
  ExpectRejected(StrCat("(01)", kGtin, "(10)LOT(A)"), "barcode", "must be written as \\(");
  ExpectRejected("(1)12", "barcode", "expected an application identifier");
  ExpectRejected(StrCat("(01", kGtin), "barcode", "expected an application identifier");
}

TEST(Gs1FormTest, BackslashOtherThanEscapeIsRejected) {
  ExpectRejected(StrCat("(01)", kGtin, "(10)A\\B"), "10", "character '\\' is not allowed");
}

TEST(Gs1FormTest, NonGs1SymbologyIsRejected) {
  ExpectRejected(StrCat("]d101", kGtin), "barcode", "not a GS1 barcode");
  ExpectRejected(StrCat("]Q101", kGtin), "barcode", "not a GS1 barcode");
  ExpectRejected("]A0HELLO", "barcode", "not a GS1 barcode (symbology identifier ]A0)");
  ExpectRejected("]E09506000134352", "barcode", "not a GS1 barcode");
  ExpectRejected("]d", "barcode", "not a GS1 barcode");
}

TEST(Gs1FormTest, PlainQrOrDataMatrixCarryingDigitalLinkIsAccepted) {
  // Digital Link URIs are encoded without FNC1, so scanners report ]Q1 / ]d1 for them.
  EXPECT_EQ(ParseOk(StrCat("]Q1https://example.com/01/", kGtin, "/21/S1")).serial, "S1");
  EXPECT_EQ(ParseOk(StrCat("]d1https://example.com/01/", kGtin)).gtin, kGtin);
}

TEST(Gs1FormTest, AnythingElseIsNotAGs1Barcode) {
  ExpectRejected("hello", "barcode", "not a GS1 barcode");
  ExpectRejected(" 0109506000134352", "barcode", "not a GS1 barcode");
  ExpectRejected("ftp://example.com/01/09506000134352", "barcode", "not a GS1 barcode");
}

TEST(Gs1FormTest, EmptyScanIsRejected) {
  ExpectRejected("", "barcode", "empty");
  ExpectRejected("\r\n", "barcode", "empty");
  ExpectRejected("]d2", "barcode", "no data");
  ExpectRejected(StrCat("]d2", kGs), "barcode", "no data");
  ExpectRejected(kGs, "barcode", "no data");
}

// ---------------------------------------------------------------------------------------------
// Rejection reasons.

TEST(Gs1RejectTest, BadCheckDigitNamesTheExpectedDigit) {
  ExpectRejected("(01)09521234543214(17)270100(10)AB12", "01", "check digit is 4, expected 3");
  ExpectRejected("]d20109521234543214", "01", "check digit is 4, expected 3");
  ExpectRejected("(00)106141411234567890", "00", "check digit is 0, expected 7");
  EXPECT_EQ(ParseOk("(00)106141411234567897").elements.size(), 1u);
}

TEST(Gs1RejectTest, MonthThatDoesNotExistIsRejected) {
  ExpectRejected(StrCat("(01)", kGtin, "(17)271331"), "17", "month 13 does not exist");
  ExpectRejected(StrCat("(01)", kGtin, "(11)270015"), "11", "month 00 does not exist");
}

TEST(Gs1RejectTest, DayThatDoesNotExistIsRejected) {
  ExpectRejected(StrCat("(01)", kGtin, "(17)270230"), "17",
                 "day 30 does not exist in February 2027");
  ExpectRejected(StrCat("(01)", kGtin, "(17)270431"), "17", "day 31 does not exist in April 2027");
  ExpectRejected(StrCat("(01)", kGtin, "(17)270132"), "17", "day 32 does not exist");
}

TEST(Gs1RejectTest, CharacterOutsideSet82IsRejected) {
  ExpectRejected(StrCat("(01)", kGtin, "(10)LOT#1"), "10",
                 "character '#' is not allowed (GS1 character set 82)");
  ExpectRejected(StrCat("(01)", kGtin, "(21)A B"), "21", "a space is not allowed");
  ExpectRejected(StrCat("(01)", kGtin, "(10)A", kGs, "B"), "10",
                 "a group separator (GS) is not allowed");
  ExpectRejected(StrCat("(01)", kGtin, "(10)\xc3\xa9"), "10", "byte 0xC3 is not allowed");
  ExpectRejected(StrCat("]d201", kGtin, "10LOT$"), "10", "character '$' is not allowed");
}

TEST(Gs1RejectTest, NumericFieldWithLetterIsRejected) {
  ExpectRejected("(01)0950600013435A", "01",
                 "character 'A' is not allowed: GTIN takes digits only");
  ExpectRejected(StrCat("(01)", kGtin, "(17)27I231"), "17", "digits only");
}

TEST(Gs1RejectTest, LotOver20CharactersIsRejected) {
  ExpectRejected(StrCat("(01)", kGtin, "(10)ABCDEFGHIJKLMNOPQRSTU"), "10",
                 "lot is 21 characters, at most 20 allowed");
  ExpectRejected(StrCat("]d201", kGtin, "21ABCDEFGHIJKLMNOPQRSTU"), "21",
                 "serial is 21 characters, at most 20 allowed");
  EXPECT_EQ(ParseOk(StrCat("(01)", kGtin, "(10)ABCDEFGHIJKLMNOPQRST")).lot.size(), 20u);
}

TEST(Gs1RejectTest, WrongLengthForFixedFieldIsRejected) {
  ExpectRejected("(01)0950600013435(17)271231", "01", "GTIN is 13 digits, exactly 14 required");
  ExpectRejected("(01)095060001343520", "01", "GTIN is 15 digits, exactly 14 required");
  ExpectRejected(StrCat("]d20109506000134", kGs, "10A"), "01",
                 "GTIN is 11 digits, exactly 14 required");
  ExpectRejected(StrCat("]d201", kGtin, "1727123"), "17",
                 "expiry date is 5 digits, exactly 6 required");
  ExpectRejected(StrCat("]d201", kGtin, "17"), "17", "expiry date is empty");
}

TEST(Gs1RejectTest, EmptyVariableValueIsRejected) {
  ExpectRejected(StrCat("(01)", kGtin, "(10)(21)X"), "10", "lot is empty");
  ExpectRejected(StrCat("]d201", kGtin, "10", kGs, "21X"), "10", "lot is empty");
}

TEST(Gs1RejectTest, SerialLotOrDateWithoutGtinIsRejected) {
  ExpectRejected("(21)CRT000123", "21", "serial (21) without a GTIN (01)");
  ExpectRejected("(10)LOT1", "10", "lot (10) without a GTIN (01)");
  ExpectRejected("]d217271231", "17", "expiry date (17) without a GTIN (01)");
  ExpectRejected("(11)250101", "11", "production date (11) without a GTIN (01)");
  // An SSCC alone is a complete logistics label.
  EXPECT_TRUE(ParseGs1("(00)106141411234567897", kYear).ok());
}

TEST(Gs1RejectTest, DuplicateAiWithDifferentValueIsRejected) {
  ExpectRejected(StrCat("(01)", kGtin, "(17)271231(17)281231"), "17",
                 "AI 17 appears twice with different values");
  ExpectRejected(StrCat("]d221A", kGs, "01", kGtin, "21B"), "21",
                 "AI 21 appears twice with different values");
}

TEST(Gs1RejectTest, DuplicateAiWithSameValueIsKeptOnce) {
  const Gs1Data data = ParseOk(StrCat("(01)", kGtin, "(10)L1(01)", kGtin, "(10)L1"));
  ASSERT_EQ(data.elements.size(), 2u);
  EXPECT_EQ(data.elements[0].ai, "01");
  EXPECT_EQ(data.elements[1].ai, "10");
  EXPECT_EQ(FormatGs1Bracketed(data), StrCat("(01)", kGtin, "(10)L1"));
}

TEST(Gs1RejectTest, UnknownApplicationIdentifierIsRejected) {
  ExpectRejected(StrCat("(01)", kGtin, "(23)X"), "23", "unknown application identifier 23");
  ExpectRejected(StrCat("]d201", kGtin, "26X"), "26", "unknown application identifier 26");
  // 23 could still become 235, so the data must say otherwise first.
  ExpectRejected(StrCat("]d201", kGtin, "230X"), "230", "unknown application identifier 230");
  ExpectRejected(StrCat("]d201", kGtin, "244X"), "244", "unknown application identifier 244");
  // 3106 would be a net weight with six decimals, which GS1 does not define.
  ExpectRejected(StrCat("]d201", kGtin, "3106000100"), "3106",
                 "unknown application identifier 3106");
  ExpectRejected(StrCat("(01)", kGtin, "(3106)000100"), "3106",
                 "unknown application identifier 3106");
}

TEST(Gs1RejectTest, DataEndingInsideAnApplicationIdentifierIsRejected) {
  ExpectRejected(StrCat("]d201", kGtin, "1"), "barcode",
                 "ends in the middle of an application identifier");
  ExpectRejected(
      StrCat("]d201", kGtin, "1A"), "barcode",
      "expected an application identifier (digits) at character 21, found character 'A'");
}

TEST(Gs1RejectTest, OtherAisAreValidatedByTheirOwnFormat) {
  EXPECT_EQ(ParseOk(StrCat("]d201", kGtin, "3103001250", "400PO-7", kGs, "7003", "2712312359"))
                .elements.size(),
            4u);
  ExpectRejected(StrCat("(01)", kGtin, "(7003)2712312460"), "7003", "hour 24 does not exist");
  ExpectRejected(StrCat("(01)", kGtin, "(7003)2712002300"), "7003", "day 00 is not allowed");
  ExpectRejected(StrCat("(01)", kGtin, "(414)9506000134351"), "414", "check digit is 1");
  ExpectRejected(StrCat("(01)", kGtin, "(240)", std::string(31, 'A')), "240", "at most 30 allowed");
}

// ---------------------------------------------------------------------------------------------
// Dates.

TEST(Gs1DateTest, February29ExistsOnlyInLeapYears) {
  EXPECT_EQ(Day(ParseOk(StrCat("(01)", kGtin, "(17)280229")).expiry), "2028-02-29");
  ExpectRejected(StrCat("(01)", kGtin, "(17)270229"), "17",
                 "day 29 does not exist in February 2027 (not a leap year)");
  // 2000 is a leap year (divisible by 400); 2100 is not (divisible by 100).
  EXPECT_EQ(Day(ParseOk(StrCat("(01)", kGtin, "(11)000229")).produced), "2000-02-29");
  ExpectRejected(StrCat("(01)", kGtin, "(11)000229"), "11", "February 2100", 2090);
}

TEST(Gs1DateTest, DayZeroMeansLastDayOfMonth) {
  const Gs1Data data = ParseOk(StrCat("(01)", kGtin, "(11)280200(17)270200"));
  EXPECT_EQ(Day(data.produced), "2028-02-29");
  EXPECT_EQ(Day(data.expiry), "2027-02-28");
  EXPECT_EQ(Day(ParseOk(StrCat("(01)", kGtin, "(17)271100")).expiry), "2027-11-30");
  EXPECT_EQ(Day(ParseOk(StrCat("(01)", kGtin, "(17)271200")).expiry), "2027-12-31");
  // The element keeps the value as encoded; only the resolved date changes.
  EXPECT_EQ(data.elements[2].value, "270200");
}

TEST(Gs1DateTest, CenturyFollowsGs1SlidingWindow) {
  auto expiry = [](std::string_view yymmdd, int current_year) {
    return Day(ParseOk(StrCat("(01)", kGtin, "(17)", yymmdd), current_year).expiry);
  };
  EXPECT_EQ(expiry("260101", 2026), "2026-01-01");
  EXPECT_EQ(expiry("750101", 2026), "2075-01-01");  // 75 - 26 = 49: this century
  EXPECT_EQ(expiry("760101", 2026), "2076-01-01");  // 50: still this century
  EXPECT_EQ(expiry("770101", 2026), "1977-01-01");  // 51: previous century
  EXPECT_EQ(expiry("800101", 2026), "1980-01-01");  // 54
  EXPECT_EQ(expiry("000101", 2026), "2000-01-01");  // -26
  EXPECT_EQ(expiry("990101", 2026), "1999-01-01");
  EXPECT_EQ(expiry("310101", 2080), "2031-01-01");  // -49: this century
  EXPECT_EQ(expiry("300101", 2080), "2130-01-01");  // -50: next century
  EXPECT_EQ(expiry("290101", 2080), "2129-01-01");
  EXPECT_EQ(expiry("500101", 1999), "1950-01-01");  // -49
  EXPECT_EQ(expiry("490101", 1999), "2049-01-01");  // -50
}

// ---------------------------------------------------------------------------------------------
// GS1 Digital Link.

TEST(Gs1DigitalLinkTest, GtinLotAndSerialComeFromThePath) {
  const Gs1Data data = ParseOk("https://example.com/01/09506000134352/10/LOT-2024A/21/CRT000123");
  EXPECT_EQ(data.gtin, kGtin);
  EXPECT_EQ(data.lot, "LOT-2024A");
  EXPECT_EQ(data.serial, "CRT000123");
  EXPECT_EQ(FormatGs1Bracketed(data), "(01)09506000134352(10)LOT-2024A(21)CRT000123");
}

TEST(Gs1DigitalLinkTest, PathPrefixQueryDatesAndOtherParametersAreHandled) {
  const Gs1Data data = ParseOk(
      "HTTPS://id.example.com/01/shop/x/01/09506000134352/22/V1/10/L1?linkType=gs1:pip&17=271231"
      "&11=250100#top");
  EXPECT_EQ(data.gtin, kGtin);
  EXPECT_EQ(data.lot, "L1");
  EXPECT_EQ(Day(data.expiry), "2027-12-31");
  EXPECT_EQ(Day(data.produced), "2025-01-31");
  EXPECT_EQ(FormatGs1Bracketed(data), "(01)09506000134352(22)V1(10)L1(17)271231(11)250100");
  EXPECT_EQ(ParseOk("http://example.com/01/09506000134352/").gtin, kGtin);
  EXPECT_EQ(ParseOk("https://example.com/01/09506000134352?17=271231").elements.size(), 2u);
}

TEST(Gs1DigitalLinkTest, ValuesArePercentDecoded) {
  const Gs1Data data = ParseOk("https://example.com/01/09506000134352/10/A%2FB%28C%29/21/%41%2b1");
  EXPECT_EQ(data.lot, "A/B(C)");
  EXPECT_EQ(data.serial, "A+1");
  ExpectRejected("https://example.com/01/09506000134352/10/A%2", "10",
                 "'%2' is not a valid percent-encoding");
  ExpectRejected("https://example.com/01/09506000134352/10/A%G1", "10", "'%G1'");
  ExpectRejected("https://example.com/01/09506000134352/10/A%20B", "10", "a space is not allowed");
}

TEST(Gs1DigitalLinkTest, MalformedLinksAreRejected) {
  ExpectRejected("https://example.com/about/us", "barcode", "not a GS1 Digital Link");
  ExpectRejected("https://example.com", "barcode", "not a GS1 Digital Link");
  ExpectRejected("https:///01/09506000134352", "barcode", "no host name");
  ExpectRejected("https://example.com/01/0950600013435", "01", "GTIN is 13 digits");
  ExpectRejected("https://example.com/01/09506000134353", "01", "check digit is 3, expected 2");
  ExpectRejected("https://example.com/01/09506000134352/21/S/10/L", "10", "in that order");
  ExpectRejected("https://example.com/01/09506000134352/10/L/10/L", "10", "in that order");
  ExpectRejected("https://example.com/01/09506000134352/17/271231", "17",
                 "cannot be in a Digital Link path");
  ExpectRejected("https://example.com/01/09506000134352?10=L1", "10",
                 "belongs in the path of a Digital Link");
  ExpectRejected("https://example.com/01/09506000134352?17=271331", "17", "month 13");
  ExpectRejected("https://example.com/01/09506000134352?17=", "17", "expiry date is empty");
  ExpectRejected("https://example.com/01/09506000134352?23=1", "23",
                 "unknown application identifier 23");
  ExpectRejected("https://example.com/01/09506000134352/10/", "10", "lot is empty");
}

// ---------------------------------------------------------------------------------------------
// Formatting and GTIN checks.

TEST(Gs1FormatTest, BracketedFormKeepsInputOrder) {
  const Gs1Data data = ParseOk(StrCat("]d210L1", kGs, "17271231", "01", kGtin));
  EXPECT_EQ(FormatGs1Bracketed(data), StrCat("(10)L1(17)271231(01)", kGtin));
  EXPECT_EQ(FormatGs1Bracketed(Gs1Data{}), "");
}

TEST(Gs1FormatTest, IsValidGtinChecksLengthDigitsAndCheckDigit) {
  EXPECT_TRUE(IsValidGtin("09506000134352"));
  EXPECT_TRUE(IsValidGtin("09521234543213"));
  EXPECT_FALSE(IsValidGtin("09506000134353"));
  EXPECT_FALSE(IsValidGtin("9506000134352"));
  EXPECT_FALSE(IsValidGtin("095060001343520"));
  EXPECT_FALSE(IsValidGtin("0950600013435A"));
  EXPECT_FALSE(IsValidGtin(""));
}

// ---------------------------------------------------------------------------------------------
// Property: random valid scans agree across all three forms and survive parse → format → parse.

constexpr std::string_view kCset82 =
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

int Uniform(std::mt19937& rng, int low, int high) {
  return std::uniform_int_distribution<int>(low, high)(rng);
}

// Written independently of the parser so the two can disagree.
std::string WithCheckDigit(std::string payload) {
  int sum = 0;
  for (std::size_t i = 0; i < payload.size(); ++i) {
    const int weight = (payload.size() - i) % 2 == 1 ? 3 : 1;
    sum += (payload[i] - '0') * weight;
  }
  payload.push_back(static_cast<char>('0' + (10 - sum % 10) % 10));
  return payload;
}

std::string RandomDigits(std::mt19937& rng, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out.push_back(static_cast<char>('0' + Uniform(rng, 0, 9)));
  return out;
}

std::string RandomText(std::mt19937& rng, int max_length) {
  std::string out;
  const int length = Uniform(rng, 1, max_length);
  for (int i = 0; i < length; ++i) {
    out.push_back(kCset82[Uniform(rng, 0, static_cast<int>(kCset82.size()) - 1)]);
  }
  return out;
}

// A random valid YYMMDD (day 00 included) and the date it must resolve to for `current_year`.
std::pair<std::string, absl::CivilDay> RandomDate(std::mt19937& rng, int current_year) {
  const int yy = Uniform(rng, 0, 99);
  const int month = Uniform(rng, 1, 12);
  int year = current_year / 100 * 100 + yy;
  if (yy - current_year % 100 > 50) year -= 100;
  if (yy - current_year % 100 < -49) year += 100;
  const int last_day = (absl::CivilDay(absl::CivilMonth(year, month) + 1) - 1).day();
  const int day = Uniform(rng, 0, last_day);
  return {absl::StrFormat("%02d%02d%02d", yy, month, day),
          absl::CivilDay(year, month, day == 0 ? last_day : day)};
}

std::string PercentEncode(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_') {
      out.push_back(c);
    } else {
      StrAppend(&out, absl::StrFormat("%%%02X", static_cast<unsigned char>(c)));
    }
  }
  return out;
}

constexpr std::array<std::string_view, 4> kSymbologies = {"]d2", "]C1", "]Q3", "]e0"};

bool IsPredefinedLength(std::string_view ai) {
  return ai == "01" || ai == "11" || ai == "17" || ai == "3103";
}

TEST(Gs1PropertyTest, RandomScansAgreeAcrossFormsAndRoundTrip) {
  std::mt19937 rng(20260101);
  constexpr int kCases = 3000;
  for (int n = 0; n < kCases && !::testing::Test::HasFailure(); ++n) {
    const int current_year = Uniform(rng, 0, 3) == 0 ? Uniform(rng, 1990, 2150) : kYear;
    Gs1Data expected;
    expected.gtin = WithCheckDigit(RandomDigits(rng, 13));
    expected.elements.push_back({"01", expected.gtin});
    std::vector<std::string> query;  // Digital Link query parameters
    if (Uniform(rng, 0, 1) == 1) {
      expected.lot = RandomText(rng, 20);
      expected.elements.push_back({"10", expected.lot});
    }
    if (Uniform(rng, 0, 1) == 1) {
      expected.serial = RandomText(rng, 20);
      expected.elements.push_back({"21", expected.serial});
    }
    if (Uniform(rng, 0, 1) == 1) {
      auto [value, day] = RandomDate(rng, current_year);
      expected.expiry = day;
      expected.elements.push_back({"17", value});
    }
    if (Uniform(rng, 0, 2) == 0) {
      auto [value, day] = RandomDate(rng, current_year);
      expected.produced = day;
      expected.elements.push_back({"11", value});
    }
    if (Uniform(rng, 0, 3) == 0) expected.elements.push_back({"422", RandomDigits(rng, 3)});
    if (Uniform(rng, 0, 3) == 0) expected.elements.push_back({"3103", RandomDigits(rng, 6)});
    if (Uniform(rng, 0, 3) == 0) expected.elements.push_back({"240", RandomText(rng, 30)});
    std::shuffle(expected.elements.begin(), expected.elements.end(), rng);

    std::string raw(kSymbologies[Uniform(rng, 0, 3)]);
    std::string bracketed;
    std::string link = "https://example.com/01/" + expected.gtin;
    std::vector<std::string> link_query;
    for (std::size_t i = 0; i < expected.elements.size(); ++i) {
      const Gs1Element& e = expected.elements[i];
      const bool last = i + 1 == expected.elements.size();
      StrAppend(&raw, e.ai, e.value);
      if (!last && (!IsPredefinedLength(e.ai) || Uniform(rng, 0, 4) == 0)) raw += kGs;
      StrAppend(&bracketed, "(", e.ai, ")");
      for (char c : e.value) {
        if (c == '(') bracketed.push_back('\\');
        bracketed.push_back(c);
      }
      if (e.ai != "01" && e.ai != "10" && e.ai != "21") {
        link_query.push_back(StrCat(e.ai, "=", PercentEncode(e.value)));
      }
    }
    if (!expected.lot.empty()) StrAppend(&link, "/10/", PercentEncode(expected.lot));
    if (!expected.serial.empty()) StrAppend(&link, "/21/", PercentEncode(expected.serial));
    if (!link_query.empty()) StrAppend(&link, "?", StrJoin(link_query, "&"));
    if (Uniform(rng, 0, 4) == 0) raw += kGs;  // trailing separator
    if (Uniform(rng, 0, 4) == 0) raw += "\r\n";

    SCOPED_TRACE(StrCat("case ", n, " year ", current_year, "\n raw: ", Show(raw),
                        "\n bracketed: ", bracketed, "\n link: ", link));
    absl::StatusOr<Gs1Data> from_raw = ParseGs1(raw, current_year);
    ASSERT_TRUE(from_raw.ok()) << from_raw.status();
    EXPECT_TRUE(SameData(*from_raw, expected));
    absl::StatusOr<Gs1Data> from_bracketed = ParseGs1(bracketed, current_year);
    ASSERT_TRUE(from_bracketed.ok()) << from_bracketed.status();
    EXPECT_TRUE(SameData(*from_bracketed, *from_raw));

    const std::string formatted = FormatGs1Bracketed(*from_raw);
    EXPECT_EQ(formatted, bracketed);
    absl::StatusOr<Gs1Data> reparsed = ParseGs1(formatted, current_year);
    ASSERT_TRUE(reparsed.ok()) << reparsed.status();
    EXPECT_TRUE(SameData(*reparsed, *from_raw));

    // Digital Link orders elements differently (path first), so compare the facts.
    absl::StatusOr<Gs1Data> from_link = ParseGs1(link, current_year);
    ASSERT_TRUE(from_link.ok()) << from_link.status();
    EXPECT_EQ(from_link->gtin, expected.gtin);
    EXPECT_EQ(from_link->lot, expected.lot);
    EXPECT_EQ(from_link->serial, expected.serial);
    EXPECT_EQ(from_link->expiry, expected.expiry);
    EXPECT_EQ(from_link->produced, expected.produced);
    EXPECT_EQ(from_link->elements.size(), expected.elements.size());
  }
}

}  // namespace
}  // namespace steritrack

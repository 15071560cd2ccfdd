// The CLI's bounded line reader and its canonical numbers (issue 12, item 8): line ends as scanners
// send them, the length bound, and integers that CLI11 alone would read in another base or clamp.
#include "client/bounded_input.h"

#include <sstream>
#include <string>

#include "client/numbers.h"
#include "gtest/gtest.h"

namespace steritrack::cli {
namespace {

using Result = LineReader::Result;

TEST(LineReaderTest, SplitsOnLfCrlfAndLoneCrCountingCrlfAsOneLine) {
  std::istringstream in("a\nb\r\nc\rd");
  LineReader reader(in, "input");
  std::string line;
  for (const char* want : {"a", "b", "c", "d"}) {
    ASSERT_EQ(reader.Next(&line), Result::kLine);
    EXPECT_EQ(line, want);
  }
  EXPECT_EQ(reader.line_number(), 4);
  EXPECT_EQ(reader.Next(&line), Result::kEnd);
}

TEST(LineReaderTest, KeepsEmptyLinesAndTheirNumbers) {
  std::istringstream in("\n\r\n\rx\n");
  LineReader reader(in, "input");
  std::string line;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(reader.Next(&line), Result::kLine);
    EXPECT_EQ(line, "");
  }
  ASSERT_EQ(reader.Next(&line), Result::kLine);
  EXPECT_EQ(line, "x");
  EXPECT_EQ(reader.line_number(), 4);
}

TEST(LineReaderTest, ALoneCrEndsTheLineWithoutReadingFurther) {
  std::istringstream in("scan\rrest");
  LineReader reader(in, "input");
  std::string line;
  ASSERT_EQ(reader.Next(&line), Result::kLine);
  EXPECT_EQ(line, "scan");
  EXPECT_EQ(in.tellg(), 5);  // the byte after CR is still unread
}

TEST(LineReaderTest, ALineOfTheBoundIsALineOneMoreIsTooLongAndNamedByNumber) {
  std::istringstream in(std::string(8, 'a') + "\n" + std::string(9, 'b') + "\nok\n");
  LineReader reader(in, "delivery.txt", 8);
  std::string line;
  ASSERT_EQ(reader.Next(&line), Result::kLine);
  EXPECT_EQ(line.size(), 8u);
  ASSERT_EQ(reader.Next(&line), Result::kTooLong);
  EXPECT_EQ(reader.TooLongMessage(), "delivery.txt line 2 is longer than 8 bytes");
  ASSERT_TRUE(reader.SkipRestOfLine());
  ASSERT_EQ(reader.Next(&line), Result::kLine);
  EXPECT_EQ(line, "ok");
  EXPECT_EQ(reader.line_number(), 3);
}

TEST(CanonicalIntTest, AcceptsPlainDecimalOnly) {
  EXPECT_EQ(ParseCanonicalInt("0"), 0);
  EXPECT_EQ(ParseCanonicalInt("18"), 18);
  EXPECT_EQ(ParseCanonicalInt("-7"), -7);
  EXPECT_EQ(ParseCanonicalInt("9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "-", "-0", "01", "+1", " 1", "1 ", "0x10", "1e3", "1.0",
                          "9223372036854775808", "99999999999999999999"}) {
    EXPECT_EQ(ParseCanonicalInt(bad), std::nullopt) << bad;
  }
}

TEST(CanonicalIntTest, ProblemsNameTheRange) {
  EXPECT_EQ(IntegerProblem("5", 1, 10), "");
  EXPECT_EQ(IntegerProblem("11", 1, 10), "'11' is out of range: allowed 1..10");
  EXPECT_EQ(IntegerProblem("99999999999999999999", 1, 10),
            "'99999999999999999999' is out of range: allowed 1..10");
  EXPECT_NE(IntegerProblem("010", 1, 10).find("not a whole number in plain decimal"),
            std::string::npos);
}

}  // namespace
}  // namespace steritrack::cli

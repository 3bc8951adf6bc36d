// The operational log's record format: one line per record, whatever the
// message holds.
#include "observability/log.h"

#include <gtest/gtest.h>

#include <string>

namespace settle::observability {
namespace {

TEST(OneLine, LibpqsIndentedHintJoinsTheFirstLineWithOneSpace) {
  EXPECT_EQ(one_line("server closed the connection unexpectedly\n\tThis probably means the server terminated "
                     "abnormally\n\tbefore or while processing the request.\n"),
            "server closed the connection unexpectedly This probably means the server terminated abnormally "
            "before or while processing the request.");
}

TEST(OneLine, CrLfAndBlankLinesAreOneBreakAndTheEndsGo) {
  EXPECT_EQ(one_line("\r\nfirst  \r\n\r\n   second\n"), "first second");
  EXPECT_EQ(one_line("\n \t\n"), "");
}

TEST(OneLine, ALineWithoutBreaksKeepsItsSpacesAndTabs) {
  EXPECT_EQ(one_line("  a\tb  c "), "  a\tb  c ");
}

TEST(Logging, ATextRecordWithLineBreaksIsWrittenAsOneLine) {
  init_logging(LogLevel::kInfo, LogFormat::kText);
  testing::internal::CaptureStderr();
  Logger("ledger").warn("post: {}", "could not send data to server: Broken pipe\n\tretrying\n");
  const std::string out = testing::internal::GetCapturedStderr();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  EXPECT_NE(out.find("warn  settled ledger: post: could not send data to server: Broken pipe retrying\n"),
            std::string::npos)
      << out;
}

TEST(Logging, AJsonRecordCarriesTheMessageAsOneLine) {
  init_logging(LogLevel::kInfo, LogFormat::kJson);
  testing::internal::CaptureStderr();
  Logger("ledger").error("a\n\tb");
  const std::string out = testing::internal::GetCapturedStderr();
  init_logging(LogLevel::kInfo, LogFormat::kText);
  EXPECT_NE(out.find(R"("message":"a b")"), std::string::npos) << out;
}

}  // namespace
}  // namespace settle::observability

// A role that crashes says so in its log: the signal, the faulting address
// and its stack (app/crash_report.h), and then dies of that signal as it
// would have without the report (same wait status, core dump if enabled).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <string>

#include "support/process.h"

namespace settle {
namespace {

using testing::Process;
using testing::ProcessOptions;
using testing::TempDir;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;  // the sanitizer's own handler reports instead
#else
constexpr bool kSanitized = false;
#endif

TEST(CrashReport, ARoleKilledBySegvLogsTheSignalAndItsStackAndStillDiesOfIt) {
  if (kSanitized) GTEST_SKIP() << "a sanitizer build leaves crash reports to the sanitizer";
  TempDir dir("settle-crash");
  Process gateway(ProcessOptions{{SETTLED_BIN, "gateway", "--data-dir", (dir.path() / "data").string(), "--listen",
                                  "127.0.0.1:0"},
                                 {},
                                 {},
                                 dir.path() / "gateway.log",
                                 {}});
  ASSERT_TRUE(gateway.wait_for_output("stop with SIGTERM", std::chrono::seconds(30))) << gateway.log_tail();

  ASSERT_EQ(::kill(gateway.pid(), SIGSEGV), 0);
  const auto status = gateway.wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "still running after SIGSEGV";
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGSEGV) << Process::describe_status(*status);

  const std::string log = gateway.log_tail(64 * 1024);
  EXPECT_NE(log.find("settled: fatal signal 11 (SIGSEGV)"), std::string::npos) << log;
  const auto stack = log.find("; stack:\n");
  ASSERT_NE(stack, std::string::npos) << log;
  // At least one frame, named by the binary it is in.
  EXPECT_NE(log.find("settled(", stack), std::string::npos) << log;
}

}  // namespace
}  // namespace settle

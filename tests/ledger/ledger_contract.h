// The contract suite of the ledger port (src/ledger/ledger.h). Every Ledger
// implementation instantiates it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, LedgerContract, ::testing::Values(factory),
//                            settle::ledger::ledger_factory_name);
//
// and compiles ledger_contract.cc into its test binary. Journals and batch
// closes are built by settle::rules, so the suite exercises real journals.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "ledger/ledger.h"

namespace settle::ledger {

struct LedgerFactory {
  std::string name;  // a GoogleTest name: letters, digits, underscores
  // Opens the ledger kept in `scratch`: a fresh, empty directory that belongs
  // to one test (an implementation may keep files there or derive a database
  // name from it). Opening the same scratch again must reopen the same ledger,
  // with everything committed before. Returns null (after reporting a
  // failure) when it cannot.
  std::function<std::unique_ptr<Ledger>(const std::string& scratch)> open;
};

void PrintTo(const LedgerFactory& factory, std::ostream* os);
std::string ledger_factory_name(const ::testing::TestParamInfo<LedgerFactory>& info);

class LedgerContract : public ::testing::TestWithParam<LedgerFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Closes the ledger and opens it again from the same scratch.
  void reopen();
  Ledger& ledger() { return *ledger_; }

  std::string scratch_;
  std::unique_ptr<Ledger> ledger_;
};

}  // namespace settle::ledger

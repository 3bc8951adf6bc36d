// The contract suite of the idempotency port (src/idempotency/store.h). Every
// Store implementation instantiates it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, StoreContract, ::testing::Values(factory),
//                            settle::idempotency::store_factory_name);
//
// Time is moved through the factory's advance_time, so one suite serves an
// embedded store on a manual clock and a server store that must really wait.
// Ttls are long enough (hundreds of ms) for the sleeping kind to tell "still
// held" from "expired" on a loaded machine.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "idempotency/store.h"

namespace settle::idempotency {

struct StoreFactory {
  std::string name;  // a GoogleTest name: letters, digits, underscores
  std::function<std::unique_ptr<Store>()> make;
  // Moves the store's notion of time forward by at least the given amount.
  std::function<void(std::chrono::milliseconds)> advance_time;
};

// GoogleTest would otherwise print these as raw bytes.
void PrintTo(const StoreFactory& factory, std::ostream* os);
void PrintTo(const Lease& lease, std::ostream* os);

std::string store_factory_name(const ::testing::TestParamInfo<StoreFactory>& info);

class StoreContract : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;
  void advance(std::chrono::milliseconds by) { GetParam().advance_time(by); }

  std::unique_ptr<Store> store_;
};

}  // namespace settle::idempotency

// What the pipeline tests run on: the embedded runtime in a fresh directory
// (one partition, no fsyncs) with one merchant published, m1 (UTC, paid out
// a day after its batch, 1% on captures), and a directory of it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "app/runtime.h"
#include "model/merchant_json.h"
#include "processor/merchant_directory.h"

namespace settle::testing {

class EmbeddedPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() /
           ("settle-pipeline-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    open_runtime();
    merchant_ = *model::parse_merchant_json(
        R"({"merchant_id":"m1","timezone":"UTC","delay_days":1,"fees":{"capture":{"bps":100,"fixed":0}}})");
    ASSERT_TRUE(processor::MerchantDirectory::publish(*rt_.bus, std::span(&merchant_, 1)).ok());
    directory_ = std::make_unique<processor::MerchantDirectory>(*rt_.bus);
    ASSERT_TRUE(directory_->refresh().ok());
  }
  void TearDown() override {
    directory_.reset();
    rt_ = {};
    std::filesystem::remove_all(dir_);
  }
  // (Re)opens the runtime on dir_, as a restarted process would.
  void open_runtime() {
    app::RuntimeOptions o;
    o.data_dir = dir_;
    o.partitions = 1;
    o.bus_fsync = bus::FsyncPolicy::kNone;
    o.ledger_sync = ledger::Synchronous::kNormal;
    auto rt = app::Runtime::open(o);
    ASSERT_TRUE(rt.ok()) << rt.error().to_string();
    rt_ = std::move(rt).value();
  }

  std::filesystem::path dir_;
  app::Runtime rt_;
  model::Merchant merchant_;
  std::unique_ptr<processor::MerchantDirectory> directory_;
};

}  // namespace settle::testing

// Status updates as JSON (model/status_update.h): event_accepted and
// event_posted, written for every group of events, are written directly;
// they must be the bytes nlohmann::json writes for the same object (keys in
// sorted order, no spaces), which the other kinds still go through, and read
// back as the update they came from.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "model/status_update.h"

namespace settle::model {
namespace {

StatusUpdate accepted() {
  StatusUpdate u;
  u.kind = StatusKind::kEventAccepted;
  u.merchant_id = "m-eur";
  u.at_ms = 1'795'456'800'123;
  u.count = 3;
  u.event_ids = {"e-1", "e\"2\\", "e\t3"};
  u.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  return u;
}

TEST(StatusJson, AnAcceptedGroupIsWrittenWithSortedKeysAndEscapedIds) {
  EXPECT_EQ(status_json(accepted()),
            R"({"at_ms":1795456800123,"count":3,"event_ids":["e-1","e\"2\\","e\t3"],)"
            R"("kind":"event_accepted","merchant_id":"m-eur","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"})");
}

TEST(StatusJson, EventStatusesAreTheBytesNlohmannWrites) {
  StatusUpdate posted = accepted();
  posted.kind = StatusKind::kEventPosted;
  posted.partition = 2;
  posted.offset = 41;
  posted.trace_id.clear();
  StatusUpdate sourced = accepted();
  sourced.event_id = "e-9";
  sourced.source = "events.ndjson:12";
  sourced.reason = "a control \x01 character";
  sourced.event_ids.clear();
  for (const StatusUpdate& u : {accepted(), posted, sourced}) {
    const std::string ours = status_json(u);
    // nlohmann's object keeps its keys sorted: its dump of our text is what
    // it would have written.
    EXPECT_EQ(nlohmann::json::parse(ours).dump(), ours);
  }
  EXPECT_NE(status_json(posted).find(R"("offset":41,"partition":2)"), std::string::npos) << status_json(posted);
}

TEST(StatusJson, AnEventStatusReadsBackAsTheUpdateItCameFrom) {
  StatusUpdate u = accepted();
  u.kind = StatusKind::kEventPosted;
  u.partition = 1;
  u.offset = 7;
  auto back = parse_status_json(status_json(u));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->kind, StatusKind::kEventPosted);
  EXPECT_EQ(back->merchant_id, "m-eur");
  EXPECT_EQ(back->event_ids, u.event_ids);
  EXPECT_EQ(back->count, 3);
  EXPECT_EQ(back->partition, 1);
  EXPECT_EQ(back->offset, 7);
  EXPECT_EQ(back->trace_id, u.trace_id);
  EXPECT_EQ(back->at_ms, u.at_ms);
}

TEST(StatusJson, ABatchStatusStillCarriesItsPayout) {
  StatusUpdate u;
  u.kind = StatusKind::kBatchClosed;
  u.merchant_id = "m-eur";
  u.payout = 12345;
  u.at_ms = 1;
  const std::string text = status_json(u);
  EXPECT_EQ(nlohmann::json::parse(text).dump(), text);
  EXPECT_NE(text.find(R"("payout":12345)"), std::string::npos) << text;
}

}  // namespace
}  // namespace settle::model

// The notify server over real sockets: Beast WebSocket clients (the gateway
// tests' WsClient), the embedded bus, status records appended as the
// processor and worker append them.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>

#include "bus/file_log_bus.h"
#include "gateway/keys.h"
#include "http_client.h"
#include "model/status_update.h"
#include "notify/server.h"
#include "notify/status_cache.h"
#include "notify/tokens.h"
#include "processor/topics.h"
#include "support/process.h"
#include "ws_client.h"

namespace settle::notify {
namespace {

using nlohmann::json;
using testing::UpgradeRefused;
using testing::WsClient;

constexpr const char* kSecret = "test-token-secret-0123456789";

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

long rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

class NotifyServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus::FileLogOptions o;
    o.dir = dir_.path() / "bus";
    o.fsync = bus::FsyncPolicy::kNone;
    auto b = bus::FileLogBus::open(o);
    ASSERT_TRUE(b.ok()) << b.error().message;
    bus_ = std::move(*b);
    ASSERT_TRUE(bus_->create_topic({processor::kStatusTopic, 2, false}).ok());
    auto keys = gateway::KeyRing::open(*bus_);
    ASSERT_TRUE(keys.ok());
    key_a_ = (*keys)->create(gateway::Scope::kMerchant, "ma")->secret;
    key_b_ = (*keys)->create(gateway::Scope::kMerchant, "mb")->secret;
    admin_ = (*keys)->create(gateway::Scope::kAdmin, "")->secret;
  }
  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
  }

  void start(CacheLimits limits = {}, NotifyOptions o = {}) {
    cache_ = make_memory_cache(limits);
    o.port = 0;
    o.token_secret = kSecret;
    o.poll_interval = std::chrono::milliseconds(2);
    server_ = std::make_unique<NotifyServer>(*bus_, *cache_, o);
    ASSERT_TRUE(server_->start().ok());
    port_ = server_->port();
  }

  // Appends n batch_open statuses of `merchant`; returns their offsets (seqs).
  std::vector<std::int64_t> publish(const std::string& merchant, int n, std::size_t padding = 0) {
    std::vector<bus::Record> recs;
    for (int i = 0; i < n; ++i) {
      model::StatusUpdate u;
      u.kind = model::StatusKind::kBatchOpen;
      u.merchant_id = merchant;
      u.batch = model::BatchKey{MerchantId(merchant), date_from_civil(2026, 3, 2), "USD"};
      u.totals = model::ControlTotals{};
      u.totals->of(model::EventType::kCapture) = {++counter_, counter_ * 100, counter_};
      u.reason = std::string(padding, 'x');
      u.at_ms = now_ms();
      recs.push_back(bus::Record{merchant, model::status_json(u), {}, 0});
    }
    auto pos = bus_->append(processor::kStatusTopic, recs);
    EXPECT_TRUE(pos.ok());
    std::vector<std::int64_t> out;
    for (const auto& p : *pos) out.push_back(p.offset);
    return out;
  }

  std::string target(const std::string& query) { return "/v1/stream/status" + (query.empty() ? "" : "?" + query); }

  testing::TempDir dir_{"settle-notify"};
  std::unique_ptr<bus::FileLogBus> bus_;
  std::unique_ptr<StatusCache> cache_;
  std::unique_ptr<NotifyServer> server_;
  int port_ = 0;
  std::string key_a_, key_b_, admin_;
  std::int64_t counter_ = 0;
};

json next(WsClient& c) {
  auto m = c.read(10000);
  if (!m) throw std::runtime_error(fmt::format("closed: {} {}", c.close_code(), c.close_reason()));
  return json::parse(*m);
}

TEST_F(NotifyServerTest, AMerchantKeyCannotSubscribeToAnotherMerchant) {
  start();
  try {
    WsClient c(port_, target("merchant_id=mb"), key_a_);
    FAIL() << "A's key subscribed to B";
  } catch (const UpgradeRefused& e) {
    EXPECT_EQ(e.status, 403u);
    EXPECT_NE(e.body.find("mb"), std::string::npos);
  }
  try {
    WsClient c(port_, target(""), "sk_not_a_key");
    FAIL() << "an unknown key subscribed";
  } catch (const UpgradeRefused& e) {
    EXPECT_EQ(e.status, 401u);
  }
  // Without merchant_id a merchant key watches its own merchant only.
  WsClient a(port_, target(""), key_a_);
  EXPECT_EQ(next(a)["type"], "resync");
  publish("mb", 3);
  const auto mine = publish("ma", 1);
  const json m = next(a);
  EXPECT_EQ(m["merchant_id"], "ma");
  EXPECT_EQ(m["seq"], mine[0]);
  // The admin sees both.
  WsClient admin(port_, target(""), admin_);
  std::set<std::string> seen;  // from resyncs, or live when the feed had not applied them yet
  while (seen.size() < 2) seen.insert(next(admin)["merchant_id"].get<std::string>());
  EXPECT_EQ(seen, (std::set<std::string>{"ma", "mb"}));
}

TEST_F(NotifyServerTest, TokensFromAKeyWorkUntilTheyExpire) {
  start();
  auto r = testing::http_request(port_, "POST", "/v1/stream/tokens", "{\"ttl_s\":60}",
                                 {{"Authorization", "Bearer " + key_a_}, {"Content-Type", "application/json"}});
  ASSERT_EQ(r.status, 201u) << r.body;
  const std::string token = json::parse(r.body)["token"];
  WsClient ok(port_, target("token=" + token), "");
  const json first = next(ok);
  EXPECT_EQ(first["type"], "resync");
  EXPECT_EQ(first["merchant_id"], "ma");
  try {
    WsClient c(port_, target("merchant_id=mb&token=" + token), "");
    FAIL() << "A's token subscribed to B";
  } catch (const UpgradeRefused& e) {
    EXPECT_EQ(e.status, 403u);
  }
  const std::string expired = issue_token(kSecret, TokenClaims{false, "ma", now_ms() - 1});
  try {
    WsClient c(port_, target("token=" + expired), "");
    FAIL() << "an expired token was accepted";
  } catch (const UpgradeRefused& e) {
    EXPECT_EQ(e.status, 401u);
    EXPECT_NE(e.body.find("expired"), std::string::npos);
  }
  const std::string forged = issue_token("another-secret-0123456789", TokenClaims{true, "", now_ms() + 60'000});
  EXPECT_THROW(WsClient(port_, target("token=" + forged), ""), UpgradeRefused);
  auto merchant_b = testing::http_request(port_, "POST", "/v1/stream/tokens", "{\"merchant_id\":\"mb\"}",
                                          {{"Authorization", "Bearer " + key_a_}});
  EXPECT_EQ(merchant_b.status, 403u);
}

TEST_F(NotifyServerTest, AClientThatReconnectsWithSinceGetsExactlyWhatItMissed) {
  start();
  auto seqs = publish("ma", 5);
  publish("mb", 4);  // interleaved on the same partitions: seqs of ma have gaps
  auto more = publish("ma", 5);
  seqs.insert(seqs.end(), more.begin(), more.end());
  std::uint64_t epoch = 0;
  std::int64_t last = -1;
  {
    WsClient c(port_, target("merchant_id=ma"), key_a_);
    const json r = next(c);
    ASSERT_EQ(r["type"], "resync");
    // Wait until the cache had all 10: a resync at the head, or status messages after it.
    std::int64_t head = r["seq"];
    epoch = r["epoch"];
    while (head < seqs.back()) {
      const json m = next(c);
      head = m["seq"];
      epoch = m["epoch"];  // the resync may precede the feed's first record (epoch 0 then)
    }
    // Reconnect from the 4th message of ma.
    last = seqs[3];
  }
  auto later = publish("ma", 3);
  seqs.insert(seqs.end(), later.begin(), later.end());
  WsClient c(port_, target(fmt::format("merchant_id=ma&since={}:{}", epoch, last)), key_a_);
  std::vector<std::int64_t> got;
  while (got.size() < seqs.size() - 4) {
    const json m = next(c);
    ASSERT_EQ(m["type"], "status") << m.dump();
    ASSERT_EQ(m["epoch"], epoch);
    got.push_back(m["seq"]);
  }
  EXPECT_EQ(got, std::vector<std::int64_t>(seqs.begin() + 4, seqs.end()));
  // Nothing more (no duplicate) until something new, which then follows on.
  auto one = publish("ma", 1);
  const json m = next(c);
  EXPECT_EQ(m["seq"], one[0]);
}

TEST_F(NotifyServerTest, AnAdminOfEveryMerchantResumesEachMerchantWithNoGapAndNoDuplicate) {
  start();
  auto a = publish("ma", 4);
  auto b = publish("mb", 3);
  publish("mc", 2);
  // Read the all-merchants stream until every merchant's head is known.
  std::map<std::string, std::pair<std::uint64_t, std::int64_t>> at;  // merchant -> (epoch, seq)
  {
    WsClient c(port_, target(""), admin_);
    while (at["ma"].second < a.back() || at["mb"].second < b.back()) {
      const json m = next(c);
      at[m["merchant_id"].get<std::string>()] = {m["epoch"].get<std::uint64_t>(), m["seq"].get<std::int64_t>()};
    }
  }
  // Resume ma from its 2nd message and mb from its last; mc is not named.
  const auto [ea, sa] = at["ma"];
  const auto [eb, sb] = at["mb"];
  ASSERT_EQ(sb, b.back());
  auto a2 = publish("ma", 2);
  auto b2 = publish("mb", 1);
  WsClient c(port_, target(fmt::format("since={}:ma:{},{}:mb:{}", ea, a[1], eb, sb)), admin_);
  std::vector<std::int64_t> got_a, got_b;
  bool mc_resync = false;
  while (got_a.size() < 4 || got_b.size() < 1 || !mc_resync) {
    const json m = next(c);
    if (m["merchant_id"] == "mc") {
      EXPECT_EQ(m["type"], "resync");
      mc_resync = true;
      continue;
    }
    ASSERT_EQ(m["type"], "status") << m.dump();  // named merchants resume: no resync
    (m["merchant_id"] == "ma" ? got_a : got_b).push_back(m["seq"].get<std::int64_t>());
  }
  EXPECT_EQ(got_a, (std::vector<std::int64_t>{a[2], a[3], a2[0], a2[1]}));
  EXPECT_EQ(got_b, (std::vector<std::int64_t>{b2[0]}));
  // Nothing more (no duplicate) until something new.
  auto one = publish("mb", 1);
  const json m = next(c);
  EXPECT_EQ(m["merchant_id"], "mb");
  EXPECT_EQ(m["seq"], one[0]);
  (void)sa;
  // A malformed resume point is refused with what is wrong.
  for (const std::string bad : {"1:2", "1:ma:2,1:ma:3", "x:ma:1", "1:ma:2,"}) {
    try {
      WsClient r(port_, target("since=" + bad), admin_);
      FAIL() << "since=" << bad << " was accepted";
    } catch (const UpgradeRefused& e) {
      EXPECT_EQ(e.status, 400u) << bad;
    }
  }
}

TEST_F(NotifyServerTest, AClientTooFarBehindOrFromAnotherEpochGetsAResync) {
  CacheLimits limits;
  limits.history_max = 5;
  start(limits);
  auto seqs = publish("ma", 20);
  // Wait until the cache holds them all.
  std::uint64_t epoch = 0;
  for (;;) {
    WsClient probe(port_, target("merchant_id=ma"), key_a_);
    const json r = next(probe);
    epoch = r["epoch"];
    if (r["seq"] == seqs.back()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  WsClient old(port_, target(fmt::format("merchant_id=ma&since={}:{}", epoch, seqs[2])), key_a_);
  const json r = next(old);
  EXPECT_EQ(r["type"], "resync");
  EXPECT_EQ(r["seq"], seqs.back());
  ASSERT_EQ(r["batches"].size(), 1u);
  EXPECT_EQ(r["batches"][0]["event_count"], 20);  // the latest running totals
  WsClient other_epoch(port_, target(fmt::format("merchant_id=ma&since={}:{}", epoch + 1, seqs.back())), key_a_);
  EXPECT_EQ(next(other_epoch)["type"], "resync");
  // Within the history: no resync, the messages after it.
  WsClient recent(port_, target(fmt::format("merchant_id=ma&since={}:{}", epoch, seqs[16])), key_a_);
  const json m = next(recent);
  EXPECT_EQ(m["type"], "status");
  EXPECT_EQ(m["seq"], seqs[17]);
}

TEST_F(NotifyServerTest, ASlowClientIsClosedWhileOthersKeepReceiving) {
  NotifyOptions o;
  o.queue_max = 64;  // above a wave: a burst is queued at once
  o.socket_send_buffer_bytes = 4096;
  start({}, o);
  WsClient slow(port_, target("merchant_id=ma"), key_a_, 4096);
  ASSERT_EQ(next(slow)["type"], "resync");
  WsClient fast(port_, target("merchant_id=ma"), key_a_);
  ASSERT_EQ(next(fast)["type"], "resync");
  // Waves the fast client keeps up with; the slow one reads nothing.
  constexpr int kWaves = 20, kPerWave = 20, kMessages = kWaves * kPerWave;
  for (int w = 0; w < kWaves; ++w) {
    auto seqs = publish("ma", kPerWave, 2000);
    for (int i = 0; i < kPerWave; ++i) {
      const json m = next(fast);
      ASSERT_EQ(m["seq"], seqs[i]);
    }
  }
  EXPECT_EQ(server_->slow_closed(), 1);
  // The slow client finds the close frame (4008) after what was already sent.
  int read = 0;
  while (slow.read(10000)) ++read;
  EXPECT_LT(read, kMessages);
  EXPECT_EQ(slow.close_code(), kSlowConsumerCloseCode);
  EXPECT_NE(slow.close_reason().find("slow consumer"), std::string::npos);
}

TEST_F(NotifyServerTest, AThousandClientsWithBoundedMemory) {
  NotifyOptions o;
  o.socket_send_buffer_bytes = 16384;
  start({}, o);
  constexpr int kClients = 1000;
  const long before = rss_kb();
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<WsClient>(port_, target("merchant_id=ma"), key_a_));
  }
  for (auto& c : clients) ASSERT_EQ(next(*c)["type"], "resync");
  EXPECT_EQ(server_->clients(), static_cast<std::size_t>(kClients));
  auto seqs = publish("ma", 3);
  for (auto& c : clients) {
    for (std::int64_t s : seqs) ASSERT_EQ(next(*c)["seq"], s);
  }
  const long after = rss_kb();
  const long per_client = (after - before) * 1024 / kClients;
  std::fprintf(stderr, "RSS %ld kB -> %ld kB: %ld bytes per connection (server and client sides)\n", before, after,
               per_client);
  EXPECT_LT(per_client, 200 * 1024);
}

TEST_F(NotifyServerTest, MerchantStatusAnswersTheCachedState) {
  start();
  publish("ma", 2);
  json j;
  for (int i = 0; i < 500; ++i) {
    auto r = testing::http_request(port_, "GET", "/v1/merchants/ma/status", "", {{"Authorization", "Bearer " + key_a_}});
    ASSERT_EQ(r.status, 200u) << r.body;
    j = json::parse(r.body);
    if (j["batches"].size() == 1 && j["batches"][0]["event_count"] == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(j["merchant_id"], "ma");
  ASSERT_EQ(j["batches"].size(), 1u);
  EXPECT_EQ(j["batches"][0]["kind"], "batch_open");
  EXPECT_EQ(j["batches"][0]["totals"]["capture"]["amount"], 200);
  EXPECT_EQ(testing::http_request(port_, "GET", "/v1/merchants/mb/status", "", {{"Authorization", "Bearer " + key_a_}}).status,
            403u);
  EXPECT_EQ(testing::http_request(port_, "GET", "/v1/merchants/ma/status").status, 401u);
  auto page = testing::http_request(port_, "GET", "/dashboard");
  EXPECT_EQ(page.status, 200u);
  EXPECT_NE(page.header("content-type").find("text/html"), std::string::npos);
}

}  // namespace
}  // namespace settle::notify

// The gateway's HTTP API as plain request/response values, independent of the
// transport (server.cc carries them over Boost.Beast): routing, Bearer-key
// authentication and scopes, validation, idempotency keys, event-level
// deduplication, and the queries. docs/openapi.yaml describes every route;
// route_table() is what a test compares it with.
//
// Error bodies: {"error":{"code":"…","message":"…","details":[{"field":"…","reason":"…"}]}}.
//
// Thread safety: handle() and handle_async() may be called from any number
// of threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bus/bus.h"
#include "common/result.h"
#include "gateway/group_appender.h"
#include "gateway/keys.h"
#include "gateway/rate_limiter.h"
#include "idempotency/store.h"
#include "ledger/ledger.h"
#include "observability/alerts.h"
#include "observability/metrics.h"
#include "processor/merchant_directory.h"
#include "processor/topics.h"
#include "reconcile/recon_store.h"

namespace settle::gateway {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, e.g. "/v1/merchants/m1/ledger?limit=10"
  std::string authorization;
  std::string idempotency_key;
  std::string content_type;
  std::string body;
  bool has_idempotency_key = false;
  std::string traceparent;  // W3C trace context of the caller, if it sent one
  std::optional<std::uint64_t> content_length;  // the header, when sent (streamed bodies)
};

struct Response {
  unsigned status = 200;
  std::string body;  // JSON
  std::vector<std::pair<std::string, std::string>> headers;
  // The route template that answered (route_table()), for metrics; null
  // when none matched.
  const char* route = nullptr;
};

// What an Idempotency-Key keeps once its request is answered: the digest of
// the request and the response's status, traceparent (empty: none) and body.
// encode writes format 2 ("v2", digest, status, traceparent, body, one per
// line, the body last). decode also reads format 1 (digest, status, body:
// no traceparent), so entries stored before an upgrade replay within their
// ttl; nullopt for anything else.
struct StoredResponse {
  std::string digest;
  unsigned status = 0;
  std::string traceparent;
  std::string body;
  bool operator==(const StoredResponse&) const = default;
};
std::string encode_stored_response(const StoredResponse& r);
std::optional<StoredResponse> decode_stored_response(std::string_view stored);

struct Route {
  const char* method;
  const char* path;  // OpenAPI template, e.g. "/v1/merchants/{merchant_id}"
};
// Every route the API serves.
const std::vector<Route>& route_table();

struct ApiOptions {
  // How long an Idempotency-Key's first response is replayed.
  std::chrono::milliseconds idempotency_ttl = std::chrono::hours(24);
  // How long the gateway remembers an accepted event's (merchant, event id)
  // and content digest to answer `duplicate`/`conflict` itself. After that
  // (or after a restart of the embedded store) the ledger's unique identity
  // still settles the event once; the API then answers `accepted`.
  std::chrono::milliseconds event_claim_ttl = std::chrono::hours(24);
  std::size_t max_events_per_request = 1000;
  // Ledger rows /events/{id} scans for the event's journal (the ledger port
  // has no lookup by event id yet).
  std::size_t event_lookup_rows_max = 1'000'000;
  std::size_t ledger_page_max = 1000;
  // Bulk: events per bus append, longest line (or CSV record), errors listed.
  std::size_t bulk_batch_events = 4096;
  std::size_t bulk_batch_bytes = std::size_t{1} << 20;  // and at most this much text
  std::size_t bulk_line_bytes_max = 1 << 20;
  std::size_t bulk_errors_max = 1000;
  // Per merchant, in events (429 beyond); rate 0 turns it off.
  RateLimit rate_limit;
  // Pre-signed uploads (POST /v1/uploads): the HMAC-SHA256 key of their URLs
  // (empty: Api::open() draws a random one, valid only in this process), the
  // largest upload, and the URLs' default and longest lifetime.
  std::string upload_secret;
  std::uint64_t upload_max_bytes = std::uint64_t{1} << 30;
  std::chrono::seconds upload_expiry = std::chrono::hours(1);
  std::chrono::seconds upload_expiry_max = std::chrono::hours(24 * 7);
  // The reconciliation store behind /v1/statements, /v1/discrepancies and
  // /v1/drift (recon_api.h; must outlive the Api). Null: those routes answer 503.
  reconcile::ReconStore* recon = nullptr;
  // GET /metrics serves it; HTTP requests and ingestion results are counted
  // in it. Null: no metrics.
  observability::Metrics* metrics = nullptr;
  // GET /v1/alerts (admin) lists its pending and firing alerts. Null: 404.
  const observability::AlertMonitor* alerts = nullptr;
};

// Formats the error envelope.
struct Detail {
  std::string field;
  std::string reason;
};
Response error_response(unsigned status, std::string_view code, std::string_view message,
                        const std::vector<Detail>& details = {});

// Splits a validation message of the form "field 'amount': must be > 0" into
// its field and reason ("" and the whole message when it names none).
Detail detail_of(std::string_view message, std::string_view prefix);

class BulkUpload;
class EventStream;
class ReconApi;

// What an ingestion of events decided for each one.
enum class Verdict : std::uint8_t { kAccepted, kDuplicate, kConflict };

// A thread that answers requests: a connection's I/O thread. The events
// committer builds no answers itself: it hands the completions of each group
// to their lanes, one post per lane and group, and each answer is built and
// written on the thread that read its request (whose cache holds its state).
class Lane {
 public:
  virtual ~Lane() = default;
  // Runs `work` on the lane's thread, later.
  virtual void post(std::function<void()> work) = 0;
};

class Api {
 public:
  // Opens the key ring (creating the `keys` topic) and loads the merchants.
  ~Api();
  static Result<std::unique_ptr<Api>> open(bus::Bus& bus, ledger::Ledger& ledger, idempotency::Store& store,
                                           ApiOptions options = {});

  Response handle(const Request& request);
  // handle() for a caller that need not hold a thread while the bus makes
  // events durable: POST /v1/events without an Idempotency-Key is validated
  // and claimed here, and `respond` runs later, once the events are durable:
  // on `lane` when one is given, else on the bus committer's thread
  // (GroupAppender), where it must only hand the response on (e.g. post it
  // to the connection). Every other request is answered (respond called)
  // before handle_async() returns.
  using Respond = std::function<void(Response)>;
  void handle_async(const Request& request, Respond respond, Lane* lane = nullptr);
  // True when handle_async() never waits for I/O on this request: a POST
  // /v1/events without an Idempotency-Key on an in-process idempotency store
  // (the key ring and merchants are in memory). The server then calls it on
  // its I/O thread instead of handing the request to a handler thread: one
  // thread handoff fewer per request. The key ring's periodic reload from
  // the ledger (and its reload on an unknown key, at most once a
  // second) then runs on that I/O thread too, a short read now and then.
  bool answers_without_waiting(const Request& request) const;
  // Returns once every event append queued so far is durable and answered
  // (a server stopping calls it before it stops delivering answers).
  void drain_appends() {
    events_appender_.drain();
    status_appender_.drain();
  }
  // event_accepted: status records appended, and appends of them that failed
  // (a failure is never the request's: its events are on the bus).
  std::int64_t statuses_published() const { return statuses_published_.load(); }
  std::int64_t status_publish_failures() const { return status_publish_failures_.load(); }

  // POST /v1/events/bulk, whose body is streamed: begin_bulk() checks the
  // headers (route, key, content type, Idempotency-Key) and returns either an
  // upload to feed the body to, or the response to send at once.
  // The same serves PUT to a pre-signed upload URL (begin_upload()).
  struct BulkStart {
    std::unique_ptr<BulkUpload> upload;
    Response response;  // when !upload
    // A longer body gets upload->too_large() (413).
    std::uint64_t body_limit = std::numeric_limits<std::uint64_t>::max();
  };
  BulkStart begin_bulk(const Request& headers_only);
  static bool is_bulk_target(std::string_view target);
  // Requests whose body the server streams to begin_bulk(): POST
  // /v1/events/bulk and PUT /v1/uploads/{id}.
  static bool is_streamed(std::string_view method, std::string_view target);
  // True when no upload secret was configured and open() drew one.
  bool upload_secret_generated() const { return upload_secret_generated_; }

  // GET /v1/events/stream, a WebSocket upgrade (stream.h): begin_stream()
  // checks the key and the optional ?merchant_id= binding (403 for a merchant
  // key naming another merchant) and returns either the stream or the
  // response refusing the upgrade.
  struct StreamStart {
    std::unique_ptr<EventStream> stream;
    Response response;  // when !stream
  };
  StreamStart begin_stream(const Request& headers_only);
  static bool is_stream_target(std::string_view target);

  // Claims each event's (merchant, event id) with its content digest and
  // appends the new ones to the bus in one call; the verdict per event.
  // Every record carries `traceparent` (W3C), one continue_or_start() made
  // (a client's header is not taken as is); empty: a new trace per call.
  Result<std::vector<Verdict>> claim_and_append(const std::vector<model::Event>& events, std::string_view source,
                                                std::string_view traceparent = {});
  // The same without waiting for the bus: the claims are made (and the
  // events' records built) before it returns, so `events` may change then;
  // `done` runs once the records are durable and marked (on `lane`, or on
  // the committer's thread without one; see handle_async()) or at once when
  // nothing needs appending or the claims failed.
  using Decided = std::function<void(Result<std::vector<Verdict>>)>;
  void claim_and_append_async(const std::vector<model::Event>& events, std::string_view source,
                              std::string_view traceparent, Decided done, Lane* lane = nullptr);
  // The merchant's configuration (a copy), or nullopt when unknown.
  std::optional<model::Merchant> find_merchant(std::string_view merchant_id);
  bool has_merchant(std::string_view merchant_id);  // without the copy
  idempotency::Store& store() { return store_; }
  const ApiOptions& options() const { return options_; }
  RateLimiter& rate_limiter() { return limiter_; }
  // Bus and ledger reachable.
  Status ready();
  KeyRing& keys() { return *keys_; }

 private:
  Api(bus::Bus& bus, ledger::Ledger& ledger, idempotency::Store& store, ApiOptions options,
      std::unique_ptr<KeyRing> keys);

  struct Call;
  Response dispatch(Call& call);
  Response route_and_handle(const Request& request, const char*& route, std::string& merchant);
  Response with_idempotency(Call& call);
  std::optional<Response> authenticate(Call& call);
  Response post_events(Call& call);
  void post_events_async(Call& call, Respond respond, Lane* lane);
  void count_verdicts(const std::vector<Verdict>& verdicts);  // the events_* metrics
  Response post_key(Call& call);
  Response get_alerts(Call& call);
  Response list_keys(Call& call);
  Response revoke_key(Call& call, std::string_view key_id);
  Response put_merchant(Call& call, std::string_view merchant_id);
  Response get_merchant(Call& call, std::string_view merchant_id);
  Response get_batches(Call& call, std::string_view merchant_id);
  Response get_batch(Call& call, std::string_view merchant_id, std::string_view date, std::string_view currency);
  Response get_balances(Call& call, std::string_view merchant_id);
  Response get_ledger(Call& call, std::string_view merchant_id);
  Response get_event(Call& call, std::string_view merchant_id, std::string_view event_id);
  Response readyz();
  // Pre-signed uploads (uploads.cc).
  BulkStart begin_upload(const Request& headers_only);
  Response post_upload(const Request& request, const KeyInfo& key);
  Response get_upload(const KeyInfo& key, std::string_view upload_id);

  Result<std::vector<std::string>> open_batch_rows(std::string_view merchant_id, std::optional<Date> from,
                                                   std::optional<Date> to);

  bus::Bus& bus_;
  ledger::Ledger& ledger_;
  idempotency::Store& store_;
  ApiOptions options_;
  std::unique_ptr<KeyRing> keys_;
  std::mutex merchants_mu_;
  processor::MerchantDirectory merchants_;
  RateLimiter limiter_;
  // event_accepted statuses: the (merchant, event id) of each event the
  // events appender's current group carries, with its request's trace id,
  // noted by the requests' completions and published once per group by
  // publish_accepted() (both on its committer thread only); their own
  // appender appends them to the status topic, so no request waits for it.
  struct AcceptedCall {
    std::string traceparent;  // the trace id is its characters 3-34
    std::vector<std::pair<std::string, std::string>> events;  // (merchant, event id)
  };
  void publish_accepted(const Status& appended);
  std::vector<AcceptedCall> accepted_in_group_;
  // The group's completions owed to lanes, posted by hand_to_lanes() after
  // the group's completions ran (events committer thread only). Few lanes
  // (one per I/O thread): a vector searched in order.
  void hand_to_lanes();
  std::vector<std::pair<Lane*, std::vector<std::function<void()>>>> to_lanes_;
  std::atomic<std::int64_t> statuses_published_{0};
  std::atomic<std::int64_t> status_publish_failures_{0};
  GroupAppender status_appender_;
  GroupAppender events_appender_;  // after status_appender_: drained first
  std::shared_ptr<void> status_collector_;
  bool upload_secret_generated_ = false;
  std::unique_ptr<ReconApi> recon_;  // when options.recon is set
};

}  // namespace settle::gateway

#include "bus/kafka_bus.h"

#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

namespace settle::bus {

using Clock = std::chrono::steady_clock;

// A librdkafka client with the last error it reported (error_cb, or a log
// line at level error or worse), so that a failure can say why.
struct KafkaBus::Handle {
  rd_kafka_t* rk = nullptr;
  void* owner = nullptr;  // the GroupMember of a member's handle
  mutable std::mutex mu;
  std::string last_error;
  bool all_brokers_down = false;

  ~Handle() {
    if (rk != nullptr) rd_kafka_destroy(rk);
  }
  void note(std::string message, bool down = false) {
    std::lock_guard lock(mu);
    last_error = std::move(message);
    if (down) all_brokers_down = true;
  }
  std::string last() const {
    std::lock_guard lock(mu);
    return last_error;
  }
  bool take_down() {
    std::lock_guard lock(mu);
    return std::exchange(all_brokers_down, false);
  }
};

using Handle = KafkaBus::Handle;

namespace {

ErrorCode code_of(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
      return ErrorCode::kNotFound;
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      return ErrorCode::kInvalidArgument;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return ErrorCode::kConflict;
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__FENCED:
      return ErrorCode::kFenced;
    default:
      return ErrorCode::kUnavailable;
  }
}

Error kafka_error(rd_kafka_resp_err_t err, const std::string& what, const Handle* handle) {
  std::string message = "kafka: " + what + ": " + rd_kafka_err2str(err);
  if (handle != nullptr) {
    const std::string last = handle->last();
    if (!last.empty() && message.find(last) == std::string::npos) {
      message += " (last broker error: " + last + ")";
    }
  }
  return make_error(code_of(err), std::move(message));
}

Error kafka_error(rd_kafka_error_t* error, const std::string& what, const Handle* handle) {
  const rd_kafka_resp_err_t code = rd_kafka_error_code(error);
  Error e = kafka_error(code, what, handle);
  e.message += std::string(" [") + rd_kafka_error_string(error) + "]";
  rd_kafka_error_destroy(error);
  return e;
}

std::string topic_partition(std::string_view topic, std::int32_t partition) {
  return std::string(topic) + "/" + std::to_string(partition);
}

void error_cb(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* handle = static_cast<Handle*>(opaque);
  handle->note(reason, err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN);
}

void log_cb(const rd_kafka_t* rk, int level, const char* facility, const char* line) {
  if (level > 3) return;  // LOG_ERR and worse
  auto* handle = static_cast<Handle*>(rd_kafka_opaque(rk));
  if (handle != nullptr) handle->note(std::string(facility) + ": " + line);
}

// Per-call bookkeeping of append(): one Delivery per record, filled by the
// delivery-report callback on the poller thread.
struct Pending;
struct Delivery {
  Pending* owner = nullptr;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
};
struct Pending {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t remaining = 0;
  std::vector<Delivery> deliveries;
};

void delivery_cb(rd_kafka_t*, const rd_kafka_message_t* message, void*) {
  auto* delivery = static_cast<Delivery*>(message->_private);
  if (delivery == nullptr) return;
  Pending* pending = delivery->owner;
  std::lock_guard lock(pending->mu);
  delivery->err = message->err;
  delivery->partition = message->partition;
  delivery->offset = message->offset;
  // Notify under the lock: the waiter frees `pending` as soon as it sees 0.
  if (--pending->remaining == 0) pending->cv.notify_all();
}

using Props = std::vector<std::pair<std::string, std::string>>;

// What every client of the bus sets: producer, reader and group members.
Props connection_props(const std::string& bootstrap, const KafkaOptions& options) {
  return {
      {"bootstrap.servers", bootstrap},
      {"client.id", options.client_id},
      {"socket.timeout.ms", std::to_string(options.timeout_ms)},
      {"allow.auto.create.topics", "false"},
      {"reconnect.backoff.max.ms", "1000"},
      // TCP_NODELAY, as the Java client always sets: append() and commits
      // wait for their answers, so a request held back by Nagle is latency.
      {"socket.nagle.disable", "true"},
  };
}

Result<std::unique_ptr<Handle>> make_handle(rd_kafka_type_t type, const Props& props,
                                            const std::function<void(rd_kafka_conf_t*)>& extra,
                                            void* owner = nullptr) {
  auto handle = std::make_unique<Handle>();
  handle->owner = owner;
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [name, value] : props) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return make_error(ErrorCode::kInvalidArgument,
                        "kafka: configuration " + name + "=" + value + ": " + errstr);
    }
  }
  rd_kafka_conf_set_opaque(conf, handle.get());
  rd_kafka_conf_set_error_cb(conf, error_cb);
  rd_kafka_conf_set_log_cb(conf, log_cb);
  if (extra) extra(conf);
  handle->rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (handle->rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return make_error(ErrorCode::kInvalidArgument, std::string("kafka: client: ") + errstr);
  }
  return handle;
}

// Commits one offset through `handle` and waits for the broker's answer, at
// most timeout_ms.
Status commit_offset(Handle& handle, std::string_view topic, std::int32_t partition,
                     std::int64_t next_offset, std::int32_t timeout_ms, const std::string& what) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, std::string(topic).c_str(), partition)->offset =
      next_offset;
  rd_kafka_queue_t* queue = rd_kafka_queue_new(handle.rk);
  const rd_kafka_resp_err_t err = rd_kafka_commit_queue(handle.rk, list, queue, nullptr, nullptr);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_queue_destroy(queue);
    return kafka_error(err, what, &handle);
  }
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, timeout_ms);
  rd_kafka_queue_destroy(queue);
  if (event == nullptr) {
    return kafka_error(RD_KAFKA_RESP_ERR__TIMED_OUT, what, &handle);
  }
  rd_kafka_resp_err_t result = rd_kafka_event_error(event);
  if (result == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (const auto* parts = rd_kafka_event_topic_partition_list(event)) {
      for (int i = 0; i < parts->cnt; ++i) {
        if (parts->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) result = parts->elems[i].err;
      }
    }
  }
  rd_kafka_event_destroy(event);
  if (result != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_error(result, what, &handle);
  return ok_status();
}

std::int32_t remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<std::int32_t>(std::max<std::int64_t>(0, left.count()));
}

// The partition's high watermark from its leader. ListOffsets for the
// "latest" timestamp through offsets_for_times, which keeps to its timeout
// (librdkafka 2.0.2's query_watermark_offsets retries a request to a dead
// broker without end).
rd_kafka_resp_err_t query_end_offset(rd_kafka_t* rk, const std::string& topic,
                                     std::int32_t partition, std::int32_t timeout_ms,
                                     std::int64_t* high) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), partition)->offset = RD_KAFKA_OFFSET_END;
  rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list, timeout_ms);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = list->elems[0].err;
  *high = list->elems[0].offset;
  rd_kafka_topic_partition_list_destroy(list);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && *high < 0) err = RD_KAFKA_RESP_ERR__BAD_MSG;
  return err;
}

StoredRecord to_stored(const rd_kafka_message_t* m) {
  StoredRecord r;
  r.partition = m->partition;
  r.offset = m->offset;
  rd_kafka_timestamp_type_t type;
  r.timestamp_ms = rd_kafka_message_timestamp(m, &type);
  if (m->key != nullptr) r.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    for (std::size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      Header h;
      h.key = name;
      if (value != nullptr) h.value.assign(static_cast<const char*>(value), size);
      r.headers.push_back(std::move(h));
    }
  }
  return r;
}

// One request line to settle-kafka-mock's admin port, one line back.
Result<std::string> mock_admin_request(const std::string& address, const std::string& line,
                                       std::int32_t timeout_ms) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kafka: mock_admin '" + address + "' is not host:port");
  }
  const std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "kafka: mock_admin '" + address + "': bad address");
  }
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int connected = ::connect(fd, found->ai_addr, found->ai_addrlen);
  ::freeaddrinfo(found);
  if (connected != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return make_error(ErrorCode::kUnavailable,
                      "kafka: mock admin port " + address + ": connect: " + why);
  }
  const std::string request = line + "\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return make_error(ErrorCode::kUnavailable, "kafka: mock admin port " + address + ": send failed");
  }
  std::string reply;
  char buf[256];
  while (reply.find('\n') == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const auto nl = reply.find('\n');
  if (nl == std::string::npos) {
    return make_error(ErrorCode::kUnavailable,
                      "kafka: mock admin port " + address + ": no answer to '" + line + "'");
  }
  reply.resize(nl);
  return reply;
}

template <typename T>
bool parse_number(std::string_view text, T& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

// ---------------------------------------------------------------------------
// URL and lifecycle

Result<std::pair<std::string, KafkaOptions>> KafkaBus::parse_url(const std::string& url,
                                                                  KafkaOptions options) {
  constexpr std::string_view kScheme = "kafka://";
  if (url.rfind(kScheme, 0) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kafka: bus URL '" + url + "' does not start with kafka://");
  }
  const std::string rest = url.substr(kScheme.size());
  const auto question = rest.find('?');
  std::string bootstrap = rest.substr(0, question);
  if (bootstrap.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "kafka: bus URL '" + url + "' names no broker");
  }
  if (question == std::string::npos) return std::make_pair(bootstrap, options);
  std::istringstream params(rest.substr(question + 1));
  for (std::string param; std::getline(params, param, '&');) {
    if (param.empty()) continue;
    const auto eq = param.find('=');
    const std::string name = param.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : param.substr(eq + 1);
    bool ok = true;
    if (name == "linger_ms") {
      ok = parse_number(value, options.linger_ms) && options.linger_ms >= 0;
    } else if (name == "batch_num_messages") {
      ok = parse_number(value, options.batch_num_messages) && options.batch_num_messages > 0;
    } else if (name == "batch_bytes") {
      ok = parse_number(value, options.batch_bytes) && options.batch_bytes > 0;
    } else if (name == "timeout_ms") {
      ok = parse_number(value, options.timeout_ms) && options.timeout_ms >= 100;
    } else if (name == "replication_factor") {
      ok = parse_number(value, options.replication_factor) &&
           (options.replication_factor == -1 || options.replication_factor > 0);
    } else if (name == "retention_ms") {
      ok = parse_number(value, options.retention_ms) && options.retention_ms >= -1;
    } else if (name == "session_timeout_ms") {
      ok = parse_number(value, options.session_timeout_ms) && options.session_timeout_ms > 0;
    } else if (name == "heartbeat_ms") {
      ok = parse_number(value, options.heartbeat_ms) && options.heartbeat_ms > 0;
    } else if (name == "client_id") {
      options.client_id = value;
      ok = !value.empty();
    } else if (name == "mock_admin") {
      options.mock_admin = value;
      ok = !value.empty();
    } else {
      return make_error(ErrorCode::kInvalidArgument,
                        "kafka: bus URL '" + url + "': unknown parameter '" + name + "'");
    }
    if (!ok) {
      return make_error(ErrorCode::kInvalidArgument,
                        "kafka: bus URL '" + url + "': bad value for " + name + ": '" + value + "'");
    }
  }
  return std::make_pair(bootstrap, options);
}

struct KafkaBus::Reader {
  struct Part {
    rd_kafka_queue_t* queue = nullptr;
    std::int64_t next = -1;  // the offset the queue delivers next; -1 unknown
  };
  std::unique_ptr<Handle> handle;
  std::map<std::pair<std::string, std::int32_t>, Part> parts;

  ~Reader() {
    for (auto& [key, part] : parts) rd_kafka_queue_destroy(part.queue);
    if (handle && handle->rk != nullptr) rd_kafka_consumer_close(handle->rk);
  }
};

KafkaBus::KafkaBus(std::string bootstrap, KafkaOptions options)
    : bootstrap_(std::move(bootstrap)), options_(std::move(options)) {}

Result<std::unique_ptr<KafkaBus>> KafkaBus::open(const std::string& url, KafkaOptions options) {
  SETTLE_ASSIGN_OR_RETURN(auto parsed, parse_url(url, std::move(options)));
  std::unique_ptr<KafkaBus> bus(new KafkaBus(std::move(parsed.first), std::move(parsed.second)));
  SETTLE_TRY(bus->start());
  return bus;
}

Status KafkaBus::start() {
  const std::string timeout = std::to_string(options_.timeout_ms);
  const Props common = connection_props(bootstrap_, options_);
  Props producer = common;
  producer.insert(producer.end(), {
                                      {"enable.idempotence", "true"},
                                      {"acks", "all"},
                                      {"partitioner", "murmur2_random"},
                                      {"linger.ms", std::to_string(options_.linger_ms)},
                                      {"batch.num.messages",
                                       std::to_string(options_.batch_num_messages)},
                                      {"batch.size", std::to_string(options_.batch_bytes)},
                                      {"message.timeout.ms", timeout},
                                  });
  SETTLE_ASSIGN_OR_RETURN(producer_, make_handle(RD_KAFKA_PRODUCER, producer, [](rd_kafka_conf_t* c) {
                            rd_kafka_conf_set_dr_msg_cb(c, delivery_cb);
                          }));

  Props reader = common;
  reader.insert(reader.end(), {
                                  // assign() needs a group; this one never joins or commits.
                                  {"group.id", options_.client_id + "-reader"},
                                  {"enable.auto.commit", "false"},
                                  {"enable.auto.offset.store", "false"},
                                  {"auto.offset.reset", "earliest"},
                                  {"enable.partition.eof", "false"},
                                  {"fetch.wait.max.ms", "20"},
                                  {"fetch.error.backoff.ms", "20"},
                                  {"queued.min.messages", "10000"},
                                  {"queued.max.messages.kbytes", "8192"},
                              });
  reader_ = std::make_unique<Reader>();
  SETTLE_ASSIGN_OR_RETURN(reader_->handle, make_handle(RD_KAFKA_CONSUMER, reader, nullptr));

  poller_ = std::thread([this] {
    while (!stopping_.load()) {
      rd_kafka_poll(producer_->rk, 100);
      rd_kafka_poll(reader_->handle->rk, 0);
      std::lock_guard lock(groups_mu_);
      for (auto& [name, handle] : groups_) rd_kafka_poll(handle->rk, 0);
    }
  });

  // Fail fast (kUnavailable) when no broker answers.
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(producer_->rk, 0, nullptr, &md, options_.timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return kafka_error(err, "no broker of " + bootstrap_ + " answered", producer_.get());
  }
  rd_kafka_metadata_destroy(md);
  return ok_status();
}

KafkaBus::~KafkaBus() {
  if (producer_) rd_kafka_flush(producer_->rk, options_.timeout_ms);
  stopping_ = true;
  if (poller_.joinable()) poller_.join();
  reader_.reset();
  for (auto& [name, handle] : groups_) rd_kafka_consumer_close(handle->rk);
  groups_.clear();
  producer_.reset();
}

// ---------------------------------------------------------------------------
// Topics

Result<std::int32_t> KafkaBus::lookup_partitions(std::string_view topic, bool refresh) {
  const std::string name(topic);
  if (!refresh) {
    std::lock_guard lock(topics_mu_);
    if (auto it = partitions_.find(name); it != partitions_.end()) return it->second;
  }
  // All topics, not the one: a Metadata request that names a topic makes
  // brokers that ignore allow.auto.create.topics (librdkafka's mock serves
  // Metadata v2, which cannot carry it) create the topic.
  rd_kafka_t* rk = reader_->handle->rk;
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, options_.timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return kafka_error(err, "metadata of topic " + name, reader_->handle.get());
  }
  rd_kafka_resp_err_t topic_err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  std::int32_t count = 0;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (name == md->topics[i].topic) {
      topic_err = md->topics[i].err;
      count = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  if (topic_err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
    return make_error(ErrorCode::kNotFound, "kafka: no topic " + name + " on " + bootstrap_);
  }
  if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR || count <= 0) {
    return kafka_error(topic_err != RD_KAFKA_RESP_ERR_NO_ERROR
                           ? topic_err
                           : RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
                       "metadata of topic " + name, nullptr);
  }
  {
    std::lock_guard lock(topics_mu_);
    if (!partitions_.emplace(name, count).second) {
      partitions_[name] = count;
      return count;
    }
  }
  // First sight of the topic: have the producer learn it now (the topic
  // exists, so naming it cannot create it), or its first append waits for
  // the producer's own metadata refresh.
  if (rd_kafka_topic_t* rkt = rd_kafka_topic_new(producer_->rk, name.c_str(), nullptr)) {
    const rd_kafka_metadata_t* warm = nullptr;
    if (rd_kafka_metadata(producer_->rk, 0, rkt, &warm, options_.timeout_ms) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_metadata_destroy(warm);
    }
    rd_kafka_topic_destroy(rkt);
  }
  return count;
}

Status KafkaBus::check_partition(std::string_view topic, std::int32_t partition) {
  SETTLE_ASSIGN_OR_RETURN(std::int32_t count, lookup_partitions(topic, false));
  if (partition >= 0 && partition >= count) {
    // The topic may have grown since we cached its partition count.
    SETTLE_ASSIGN_OR_RETURN(count, lookup_partitions(topic, true));
  }
  if (partition < 0 || partition >= count) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kafka: topic " + std::string(topic) + " has no partition " +
                          std::to_string(partition) + " (it has " + std::to_string(count) + ")");
  }
  return ok_status();
}

Result<std::int32_t> KafkaBus::partition_count(std::string_view topic) {
  return lookup_partitions(topic, false);
}

Status KafkaBus::create_topic(const TopicConfig& config) {
  return create_topic(config, KafkaTopicSettings{});
}

Status KafkaBus::create_topic(const TopicConfig& config, const KafkaTopicSettings& settings) {
  if (config.partitions < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kafka: topic " + config.name + " needs at least one partition");
  }
  const std::int32_t rf = settings.replication_factor != -1 ? settings.replication_factor
                                                             : options_.replication_factor;
  const std::int64_t retention =
      settings.retention_ms != -1 ? settings.retention_ms : options_.retention_ms;
  if (!options_.mock_admin.empty()) return create_with_mock_admin(config, rf);
  return create_with_admin_api(config, rf, retention);
}

Status KafkaBus::create_with_mock_admin(const TopicConfig& config, std::int32_t replication_factor) {
  const std::string policy = config.compacted ? "compact" : "delete";
  SETTLE_ASSIGN_OR_RETURN(
      const std::string reply,
      mock_admin_request(options_.mock_admin,
                         "create " + config.name + " " + std::to_string(config.partitions) + " " +
                             std::to_string(replication_factor) + " " + policy,
                         options_.timeout_ms));
  if (reply == "created") return wait_for_topic(config.name, config.partitions);
  std::istringstream in(reply);
  std::string verb;
  std::int32_t partitions = 0;
  std::string existing_policy;
  in >> verb;
  if (verb == "exists" && (in >> partitions >> existing_policy)) {
    if (partitions != config.partitions || existing_policy != policy) {
      return make_error(ErrorCode::kConflict,
                        "kafka: topic " + config.name + " exists with " +
                            std::to_string(partitions) + " partitions, cleanup.policy=" +
                            existing_policy + "; asked for " + std::to_string(config.partitions) +
                            ", " + policy);
    }
    return wait_for_topic(config.name, config.partitions);
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "kafka: creating topic " + config.name + " (mock admin): " + reply);
}

Status KafkaBus::create_with_admin_api(const TopicConfig& config, std::int32_t replication_factor,
                                       std::int64_t retention_ms) {
  rd_kafka_t* rk = producer_->rk;
  char errstr[512];
  rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(config.name.c_str(), config.partitions,
                                                     replication_factor, errstr, sizeof errstr);
  if (topic == nullptr) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kafka: topic " + config.name + ": " + std::string(errstr));
  }
  if (config.compacted) {
    rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "compact");
  } else {
    rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "delete");
    if (retention_ms != -1) {
      // Kafka spells "forever" -1.
      const std::string value = retention_ms == 0 ? "-1" : std::to_string(retention_ms);
      rd_kafka_NewTopic_set_config(topic, "retention.ms", value.c_str());
    }
  }
  rd_kafka_AdminOptions_t* admin = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(admin, options_.timeout_ms, errstr, sizeof errstr);
  rd_kafka_AdminOptions_set_request_timeout(admin, options_.timeout_ms, errstr, sizeof errstr);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &topic, 1, admin, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, options_.timeout_ms + 1000);
  rd_kafka_NewTopic_destroy(topic);
  rd_kafka_AdminOptions_destroy(admin);
  rd_kafka_queue_destroy(queue);
  const std::string what = "creating topic " + config.name;
  if (event == nullptr) return kafka_error(RD_KAFKA_RESP_ERR__TIMED_OUT, what, producer_.get());
  rd_kafka_resp_err_t err = rd_kafka_event_error(event);
  std::string detail = err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_event_error_string(event) : "";
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::size_t count = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
    if (count == 1) {
      err = rd_kafka_topic_result_error(results[0]);
      if (const char* s = rd_kafka_topic_result_error_string(results[0])) detail = s;
    }
  }
  rd_kafka_event_destroy(event);
  if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) return check_existing(config);
  if (err == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE) {
    return make_error(ErrorCode::kUnavailable,
                      "kafka: " + what + ": the brokers of " + bootstrap_ +
                          " do not implement CreateTopics (librdkafka's mock cluster: pass "
                          "mock_admin=HOST:PORT of settle-kafka-mock)");
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Error e = kafka_error(err, what, producer_.get());
    if (!detail.empty()) e.message += " [" + detail + "]";
    return e;
  }
  return wait_for_topic(config.name, config.partitions);
}

// An existing topic on a real cluster: its partition count from Metadata, its
// cleanup.policy from DescribeConfigs.
Status KafkaBus::check_existing(const TopicConfig& config) {
  SETTLE_ASSIGN_OR_RETURN(const std::int32_t partitions, lookup_partitions(config.name, true));
  rd_kafka_t* rk = producer_->rk;
  char errstr[512];
  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, config.name.c_str());
  rd_kafka_AdminOptions_t* admin = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  rd_kafka_AdminOptions_set_request_timeout(admin, options_.timeout_ms, errstr, sizeof errstr);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_DescribeConfigs(rk, &resource, 1, admin, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, options_.timeout_ms + 1000);
  rd_kafka_ConfigResource_destroy(resource);
  rd_kafka_AdminOptions_destroy(admin);
  rd_kafka_queue_destroy(queue);
  const std::string what = "describing topic " + config.name;
  if (event == nullptr) return kafka_error(RD_KAFKA_RESP_ERR__TIMED_OUT, what, producer_.get());
  rd_kafka_resp_err_t err = rd_kafka_event_error(event);
  std::string policy = "delete";
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::size_t count = 0;
    const rd_kafka_ConfigResource_t** resources = rd_kafka_DescribeConfigs_result_resources(
        rd_kafka_event_DescribeConfigs_result(event), &count);
    if (count == 1) {
      err = rd_kafka_ConfigResource_error(resources[0]);
      std::size_t entries = 0;
      const rd_kafka_ConfigEntry_t** configs =
          rd_kafka_ConfigResource_configs(resources[0], &entries);
      for (std::size_t i = 0; i < entries; ++i) {
        if (std::strcmp(rd_kafka_ConfigEntry_name(configs[i]), "cleanup.policy") == 0 &&
            rd_kafka_ConfigEntry_value(configs[i]) != nullptr) {
          policy = rd_kafka_ConfigEntry_value(configs[i]);
        }
      }
    }
  }
  rd_kafka_event_destroy(event);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_error(err, what, producer_.get());
  const bool compacted = policy.find("compact") != std::string::npos;
  if (partitions != config.partitions || compacted != config.compacted) {
    return make_error(ErrorCode::kConflict,
                      "kafka: topic " + config.name + " exists with " + std::to_string(partitions) +
                          " partitions, cleanup.policy=" + policy + "; asked for " +
                          std::to_string(config.partitions) + ", " +
                          (config.compacted ? "compact" : "delete"));
  }
  return ok_status();
}

// A new topic's leaders take a moment to appear in Metadata.
Status KafkaBus::wait_for_topic(const std::string& topic, std::int32_t partitions) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  for (;;) {
    auto count = lookup_partitions(topic, true);
    if (count.ok() && *count == partitions) return ok_status();
    if (count.ok() && *count != partitions) {
      return make_error(ErrorCode::kConflict, "kafka: topic " + topic + " has " +
                                                  std::to_string(*count) + " partitions, not " +
                                                  std::to_string(partitions));
    }
    if (Clock::now() > deadline) return count.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// ---------------------------------------------------------------------------
// Producing

Result<std::vector<Position>> KafkaBus::append(std::string_view topic,
                                               std::span<const Record> records) {
  SETTLE_TRY(lookup_partitions(topic, false));
  return produce(topic, RD_KAFKA_PARTITION_UA, records);
}

Result<std::vector<Position>> KafkaBus::append_to(std::string_view topic, std::int32_t partition,
                                                  std::span<const Record> records) {
  SETTLE_TRY(check_partition(topic, partition));
  return produce(topic, partition, records);
}

Result<std::vector<Position>> KafkaBus::produce(std::string_view topic, std::int32_t partition,
                                                std::span<const Record> records) {
  if (records.empty()) return std::vector<Position>{};
  const std::string name(topic);
  Pending pending;
  pending.deliveries.resize(records.size());
  for (Delivery& d : pending.deliveries) d.owner = &pending;
  pending.remaining = records.size();

  std::size_t enqueued = 0;
  std::optional<Error> failure;
  {
    std::lock_guard produce_lock(produce_mu_);
    const auto deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
    for (; enqueued < records.size(); ++enqueued) {
      const Record& r = records[enqueued];
      rd_kafka_headers_t* headers = nullptr;
      if (!r.headers.empty()) {
        headers = rd_kafka_headers_new(r.headers.size());
        for (const Header& h : r.headers) {
          rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()),
                              h.value.data(), static_cast<ssize_t>(h.value.size()));
        }
      }
      // An empty key is no key (a random partition); an empty value is
      // Kafka's null value, a tombstone on a compacted topic.
      for (;;) {
        const rd_kafka_resp_err_t err = rd_kafka_producev(
            producer_->rk, RD_KAFKA_V_TOPIC(name.c_str()), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(r.key.empty() ? nullptr : r.key.data(), r.key.size()),
            RD_KAFKA_V_VALUE(r.value.empty() ? nullptr : const_cast<char*>(r.value.data()),
                             r.value.size()),
            RD_KAFKA_V_TIMESTAMP(r.timestamp_ms), RD_KAFKA_V_HEADERS(headers),
            RD_KAFKA_V_OPAQUE(&pending.deliveries[enqueued]), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && Clock::now() < deadline) {
          // The poller thread drains delivery reports; wait for room.
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          if (headers != nullptr) rd_kafka_headers_destroy(headers);
          failure = kafka_error(err, "producing to " + topic_partition(topic, partition),
                                producer_.get());
        }
        break;
      }
      if (failure) break;
    }
  }

  // librdkafka reports every enqueued record within message.timeout.ms
  // (= timeout_ms), so this wait is bounded.
  std::unique_lock lock(pending.mu);
  pending.remaining -= records.size() - enqueued;
  pending.cv.wait(lock, [&] { return pending.remaining == 0; });
  if (failure) return *failure;

  std::vector<Position> positions;
  positions.reserve(records.size());
  for (const Delivery& d : pending.deliveries) {
    if (d.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error(d.err, "delivery to topic " + name, producer_.get());
    }
    positions.push_back(Position{d.partition, d.offset});
  }
  return positions;
}

// ---------------------------------------------------------------------------
// Reading

Result<std::vector<StoredRecord>> KafkaBus::read(std::string_view topic, std::int32_t partition,
                                                 std::int64_t from_offset,
                                                 std::size_t max_records) {
  SETTLE_TRY(check_partition(topic, partition));
  if (from_offset < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kafka: read " + topic_partition(topic, partition) + " from negative offset " +
                          std::to_string(from_offset));
  }
  if (max_records == 0) return std::vector<StoredRecord>{};
  std::lock_guard lock(read_mu_);
  return read_locked(std::string(topic), partition, from_offset, max_records);
}

Result<std::vector<StoredRecord>> KafkaBus::read_locked(const std::string& topic,
                                                        std::int32_t partition,
                                                        std::int64_t from_offset,
                                                        std::size_t max_records) {
  Handle& handle = *reader_->handle;
  rd_kafka_t* rk = handle.rk;
  const std::string where = topic_partition(topic, partition);
  const auto key = std::make_pair(topic, partition);
  auto it = reader_->parts.find(key);

  // The high watermark: the one the last fetch response carried when it
  // says there is more to read, else the broker's.
  std::int64_t low = 0;
  std::int64_t high = -1;
  if (it == reader_->parts.end() ||
      rd_kafka_get_watermark_offsets(rk, topic.c_str(), partition, &low, &high) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      high <= from_offset) {
    const rd_kafka_resp_err_t err =
        query_end_offset(rk, topic, partition, options_.timeout_ms, &high);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error(err, "end offset of " + where, &handle);
    }
  }
  if (from_offset >= high) return std::vector<StoredRecord>{};

  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), partition)->offset = from_offset;
  if (it == reader_->parts.end()) {
    // A queue of its own, taken off the consumer queue before the fetcher
    // starts, so partitions read by different calls never mix.
    rd_kafka_queue_t* queue = rd_kafka_queue_get_partition(rk, topic.c_str(), partition);
    if (queue == nullptr) {
      rd_kafka_topic_partition_list_destroy(list);
      return make_error(ErrorCode::kUnavailable, "kafka: no queue for " + where);
    }
    rd_kafka_queue_forward(queue, nullptr);
    if (rd_kafka_error_t* error = rd_kafka_incremental_assign(rk, list)) {
      rd_kafka_topic_partition_list_destroy(list);
      rd_kafka_queue_destroy(queue);
      return kafka_error(error, "assigning " + where, &handle);
    }
    it = reader_->parts.emplace(key, Reader::Part{queue, from_offset}).first;
  } else if (it->second.next != from_offset) {
    if (rd_kafka_error_t* error = rd_kafka_seek_partitions(rk, list, options_.timeout_ms)) {
      rd_kafka_topic_partition_list_destroy(list);
      it->second.next = -1;
      return kafka_error(error, "seeking " + where, &handle);
    }
    if (list->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const rd_kafka_resp_err_t err = list->elems[0].err;
      rd_kafka_topic_partition_list_destroy(list);
      it->second.next = -1;
      return kafka_error(err, "seeking " + where, &handle);
    }
    seeks_.fetch_add(1);
    it->second.next = from_offset;
  }
  rd_kafka_topic_partition_list_destroy(list);

  Reader::Part& part = it->second;
  std::vector<StoredRecord> out;
  std::int64_t next = from_offset;
  std::vector<rd_kafka_message_t*> batch(std::min<std::size_t>(max_records, 1024));
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  while (out.size() < max_records && next < high) {
    // Ask for no more than the broker said exist: consume_batch waits until
    // it has as many as asked for, or the timeout.
    const std::size_t want = std::min({max_records - out.size(), batch.size(),
                                       static_cast<std::size_t>(high - next)});
    const ssize_t n = rd_kafka_consume_batch_queue(
        part.queue, std::min(remaining_ms(deadline), 200), batch.data(), want);
    if (n < 0) {
      part.next = -1;
      return make_error(ErrorCode::kUnavailable,
                        "kafka: reading " + where + ": " + std::strerror(errno));
    }
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = batch[static_cast<std::size_t>(i)];
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          err = m->err;
        }
      } else if (m->offset >= next && err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        out.push_back(to_stored(m));
        next = m->offset + 1;
      }
      rd_kafka_message_destroy(m);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      part.next = -1;
      return kafka_error(err, "reading " + where, &handle);
    }
    if (n == 0 && Clock::now() >= deadline) {
      part.next = out.empty() ? from_offset : next;
      return kafka_error(RD_KAFKA_RESP_ERR__TIMED_OUT,
                         "reading " + where + " at offset " + std::to_string(next) +
                             " (end offset " + std::to_string(high) + ")",
                         &handle);
    }
  }
  part.next = next;
  return out;
}

Result<std::int64_t> KafkaBus::end_offset(std::string_view topic, std::int32_t partition) {
  SETTLE_TRY(check_partition(topic, partition));
  std::int64_t high = 0;
  const rd_kafka_resp_err_t err = query_end_offset(reader_->handle->rk, std::string(topic),
                                                   partition, options_.timeout_ms, &high);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return kafka_error(err, "end offset of " + topic_partition(topic, partition),
                       reader_->handle.get());
  }
  return high;
}

Result<std::map<std::string, std::string>> KafkaBus::latest_values(std::string_view topic) {
  SETTLE_ASSIGN_OR_RETURN(const std::int32_t partitions, lookup_partitions(topic, false));
  std::map<std::string, std::string> latest;
  for (std::int32_t p = 0; p < partitions; ++p) {
    SETTLE_ASSIGN_OR_RETURN(const std::int64_t end, end_offset(topic, p));
    std::int64_t from = 0;
    while (from < end) {
      SETTLE_ASSIGN_OR_RETURN(auto records, read(topic, p, from, 10'000));
      if (records.empty()) break;
      for (StoredRecord& r : records) {
        if (r.offset >= end) break;
        if (r.value.empty()) {
          latest.erase(r.key);
        } else {
          latest[r.key] = std::move(r.value);
        }
      }
      from = records.back().offset + 1;
    }
  }
  return latest;
}

// ---------------------------------------------------------------------------
// Group offsets

Result<Handle*> KafkaBus::group_handle(std::string_view group) {
  std::lock_guard lock(groups_mu_);
  if (auto it = groups_.find(group); it != groups_.end()) return it->second.get();
  if (group.empty()) return make_error(ErrorCode::kInvalidArgument, "kafka: empty group name");
  Props props = connection_props(bootstrap_, options_);
  props.insert(props.end(), {
      {"group.id", std::string(group)},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
  });
  SETTLE_ASSIGN_OR_RETURN(auto handle, make_handle(RD_KAFKA_CONSUMER, props, nullptr));
  Handle* raw = handle.get();
  groups_.emplace(std::string(group), std::move(handle));
  return raw;
}

Status KafkaBus::commit(std::string_view group, std::string_view topic, std::int32_t partition,
                        std::int64_t next_offset) {
  SETTLE_TRY(check_partition(topic, partition));
  if (next_offset < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "kafka: commit of negative offset for " + topic_partition(topic, partition));
  }
  SETTLE_ASSIGN_OR_RETURN(Handle * handle, group_handle(group));
  return commit_offset(*handle, topic, partition, next_offset, options_.timeout_ms,
                       "commit of group " + std::string(group) + " on " +
                           topic_partition(topic, partition));
}

Result<std::int64_t> KafkaBus::committed(std::string_view group, std::string_view topic,
                                         std::int32_t partition) {
  SETTLE_TRY(check_partition(topic, partition));
  SETTLE_ASSIGN_OR_RETURN(Handle * handle, group_handle(group));
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, std::string(topic).c_str(), partition);
  rd_kafka_resp_err_t err = rd_kafka_committed(handle->rk, list, options_.timeout_ms);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = list->elems[0].err;
  const std::int64_t offset = list->elems[0].offset;
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return kafka_error(err,
                       "committed offset of group " + std::string(group) + " on " +
                           topic_partition(topic, partition),
                       handle);
  }
  return offset < 0 ? 0 : offset;  // RD_KAFKA_OFFSET_INVALID: none committed
}

// ---------------------------------------------------------------------------
// Group membership

namespace {

class KafkaGroupMember final : public GroupMember {
 public:
  KafkaGroupMember(std::string group, std::string topic, GroupCallbacks callbacks,
                   std::int32_t timeout_ms)
      : group_(std::move(group)),
        topic_(std::move(topic)),
        callbacks_(std::move(callbacks)),
        timeout_ms_(timeout_ms) {}

  ~KafkaGroupMember() override { (void)leave(); }

  Status start(const Props& props) {
    SETTLE_ASSIGN_OR_RETURN(handle_, make_handle(
                                         RD_KAFKA_CONSUMER, props,
                                         [](rd_kafka_conf_t* c) {
                                           rd_kafka_conf_set_rebalance_cb(c, &rebalance_cb);
                                         },
                                         this));
    rd_kafka_poll_set_consumer(handle_->rk);
    rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic_.c_str(), RD_KAFKA_PARTITION_UA);
    const rd_kafka_resp_err_t err = rd_kafka_subscribe(handle_->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error(err, "group " + group_ + " subscribing to " + topic_, handle_.get());
    }
    return ok_status();
  }

  Status poll(std::chrono::milliseconds timeout) override {
    if (left()) {
      return make_error(ErrorCode::kFailedPrecondition, "kafka: group " + group_ + ": member left");
    }
    const auto deadline = Clock::now() + timeout;
    rd_kafka_resp_err_t failure = RD_KAFKA_RESP_ERR_NO_ERROR;
    do {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(handle_->rk, remaining_ms(deadline));
      if (m == nullptr) continue;
      // Fetching is paused; a record fetched before the pause took effect
      // is dropped (reads go through Bus::read).
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        failure = m->err;
      }
      rd_kafka_message_destroy(m);
    } while (Clock::now() < deadline);
    if (handle_->take_down()) failure = RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN;
    if (failure != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error(failure, "group " + group_ + " on " + topic_, handle_.get());
    }
    return ok_status();
  }

  std::vector<std::int32_t> owned() const override {
    std::lock_guard lock(mu_);
    return {owned_.begin(), owned_.end()};
  }

  Status commit(std::int32_t partition, std::int64_t next_offset) override {
    {
      std::lock_guard lock(mu_);
      if (left_ || owned_.count(partition) == 0) {
        return make_error(ErrorCode::kFailedPrecondition,
                          "kafka: group " + group_ + ": partition " +
                              topic_partition(topic_, partition) +
                              " is not owned by this member");
      }
    }
    return commit_offset(*handle_, topic_, partition, next_offset, timeout_ms_,
                         "commit of group " + group_ + " on " + topic_partition(topic_, partition));
  }

  Status leave() override {
    {
      std::lock_guard lock(mu_);
      if (left_ || !handle_) return ok_status();
    }
    // Runs the revoke callback for what we own, then leaves the group.
    const rd_kafka_resp_err_t err = rd_kafka_consumer_close(handle_->rk);
    std::vector<std::int32_t> rest;
    {
      std::lock_guard lock(mu_);
      left_ = true;
      rest.assign(owned_.begin(), owned_.end());
      owned_.clear();
    }
    if (!rest.empty() && callbacks_.revoked) callbacks_.revoked(rest, true);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error(err, "group " + group_ + " leaving", handle_.get());
    }
    return ok_status();
  }

 private:
  bool left() const {
    std::lock_guard lock(mu_);
    return left_;
  }

  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    auto* self = static_cast<KafkaGroupMember*>(static_cast<Handle*>(opaque)->owner);
    self->rebalance(rk, err, partitions);
  }

  // The eager protocol (join_group's range assignor): an assignment is the
  // member's whole set, a revocation takes everything it owns.
  void rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                 rd_kafka_topic_partition_list_t* partitions) {
    std::vector<std::int32_t> changed;
    for (int i = 0; i < partitions->cnt; ++i) {
      if (topic_ == partitions->elems[i].topic) changed.push_back(partitions->elems[i].partition);
    }
    std::sort(changed.begin(), changed.end());
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      if (const rd_kafka_resp_err_t e = rd_kafka_assign(rk, partitions); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        handle_->note(std::string("assign: ") + rd_kafka_err2str(e));
        return;
      }
      // Membership only: records are read through Bus::read().
      rd_kafka_pause_partitions(rk, partitions);
      {
        std::lock_guard lock(mu_);
        owned_.clear();
        owned_.insert(changed.begin(), changed.end());
      }
      if (callbacks_.assigned && !changed.empty()) callbacks_.assigned(changed);
      return;
    }
    // Revocation (or an error that voids the assignment): the owner flushes
    // first, then the partitions go.
    const bool lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk);
    if (callbacks_.revoked && !changed.empty()) callbacks_.revoked(changed, lost);
    rd_kafka_assign(rk, nullptr);
    std::lock_guard lock(mu_);
    owned_.clear();
  }

  const std::string group_;
  const std::string topic_;
  const GroupCallbacks callbacks_;
  const std::int32_t timeout_ms_;
  std::unique_ptr<Handle> handle_;
  mutable std::mutex mu_;
  std::set<std::int32_t> owned_;
  bool left_ = false;
};

}  // namespace

Result<std::unique_ptr<GroupMember>> KafkaBus::join_group(std::string group, std::string topic,
                                                          GroupCallbacks callbacks) {
  if (group.empty()) return make_error(ErrorCode::kInvalidArgument, "kafka: empty group name");
  SETTLE_TRY(lookup_partitions(topic, false));
  Props props = connection_props(bootstrap_, options_);
  props.insert(props.end(), {
      {"group.id", group},
      // The eager range assignor, not cooperative-sticky: librdkafka 2.0.2's
      // sticky assignor (Debian 12) crashes the group leader with a null
      // dereference when members leave and rejoin in quick succession
      // (found by the chaos test: a worker that retried through a
      // PostgreSQL restart), and aborts when a member closes before its
      // first SyncGroup (librdkafka issue 4312). An eager rebalance revokes
      // every partition and assigns anew, which the roles handle as any
      // change of ownership: flush, then recover from the ledger.
      {"partition.assignment.strategy", "range"},
      {"session.timeout.ms", std::to_string(options_.session_timeout_ms)},
      {"heartbeat.interval.ms", std::to_string(options_.heartbeat_ms)},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "latest"},
      {"enable.partition.eof", "false"},
      // Fetching is paused, but keep what a late pause lets through small.
      {"fetch.max.bytes", "1048576"},
      {"queued.min.messages", "1"},
  });
  auto member = std::make_unique<KafkaGroupMember>(std::move(group), std::move(topic),
                                                   std::move(callbacks), options_.timeout_ms);
  SETTLE_TRY(member->start(props));
  return std::unique_ptr<GroupMember>(std::move(member));
}

}  // namespace settle::bus

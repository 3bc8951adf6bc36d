#include "app/ingest.h"

#include <fmt/format.h>

#include <fstream>

#include "model/event_json.h"
#include "observability/trace.h"
#include "processor/topics.h"

namespace settle::app {

Status Ingestor::run() {
  std::ifstream in(options_.events_file, std::ios::binary);
  if (!in) {
    return make_error(ErrorCode::kNotFound, fmt::format("cannot open events file {}", options_.events_file.string()));
  }
  const std::string source = options_.events_file.string();
  in.seekg(0, std::ios::end);
  total_bytes_ = static_cast<std::int64_t>(in.tellg());
  in.seekg(0);
  model::EventParser parser;
  std::vector<bus::Record> pending;
  pending.reserve(options_.ingest_batch_records);
  std::string line;
  std::int64_t line_no = 0;
  while (!stop_.load(std::memory_order_relaxed) && std::getline(in, line)) {
    ++line_no;
    bytes_read_.fetch_add(static_cast<std::int64_t>(line.size()) + 1, std::memory_order_relaxed);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    ++lines_;
    auto ev = parser.parse(line);
    if (!ev.ok()) {
      reject(source, line_no, ev.error().message);
      continue;
    }
    if (!merchant_ids_.count(ev->merchant_id.str())) {
      reject(source, line_no, fmt::format("field 'merchant_id': unknown merchant '{}'", ev->merchant_id.str()));
      continue;
    }
    pending.push_back(bus::Record{ev->merchant_id.str(), model::canonical_event_json(*ev),
                                  {bus::Header{processor::kSourceHeader, fmt::format("{}:{}", source, line_no)},
                                   bus::Header{processor::kEventIdHeader, ev->event_id.str()},
                                   bus::Header{processor::kTraceparentHeader, observability::format_traceparent(observability::new_trace())}},
                                  0});
    if (pending.size() >= options_.ingest_batch_records) SETTLE_TRY(flush(pending));
  }
  if (in.bad()) return make_error(ErrorCode::kIo, fmt::format("error reading {}", source));
  return flush(pending);
}

double Ingestor::fraction() const {
  return total_bytes_ > 0
             ? static_cast<double>(bytes_read_.load(std::memory_order_relaxed)) / static_cast<double>(total_bytes_)
             : 1.0;
}

void Ingestor::reject(const std::string& source, std::int64_t line_no, const std::string& why) {
  ++invalid_;
  diagnostics_ << source << ':' << line_no << ": " << why << '\n';
}

Status Ingestor::flush(std::vector<bus::Record>& pending) {
  if (pending.empty()) return ok_status();
  SETTLE_TRY(bus_.append(processor::kEventsTopic, pending));
  accepted_ += static_cast<std::int64_t>(pending.size());
  pending.clear();
  return ok_status();
}

}  // namespace settle::app

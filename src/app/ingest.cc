#include "app/ingest.h"

#include <fmt/format.h>

#include <algorithm>
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
  model::Event ev;  // parsed into line after line, keeping its strings' storage
  // The batch's records are reused from batch to batch: assigning into their
  // strings keeps the buffers, so a line costs no allocation of its own once
  // the first batch has grown them.
  std::vector<bus::Record> pending(std::max<std::size_t>(options_.ingest_batch_records, 1));
  for (bus::Record& r : pending) {
    r.headers = {bus::Header{std::string(processor::kSourceHeader), {}},
                 bus::Header{std::string(processor::kEventIdHeader), {}},
                 bus::Header{std::string(processor::kTraceparentHeader), {}}};
  }
  std::size_t used = 0;
  std::string line;
  std::int64_t line_no = 0;
  while (!stop_.load(std::memory_order_relaxed) && std::getline(in, line)) {
    ++line_no;
    bytes_read_.fetch_add(static_cast<std::int64_t>(line.size()) + 1, std::memory_order_relaxed);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    ++lines_;
    if (Status parsed = parser.parse_into(line, ev); !parsed.ok()) {
      reject(source, line_no, parsed.error().message);
      continue;
    }
    if (!merchant_ids_.count(ev.merchant_id.str())) {
      reject(source, line_no, fmt::format("field 'merchant_id': unknown merchant '{}'", ev.merchant_id.str()));
      continue;
    }
    bus::Record& r = pending[used++];
    r.key.assign(ev.merchant_id.view());
    model::assign_canonical_event_json(r.value, ev);
    std::string& where = r.headers[0].value;
    where.assign(source);
    where += ':';
    const fmt::format_int n(line_no);
    where.append(n.data(), n.size());
    r.headers[1].value.assign(ev.event_id.view());
    observability::assign_new_traceparent(r.headers[2].value);
    if (used == pending.size()) {
      SETTLE_TRY(flush(std::span<const bus::Record>(pending.data(), used)));
      used = 0;
    }
  }
  if (in.bad()) return make_error(ErrorCode::kIo, fmt::format("error reading {}", source));
  return flush(std::span<const bus::Record>(pending.data(), used));
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

Status Ingestor::flush(std::span<const bus::Record> pending) {
  if (pending.empty()) return ok_status();
  SETTLE_TRY(bus_.append(processor::kEventsTopic, pending));
  accepted_ += static_cast<std::int64_t>(pending.size());
  return ok_status();
}

}  // namespace settle::app

// Pool-wide counters in one shared anonymous mapping: workers write, the status page reads.
#include "server/stats.hpp"

#include <sys/mman.h>

#include <ctime>
#include <new>

#include "core/build_info.hpp"
#include "http/json_writer.hpp"

namespace music_api {
namespace {

uint64_t Load(const std::atomic<uint64_t>& n) { return n.load(std::memory_order_relaxed); }

uint64_t CountOf(const SharedHistogram& h) {
  uint64_t n = 0;
  for (const auto& b : h.buckets) n += Load(b);
  return n;
}

struct Totals {
  int idle = 0, busy = 0;
  uint64_t requests = 0;
  uint64_t by_class[6] = {};
  uint64_t buckets[kLatencyBuckets] = {};  // every handler and class, not cumulative
  uint64_t sum_us = 0;
};

Totals Count(const SharedStats& s) {
  Totals t;
  for (const auto& slot : s.slots) {
    auto state = static_cast<WorkerState>(slot.state.load(std::memory_order_relaxed));
    if (state == WorkerState::kIdle) ++t.idle;
    if (state == WorkerState::kBusy) ++t.busy;
  }
  for (const auto& by_class : s.requests) {
    for (int cls = 1; cls <= 5; ++cls) {
      const SharedHistogram& h = by_class[cls];
      for (int b = 0; b < kLatencyBuckets; ++b) {
        uint64_t n = Load(h.buckets[b]);
        t.buckets[b] += n, t.by_class[cls] += n, t.requests += n;
      }
      t.sum_us += Load(h.sum_us);
    }
  }
  return t;
}

std::string RouteClassLabels(int handler, int cls) {
  return "route=\"" + std::string(HandlerName(handler)) + "\",class=\"" + std::to_string(cls) + "xx\"";
}

std::string BucketBound(int b) {
  if (b == kLatencyBuckets - 1) return "+Inf";
  std::string le;
  AppendJsonNumber(le, kLatencyBucketsMs[b] / 1000.0);
  return le;
}

void Append(std::string& out, uint64_t n) { AppendJsonInteger(out, static_cast<int64_t>(n)); }

}  // namespace

SharedStats* SharedStats::Create() {
  void* memory = mmap(nullptr, sizeof(SharedStats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return nullptr;
  auto* stats = new (memory) SharedStats();  // zero-filled by mmap; atomics are lock-free
  stats->started_at = static_cast<int64_t>(std::time(nullptr));
  return stats;
}

int SharedStats::ClaimSlot(int32_t pid) {
  for (int i = 0; i < kMaxWorkerSlots; ++i) {
    int32_t expected = 0;
    if (slots[i].pid.compare_exchange_strong(expected, pid)) {
      slots[i].state = static_cast<int32_t>(WorkerState::kIdle);
      return i;
    }
  }
  return -1;
}

void SharedStats::ReleaseSlot(int32_t pid) {
  for (auto& slot : slots) {
    if (slot.pid.load() == pid) {
      slot.state = static_cast<int32_t>(WorkerState::kFree);
      slot.pid = 0;
      return;
    }
  }
}

void SharedHistogram::Record(double duration_ms) {
  int bucket = 0;
  while (bucket < kLatencyBuckets - 1 && duration_ms > kLatencyBucketsMs[bucket]) ++bucket;
  buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_us.fetch_add(static_cast<uint64_t>(duration_ms * 1000), std::memory_order_relaxed);
}

void SharedStats::RecordRequest(int handler, int status, double duration_ms) {
  const int cls = status / 100;
  if (cls < 1 || cls > 5 || handler < 0 || handler >= kHandlerNames) return;
  requests[handler][cls].Record(duration_ms);
}

std::string SharedStats::RenderJson() const {
  Totals t = Count(*this);
  std::string out;
  out.append("{\"workers\":{\"idle\":");
  Append(out, static_cast<uint64_t>(t.idle));
  out.append(",\"busy\":");
  Append(out, static_cast<uint64_t>(t.busy));
  out.append(",\"total\":");
  Append(out, static_cast<uint64_t>(t.idle + t.busy));
  out.append("},\"requests\":{\"total\":");
  Append(out, t.requests);
  for (int cls = 1; cls <= 5; ++cls) {
    out.append(",\"").append(std::to_string(cls)).append("xx\":");
    Append(out, t.by_class[cls]);
  }
  out.append("},\"latency_ms\":{\"buckets\":[");
  uint64_t cumulative = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    cumulative += t.buckets[b];
    if (b) out.push_back(',');
    out.append("{\"le\":");
    if (b < kLatencyBuckets - 1) {
      AppendJsonNumber(out, kLatencyBucketsMs[b]);
    } else {
      out.append("\"+Inf\"");
    }
    out.append(",\"count\":");
    Append(out, cumulative);
    out.push_back('}');
  }
  out.append("],\"sum\":");
  AppendJsonNumber(out, static_cast<double>(t.sum_us) / 1000.0);
  out.append("},\"database_errors\":");
  Append(out, database_errors.load());
  out.append(",\"restarts\":");
  Append(out, restarts.load());
  out.append(",\"uptime_seconds\":");
  AppendJsonInteger(out, static_cast<int64_t>(std::time(nullptr)) - started_at.load());
  out.push_back('}');
  return out;
}

// Prometheus text format 0.0.4, in its conventions: base units (seconds), `_total` counters, a
// histogram per route and status class (series appear once they have a request, as client
// libraries do), no per-user or per-key label.
std::string SharedStats::RenderPrometheus() const {
  Totals t = Count(*this);
  std::string out;
  auto line = [&](std::string_view name, std::string_view labels, double value) {
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.push_back(' ');
    AppendJsonNumber(out, value);
    out.push_back('\n');
  };
  auto header = [&](std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ").append(name).append(" ");
    out.append(type).push_back('\n');
  };
  auto histogram = [&](std::string_view name, const std::string& labels, const SharedHistogram& h) {
    const std::string bucket_labels = labels.empty() ? labels : labels + ",";
    uint64_t cumulative = 0;
    for (int b = 0; b < kLatencyBuckets; ++b) {
      cumulative += Load(h.buckets[b]);
      line(std::string(name) + "_bucket", bucket_labels + "le=\"" + BucketBound(b) + "\"",
           static_cast<double>(cumulative));
    }
    line(std::string(name) + "_sum", labels, static_cast<double>(Load(h.sum_us)) / 1e6);
    line(std::string(name) + "_count", labels, static_cast<double>(cumulative));
  };
  header("music_api_build_info", "gauge", "The running build: version and git commit, always 1.");
  line("music_api_build_info",
       "version=\"" + std::string(BuildVersion()) + "\",commit=\"" + std::string(BuildCommit()) + "\"", 1);
  header("music_api_workers", "gauge", "Worker processes by state.");
  line("music_api_workers", "state=\"idle\"", t.idle);
  line("music_api_workers", "state=\"busy\"", t.busy);
  header("music_api_requests_total", "counter", "Requests answered, by route and status class.");
  for (int handler = 0; handler < kHandlerNames; ++handler) {
    for (int cls = 1; cls <= 5; ++cls) {
      if (uint64_t n = CountOf(requests[handler][cls]); n > 0) {
        line("music_api_requests_total", RouteClassLabels(handler, cls), static_cast<double>(n));
      }
    }
  }
  header("music_api_request_duration_seconds", "histogram",
         "Time from accept to the response written, by route and status class.");
  for (int handler = 0; handler < kHandlerNames; ++handler) {
    for (int cls = 1; cls <= 5; ++cls) {
      if (CountOf(requests[handler][cls]) > 0) {
        histogram("music_api_request_duration_seconds", RouteClassLabels(handler, cls), requests[handler][cls]);
      }
    }
  }
  header("music_api_database_statement_duration_seconds", "histogram",
         "Database statements, from sent to answered (failed ones included).");
  histogram("music_api_database_statement_duration_seconds", "", statements);
  header("music_api_database_errors_total", "counter", "Failed database calls.");
  line("music_api_database_errors_total", "", static_cast<double>(database_errors.load()));
  header("music_api_worker_restarts_total", "counter", "Workers replaced after exiting.");
  line("music_api_worker_restarts_total", "", static_cast<double>(restarts.load()));
  header("music_api_uptime_seconds", "gauge", "Seconds since the master started.");
  line("music_api_uptime_seconds", "",
       static_cast<double>(static_cast<int64_t>(std::time(nullptr)) - started_at.load()));
  return out;
}

}  // namespace music_api

// Pool-wide counters in one shared anonymous mapping: workers write, the status page reads.
#include "server/stats.hpp"

#include <sys/mman.h>

#include <ctime>
#include <new>

#include "http/json_writer.hpp"

namespace music_api {
namespace {

struct Totals {
  int idle = 0, busy = 0;
  uint64_t requests = 0;
};

Totals Count(const SharedStats& s) {
  Totals t;
  for (const auto& slot : s.slots) {
    auto state = static_cast<WorkerState>(slot.state.load(std::memory_order_relaxed));
    if (state == WorkerState::kIdle) ++t.idle;
    if (state == WorkerState::kBusy) ++t.busy;
  }
  for (const auto& c : s.requests_by_class) t.requests += c.load(std::memory_order_relaxed);
  return t;
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

void SharedStats::RecordRequest(int status, double duration_ms) {
  int cls = status / 100;
  if (cls >= 1 && cls <= 5) requests_by_class[cls].fetch_add(1, std::memory_order_relaxed);
  int bucket = 0;
  while (bucket < kLatencyBuckets - 1 && duration_ms > kLatencyBucketsMs[bucket]) ++bucket;
  latency_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  latency_sum_us.fetch_add(static_cast<uint64_t>(duration_ms * 1000), std::memory_order_relaxed);
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
    Append(out, requests_by_class[cls].load());
  }
  out.append("},\"latency_ms\":{\"buckets\":[");
  uint64_t cumulative = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    cumulative += latency_buckets[b].load();
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
  AppendJsonNumber(out, static_cast<double>(latency_sum_us.load()) / 1000.0);
  out.append("},\"database_errors\":");
  Append(out, database_errors.load());
  out.append(",\"restarts\":");
  Append(out, restarts.load());
  out.append(",\"uptime_seconds\":");
  AppendJsonInteger(out, static_cast<int64_t>(std::time(nullptr)) - started_at.load());
  out.push_back('}');
  return out;
}

std::string SharedStats::RenderPrometheus() const {
  Totals t = Count(*this);
  std::string out;
  auto line = [&](const std::string& name_and_labels, double value) {
    out.append(name_and_labels).push_back(' ');
    AppendJsonNumber(out, value);
    out.push_back('\n');
  };
  out.append("# HELP music_api_workers Worker processes by state.\n# TYPE music_api_workers gauge\n");
  line("music_api_workers{state=\"idle\"}", t.idle);
  line("music_api_workers{state=\"busy\"}", t.busy);
  out.append(
      "# HELP music_api_requests_total Requests answered, by status class.\n"
      "# TYPE music_api_requests_total counter\n");
  for (int cls = 1; cls <= 5; ++cls) {
    line("music_api_requests_total{class=\"" + std::to_string(cls) + "xx\"}",
         static_cast<double>(requests_by_class[cls].load()));
  }
  out.append(
      "# HELP music_api_request_duration_seconds Time from accept to the response written.\n"
      "# TYPE music_api_request_duration_seconds histogram\n");
  uint64_t cumulative = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    cumulative += latency_buckets[b].load();
    std::string le = "+Inf";
    if (b < kLatencyBuckets - 1) {
      le.clear();
      AppendJsonNumber(le, kLatencyBucketsMs[b] / 1000.0);
    }
    line("music_api_request_duration_seconds_bucket{le=\"" + le + "\"}", static_cast<double>(cumulative));
  }
  line("music_api_request_duration_seconds_sum", static_cast<double>(latency_sum_us.load()) / 1e6);
  line("music_api_request_duration_seconds_count", static_cast<double>(cumulative));
  out.append(
      "# HELP music_api_database_errors_total Failed database calls.\n"
      "# TYPE music_api_database_errors_total counter\n");
  line("music_api_database_errors_total", static_cast<double>(database_errors.load()));
  out.append(
      "# HELP music_api_worker_restarts_total Workers replaced after exiting.\n"
      "# TYPE music_api_worker_restarts_total counter\n");
  line("music_api_worker_restarts_total", static_cast<double>(restarts.load()));
  out.append(
      "# HELP music_api_uptime_seconds Seconds since the master started.\n"
      "# TYPE music_api_uptime_seconds gauge\n");
  line("music_api_uptime_seconds", static_cast<double>(static_cast<int64_t>(std::time(nullptr)) - started_at.load()));
  return out;
}

}  // namespace music_api

// Pool-wide counters in one shared anonymous mapping: workers write, the status page reads.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "core/config.hpp"
#include "pipeline/pipeline.hpp"

namespace music_api {

// Two generations side by side during a reload, each up to the largest allowed pool.
inline constexpr int kMaxWorkerSlots = 2 * kMaxWorkers;
// Upper bounds (ms) of the latency histograms' buckets; the last bucket is +Inf. Prometheus's
// defaults (5 ms to 10 s, 50 ms the latency goal) with three below them: a request here takes
// about a millisecond.
inline constexpr double kLatencyBucketsMs[] = {0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
inline constexpr int kLatencyBuckets = sizeof(kLatencyBucketsMs) / sizeof(kLatencyBucketsMs[0]) + 1;

// One latency histogram in shared memory.
struct SharedHistogram {
  std::atomic<uint64_t> buckets[kLatencyBuckets];  // not cumulative
  std::atomic<uint64_t> sum_us;
  void Record(double duration_ms);
};

enum class WorkerState : int32_t { kFree = 0, kIdle = 1, kBusy = 2 };

struct WorkerSlot {
  std::atomic<int32_t> pid;
  std::atomic<int32_t> state;
};

struct SharedStats {
  std::atomic<int64_t> started_at;  // unix seconds
  std::atomic<uint64_t> restarts;
  // By handler (pipeline.hpp's names, 0 none) and status class (index status / 100, 1 to 5).
  SharedHistogram requests[kHandlerNames][6];
  SharedHistogram statements;  // every database statement (db/database.hpp's statement times)
  std::atomic<uint64_t> database_errors;
  // Moved on by the host's auth listener at each key change and each reconnect: a worker that
  // sees it move flushes its auth cache.
  std::atomic<uint64_t> auth_generation;
  WorkerSlot slots[kMaxWorkerSlots];

  // Maps the block; call once in the master before forking. nullptr on failure.
  static SharedStats* Create();
  int ClaimSlot(int32_t pid);  // master, at fork; -1 when full
  void ReleaseSlot(int32_t pid);
  void RecordRequest(int handler, int status, double duration_ms);

  std::string RenderJson() const;
  std::string RenderPrometheus() const;
};

}  // namespace music_api

// Pool-wide counters in one shared anonymous mapping: workers write, the status page reads.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "core/config.hpp"

namespace music_api {

// Two generations side by side during a reload, each up to the largest allowed pool.
inline constexpr int kMaxWorkerSlots = 2 * kMaxWorkers;
// Upper bounds (ms) of the latency histogram's buckets; the last bucket is +Inf.
inline constexpr double kLatencyBucketsMs[] = {0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000};
inline constexpr int kLatencyBuckets = sizeof(kLatencyBucketsMs) / sizeof(kLatencyBucketsMs[0]) + 1;

enum class WorkerState : int32_t { kFree = 0, kIdle = 1, kBusy = 2 };

struct WorkerSlot {
  std::atomic<int32_t> pid;
  std::atomic<int32_t> state;
};

struct SharedStats {
  std::atomic<int64_t> started_at;  // unix seconds
  std::atomic<uint64_t> restarts;
  std::atomic<uint64_t> requests_by_class[6];  // index status / 100
  std::atomic<uint64_t> latency_buckets[kLatencyBuckets];
  std::atomic<uint64_t> latency_sum_us;
  std::atomic<uint64_t> database_errors;
  // Moved on by the host's auth listener at each key change and each reconnect: a worker that
  // sees it move flushes its auth cache.
  std::atomic<uint64_t> auth_generation;
  WorkerSlot slots[kMaxWorkerSlots];

  // Maps the block; call once in the master before forking. nullptr on failure.
  static SharedStats* Create();
  int ClaimSlot(int32_t pid);  // master, at fork; -1 when full
  void ReleaseSlot(int32_t pid);
  void RecordRequest(int status, double duration_ms);

  std::string RenderJson() const;
  std::string RenderPrometheus() const;
};

}  // namespace music_api

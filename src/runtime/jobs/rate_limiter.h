// RateLimiter: token buckets for the owner's per-model query rate (`chiron model limit NAME
// --per-minute N`, docs/predictions.md).
//
// One bucket per key (the job manager uses "model id / querying principal id": every principal
// that may query a model, its owner and each grantee, has its own bucket, so a grantee cannot
// use up the owner's rate). A bucket holds at most N tokens and refills continuously at N per
// minute; a request for `count` samples takes `count` tokens or is refused whole.
//
// The clock is injected, so tests drive time by hand instead of sleeping.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "shared/base/status.h"

namespace chiron::jobs {

class RateLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  explicit RateLimiter(Clock clock = [] { return std::chrono::steady_clock::now(); });

  // Takes `count` tokens from the bucket of `key`, which allows `per_minute` per minute
  // (0: unlimited, always OK). A new bucket, or one whose limit changed, starts full.
  // ResourceExhausted (nothing taken) if the bucket holds fewer than `count` tokens: the message
  // names `what`, the limit and the whole seconds to wait before the same request can pass, and
  // `*retry_after` (when given) is set to that wait in milliseconds, rounded up (at least 1 ms):
  // the same request sent after it passes, if nothing else took tokens from the bucket meanwhile.
  // If count > per_minute, the message says that no request that large can ever pass and
  // `*retry_after` is set to 0 (waiting does not help). `*retry_after` is 0 after an OK too.
  Status Take(const std::string& key, uint32_t per_minute, uint64_t count,
              const std::string& what, std::chrono::milliseconds* retry_after = nullptr);

  // Drops every bucket whose key starts with `prefix` (a deleted model).
  void Forget(const std::string& prefix);

  size_t bucket_count();

 private:
  struct Bucket {
    double tokens = 0;
    uint32_t per_minute = 0;
    std::chrono::steady_clock::time_point last;
  };
  // Full buckets untouched for a minute hold no state worth keeping; dropped when the map grows.
  void EvictIdle(std::chrono::steady_clock::time_point now);

  Clock clock_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace chiron::jobs

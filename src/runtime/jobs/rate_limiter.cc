#include "runtime/jobs/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace chiron::jobs {
namespace {

constexpr size_t kEvictAbove = 4096;

}  // namespace

RateLimiter::RateLimiter(Clock clock) : clock_(std::move(clock)) {}

Status RateLimiter::Take(const std::string& key, uint32_t per_minute, uint64_t count,
                         const std::string& what, std::chrono::milliseconds* retry_after) {
  if (retry_after != nullptr) *retry_after = std::chrono::milliseconds(0);
  if (per_minute == 0) return Status::Ok();
  if (count > per_minute) {
    return ResourceExhaustedError(what + " allows " + std::to_string(per_minute) +
                                  " queries per minute; a request of " + std::to_string(count) +
                                  " samples can never pass: send at most " +
                                  std::to_string(per_minute) + " per request");
  }
  const auto now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kEvictAbove) EvictIdle(now);
    it = buckets_.emplace(key, Bucket{static_cast<double>(per_minute), per_minute, now}).first;
  }
  Bucket& bucket = it->second;
  if (bucket.per_minute != per_minute) {
    bucket = Bucket{static_cast<double>(per_minute), per_minute, now};
  }
  const double rate_per_second = per_minute / 60.0;
  if (now > bucket.last) {
    const double elapsed = std::chrono::duration<double>(now - bucket.last).count();
    bucket.tokens = std::min<double>(per_minute, bucket.tokens + elapsed * rate_per_second);
    bucket.last = now;
  }
  if (bucket.tokens + 1e-9 < static_cast<double>(count)) {
    const double wait = (static_cast<double>(count) - bucket.tokens) / rate_per_second;
    const uint64_t seconds = static_cast<uint64_t>(std::ceil(wait - 1e-9));
    if (retry_after != nullptr) {
      // At most 60 s (count <= per_minute); rounded up so the retry finds the tokens there.
      const auto millis = static_cast<int64_t>(std::ceil(wait * 1000.0 - 1e-6));
      *retry_after = std::chrono::milliseconds(std::max<int64_t>(1, millis));
    }
    return ResourceExhaustedError(what + " allows " + std::to_string(per_minute) +
                                  " queries per minute and you used them; retry in " +
                                  std::to_string(std::max<uint64_t>(1, seconds)) + " s");
  }
  bucket.tokens -= static_cast<double>(count);
  return Status::Ok();
}

void RateLimiter::Forget(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = buckets_.lower_bound(prefix);
       it != buckets_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    it = buckets_.erase(it);
  }
}

size_t RateLimiter::bucket_count() {
  std::lock_guard<std::mutex> lock(mu_);
  return buckets_.size();
}

void RateLimiter::EvictIdle(std::chrono::steady_clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const Bucket& b = it->second;
    const bool refilled =
        now - b.last >= std::chrono::minutes(1) || b.tokens >= static_cast<double>(b.per_minute);
    it = refilled ? buckets_.erase(it) : std::next(it);
  }
}

}  // namespace chiron::jobs

#include "runtime/jobs/provider_facts.h"

#include <algorithm>

namespace chiron::jobs {

uint32_t CoarseMemoryBucketLog2(uint32_t peak_memory_log2) {
  if (peak_memory_log2 == 0) return 0;
  uint32_t bucket = std::max(peak_memory_log2, kMinMemoryBucketLog2);
  if ((bucket - kMinMemoryBucketLog2) % 2 != 0) ++bucket;  // up to the next power of four
  return bucket;
}

int64_t RevealUnix(const JobRecord& record) {
  if (record.started_unix == 0) return 0;
  int64_t reveal = record.started_unix + static_cast<int64_t>(record.budget_seconds);
  if (Finished(record.state)) reveal = std::max(reveal, record.finished_unix);
  return reveal;
}

ProviderJobFacts ProviderFacts(const JobRecord& record, int64_t now_unix) {
  ProviderJobFacts facts;
  if (record.started_unix == 0) {
    if (record.attempts == 0 || !Finished(record.state)) {
      // Never run: queued, or cancelled before any recipe code ran (shown at once).
      facts.state = static_cast<int>(record.state == JobState::kCancelled ? JobState::kCancelled
                                                                          : JobState::kQueued);
      return facts;
    }
    // A record finished by a build that kept no start time: shown as that build showed it.
    facts.state = static_cast<int>(record.state);
    facts.failure = record.failure;
    facts.epochs_done = record.epochs_done;
    facts.elapsed_minutes = static_cast<uint32_t>(record.elapsed_seconds / 60);
    facts.peak_memory_bucket_log2 = CoarseMemoryBucketLog2(record.peak_memory_log2);
    return facts;
  }
  const int64_t reveal = RevealUnix(record);
  const bool revealed = Finished(record.state) && now_unix >= reveal;
  const int64_t until = revealed ? reveal : std::max(now_unix, record.started_unix);
  facts.elapsed_minutes = static_cast<uint32_t>((until - record.started_unix) / 60);
  if (!revealed) {
    facts.state = static_cast<int>(JobState::kRunning);
    return facts;
  }
  if (record.provider_view == ProviderView::kDoneOnly) {
    facts.state = kProviderStateEnded;
    return facts;
  }
  facts.state = static_cast<int>(record.state);
  facts.failure = record.failure;
  facts.epochs_done = record.epochs_done;
  facts.peak_memory_bucket_log2 = CoarseMemoryBucketLog2(record.peak_memory_log2);
  return facts;
}

}  // namespace chiron::jobs

// ProviderFacts: what a job's provider may see of it, computed from the job's record and the
// time (docs/provider-facts.md). The provider's recipe runs on the owner's data and chooses when
// it ends, how it fails and how much memory it takes, so each of those is a channel to the
// provider. The view therefore changes only at moments the runtime chooses:
//
//   queued    until a runner starts the job (the queue's order is the runtime's)
//   running   from the start until the job's reveal time, started + its time budget, whether the
//             job ended earlier or not: when a job really ended is never shown
//   revealed  after the reveal time and the job's end: in the coarse view (the default) the final
//             state, failure category, epochs done and a coarse memory bucket (powers of four from
//             256 MiB); in the owner's stricter done-only view the state "ended" and nothing else
//
// elapsed_minutes is the runtime's clock since the start (capped at the reveal time once
// revealed), so it carries nothing the recipe chose. A job cancelled while still queued shows
// cancelled at once: no recipe code ran.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>

#include "runtime/jobs/records.h"

namespace chiron::jobs {

// Values of chiron.v1.JobState as the provider sees them: JobState's, plus kEnded.
inline constexpr int kProviderStateEnded = 6;

struct ProviderJobFacts {
  int state = 1;              // chiron.v1.JobState
  int failure = 0;            // chiron.v1.FailureCategory
  uint32_t epochs_done = 0;
  uint32_t elapsed_minutes = 0;
  uint32_t peak_memory_bucket_log2 = 0;  // 0: not shown
};

// The smallest memory bucket shown, and the step between buckets (log2): 2^28, 2^30, 2^32...
inline constexpr uint32_t kMinMemoryBucketLog2 = 28;
uint32_t CoarseMemoryBucketLog2(uint32_t peak_memory_log2);

// When the job's outcome may be shown: started + budget, or its end if that came later (a job
// whose runs were interrupted by restarts); 0 for a job not started.
int64_t RevealUnix(const JobRecord& record);

ProviderJobFacts ProviderFacts(const JobRecord& record, int64_t now_unix);

}  // namespace chiron::jobs

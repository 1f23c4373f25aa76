// Collective: what data-parallel training needs from the group of nodes training one job
// (docs/distributed.md). The runtime's implementation is cluster::PeerGroup (mutually attested
// TLS between chirond nodes); training only sees this interface, so src/runtime/train stays free
// of gRPC.
//
// Every rank calls the same sequence of exchanges with the same (step, phase) tags, strictly
// increasing from call to call (what makes an old frame detectably old); a peer whose
// frame carries another tag, size or an invalid value fails the exchange on both sides, and the
// group is then broken (every later call fails). Values received are from attested runtimes, yet
// checked like the worker's: finite and bounded.
//
// Thread safety: one thread at a time calls Exchange/ExchangeBytes (the asynchronous mode hands
// the calls from the session's thread to its exchange thread and back, never concurrently);
// Abort() may be called from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::train {

class Collective {
 public:
  virtual ~Collective() = default;

  virtual uint32_t rank() const = 0;
  virtual uint32_t size() const = 0;

  // Sends out[j] to each rank j != rank() (out[rank()] is ignored) and receives exactly
  // in[j].size() floats from each rank j != rank() into in[j] (in[rank()] is left alone).
  virtual Status Exchange(uint64_t step, uint32_t phase,
                          std::span<const std::span<const float>> out,
                          std::span<const std::span<float>> in) = 0;
  // Sends `out` to every other rank and returns what each sent: in[j] for rank j (in[rank()] is
  // a copy of `out`). Small control data only (counts, metrics).
  virtual Status ExchangeBytes(uint64_t step, uint32_t phase, ByteSpan out,
                               std::vector<Bytes>& in) = 0;

  // Any thread: a blocked exchange returns Aborted promptly; every later one fails.
  virtual void Abort() = 0;
};

// The exchanges of one synchronous data-parallel job, in order, and their tags.
enum CollectivePhase : uint32_t {
  kPhaseResume = 0,        // step 0, before the session: each rank's checkpoint step
  kPhaseShardSizes = 1,    // step 0: each rank's training and validation counts
  kPhaseInitialState = 2,  // step 0: the initial parameters and buffers, all-gathered
  kPhaseGradients = 3,     // each step: reduce-scatter of gradients and buffers
  kPhaseParameters = 4,    // each step: all-gather of the updated shards
  kPhaseEpochMetrics = 5,  // each epoch's end (tagged with its last step): loss, validation
};

}  // namespace chiron::train

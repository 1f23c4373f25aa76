// PeerGroup: the nodes of one distributed training job, pairwise connected over mutual RA-TLS,
// exchanging float vectors step by step (issue 14; the transport under the sharded parameter
// server). Design, wire format, limits and measured figures: docs/distributed.md, "Transport".
//
// Shape: one gRPC bidirectional stream per pair of ranks; rank i dials every rank j < i at
// options.addresses[j], and serves ranks j > i through its NodeListener. Both ends of every
// stream are attested: the dialler checks the listener's certificate evidence under
// peer_verifier, the listener checks the dialler's (TLS 1.3 only; nothing in clear text).
//
// Every value a peer sends is checked like a worker's frames: job id, sender and receiver
// ranks, (step, phase), message size, frame order and frame size, and for floats every value
// (NaN, infinity, |v| > max_abs_value). The first failed check breaks the group: the Exchange in
// progress fails and every later call fails at once with the same status (rejoin to continue).
// Error messages name the peer's rank (as this node assigned it) and the check, never a value
// the peer chose.
//
// Thread safety: one Exchange/ExchangeBytes at a time per group (a second concurrent call gets
// FailedPrecondition); Abort, rank, size and the byte counters from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/cluster/node_listener.h"
#include "shared/attest/verifier.h"
#include "shared/base/bytes.h"
#include "shared/base/status.h"
#include "shared/ratls/ratls.h"

namespace chiron::cluster {

namespace internal {
class GroupCore;
}

struct PeerGroupOptions {
  std::string job_id;                  // 1..128 printable ASCII characters, in every frame
  uint32_t rank = 0;                   // this node, in [0, size)
  uint32_t size = 1;                   // in [1, kMaxGroupSize]
  std::vector<std::string> addresses;  // `size` entries: each rank's NodeListener address
  std::shared_ptr<const ratls::TlsIdentity> identity;     // this node's attested identity
  std::shared_ptr<const attest::Verifier> peer_verifier;  // cluster policy for every peer
  // Join: how long to wait for every peer (dial retries, hellos). Exchange: per call.
  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds exchange_timeout{120000};
  float max_abs_value = 1e30f;         // values beyond it (and NaN/Inf) are refused
  // Optional: `size` entries, rank j's TLS key (SubjectPublicKeyInfo DER, TlsIdentity::spki_der),
  // as the job's coordinator distributed them. Set, a peer must hold exactly its rank's key (its
  // listener's certificate when dialled, its client certificate when it dials); empty, any node
  // whose evidence passes peer_verifier may take any rank not yet connected.
  std::vector<Bytes> peer_keys;
};

inline constexpr uint32_t kMaxGroupSize = 64;

class PeerGroup {
 public:
  // Joins the job's group: registers with `listener` for streams from higher ranks, dials every
  // lower rank, exchanges a hello (job id, ranks, size) both ways, and returns when every pair
  // is connected. Errors name the peer rank and what failed:
  //  - InvalidArgument: bad options (the message names the field);
  //  - AlreadyExists: the listener already has a group for this job;
  //  - Unauthenticated: the peer's evidence does not verify (the verifier's reason), or its key
  //    is not the one peer_keys lists for its rank;
  //  - FailedPrecondition: the peer refused the hello (unknown job, other size, wrong rank,
  //    rank already connected, this node's key not the one it lists) or answered with another
  //    job, rank or size;
  //  - Unavailable: the connection closed during the hello (e.g. the peer refused this node's
  //    evidence: a TLS 1.3 server checks the client's certificate after the client is done);
  //  - DeadlineExceeded: a peer not connected within connect_timeout;
  //  - Aborted: the listener shut down.
  static Result<std::unique_ptr<PeerGroup>> Join(NodeListener& listener, PeerGroupOptions options);

  ~PeerGroup();  // closes every stream and joins every thread of the group
  PeerGroup(const PeerGroup&) = delete;
  PeerGroup& operator=(const PeerGroup&) = delete;

  uint32_t rank() const;
  uint32_t size() const;

  // Sends out[j] to each rank j != rank() (out[rank()] is ignored) and receives from each rank
  // j != rank() exactly in[j].size() floats into in[j] (in[rank()] is left alone). Both spans
  // need `size` entries. (step, phase) must increase strictly from call to call (Exchange and
  // ExchangeBytes share the sequence): it is what makes an old frame detectably old.
  // Blocks until everything is sent and received, or exchange_timeout, or Abort.
  // Errors: InvalidArgument (sizes, (step, phase) not increasing; the group stays usable);
  // FailedPrecondition / DataLoss (a peer's frame failed a check), Unavailable (a peer closed
  // its stream), DeadlineExceeded, Aborted: the group is then broken and every later call
  // returns the same status. On error in[] holds unspecified values.
  Status Exchange(uint64_t step, uint32_t phase, std::span<const std::span<const float>> out,
                  std::span<const std::span<float>> in);

  // The same for opaque bytes (small control data: metrics, shard sizes; at most 16 MiB), with
  // no value check: sends `out` to every other rank; `in` is resized to `size` entries, in[j]
  // receives rank j's bytes and in[rank()] a copy of `out`.
  Status ExchangeBytes(uint64_t step, uint32_t phase, ByteSpan out, std::vector<Bytes>& in);

  // Any thread: breaks the group; a blocked Exchange returns Aborted within milliseconds.
  void Abort();

  // Values sent so far (floats × 4, plus ExchangeBytes payloads).
  uint64_t payload_bytes_sent() const;
  // Serialized gRPC messages sent so far, including each message's 5-byte gRPC prefix (not the
  // HTTP/2 and TLS record framing below it; the bench counts those on the socket).
  uint64_t wire_bytes_sent() const;

 private:
  PeerGroup() = default;
  std::shared_ptr<internal::GroupCore> core_;
  std::shared_ptr<internal::JobRegistry> registry_;
};

}  // namespace chiron::cluster

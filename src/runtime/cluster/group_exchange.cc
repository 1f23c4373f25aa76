// GroupCore's data path: posting an exchange, the per-link reader and writer loops.
#include <algorithm>
#include <cstring>

#include "runtime/cluster/group_core.h"

namespace chiron::cluster::internal {

using chiron::internal::Frame;
using Clock = std::chrono::steady_clock;

void GroupCore::ReadLoop(Link& link) {
  Frame frame;
  // The stream outlives this loop: it is released only after the loop returns.
  while (link.stream->Read(&frame)) {
    if (!Deliver(link, frame)) return;
  }
  Lock lock(mu_);
  if (link.closing || broken_) return;
  const Expectation& expect = link.expect;
  const bool started =
      expect.received > 0 || (expect.kind == MessageKind::kBytes && expect.total_known);
  const bool inside = link.recv_active && started;
  BreakLocked(FrameFaultStatus(link.rank, inside ? FrameFault::kTruncated : FrameFault::kClosed));
}

bool GroupCore::Deliver(Link& link, const Frame& frame) {
  Lock lock(mu_);
  // A peer one exchange ahead waits here (holding one frame, its stream no longer drained)
  // until this node posts that exchange: Exchange posts every receive before any send.
  cv_.wait(lock, [&] { return link.recv_active || link.closing || broken_; });
  if (link.closing || broken_) return false;
  Expectation& expect = link.expect;
  const FrameFault fault = CheckFrame(frame, expect);
  if (fault != FrameFault::kNone) {
    BreakLocked(FrameFaultStatus(link.rank, fault));
    return false;
  }
  const MessageKind kind = expect.kind;
  const uint64_t count = PayloadElements(frame, kind);
  uint8_t* dest = nullptr;
  if (kind == MessageKind::kBytes) {
    if (!expect.total_known) {
      expect.total = frame.total();  // bounded by CheckFrame (kMaxBytesMessageSize)
      expect.total_known = true;
      link.recv_bytes->assign(expect.total, 0);
    }
    dest = link.recv_bytes->data() + frame.offset();
  } else {
    dest = link.recv_floats + frame.offset() * sizeof(float);
  }
  expect.received += count;
  ++link.copying;
  lock.unlock();
  // Copy, then check: the values are judged in this node's memory, not the message buffer.
  if (!frame.payload().empty()) std::memcpy(dest, frame.payload().data(), frame.payload().size());
  const bool values_ok =
      kind == MessageKind::kBytes ||
      ValuesWithin({reinterpret_cast<const float*>(dest), count}, options_.max_abs_value);
  lock.lock();
  --link.copying;
  if (!values_ok) {
    BreakLocked(FrameFaultStatus(link.rank, FrameFault::kBadValue));
    cv_.notify_all();
    return false;
  }
  if (expect.received == expect.total) link.recv_active = false;
  cv_.notify_all();
  return true;
}

void GroupCore::WriteLoop(Link& link) {
  Frame frame;
  frame.set_job_id(options_.job_id);
  frame.set_sender(options_.rank);
  frame.set_receiver(link.rank);
  Lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return (link.send_active && !link.sending) || link.closing; });
    if (link.closing) break;
    const SendJob job = link.job;
    link.sending = true;
    lock.unlock();
    const size_t element = job.kind == MessageKind::kFloats ? sizeof(float) : 1;
    frame.set_kind(job.kind == MessageKind::kFloats ? Frame::KIND_FLOATS : Frame::KIND_BYTES);
    frame.set_step(job.step);
    frame.set_phase(job.phase);
    frame.set_total(job.data.size() / element);
    // Always at least one frame, so an empty message is received as such.
    size_t sent = 0;
    bool ok = true;
    do {
      const size_t chunk = std::min(kMaxFramePayloadSize, job.data.size() - sent);
      frame.set_offset(sent / element);
      frame.mutable_payload()->assign(reinterpret_cast<const char*>(job.data.data()) + sent,
                                      chunk);
      if (stopping_.load() || !link.stream->Write(frame)) {
        ok = false;
        break;
      }
      wire_bytes_sent_.fetch_add(frame.ByteSizeLong() + kGrpcMessagePrefixSize);
      payload_bytes_sent_.fetch_add(chunk);
      sent += chunk;
    } while (sent < job.data.size());
    lock.lock();
    link.sending = false;
    if (!ok) {
      if (!link.closing) BreakLocked(FrameFaultStatus(link.rank, FrameFault::kClosed));
      cv_.notify_all();
      break;
    }
    link.send_active = false;
    cv_.notify_all();
  }
  link.writer_running = false;
  cv_.notify_all();
}

Status GroupCore::RunExchange(MessageKind kind, uint64_t step, uint32_t phase,
                              const std::vector<ByteSpan>& out,
                              std::span<const std::span<float>> in_floats,
                              std::vector<Bytes>* in_bytes) {
  Lock lock(mu_);
  if (broken_) return broken_status_;
  if (in_exchange_) {
    return FailedPreconditionError("another exchange of this group is in progress: one at a time");
  }
  if (any_exchange_ && !(step > last_step_ || (step == last_step_ && phase > last_phase_))) {
    return InvalidArgumentError("exchange (step " + std::to_string(step) + ", phase " +
                                std::to_string(phase) + ") does not follow (step " +
                                std::to_string(last_step_) + ", phase " +
                                std::to_string(last_phase_) +
                                "): (step, phase) must increase from call to call");
  }
  in_exchange_ = true;
  const uint32_t me = options_.rank;
  for (Link& link : links_) {
    if (link.rank == me) continue;
    Expectation& expect = link.expect;
    expect = Expectation{};
    expect.kind = kind;
    expect.job_id = options_.job_id;
    expect.sender = link.rank;
    expect.receiver = me;
    expect.step = step;
    expect.phase = phase;
    if (kind == MessageKind::kFloats) {
      expect.total = in_floats[link.rank].size();
      expect.total_known = true;
      link.recv_floats = reinterpret_cast<uint8_t*>(in_floats[link.rank].data());
    } else {
      link.recv_bytes = &(*in_bytes)[link.rank];
      link.recv_bytes->clear();
    }
    link.recv_active = true;
    link.job = SendJob{kind, step, phase, out[link.rank]};
    link.send_active = true;
  }
  cv_.notify_all();
  const auto deadline = Clock::now() + options_.exchange_timeout;
  auto finished = [&] {
    if (broken_) return true;
    for (const Link& link : links_) {
      if (link.recv_active || link.send_active) return false;
    }
    return true;
  };
  if (!cv_.wait_until(lock, deadline, finished)) {
    for (const Link& link : links_) {
      if (!link.recv_active && !link.send_active) continue;
      BreakLocked(DeadlineExceededError(
          "rank " + std::to_string(link.rank) + ": exchange not " +
          (link.recv_active ? "received" : "sent") + " within the exchange timeout (" +
          std::to_string(options_.exchange_timeout.count()) +
          " ms); the group is broken (rejoin to continue)"));
      break;
    }
  }
  Status result = Status::Ok();
  if (broken_) {
    // Nothing may touch the caller's buffers once we return.
    for (Link& link : links_) {
      link.recv_active = false;
      link.send_active = false;
    }
    cv_.wait(lock, [&] {
      for (const Link& link : links_) {
        if (link.copying > 0 || link.sending) return false;
      }
      return true;
    });
    result = broken_status_;
  } else {
    any_exchange_ = true;
    last_step_ = step;
    last_phase_ = phase;
  }
  in_exchange_ = false;
  return result;
}

Status GroupCore::ExchangeFloats(uint64_t step, uint32_t phase,
                                 std::span<const std::span<const float>> out,
                                 std::span<const std::span<float>> in) {
  if (out.size() != options_.size || in.size() != options_.size) {
    return InvalidArgumentError("Exchange needs one out and one in span per rank (" +
                                std::to_string(options_.size) + ")");
  }
  std::vector<ByteSpan> bytes(out.size());
  for (size_t j = 0; j < out.size(); ++j) {
    bytes[j] = {reinterpret_cast<const uint8_t*>(out[j].data()), out[j].size_bytes()};
  }
  return RunExchange(MessageKind::kFloats, step, phase, bytes, in, nullptr);
}

Status GroupCore::ExchangeBytes(uint64_t step, uint32_t phase, ByteSpan out,
                                std::vector<Bytes>& in) {
  if (out.size() > kMaxBytesMessageSize) {
    return InvalidArgumentError("ExchangeBytes sends at most 16 MiB");
  }
  in.resize(options_.size);
  std::vector<ByteSpan> bytes(options_.size, out);
  Status status = RunExchange(MessageKind::kBytes, step, phase, bytes, {}, &in);
  if (status.ok()) in[options_.rank].assign(out.begin(), out.end());
  return status;
}

}  // namespace chiron::cluster::internal

#include "runtime/cluster/group_core.h"

#include <cstring>

#include "shared/ratls/grpc_credentials.h"

namespace chiron::cluster::internal {
namespace {

using chiron::internal::Frame;
using chiron::internal::NodeExchange;
using chiron::internal::Refusal;
using Clock = std::chrono::steady_clock;

// How often a dialling thread re-checks the channel (and whether the group stopped).
constexpr auto kDialPoll = std::chrono::milliseconds(100);

class ClientFrameStream final : public FrameStream {
 public:
  explicit ClientFrameStream(const std::shared_ptr<grpc::Channel>& channel)
      : stub_(NodeExchange::NewStub(channel)) {}
  ~ClientFrameStream() override {
    if (stream_) {
      context_.TryCancel();
      stream_->Finish().ok();  // CANCELLED; the status is of no use after a close
    }
  }
  // Opens the call. A Cancel that came first cancels it at once.
  void Start() { stream_ = stub_->Stream(&context_); }
  bool Read(Frame* frame) override { return stream_->Read(frame); }
  bool Write(const Frame& frame) override { return stream_->Write(frame); }
  void Cancel() override { context_.TryCancel(); }

 private:
  std::unique_ptr<NodeExchange::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<Frame, Frame>> stream_;
};

class ServerFrameStream final : public FrameStream {
 public:
  ServerFrameStream(grpc::ServerContext* context, grpc::ServerReaderWriter<Frame, Frame>* stream)
      : context_(context), stream_(stream) {}
  bool Read(Frame* frame) override { return stream_->Read(frame); }
  bool Write(const Frame& frame) override { return stream_->Write(frame); }
  void Cancel() override { context_->TryCancel(); }

 private:
  grpc::ServerContext* context_;
  grpc::ServerReaderWriter<Frame, Frame>* stream_;
};

std::string_view RefusalText(Refusal refusal) {
  switch (refusal) {
    case chiron::internal::REFUSAL_UNKNOWN_JOB: return "it has no group for this job";
    case chiron::internal::REFUSAL_WRONG_SIZE: return "its group has another size";
    case chiron::internal::REFUSAL_WRONG_RANK: return "this node's rank does not fit its group";
    case chiron::internal::REFUSAL_DUPLICATE_RANK:
      return "another node already joined with this node's rank";
    case chiron::internal::REFUSAL_GROUP_CLOSED: return "its group is broken or closing";
    case chiron::internal::REFUSAL_BAD_HELLO: return "the hello was malformed";
    case chiron::internal::REFUSAL_WRONG_KEY:
      return "this node's TLS key is not the one its group lists for this rank";
    default: return "an unknown reason";
  }
}

// True iff the caller's TLS client certificate holds `spki_der`.
bool KeyMatches(const grpc::ServerContext& context, const Bytes& spki_der) {
  Result<Bytes> key = ratls::PeerSpki(context);
  return key.ok() && *key == spki_der;
}

std::string Millis(std::chrono::milliseconds duration) {
  return std::to_string(duration.count()) + " ms";
}

}  // namespace

bool ValidJobId(const std::string& job_id) {
  if (job_id.empty() || job_id.size() > 128) return false;
  for (char c : job_id) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

GroupCore::GroupCore(PeerGroupOptions options)
    : options_(std::move(options)), links_(options_.size) {
  for (uint32_t j = 0; j < options_.size; ++j) links_[j].rank = j;
}

GroupCore::~GroupCore() { Shutdown(); }

void GroupCore::BreakLocked(Status status) {
  if (broken_) return;
  broken_ = true;
  broken_status_ = std::move(status);
  stopping_.store(true);
  for (Link& link : links_) {
    if (link.stream) link.stream->Cancel();
  }
  cv_.notify_all();
}

void GroupCore::Abort() {
  Lock lock(mu_);
  BreakLocked(AbortedError("the group was aborted"));
}

Status GroupCore::Connect() {
  const auto deadline = Clock::now() + options_.connect_timeout;
  Lock lock(mu_);
  for (uint32_t j = 0; j < options_.rank; ++j) {
    links_[j].dialer = std::thread([this, j] { Dial(links_[j]); });
  }
  auto all_connected = [&] {
    if (broken_) return true;
    for (const Link& link : links_) {
      if (link.rank != options_.rank && !link.connected) return false;
    }
    return true;
  };
  if (!cv_.wait_until(lock, deadline, all_connected)) {
    for (const Link& link : links_) {
      if (link.rank == options_.rank || link.connected) continue;
      const std::string what =
          link.rank < options_.rank
              ? "no attested connection to its listener at " + options_.addresses[link.rank] +
                    " (is it running, under a policy that accepts this node?)"
              : "it did not connect to this node (has it joined the job?)";
      BreakLocked(DeadlineExceededError("rank " + std::to_string(link.rank) +
                                        ": not connected within the connect timeout (" +
                                        Millis(options_.connect_timeout) + "): " + what));
      break;
    }
  }
  if (!broken_) return Status::Ok();
  Status status = broken_status_;
  lock.unlock();
  Shutdown();
  return status;
}

Status GroupCore::DialFailure(const Link& link, const Status& status) const {
  return status.WithContext("rank " + std::to_string(link.rank) + " (" +
                            options_.addresses[link.rank] + ")");
}

void GroupCore::Dial(Link& link) {
  auto record = std::make_shared<ratls::ServerAttestationRecord>();
  grpc::ChannelArguments args = ratls::AttestedChannelArguments();
  args.SetMaxReceiveMessageSize(kMaxGrpcMessageSize);
  args.SetMaxSendMessageSize(kMaxGrpcMessageSize);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      options_.addresses[link.rank],
      ratls::AttestedChannelCredentials(*options_.identity, options_.peer_verifier, record), args);
  auto fail = [&](Status status) {
    Lock lock(mu_);
    BreakLocked(DialFailure(link, status));
  };
  // Wait for a verified TLS connection; the group's connect timeout bounds this from Connect.
  for (;;) {
    if (stopping_.load()) return;
    grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) break;
    const std::string failure = record->last_failure();
    if (!failure.empty()) {
      return fail(UnauthenticatedError(
          "its evidence does not verify under the cluster policy: " + failure));
    }
    channel->WaitForStateChange(state, std::chrono::system_clock::now() + kDialPoll);
  }
  if (!options_.peer_keys.empty()) {
    const auto verified = record->last_verified();
    if (!verified || verified->server_spki_der != options_.peer_keys[link.rank]) {
      return fail(UnauthenticatedError(
          "its TLS key is not the one the job lists for that rank (peer_keys)"));
    }
  }
  auto owned = std::make_unique<ClientFrameStream>(channel);
  ClientFrameStream* stream = owned.get();
  {
    Lock lock(mu_);
    if (stopping_.load()) return;
    link.stream = std::move(owned);
  }
  stream->Start();
  Frame hello;
  hello.set_kind(Frame::KIND_HELLO);
  hello.set_job_id(options_.job_id);
  hello.set_sender(options_.rank);
  hello.set_receiver(link.rank);
  hello.set_size(options_.size);
  Frame reply;
  if (!stream->Write(hello) || !stream->Read(&reply)) {
    return fail(UnavailableError(
        "the connection closed during the hello (did it refuse this node's evidence under its "
        "cluster policy, or is it not a Chiron node listener?)"));
  }
  if (reply.kind() == Frame::KIND_REFUSAL) {
    return fail(FailedPreconditionError("it refused the hello: " +
                                        std::string(RefusalText(reply.refusal()))));
  }
  if (reply.kind() != Frame::KIND_HELLO || reply.job_id() != options_.job_id ||
      reply.sender() != link.rank || reply.receiver() != options_.rank ||
      reply.size() != options_.size) {
    return fail(FailedPreconditionError(
        "it answered the hello with another job, rank or group size"));
  }
  {
    Lock lock(mu_);
    if (stopping_.load()) return;
    link.connected = true;
    StartWriterLocked(link);
    cv_.notify_all();
  }
  ReadLoop(link);
}

void GroupCore::ServeIncoming(grpc::ServerContext* context,
                              grpc::ServerReaderWriter<Frame, Frame>* rw, const Frame& hello) {
  Refusal refusal = chiron::internal::REFUSAL_UNSPECIFIED;
  Link* link = nullptr;
  FrameStream* stream = nullptr;
  {
    Lock lock(mu_);
    if (broken_ || shut_down_) {
      refusal = chiron::internal::REFUSAL_GROUP_CLOSED;
    } else if (hello.size() != options_.size) {
      refusal = chiron::internal::REFUSAL_WRONG_SIZE;
    } else if (hello.receiver() != options_.rank || hello.sender() <= options_.rank ||
               hello.sender() >= options_.size) {
      refusal = chiron::internal::REFUSAL_WRONG_RANK;
    } else if (links_[hello.sender()].connected || links_[hello.sender()].stream) {
      refusal = chiron::internal::REFUSAL_DUPLICATE_RANK;
    } else if (!options_.peer_keys.empty() &&
               !KeyMatches(*context, options_.peer_keys[hello.sender()])) {
      refusal = chiron::internal::REFUSAL_WRONG_KEY;
    } else {
      link = &links_[hello.sender()];
      link->incoming = true;
      link->stream = std::make_unique<ServerFrameStream>(context, rw);
      stream = link->stream.get();
    }
  }
  if (link == nullptr) {
    Frame answer;
    answer.set_kind(Frame::KIND_REFUSAL);
    answer.set_job_id(options_.job_id);
    answer.set_sender(options_.rank);
    answer.set_refusal(refusal);
    rw->Write(answer);
    return;
  }
  Frame reply;
  reply.set_kind(Frame::KIND_HELLO);
  reply.set_job_id(options_.job_id);
  reply.set_sender(options_.rank);
  reply.set_receiver(link->rank);
  reply.set_size(options_.size);
  bool ok = stream->Write(reply);
  {
    Lock lock(mu_);
    ok = ok && !stopping_.load() && !link->closing;
    if (ok) {
      link->connected = true;
      StartWriterLocked(*link);
      cv_.notify_all();
    }
  }
  if (ok) ReadLoop(*link);
  // Leave only once no thread of the group uses the stream: gRPC frees it when we return.
  Lock lock(mu_);
  link->closing = true;
  stream->Cancel();
  cv_.notify_all();
  cv_.wait(lock, [&] { return !link->writer_running; });
  link->stream.reset();
  cv_.notify_all();
}

void GroupCore::StartWriterLocked(Link& link) {
  link.writer_running = true;
  link.writer = std::thread([this, &link] { WriteLoop(link); });
}

void GroupCore::Shutdown() {
  std::vector<std::thread> threads;
  {
    Lock lock(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    BreakLocked(FailedPreconditionError("the group was closed"));
    for (Link& link : links_) {
      link.closing = true;
      if (link.stream) link.stream->Cancel();
      if (link.writer.joinable()) threads.push_back(std::move(link.writer));
      if (link.dialer.joinable()) threads.push_back(std::move(link.dialer));
    }
    cv_.notify_all();
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<std::unique_ptr<FrameStream>> outgoing;
  {
    Lock lock(mu_);
    // Incoming streams belong to gRPC handler threads, which leave ServeIncoming on their own.
    cv_.wait(lock, [&] {
      for (const Link& link : links_) {
        if (link.incoming && link.stream) return false;
      }
      return true;
    });
    for (Link& link : links_) {
      if (link.stream) outgoing.push_back(std::move(link.stream));
    }
  }
  outgoing.clear();  // Finish() each call outside the lock
}

}  // namespace chiron::cluster::internal

#include "client/data_plane_client.h"

#include <pthread.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shared/base/net.h"
#include "shared/crypto/random.h"

namespace chiron::client {

using dataplane::ServerFrame;
using dataplane::ServerFrameType;

Result<std::unique_ptr<DataPlaneUpload>> DataPlaneUpload::Open(
    const std::string& host, int port, ByteSpan ticket, std::chrono::milliseconds connect_timeout) {
  if (ticket.size() != dataplane::kTicketSize) {
    return InvalidArgumentError("the runtime sent a " + std::to_string(ticket.size()) +
                                "-byte upload ticket; it must have " +
                                std::to_string(dataplane::kTicketSize));
  }
  CHIRON_ASSIGN_OR_RETURN(int fd, ConnectTcp(host, port, connect_timeout));
  SetSocketTimeouts(fd, kStallTimeout);
  dataplane::Hello hello;
  auto ticket_id = dataplane::DeriveTicketId(ticket);
  auto ack_key = dataplane::DeriveAckKey(ticket);
  if (!ticket_id.ok() || !ack_key.ok()) {
    close(fd);
    return !ticket_id.ok() ? ticket_id.status() : ack_key.status();
  }
  hello.ticket_id = *ticket_id;
  auto nonce = crypto::RandomBytes(dataplane::kNonceSize);
  if (!nonce.ok()) {
    close(fd);
    return nonce.status();
  }
  std::copy(nonce->begin(), nonce->end(), hello.nonce.begin());
  std::unique_ptr<DataPlaneUpload> upload(
      new DataPlaneUpload(fd, std::move(*ack_key), hello.nonce));
  CHIRON_RETURN_IF_ERROR(WriteAll(fd, dataplane::EncodeHello(hello)));
  CHIRON_ASSIGN_OR_RETURN(ServerFrame welcome, upload->ReadFrame());
  if (welcome.type == ServerFrameType::kRejected) {
    return UnavailableError("the data plane refused the upload ticket (unauthenticated reply: " +
                            welcome.message + ")");
  }
  if (welcome.type == ServerFrameType::kError) {
    return Status(static_cast<StatusCode>(welcome.code), welcome.message);
  }
  if (welcome.type != ServerFrameType::kWelcome) {
    return DataLossError("the data plane answered the hello with a frame of type " +
                         std::to_string(static_cast<int>(welcome.type)) + ", not a welcome");
  }
  upload->resume_point_ = welcome.value;
  return upload;
}

DataPlaneUpload::~DataPlaneUpload() {
  Close(false).IgnoreError();
  close(fd_);
}

Result<ServerFrame> DataPlaneUpload::ReadFrame() {
  Bytes frame;
  std::optional<size_t> size;
  while (!size) {
    uint8_t byte = 0;
    Status read = ReadExact(fd_, MutableByteSpan(&byte, 1));
    if (!read.ok()) {
      if (read.code() == StatusCode::kOutOfRange && frame.empty()) return read;  // clean end
      return UnavailableError("the data-plane connection broke: " + read.message());
    }
    frame.push_back(byte);
    CHIRON_ASSIGN_OR_RETURN(size, dataplane::ServerFrameSize(frame));
  }
  size_t have = frame.size();
  frame.resize(*size);
  Status read = ReadExact(fd_, MutableByteSpan(frame).subspan(have));
  if (!read.ok()) return UnavailableError("the data-plane connection broke: " + read.message());
  auto parsed = dataplane::ParseServerFrame(frame, ack_key_.span(), nonce_, sequence_);
  if (parsed.ok() && parsed->type != ServerFrameType::kRejected) ++sequence_;
  return parsed;
}

void DataPlaneUpload::StartReading(std::function<void(uint64_t, bool)> on_ack) {
  reader_ = std::thread([this, on_ack = std::move(on_ack)] {
    pthread_setname_np(pthread_self(), "chiron-acks");
    ReadLoop(on_ack);
  });
}

void DataPlaneUpload::ReadLoop(const std::function<void(uint64_t, bool)>& on_ack) {
  Status outcome;
  while (true) {
    auto frame = ReadFrame();
    if (!frame.ok()) {
      if (frame.status().code() != StatusCode::kOutOfRange) outcome = frame.status();
      break;  // OutOfRange: the runtime closed after its last frame
    }
    if (frame->type == ServerFrameType::kAck) {
      on_ack(frame->value, frame->complete);
    } else if (frame->type == ServerFrameType::kError) {
      outcome = Status(static_cast<StatusCode>(frame->code), frame->message);
      break;
    } else if (frame->type == ServerFrameType::kRejected) {
      outcome = UnavailableError("the data plane ended the upload (unauthenticated reply: " +
                                 frame->message + ")");
      break;
    } else {
      outcome = DataLossError("the data plane sent a second welcome; it is not behaving as a "
                              "Chiron runtime must");
      break;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    outcome_ = outcome;
  }
  ended_ = true;
  // Whatever the runtime still receives is discarded: stop the sender (Send fails from now on).
  if (!outcome.ok()) shutdown(fd_, SHUT_RDWR);
}

Status DataPlaneUpload::Send(uint64_t index, bool last, ByteSpan sealed) {
  if (ended_) return UnavailableError("the data plane ended the upload");
  std::unique_lock<std::mutex> lock(send_mu_);
  if (!sender_.joinable()) {
    sender_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "chiron-send");
      SendLoop();
    });
  }
  send_changed_.wait(lock, [&] { return outgoing_.size() < kMaxQueued || !send_status_.ok(); });
  if (!send_status_.ok()) return send_status_;
  Outgoing chunk;
  chunk.index = index;
  chunk.last = last;
  if (!acquired_.empty() && sealed.data() == acquired_.data() &&
      sealed.size() == acquired_.size()) {
    chunk.bytes = std::move(acquired_);  // sealed right here: no copy
    acquired_.clear();
  } else {
    if (!spare_.empty()) {
      chunk.bytes = std::move(spare_.back());
      spare_.pop_back();
    }
    chunk.bytes.assign(sealed.begin(), sealed.end());
  }
  outgoing_.push_back(std::move(chunk));
  lock.unlock();
  send_changed_.notify_all();
  return Status::Ok();
}

MutableByteSpan DataPlaneUpload::AcquireBuffer(size_t size) {
  std::unique_lock<std::mutex> lock(send_mu_);
  send_changed_.wait(lock, [&] { return outgoing_.size() < kMaxQueued || !send_status_.ok(); });
  if (!send_status_.ok() || ended_) return {};
  if (acquired_.empty() && !spare_.empty()) {
    acquired_ = std::move(spare_.back());
    spare_.pop_back();
  }
  acquired_.resize(size);
  return MutableByteSpan(acquired_);
}

void DataPlaneUpload::SendLoop() {
  while (true) {
    Outgoing chunk;
    {
      std::unique_lock<std::mutex> lock(send_mu_);
      send_changed_.wait(lock, [&] { return !outgoing_.empty() || sender_stop_; });
      if (outgoing_.empty()) return;
      chunk = std::move(outgoing_.front());
      outgoing_.pop_front();
    }
    dataplane::ChunkHead head;
    head.type = dataplane::ClientFrameType::kChunk;
    head.last = chunk.last;
    head.size = static_cast<uint32_t>(chunk.bytes.size());
    head.index = chunk.index;
    auto head_bytes = dataplane::EncodeChunkHead(head);
    iovec parts[2] = {{head_bytes.data(), head_bytes.size()},
                      {chunk.bytes.data(), chunk.bytes.size()}};
    Status sent = ended_ ? UnavailableError("the data plane ended the upload")
                         : WriteAll(fd_, parts, 2);
    {
      std::lock_guard<std::mutex> lock(send_mu_);
      if (!sent.ok()) {
        send_status_ = sent;
        outgoing_.clear();
      } else if (spare_.size() < kMaxQueued) {
        spare_.push_back(std::move(chunk.bytes));
      }
    }
    send_changed_.notify_all();
    if (!sent.ok()) return;
  }
}

Status DataPlaneUpload::StopSender() {
  {
    std::lock_guard<std::mutex> lock(send_mu_);
    sender_stop_ = true;
  }
  send_changed_.notify_all();
  if (sender_.joinable()) sender_.join();
  std::lock_guard<std::mutex> lock(send_mu_);
  return send_status_;
}

Status DataPlaneUpload::Close(bool end) {
  if (closed_) {
    std::lock_guard<std::mutex> lock(mu_);
    return outcome_;
  }
  closed_ = true;
  // Everything queued goes out first (chunks sealed before an input error are still worth
  // storing), then the End frame if the upload is whole.
  Status sent = StopSender();
  if (end && sent.ok() && !ended_) {
    dataplane::ChunkHead head;
    head.type = dataplane::ClientFrameType::kEnd;
    sent = WriteAll(fd_, dataplane::EncodeChunkHead(head));
  }
  // Nothing more will be sent; the runtime finishes storing, sends its last acks and closes.
  shutdown(fd_, SHUT_WR);
  if (reader_.joinable()) reader_.join();
  std::lock_guard<std::mutex> lock(mu_);
  // The runtime's word first (it says why it stopped reading); else a failed send.
  if (outcome_.ok() && !sent.ok() && end) {
    outcome_ = UnavailableError("the data-plane connection broke: " + sent.message());
  }
  return outcome_;
}

}  // namespace chiron::client

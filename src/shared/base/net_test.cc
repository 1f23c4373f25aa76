// ReadExact and ReadExactWithin over a real socket pair: whole reads, a peer that closes early,
// and a peer that trickles bytes past the deadline.
#include "shared/base/net.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <thread>

namespace chiron {
namespace {

class SocketPair {
 public:
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0); }
  ~SocketPair() {
    CloseWriter();
    close(fds_[0]);
  }
  int reader() const { return fds_[0]; }
  int writer() const { return fds_[1]; }
  void CloseWriter() {
    if (fds_[1] >= 0) close(fds_[1]);
    fds_[1] = -1;
  }

 private:
  int fds_[2] = {-1, -1};
};

TEST(ReadExactWithinTest, ReadsEveryByteSentInPieces) {
  SocketPair pair;
  std::thread writer([&] {
    for (uint8_t i = 0; i < 10; ++i) {
      uint8_t piece[3] = {i, i, i};
      ASSERT_TRUE(WriteAll(pair.writer(), ByteSpan(piece, sizeof piece)).ok());
    }
  });
  Bytes out(30);
  Status read = ReadExactWithin(pair.reader(), out, std::chrono::seconds(10));
  writer.join();
  ASSERT_TRUE(read.ok()) << read.ToString();
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], i / 3);
}

TEST(ReadExactWithinTest, TellsACleanEndFromACloseInTheMiddle) {
  {
    SocketPair pair;
    pair.CloseWriter();
    Bytes out(4);
    Status read = ReadExactWithin(pair.reader(), out, std::chrono::seconds(10));
    EXPECT_EQ(read.code(), StatusCode::kOutOfRange) << read.ToString();
  }
  SocketPair pair;
  uint8_t two[2] = {1, 2};
  ASSERT_TRUE(WriteAll(pair.writer(), ByteSpan(two, 2)).ok());
  pair.CloseWriter();
  Bytes out(4);
  Status read = ReadExactWithin(pair.reader(), out, std::chrono::seconds(10));
  EXPECT_EQ(read.code(), StatusCode::kUnavailable);
  EXPECT_NE(read.message().find("closed the connection after 2 of 4 bytes"), std::string::npos)
      << read.ToString();
}

TEST(ReadExactWithinTest, ATricklingPeerCannotStretchTheDeadline) {
  SocketPair pair;
  // One byte every 30 ms for 40 bytes: each gap is short, the whole takes 1.2 s.
  std::thread writer([&] {
    for (int i = 0; i < 40; ++i) {
      uint8_t byte = 7;
      if (send(pair.writer(), &byte, 1, MSG_NOSIGNAL) != 1) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
  });
  Bytes out(40);
  Status read = ReadExactWithin(pair.reader(), out, std::chrono::milliseconds(200));
  EXPECT_EQ(read.code(), StatusCode::kUnavailable);
  EXPECT_NE(read.message().find("timed out"), std::string::npos) << read.ToString();
  shutdown(pair.reader(), SHUT_RDWR);  // the writer's next send fails and it stops
  writer.join();
}

}  // namespace
}  // namespace chiron

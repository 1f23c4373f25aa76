#include "shared/dataplane/wire.h"

#include <gtest/gtest.h>

namespace chiron::dataplane {
namespace {

TEST(DataPlaneWireTest, AckRoundTrips) {
  Bytes ticket(kTicketSize, 7);
  SecretBytes key = DeriveAckKey(ticket);
  Nonce nonce{};
  ServerFrame ack;
  ack.type = ServerFrameType::kAck;
  ack.value = 42;
  ack.complete = true;
  Bytes wire = EncodeServerFrame(ack, key.span(), nonce, 3);
  auto size = ServerFrameSize(wire);
  ASSERT_TRUE(size.ok());
  ASSERT_EQ(size->value(), wire.size());
  auto parsed = ParseServerFrame(wire, key.span(), nonce, 3);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->value, 42u);
  EXPECT_TRUE(parsed->complete);
  EXPECT_EQ(ParseServerFrame(wire, key.span(), nonce, 4).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace chiron::dataplane

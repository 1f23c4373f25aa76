#include "shared/base/status.h"

#include <gtest/gtest.h>

namespace chiron {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  CHIRON_ASSIGN_OR_RETURN(int h, Half(x));
  CHIRON_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusTest, ToStringAndContext) {
  Status s = NotFoundError("dataset 'x'");
  EXPECT_EQ(s.ToString(), "NOT_FOUND: dataset 'x'");
  EXPECT_EQ(s.WithContext("delete").message(), "delete: dataset 'x'");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

TEST(StatusTest, AssignOrReturnPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
}

TEST(StatusDeathTest, ResultFromOkStatusAborts) {
  EXPECT_DEATH({ Result<int> r(Status::Ok()); }, "");
}

}  // namespace
}  // namespace chiron

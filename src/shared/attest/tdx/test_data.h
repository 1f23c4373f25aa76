// Test helpers: reads outside test data (real TEE evidence) from $CHIRON_TESTDATA, in place.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>

#include "shared/base/bytes.h"

namespace chiron::attest::testing {

inline std::string TestDataPath(const std::string& relative) {
  const char* dir = std::getenv("CHIRON_TESTDATA");
  std::string base = dir ? dir : "../shared/testdata";
  return base + "/attestation/" + relative;
}

inline Bytes ReadTestFile(const std::string& relative) {
  std::ifstream in(TestDataPath(relative), std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << TestDataPath(relative)
                         << " (set CHIRON_TESTDATA to ../shared/testdata)";
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::chrono::system_clock::time_point Utc(int year, int month, int day) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace chiron::attest::testing

// Helpers for the crypto module's tests: locating outside test data and reading hex.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "shared/base/bytes.h"

namespace chiron::crypto::testing {

// $CHIRON_TESTDATA (set by chiron_test), else $CHIRON_SOURCE_DIR/../shared/testdata, else the
// layout of this checkout.
inline std::string TestdataDir() {
  if (const char* dir = std::getenv("CHIRON_TESTDATA"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  if (const char* src = std::getenv("CHIRON_SOURCE_DIR"); src != nullptr && *src != '\0') {
    return std::string(src) + "/../shared/testdata";
  }
  return "/work/shared/testdata";
}

// Parses a Wycheproof file from testdata/wycheproof/; fails the test if it cannot be read.
inline nlohmann::json LoadWycheproof(const std::string& name) {
  std::string path = TestdataDir() + "/wycheproof/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path << " (set CHIRON_TESTDATA)";
  if (!in.good()) return nlohmann::json();
  std::stringstream buffer;
  buffer << in.rdbuf();
  return nlohmann::json::parse(buffer.str());
}

inline Bytes Hex(const std::string& hex) {
  auto bytes = HexDecode(hex);
  EXPECT_TRUE(bytes.ok()) << "bad hex in test vector: " << hex;
  return bytes.ok() ? *bytes : Bytes();
}

}  // namespace chiron::crypto::testing

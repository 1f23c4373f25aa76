// `chiron evidence verify` on evidence as people have it: Intel quotes this build cannot verify
// (version 5, SGX, a damaged header) named as such and refused with the real reason; a missing
// and an empty collateral folder as the same mistake; a TDX quote accepted without Intel's TCB
// collateral only when the policy says so, with "TCB status NOT CHECKED" in text and JSON;
// trailing bytes refused by policy. The real quote and collateral are read from
// ../shared/testdata/attestation in place.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/integration/process.h"

namespace chiron::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kMrtd[] =
    "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215c"
    "bb";

std::string Attestation() {
  const char* dir = std::getenv("CHIRON_TESTDATA");
  return std::string(dir ? dir : "../shared/testdata") + "/attestation";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class EvidenceQuoteCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "chiron-evidence-quote-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
    quote_ = Attestation() + "/tdx/tdx_prod_quote_SPR_E4.dat";
    collateral_ = Attestation() + "/tdx";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A TDX policy accepting the real quote's MRTD and its NotSupported TCB, with `tdx` extras.
  std::string Policy(nlohmann::json tdx = nlohmann::json::object()) {
    tdx["accepted_tcb_statuses"] = {"NotSupported"};
    nlohmann::json policy = {{"version", 1},
                             {"allowed_platforms", {"tdx"}},
                             {"allowed_measurements", {{"tdx", {kMrtd}}}},
                             {"tdx", tdx}};
    std::string path = dir_ + "/policy-" + std::to_string(policies_++) + ".json";
    std::ofstream(path) << policy.dump();
    return path;
  }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  CommandResult Verify(std::vector<std::string> args) {
    args.insert(args.begin(), {BinaryPath("chiron"), "evidence", "verify"});
    return RunCommand(args);
  }

  std::string dir_, quote_, collateral_;
  int policies_ = 0;
};

TEST_F(EvidenceQuoteCliTest, QuotesThisBuildCannotVerifyAreNamedAndRefusedWithTheReason) {
  std::string v4 = ReadFile(quote_);
  ASSERT_GT(v4.size(), 700u);
  // Version 5 as TDX 1.5 hosts return it: version 5, a body descriptor (type 2, size 584), then
  // the body and the rest.
  std::string v5 = v4.substr(0, 48);
  v5[0] = 5;
  v5 += std::string("\x02\x00\x48\x02\x00\x00", 6);
  v5 += v4.substr(48);
  const std::string v5_path = Write("v5.dat", v5);
  for (bool with_collateral : {true, false}) {
    std::vector<std::string> args = {v5_path, "--policy", Policy(), "--at", "2023-07-01"};
    if (with_collateral) args.insert(args.end(), {"--collateral", collateral_});
    auto result = Verify(args);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_TRUE(Has(result.err,
                    "v5.dat is an Intel TDX quote (version 5) that this build cannot "
                    "verify: tdx quote: quote version 5 (the TDX 1.5 layout"))
        << result.err;
    EXPECT_FALSE(Has(result.err, "raw Chiron evidence")) << result.err;
  }

  // A damaged version field: Intel's QE vendor id still names the quote.
  std::string damaged = v4;
  damaged[0] = 0x44;
  auto version = Verify({Write("damaged.dat", damaged), "--policy", Policy(), "--collateral",
                         collateral_, "--at", "2023-07-01"});
  EXPECT_EQ(version.exit_code, 2) << version.err;
  EXPECT_TRUE(Has(version.err,
                  "is an Intel TDX quote (version 68) that this build cannot verify: "
                  "tdx quote: unsupported quote version 68"))
      << version.err;
  // A damaged attestation key type.
  std::string key_type = v4;
  key_type[2] = 3;
  auto key = Verify({Write("key.dat", key_type), "--policy", Policy(), "--collateral", collateral_,
                     "--at", "2023-07-01"});
  EXPECT_EQ(key.exit_code, 2) << key.err;
  EXPECT_TRUE(Has(key.err,
                  "is an Intel TDX quote (version 4) that this build cannot verify: "
                  "tdx quote: unsupported attestation key type 3"))
      << key.err;
  // An SGX quote.
  std::string sgx = v4;
  sgx[0] = 3;
  sgx[4] = 0;
  auto sgx_result =
      Verify({Write("sgx.dat", sgx), "--policy", Policy(), "--collateral", collateral_});
  EXPECT_EQ(sgx_result.exit_code, 2) << sgx_result.err;
  EXPECT_TRUE(Has(sgx_result.err, "is an Intel SGX quote (version 3), not a TDX quote"))
      << sgx_result.err;
}

TEST_F(EvidenceQuoteCliTest, NoCollateralAndAnEmptyCollateralFolderAreTheSameMistake) {
  const std::string empty = dir_ + "/empty";
  fs::create_directory(empty);
  const std::string snp = Attestation() + "/sev-snp/attestation.bin";
  nlohmann::json snp_policy_json = {
      {"version", 1},
      {"allowed_platforms", {"sev-snp"}},
      {"allow_debug", true},
      {"allowed_measurements", {{"sev-snp", {std::string(96, 'b')}}}}};
  const std::string snp_policy = Write("snp.json", snp_policy_json.dump());
  struct Case {
    std::string file, policy;
    std::vector<std::string> collateral;
    std::string says;
  };
  const std::vector<Case> cases = {
      {quote_,
       Policy(),
       {},
       "is a raw Intel TDX quote: pass --collateral DIR with Intel's TCB info"},
      {quote_,
       Policy(),
       {"--collateral", empty},
       "holds none of the collateral files: put Intel's"},
      {quote_, Policy(), {"--collateral", dir_ + "/absent"}, "holds none of the collateral files"},
      {snp, snp_policy, {}, "is a raw AMD SEV-SNP report: pass --collateral DIR with the VCEK"},
      {snp,
       snp_policy,
       {"--collateral", empty},
       "holds none of the collateral files: put the VCEK"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {c.file, "--policy", c.policy};
    args.insert(args.end(), c.collateral.begin(), c.collateral.end());
    auto result = Verify(args);
    EXPECT_EQ(result.exit_code, 1) << c.says << ": " << result.err;
    EXPECT_TRUE(Has(result.err, c.says)) << result.err;
    EXPECT_FALSE(Has(result.err, "verification FAILED")) << result.err;
  }
}

TEST_F(EvidenceQuoteCliTest, TcbStatusUncheckedOnlyWhenThePolicyAcceptsIt) {
  // Default policy, no collateral: refused, saying how to accept it knowingly.
  auto refused = Verify({quote_, "--policy", Policy(), "--at", "2023-07-01"});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_TRUE(Has(refused.err, "set \"tdx\": {\"tcb_status_unchecked\": \"accept\"} in the policy"))
      << refused.err;

  const std::string accepting = Policy({{"tcb_status_unchecked", "accept"}});
  auto text = Verify({quote_, "--policy", accepting, "--at", "2023-07-01"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_TRUE(Has(text.out,
                  "WARNING: TCB status NOT CHECKED: Intel's TCB info and QE identity "
                  "were not given"))
      << text.out;
  EXPECT_TRUE(Has(text.out, "tcb_status:   NOT CHECKED")) << text.out;
  EXPECT_TRUE(Has(text.out, "revocation of the PCK certificate chain NOT CHECKED")) << text.out;
  EXPECT_TRUE(Has(text.err, "WARNING: TCB status NOT CHECKED.")) << text.err;

  auto json = Verify({quote_, "--policy", accepting, "--at", "2023-07-01", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto claims = nlohmann::json::parse(json.out);
  EXPECT_EQ(claims["details"]["tcb_status"], "NOT CHECKED");
  ASSERT_FALSE(claims["warnings"].empty());
  EXPECT_EQ(claims["warnings"][0].get<std::string>().rfind("TCB status NOT CHECKED", 0), 0u);
  EXPECT_EQ(claims["measurement"], kMrtd);

  // The accepting policy does not loosen anything else: a flipped byte still fails.
  std::string tampered = ReadFile(quote_);
  tampered[600] ^= 0x01;
  auto forged =
      Verify({Write("tampered.dat", tampered), "--policy", accepting, "--at", "2023-07-01"});
  EXPECT_EQ(forged.exit_code, 2) << forged.err;
  // With collateral the real status is judged and printed.
  auto judged = Verify(
      {quote_, "--policy", accepting, "--collateral", collateral_, "--at", "2023-07-01", "--json"});
  ASSERT_EQ(judged.exit_code, 0) << judged.err;
  EXPECT_EQ(nlohmann::json::parse(judged.out)["details"]["tcb_status"], "NotSupported");
  EXPECT_FALSE(Has(judged.err, "NOT CHECKED")) << judged.err;
}

TEST_F(EvidenceQuoteCliTest, TrailingBytesAreRefusedWhenThePolicySaysSo) {
  // Intel's sample quote carries 39 bytes of text after its signature data.
  auto ignored =
      Verify({quote_, "--policy", Policy(), "--collateral", collateral_, "--at", "2023-07-01"});
  ASSERT_EQ(ignored.exit_code, 0) << ignored.err;
  EXPECT_TRUE(Has(ignored.out,
                  "39 unauthenticated byte(s) after the quote's signature data were "
                  "ignored"))
      << ignored.out;
  auto refused = Verify({quote_, "--policy", Policy({{"reject_trailing_bytes", true}}),
                         "--collateral", collateral_, "--at", "2023-07-01"});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_TRUE(Has(refused.err,
                  "verification FAILED: tdx: trailing bytes: 39 byte(s) after the "
                  "signature data, covered by no signature, and "
                  "tdx.reject_trailing_bytes refuses them"))
      << refused.err;
}

}  // namespace
}  // namespace chiron::testing

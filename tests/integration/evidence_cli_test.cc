// `chiron evidence verify` on real hardware evidence: the production Intel TDX quote and the AMD
// SEV-SNP report in ../shared/testdata/attestation (read in place), through the real CLI.
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
    "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb";
constexpr char kSnpMeasurement[] =
    "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01";

std::string Attestation() {
  const char* dir = std::getenv("CHIRON_TESTDATA");
  return std::string(dir ? dir : "../shared/testdata") + "/attestation";
}

class EvidenceCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "chiron-evidence-cli-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Policy(const nlohmann::json& j, const std::string& name) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << j.dump();
    return path;
  }
  std::string TdxPolicy(const std::string& mrtd, nlohmann::json statuses) {
    return Policy({{"version", 1},
                   {"allowed_platforms", {"tdx"}},
                   {"allowed_measurements", {{"tdx", {mrtd}}}},
                   {"tdx", {{"accepted_tcb_statuses", statuses}}}},
                  "tdx.json");
  }
  std::string SnpPolicy(bool allow_debug) {
    return Policy({{"version", 1},
                   {"allowed_platforms", {"sev-snp"}},
                   {"allow_debug", allow_debug},
                   {"allowed_measurements", {{"sev-snp", {kSnpMeasurement}}}}},
                  "snp.json");
  }
  CommandResult Verify(std::vector<std::string> args) {
    args.insert(args.begin(), {BinaryPath("chiron"), "evidence", "verify"});
    return RunCommand(args);
  }

  std::string dir_;
};

TEST_F(EvidenceCliTest, RealTdxQuoteVerifiesAndPrintsMeasurements) {
  auto result = Verify({Attestation() + "/tdx/tdx_prod_quote_SPR_E4.dat", "--policy",
                        TdxPolicy(kMrtd, {"NotSupported"}), "--collateral",
                        Attestation() + "/tdx", "--at", "2023-07-01", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  auto claims = nlohmann::json::parse(result.out);
  EXPECT_EQ(claims["platform"], "tdx");
  EXPECT_EQ(claims["measurement"], kMrtd);
  EXPECT_EQ(claims["details"]["mrtd"], kMrtd);
  EXPECT_EQ(claims["details"]["tcb_status"], "NotSupported");
  EXPECT_EQ(claims["report_data"].get<std::string>().size(), 128u);
  EXPECT_NE(result.err.find("Intel TDX quote verified"), std::string::npos);
}

TEST_F(EvidenceCliTest, TdxRejectionsNameTheCheck) {
  std::string quote = Attestation() + "/tdx/tdx_prod_quote_SPR_E4.dat";
  std::string collateral = Attestation() + "/tdx";
  // Intel's rules rate this platform NotSupported: a default (UpToDate-only) policy refuses it.
  auto status = Verify({quote, "--policy", TdxPolicy(kMrtd, nlohmann::json::array()),
                        "--collateral", collateral, "--at", "2023-07-01"});
  EXPECT_EQ(status.exit_code, 2);
  EXPECT_NE(status.err.find("NotSupported"), std::string::npos) << status.err;
  // Another MRTD.
  auto mrtd = Verify({quote, "--policy", TdxPolicy(std::string(96, 'a'), {"NotSupported"}),
                      "--collateral", collateral, "--at", "2023-07-01"});
  EXPECT_EQ(mrtd.exit_code, 2);
  EXPECT_NE(mrtd.err.find("measurement"), std::string::npos) << mrtd.err;
  // Judged today, the 2023 CRLs have expired: reported clearly, not accepted.
  auto expired = Verify({quote, "--policy", TdxPolicy(kMrtd, {"NotSupported"}), "--collateral",
                         collateral});
  EXPECT_EQ(expired.exit_code, 2);
  EXPECT_NE(expired.err.find("expired"), std::string::npos) << expired.err;
  // Report data the caller expects but the quote does not bind.
  auto binding = Verify({quote, "--policy", TdxPolicy(kMrtd, {"NotSupported"}), "--collateral",
                         collateral, "--at", "2023-07-01", "--report-data",
                         std::string(128, '0')});
  EXPECT_EQ(binding.exit_code, 2);
  EXPECT_NE(binding.err.find("report data"), std::string::npos) << binding.err;
  // No collateral: told what to pass (a usage mistake, exit 1).
  auto missing = Verify({quote, "--policy", TdxPolicy(kMrtd, {"NotSupported"})});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("--collateral"), std::string::npos) << missing.err;
  // Another MRTD: the refusal says which values the policy expected.
  EXPECT_NE(mrtd.err.find("the policy accepts " + std::string(96, 'a')), std::string::npos)
      << mrtd.err;
}

TEST_F(EvidenceCliTest, TamperedTdxQuoteCopyIsRejected) {
  std::ifstream in(Attestation() + "/tdx/tdx_prod_quote_SPR_E4.dat", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 700u);
  for (size_t offset : {size_t{200}, size_t{600}, bytes.size() / 2}) {
    std::string tampered = bytes;
    tampered[offset] ^= 0x01;
    std::string path = dir_ + "/tampered.dat";
    std::ofstream(path, std::ios::binary) << tampered;
    auto result = Verify({path, "--policy", TdxPolicy(kMrtd, {"NotSupported"}), "--collateral",
                          Attestation() + "/tdx", "--at", "2023-07-01"});
    EXPECT_NE(result.exit_code, 0) << offset;
    EXPECT_NE(result.err.find("FAILED"), std::string::npos) << offset << ": " << result.err;
  }
}

TEST_F(EvidenceCliTest, RealSnpReportDebugGuestNeedsDebugPolicy) {
  std::string report = Attestation() + "/sev-snp/attestation.bin";
  std::string collateral = Attestation() + "/sev-snp";
  auto accepted = Verify({report, "--policy", SnpPolicy(true), "--collateral", collateral,
                          "--at", "2024-01-01", "--json"});
  ASSERT_EQ(accepted.exit_code, 0) << accepted.err;
  auto claims = nlohmann::json::parse(accepted.out);
  EXPECT_EQ(claims["platform"], "sev-snp");
  EXPECT_EQ(claims["measurement"], kSnpMeasurement);
  EXPECT_EQ(claims["debug"], true);

  auto rejected = Verify({report, "--policy", SnpPolicy(false), "--collateral", collateral,
                          "--at", "2024-01-01"});
  EXPECT_EQ(rejected.exit_code, 2);
  EXPECT_NE(rejected.err.find("debug"), std::string::npos) << rejected.err;
}

TEST_F(EvidenceCliTest, TsmEnvelopeOfTheRealQuoteVerifiesWithCollateral) {
  // What a chirond on a TDX guest (tsm platform) produces: the quote inside a Chiron evidence
  // envelope (docs/formats/evidence.md: "CHEV", version 1, platform 2, payload size, then the
  // tsm body: provider, outblob, empty auxblob).
  std::ifstream in(Attestation() + "/tdx/tdx_prod_quote_SPR_E4.dat", std::ios::binary);
  std::string quote((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto le = [](std::string& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  };
  std::string body;
  body.push_back(static_cast<char>(9));
  body += "tdx_guest";
  le(body, quote.size(), 4);
  body += quote;
  le(body, 0, 4);
  std::string envelope = "CHEV";
  le(envelope, 1, 2);
  le(envelope, 2, 2);
  le(envelope, body.size(), 4);
  envelope += body;
  std::string path = dir_ + "/tsm-evidence.bin";
  std::ofstream(path, std::ios::binary) << envelope;
  // The quote's own report data, as the runtime bound it.
  auto raw = Verify({Attestation() + "/tdx/tdx_prod_quote_SPR_E4.dat", "--policy",
                     TdxPolicy(kMrtd, {"NotSupported"}), "--collateral", Attestation() + "/tdx",
                     "--at", "2023-07-01", "--json"});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  std::string report_data = nlohmann::json::parse(raw.out)["report_data"];
  auto result = Verify({path, "--policy", TdxPolicy(kMrtd, {"NotSupported"}), "--collateral",
                        Attestation() + "/tdx", "--at", "2023-07-01", "--report-data",
                        report_data, "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(nlohmann::json::parse(result.out)["measurement"], kMrtd);
  // Without collateral the envelope says what to pass instead of passing (exit 1, as for a raw
  // quote without collateral).
  auto without = Verify({path, "--policy", TdxPolicy(kMrtd, {"NotSupported"}), "--report-data",
                         report_data});
  EXPECT_EQ(without.exit_code, 1) << without.err;
  EXPECT_NE(without.err.find("holds Intel TDX evidence: pass --collateral DIR"),
            std::string::npos)
      << without.err;
}

TEST_F(EvidenceCliTest, TsmEnvelopeOfTheRealSnpReportVerifiesWithTheCertificatesItCarries) {
  // What a chirond on an SEV-SNP guest (tsm platform) produces when the host provisioned its
  // certificates for extended reports: the report as outblob, and as auxblob the certificate
  // table (GHCB spec: guid 16 | offset u32 | length u32 entries, an all-zero terminator, then
  // the certificates): AMD's VCEK (DER) and the Milan ASK and ARK (PEM). No --collateral: the
  // chain from the evidence itself, ending in the ARK pinned in Chiron.
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  std::string report = read(Attestation() + "/sev-snp/attestation.bin");
  std::string vcek = read(Attestation() + "/sev-snp/vcek.testcer");
  std::string milan = read(Attestation() + "/sev-snp/milan.testcer");
  size_t split = milan.find("-----END CERTIFICATE-----") + 26;
  std::string ask = milan.substr(0, split), ark = milan.substr(split);
  ASSERT_NE(ark.find("BEGIN CERTIFICATE"), std::string::npos);
  auto le = [](std::string& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  };
  auto guid = [](const std::string& hex) {
    std::string bytes;
    for (size_t i = 0; i < hex.size(); i += 2) {
      bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return bytes;
  };
  std::string table;
  size_t offset = 4 * 24;
  for (const auto& [id, cert] : {std::pair{guid("63da758de6644564adc5f4b93be8accd"), vcek},
                                 {guid("4ab7b379bbac4fe4a02f05aef327c782"), ask},
                                 {guid("c0b406a4a80349529743" "3fb6014cd0ae"), ark}}) {
    table += id;
    le(table, offset, 4);
    le(table, cert.size(), 4);
    offset += cert.size();
  }
  table += std::string(24, '\0');
  table += vcek + ask + ark;
  std::string body;
  body.push_back(static_cast<char>(9));
  body += "sev_guest";
  le(body, report.size(), 4);
  body += report;
  le(body, table.size(), 4);
  body += table;
  std::string envelope = "CHEV";
  le(envelope, 1, 2);
  le(envelope, 3, 2);
  le(envelope, body.size(), 4);
  envelope += body;
  std::string path = dir_ + "/snp-evidence.bin";
  std::ofstream(path, std::ios::binary) << envelope;
  std::string report_data;
  for (size_t i = 0x50; i < 0x90; ++i) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", static_cast<uint8_t>(report[i]));
    report_data += hex;
  }
  auto result = Verify({path, "--policy", SnpPolicy(true), "--at", "2024-01-01", "--report-data",
                        report_data, "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(nlohmann::json::parse(result.out)["measurement"], kSnpMeasurement);

  // The host swaps in another certificate as the VCEK (AMD's ASK): the report's signature no
  // longer checks against the chain, and the command says so.
  std::string swapped = envelope;
  size_t at = swapped.find(vcek);
  ASSERT_NE(at, std::string::npos);
  std::string table_start = guid("63da758de6644564adc5f4b93be8accd");
  size_t entry = swapped.find(table_start);
  ASSERT_NE(entry, std::string::npos);
  // Point the VCEK entry at the ASK's bytes (offset and length of the second entry).
  swapped.replace(entry + 16, 8, swapped.substr(entry + 24 + 16, 8));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << swapped;
  auto refused = Verify({path, "--policy", SnpPolicy(true), "--at", "2024-01-01",
                         "--report-data", report_data});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("sev-snp"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace chiron::testing

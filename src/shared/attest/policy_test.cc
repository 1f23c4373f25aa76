#include "shared/attest/policy.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace chiron::attest {
namespace {

const std::string kM1(96, 'a');
const std::string kM2(96, 'b');
const std::string kRoot(64, 'c');

std::string SimPolicyJson() {
  return R"({
    "version": 1,
    "comment": "test policy",
    "allowed_platforms": ["sim", "tdx"],
    "allowed_measurements": {"sim": [")" +
         kM1 + R"("], "*": [")" + kM2 + R"("]},
    "allow_debug": true,
    "min_svn": 3,
    "trusted_sim_roots": [")" +
         kRoot + R"("],
    "tdx": {"mrtd": [")" +
         kM1 + R"("], "rtmr2": [")" + kM2 + R"("],
            "accepted_tcb_statuses": ["UpToDate", "SWHardeningNeeded"],
            "min_tcb_evaluation_data_number": 17},
    "sev_snp": {"measurement": [")" +
         kM2 + R"("], "min_snp_svn": 8, "min_microcode_svn": 209}
  })";
}

std::string ErrorOf(std::string_view json) {
  Result<Policy> p = Policy::FromJson(json, "test.json");
  EXPECT_FALSE(p.ok()) << json;
  if (p.ok()) return "";
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message().rfind("policy test.json: ", 0), 0u) << p.status().message();
  return p.status().message();
}

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(PolicyTest, ParsesEveryField) {
  Result<Policy> p = Policy::FromJson(SimPolicyJson(), "test.json");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->allowed_platforms, (std::vector<PlatformId>{PlatformId::kSim, PlatformId::kTdx}));
  EXPECT_TRUE(p->AllowsPlatform(PlatformId::kSim));
  EXPECT_FALSE(p->AllowsPlatform(PlatformId::kSevSnp));
  EXPECT_TRUE(p->allow_debug);
  EXPECT_EQ(p->min_svn, 3u);
  ASSERT_EQ(p->trusted_sim_roots.size(), 1u);
  EXPECT_EQ(p->trusted_sim_roots[0], Bytes(32, 0xcc));
  // Platform list plus the "*" list.
  EXPECT_EQ(p->MeasurementsFor(PlatformId::kSim),
            (std::vector<Bytes>{Bytes(48, 0xbb), Bytes(48, 0xaa)}));
  EXPECT_EQ(p->MeasurementsFor(PlatformId::kTdx), (std::vector<Bytes>{Bytes(48, 0xbb)}));
  EXPECT_EQ(p->tdx.mrtd, (std::vector<Bytes>{Bytes(48, 0xaa)}));
  EXPECT_TRUE(p->tdx.rtmr[0].empty());
  EXPECT_EQ(p->tdx.rtmr[2], (std::vector<Bytes>{Bytes(48, 0xbb)}));
  EXPECT_EQ(p->tdx.accepted_tcb_statuses,
            (std::vector<std::string>{"UpToDate", "SWHardeningNeeded"}));
  EXPECT_EQ(p->tdx.min_tcb_evaluation_data_number, 17u);
  EXPECT_EQ(p->sev_snp.measurement, (std::vector<Bytes>{Bytes(48, 0xbb)}));
  EXPECT_EQ(p->sev_snp.min_snp_svn, 8);
  EXPECT_EQ(p->sev_snp.min_microcode_svn, 209);
  EXPECT_FALSE(p->sev_snp.min_tee_svn.has_value());
}

TEST(PolicyTest, ToJsonRoundTrips) {
  Result<Policy> p = Policy::FromJson(SimPolicyJson());
  ASSERT_TRUE(p.ok());
  Result<Policy> again = Policy::FromJson(p->ToJson());
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << p->ToJson();
  EXPECT_EQ(again->ToJson(), p->ToJson());
  EXPECT_EQ(again->allowed_measurements, p->allowed_measurements);
  EXPECT_EQ(again->sev_snp.min_microcode_svn, 209);
}

TEST(PolicyTest, TdxTcbStatusUncheckedAndTrailingBytes) {
  auto parse = [](const std::string& tdx) {
    return Policy::FromJson(R"({"version": 1, "allowed_platforms": ["tdx"],
                                "allowed_measurements": [")" + std::string(kM1) +
                            R"("], "tdx": )" + tdx + "}");
  };
  Result<Policy> defaults = parse("{}");
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_FALSE(defaults->tdx.accept_unchecked_tcb_status);  // fail closed
  EXPECT_FALSE(defaults->tdx.reject_trailing_bytes);
  Result<Policy> accept =
      parse(R"({"tcb_status_unchecked": "accept", "reject_trailing_bytes": true})");
  ASSERT_TRUE(accept.ok()) << accept.status().ToString();
  EXPECT_TRUE(accept->tdx.accept_unchecked_tcb_status);
  EXPECT_TRUE(accept->tdx.reject_trailing_bytes);
  Result<Policy> again = Policy::FromJson(accept->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->tdx.accept_unchecked_tcb_status);
  EXPECT_TRUE(again->tdx.reject_trailing_bytes);
  Result<Policy> refuse = parse(R"({"tcb_status_unchecked": "refuse"})");
  ASSERT_TRUE(refuse.ok());
  EXPECT_FALSE(refuse->tdx.accept_unchecked_tcb_status);
  for (const char* bad :
       {R"({"tcb_status_unchecked": true})", R"({"tcb_status_unchecked": "yes"})"}) {
    Result<Policy> p = parse(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_TRUE(Has(p.status().message(),
                    "field 'tdx.tcb_status_unchecked' must be \"accept\" or \"refuse\" (the "
                    "default)"))
        << p.status().message();
  }
  EXPECT_FALSE(parse(R"({"reject_trailing_bytes": "yes"})").ok());
}

TEST(PolicyTest, GlobalMeasurementListAndDefaults) {
  Result<Policy> p = Policy::FromJson(R"({"version": 1, "allowed_platforms": ["tdx"],
                                          "allowed_measurements": [")" +
                                      kM1 + R"("]})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_FALSE(p->allow_debug);  // default: no debug
  EXPECT_EQ(p->min_svn, 0u);
  EXPECT_EQ(p->MeasurementsFor(PlatformId::kTdx), (std::vector<Bytes>{Bytes(48, 0xaa)}));
  EXPECT_TRUE(p->trusted_sim_roots.empty());
}

TEST(PolicyTest, RejectsWithActionableMessages) {
  EXPECT_TRUE(Has(ErrorOf("{"), "not valid JSON"));
  EXPECT_TRUE(Has(ErrorOf("[1]"), "top level must be a JSON object"));
  EXPECT_TRUE(Has(ErrorOf(R"({"allowed_platforms": []})"), "'version' is missing"));
  EXPECT_TRUE(
      Has(ErrorOf(R"({"version": 2, "allowed_platforms": []})"), "this build reads version 1"));
  EXPECT_TRUE(Has(ErrorOf(R"({"version": 1})"), "'allowed_platforms' is missing"));
  EXPECT_TRUE(
      Has(ErrorOf(R"({"version": 1, "allowed_platforms": ["sgx"]})"), "unknown platform 'sgx'"));
  // A typo must not silently drop a constraint.
  std::string typo = ErrorOf(R"({"version": 1, "allowed_platforms": [], "min_sv": 4})");
  EXPECT_TRUE(Has(typo, "unknown field 'min_sv'")) << typo;
  EXPECT_TRUE(Has(typo, "min_svn")) << typo;
  EXPECT_TRUE(Has(ErrorOf(R"({"version": 1, "allowed_platforms": [], "tdx": {"mrdt": []}})"),
                  "unknown field 'tdx.mrdt'"));
  EXPECT_TRUE(Has(ErrorOf(R"({"version": 1, "allowed_platforms": [], "min_svn": -1})"),
                  "field 'min_svn' must be an unsigned integer"));
  EXPECT_TRUE(Has(ErrorOf(R"({"version": 1, "allowed_platforms": [], "min_svn": "2"})"),
                  "field 'min_svn' must be an unsigned integer, e.g. \"min_svn\": 1"));
  EXPECT_TRUE(Has(ErrorOf(R"({"version": 1, "allowed_platforms": [], "allow_debug": 0})"),
                  "field 'allow_debug' must be true or false"));
  EXPECT_TRUE(Has(ErrorOf(R"({"version": 1, "allowed_platforms": [],
                              "trusted_sim_roots": ["abcd"]})"),
                  "write 64 hex digits"));
  EXPECT_TRUE(Has(ErrorOf(R"({"version": 1, "allowed_platforms": [],
                              "allowed_measurements": {"sgx": []}})"),
                  "has key 'sgx'"));
  EXPECT_TRUE(Has(ErrorOf(R"({"version": 1, "allowed_platforms": [],
                              "sev_snp": {"min_tee_svn": 256}})"),
                  "must be at most 255"));
  EXPECT_TRUE(Has(ErrorOf(R"({"version": 1, "version": 1, "allowed_platforms": []})"),
                  "field 'version' appears twice"));
  EXPECT_TRUE(Has(ErrorOf(R"({"version": 1, "allowed_platforms": [], "comment":
                              [[[[[[[[[[1]]]]]]]]]]})"),
                  "nesting deeper"));
  // Every message points to the format documentation.
  EXPECT_TRUE(Has(ErrorOf(R"({"version": 1})"), "docs/formats/policy.md"));
}

TEST(PolicyTest, RejectsPoliciesThatCanNeverAccept) {
  // sim allowed without any trusted root: say what to add.
  std::string no_root = ErrorOf(R"({"version": 1, "allowed_platforms": ["sim"],
                                    "allowed_measurements": [")" +
                                kM1 + R"("]})");
  EXPECT_TRUE(Has(no_root, "trusted_sim_roots is empty")) << no_root;
  // A platform allowed with no measurement for it.
  std::string no_measurement = ErrorOf(R"({"version": 1, "allowed_platforms": ["tdx"],
      "allowed_measurements": {"sev-snp": [")" +
                                       kM1 + R"("]}})");
  EXPECT_TRUE(Has(no_measurement,
                  "platform 'tdx' is allowed but allowed_measurements lists no "
                  "measurement for it"))
      << no_measurement;
}

TEST(PolicyTest, ValidateChecksPoliciesBuiltInCode) {
  Policy p;
  EXPECT_TRUE(p.Validate().ok());  // accepts nothing, but is consistent
  p.allowed_platforms = {PlatformId::kSim};
  p.allowed_measurements["sim"] = {Bytes(48, 1)};
  p.trusted_sim_roots = {Bytes(31, 0)};
  EXPECT_TRUE(Has(p.Validate().message(), "trusted_sim_roots holds a 31-byte key"));
  p.trusted_sim_roots = {Bytes(32, 0)};
  EXPECT_TRUE(p.Validate().ok());
  p.allowed_measurements["sim"].push_back(Bytes(32, 0));
  EXPECT_TRUE(Has(p.Validate().message(), "32-byte value"));
}

TEST(PolicyTest, LoadFile) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/chiron_policy_test.json";
  {
    std::ofstream out(path);
    out << SimPolicyJson();
  }
  Result<Policy> p = Policy::LoadFile(path);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->min_svn, 3u);
  std::remove(path.c_str());

  Result<Policy> missing = Policy::LoadFile(dir + "/does-not-exist.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Has(missing.status().message(), "cannot read policy file"));

  Result<Policy> toml = Policy::LoadFile(dir + "/policy.toml");
  ASSERT_FALSE(toml.ok());
  EXPECT_TRUE(Has(toml.status().message(), "TOML policies are not supported"));
}

}  // namespace
}  // namespace chiron::attest

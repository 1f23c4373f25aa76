#include "runtime/tee/sim_platform.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/tee/platform.h"
#include "shared/attest/verifier.h"

namespace chiron::tee {
namespace {

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class SimPlatformTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/chiron_sim_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Write("chirond", "chirond binary v1");
    Write("chiron-worker", "launcher binary v1");
    Write("sandbox.json", "{\"syscalls\": []}");
    options_.name = "sim";
    options_.state_dir = dir_ + "/state";
    options_.measured_components = {{"chirond", dir_ + "/chirond"},
                                    {"chiron-worker", dir_ + "/chiron-worker"},
                                    {"sandbox-policy", dir_ + "/sandbox.json"}};
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& name, const std::string& contents) {
    std::ofstream(dir_ + "/" + name, std::ios::binary | std::ios::trunc) << contents;
  }

  std::unique_ptr<Platform> Create() {
    Result<std::unique_ptr<Platform>> p = CreatePlatform(options_);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(*p) : nullptr;
  }

  static Bytes RootKeyOf(ByteSpan evidence) {
    attest::Evidence e = *attest::ParseEvidence(evidence);
    return attest::ParseSimBody(e.payload)->root_public_key;
  }

  std::string dir_;
  PlatformOptions options_;
};

TEST_F(SimPlatformTest, EvidenceVerifiesUnderAPolicyListingRootAndMeasurement) {
  ::testing::internal::CaptureStderr();
  std::unique_ptr<Platform> platform = Create();
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_NE(platform, nullptr);
  EXPECT_TRUE(Has(log, "INSECURE")) << log;
  EXPECT_EQ(platform->name(), "sim");
  EXPECT_TRUE(platform->insecure());
  EXPECT_TRUE(Has(platform->Describe(), "INSECURE"));
  ASSERT_EQ(platform->measurement().size(), 48u);

  const Bytes report_data(kReportDataSize, 0x5a);
  Result<Bytes> evidence = platform->GetEvidence(report_data);
  ASSERT_TRUE(evidence.ok()) << evidence.status().ToString();
  const Bytes root = RootKeyOf(*evidence);
  EXPECT_TRUE(Has(log, HexEncode(root))) << "the log must show the root key to trust";
  EXPECT_TRUE(Has(platform->Describe(), HexEncode(root)));

  attest::Policy policy;
  policy.allowed_platforms = {attest::PlatformId::kSim};
  policy.allowed_measurements["sim"] = {platform->measurement()};
  policy.trusted_sim_roots = {root};
  Result<attest::Verifier> verifier = attest::Verifier::Create(policy);
  ASSERT_TRUE(verifier.ok());
  Result<attest::Claims> claims = verifier->Verify(*evidence, report_data);
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_TRUE(claims->simulated);
  EXPECT_EQ(claims->measurement, platform->measurement());
  EXPECT_FALSE(claims->debug);

  EXPECT_EQ(platform->GetEvidence(Bytes(63, 0)).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SimPlatformTest, DebugAndSvnOptionsReachTheEvidence) {
  options_.sim_debug = true;
  options_.sim_svn = 9;
  std::unique_ptr<Platform> platform = Create();
  ASSERT_NE(platform, nullptr);
  Bytes evidence = *platform->GetEvidence(Bytes(64, 1));
  attest::SimEvidenceBody body = *attest::ParseSimBody(attest::ParseEvidence(evidence)->payload);
  EXPECT_TRUE(body.debug);
  EXPECT_EQ(body.svn, 9u);
}

TEST_F(SimPlatformTest, StatePersistsAcrossRestartsWithPrivateModes) {
  std::unique_ptr<Platform> first = Create();
  ASSERT_NE(first, nullptr);
  const Bytes root = RootKeyOf(*first->GetEvidence(Bytes(64, 0)));
  SecretBytes key = *first->DeriveSealingKey("store");
  first.reset();

  for (const char* file : {kSimRootKeyFile, kSimSealingSecretFile}) {
    struct stat st;
    ASSERT_EQ(::stat((options_.state_dir + "/" + file).c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << file;
  }

  std::unique_ptr<Platform> second = Create();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(RootKeyOf(*second->GetEvidence(Bytes(64, 0))), root);
  SecretBytes again = *second->DeriveSealingKey("store");
  EXPECT_EQ(Bytes(again.span().begin(), again.span().end()),
            Bytes(key.span().begin(), key.span().end()));
}

TEST_F(SimPlatformTest, SealingKeysAreBoundToPurposeAndMeasurement) {
  std::unique_ptr<Platform> platform = Create();
  ASSERT_NE(platform, nullptr);
  SecretBytes store = *platform->DeriveSealingKey("store");
  SecretBytes audit = *platform->DeriveSealingKey("audit");
  ASSERT_EQ(store.size(), kSealingKeySize);
  EXPECT_FALSE(ConstantTimeEqual(store.span(), audit.span()));
  EXPECT_EQ(platform->DeriveSealingKey("").status().code(), StatusCode::kInvalidArgument);

  // A different launcher gives a different measurement, hence a different sealing key: a
  // swapped launcher cannot open what the real runtime sealed.
  Write("chiron-worker", "launcher binary v2 (no sandbox)");
  std::unique_ptr<Platform> swapped = Create();
  ASSERT_NE(swapped, nullptr);
  EXPECT_NE(swapped->measurement(), platform->measurement());
  SecretBytes swapped_store = *swapped->DeriveSealingKey("store");
  EXPECT_FALSE(ConstantTimeEqual(store.span(), swapped_store.span()));
}

TEST_F(SimPlatformTest, MeasurementCoversEveryComponentAndIgnoresOrder) {
  Result<Bytes> base = MeasureComponents(options_.measured_components);
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  std::vector<MeasuredComponent> reversed(options_.measured_components.rbegin(),
                                          options_.measured_components.rend());
  EXPECT_EQ(*MeasureComponents(reversed), *base);

  const std::pair<const char*, const char*> files[] = {{"chirond", "chirond binary v1"},
                                                       {"chiron-worker", "launcher binary v1"},
                                                       {"sandbox.json", "{\"syscalls\": []}"}};
  for (const auto& [name, original] : files) {
    Write(name, "tampered");
    EXPECT_NE(*MeasureComponents(options_.measured_components), *base) << name;
    Write(name, original);
    EXPECT_EQ(*MeasureComponents(options_.measured_components), *base) << name;
  }
  // Renaming a component changes the measurement too (names are measured).
  std::vector<MeasuredComponent> renamed = options_.measured_components;
  renamed[0].name = "chirond-old";
  EXPECT_NE(*MeasureComponents(renamed), *MeasureComponents(options_.measured_components));
}

TEST_F(SimPlatformTest, MeasurementRejectsBadComponentLists) {
  EXPECT_TRUE(Has(MeasureComponents({}).status().message(), "no measured components"));
  EXPECT_TRUE(Has(
      MeasureComponents({{"a", dir_ + "/chirond"}, {"a", dir_ + "/chirond"}}).status().message(),
      "'a' appears twice"));
  EXPECT_TRUE(Has(MeasureComponents({{"", dir_ + "/chirond"}}).status().message(), "no name"));
  Result<Bytes> missing = MeasureComponents({{"chirond", dir_ + "/nope"}});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Has(missing.status().message(), "component 'chirond'"));
}

TEST_F(SimPlatformTest, CorruptStateIsReportedNotReplaced) {
  ASSERT_NE(Create(), nullptr);
  { std::ofstream(options_.state_dir + "/" + kSimSealingSecretFile, std::ios::trunc) << "short"; }
  Result<std::unique_ptr<Platform>> p = CreatePlatform(options_);
  EXPECT_EQ(p.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Has(p.status().message(), "corrupt"));
  { std::ofstream(options_.state_dir + "/" + kSimRootKeyFile, std::ios::trunc) << "garbage"; }
  p = CreatePlatform(options_);
  EXPECT_EQ(p.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Has(p.status().message(), "not an Ed25519 PKCS#8 key"));
}

TEST_F(SimPlatformTest, OptionErrors) {
  PlatformOptions no_dir = options_;
  no_dir.state_dir.clear();
  EXPECT_TRUE(Has(CreatePlatform(no_dir).status().message(), "state directory is required"));
  PlatformOptions no_components = options_;
  no_components.measured_components.clear();
  EXPECT_FALSE(CreatePlatform(no_components).ok());
  PlatformOptions unknown = options_;
  unknown.name = "sgx";
  EXPECT_TRUE(Has(CreatePlatform(unknown).status().message(), "unknown TEE platform 'sgx'"));
}

}  // namespace
}  // namespace chiron::tee

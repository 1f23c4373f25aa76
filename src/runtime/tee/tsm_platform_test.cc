#include "runtime/tee/tsm_platform.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "shared/attest/evidence.h"

namespace chiron::tee {
namespace {

namespace fs = std::filesystem;

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A fake configfs-tsm kernel over a temporary directory. mkdir creates the attribute files the
// way configfs does; a write to inblob bumps generation and produces an outblob over the data.
// All reads and writes go through the real POSIX TsmFiles, so that code is exercised too.
class FakeTsmKernel : public TsmFiles {
 public:
  std::string provider = "tdx_guest";
  std::string auxblob = "";      // empty: no auxblob file at all
  bool race_on_outblob = false;  // another writer strikes while outblob is read
  bool fail_mkdir = false;
  int entries_created = 0;
  int entries_removed = 0;
  std::string last_entry;

  Result<bool> IsDirectory(const std::string& path) override {
    return TsmFiles::Posix()->IsDirectory(path);
  }
  Status MakeDirectory(const std::string& path) override {
    if (fail_mkdir) return PermissionDeniedError("configfs-tsm: mkdir refused");
    CHIRON_RETURN_IF_ERROR(TsmFiles::Posix()->MakeDirectory(path));
    ++entries_created;
    last_entry = path;
    WriteText(path + "/provider", provider + "\n");
    WriteText(path + "/generation", "0\n");
    WriteText(path + "/inblob", "");
    WriteText(path + "/outblob", "");
    if (!auxblob.empty()) WriteText(path + "/auxblob", auxblob);
    return Status::Ok();
  }
  Status RemoveDirectory(const std::string& path) override {
    ++entries_removed;
    std::error_code ec;
    fs::remove_all(path, ec);
    return Status::Ok();
  }
  Status WriteAttribute(const std::string& path, ByteSpan data) override {
    CHIRON_RETURN_IF_ERROR(TsmFiles::Posix()->WriteAttribute(path, data));
    const std::string entry = fs::path(path).parent_path();
    if (fs::path(path).filename() == "inblob") {
      Bump(entry);
      WriteText(entry + "/outblob", "QUOTE:" + ToString(data));
    }
    return Status::Ok();
  }
  Result<Bytes> ReadAttribute(const std::string& path, size_t max_size) override {
    if (race_on_outblob && fs::path(path).filename() == "outblob") {
      Bump(fs::path(path).parent_path());  // a concurrent inblob write by someone else
    }
    return TsmFiles::Posix()->ReadAttribute(path, max_size);
  }

 private:
  static void Bump(const std::string& entry) {
    const uint64_t g = std::stoull(ReadText(entry + "/generation"));
    WriteText(entry + "/generation", std::to_string(g + 1) + "\n");
  }
};

class TsmPlatformTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/chiron_tsm_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/tsm/report");
    WriteText(dir_ + "/chirond", "chirond");
    options_.name = "tsm";
    options_.tsm_root = dir_ + "/tsm/report";
    options_.measured_components = {{"chirond", dir_ + "/chirond"}};
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Platform> Create() {
    Result<std::unique_ptr<Platform>> p = CreateTsmPlatform(options_, &kernel_);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(*p) : nullptr;
  }

  std::string dir_;
  PlatformOptions options_;
  FakeTsmKernel kernel_;
  const Bytes report_data_ = Bytes(kReportDataSize, 0x42);
};

TEST_F(TsmPlatformTest, ProducesTdxEvidenceFromOutblob) {
  std::unique_ptr<Platform> platform = Create();
  ASSERT_NE(platform, nullptr);
  EXPECT_EQ(platform->name(), "tsm");
  EXPECT_FALSE(platform->insecure());
  EXPECT_EQ(platform->measurement(), *MeasureComponents(options_.measured_components));

  Result<Bytes> wire = platform->GetEvidence(report_data_);
  ASSERT_TRUE(wire.ok()) << wire.status().ToString();
  Result<attest::Evidence> evidence = attest::ParseEvidence(*wire);
  ASSERT_TRUE(evidence.ok());
  EXPECT_EQ(evidence->platform, attest::PlatformId::kTdx);
  Result<attest::TsmEvidenceBody> body =
      attest::ParseTsmBody(attest::PlatformId::kTdx, evidence->payload);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(body->provider, "tdx_guest");
  EXPECT_EQ(ToString(body->outblob), "QUOTE:" + ToString(report_data_));
  EXPECT_TRUE(body->auxblob.empty());

  // The entry was private to this call (named after our pid) and is removed afterwards.
  EXPECT_EQ(kernel_.entries_created, 1);
  EXPECT_EQ(kernel_.entries_removed, 1);
  EXPECT_TRUE(Has(kernel_.last_entry, "/chiron-" + std::to_string(::getpid()) + "-"));
  EXPECT_FALSE(fs::exists(kernel_.last_entry));

  // A second report uses a fresh entry.
  ASSERT_TRUE(platform->GetEvidence(report_data_).ok());
  EXPECT_EQ(kernel_.entries_created, 2);
}

TEST_F(TsmPlatformTest, SevSnpWithAuxblob) {
  kernel_.provider = "sev_guest";
  kernel_.auxblob = "CERT-TABLE";
  std::unique_ptr<Platform> platform = Create();
  ASSERT_NE(platform, nullptr);
  Result<Bytes> wire = platform->GetEvidence(report_data_);
  ASSERT_TRUE(wire.ok()) << wire.status().ToString();
  attest::Evidence evidence = *attest::ParseEvidence(*wire);
  EXPECT_EQ(evidence.platform, attest::PlatformId::kSevSnp);
  attest::TsmEvidenceBody body = *attest::ParseTsmBody(evidence.platform, evidence.payload);
  EXPECT_EQ(body.provider, "sev_guest");
  EXPECT_EQ(ToString(body.auxblob), "CERT-TABLE");
}

TEST_F(TsmPlatformTest, ConcurrentWriterIsDetectedThroughGeneration) {
  kernel_.race_on_outblob = true;
  std::unique_ptr<Platform> platform = Create();
  ASSERT_NE(platform, nullptr);
  Result<Bytes> wire = platform->GetEvidence(report_data_);
  ASSERT_FALSE(wire.ok());
  EXPECT_EQ(wire.status().code(), StatusCode::kAborted);
  EXPECT_TRUE(Has(wire.status().message(), "written concurrently by another process"));
  EXPECT_TRUE(Has(wire.status().message(), "generation 0 before our write, 2 after"));
  EXPECT_EQ(kernel_.entries_removed, 1);  // cleaned up on failure too
  // Once the other writer is gone, a retry succeeds.
  kernel_.race_on_outblob = false;
  EXPECT_TRUE(platform->GetEvidence(report_data_).ok());
}

TEST_F(TsmPlatformTest, RejectsUnknownProviderAndBadKernelOutput) {
  kernel_.provider = "arm_cca_guest";
  std::unique_ptr<Platform> platform = Create();
  ASSERT_NE(platform, nullptr);
  Result<Bytes> wire = platform->GetEvidence(report_data_);
  EXPECT_EQ(wire.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Has(wire.status().message(), "unknown configfs-tsm provider 'arm_cca_guest'"));
}

TEST_F(TsmPlatformTest, GarbledGenerationIsRefused) {
  // A kernel (or fake) whose generation file is not a number.
  class GarbledKernel : public FakeTsmKernel {
   public:
    Status MakeDirectory(const std::string& path) override {
      CHIRON_RETURN_IF_ERROR(FakeTsmKernel::MakeDirectory(path));
      WriteText(path + "/generation", "seven\n");
      return Status::Ok();
    }
  } garbled;
  Result<std::unique_ptr<Platform>> platform = CreateTsmPlatform(options_, &garbled);
  ASSERT_TRUE(platform.ok());
  Result<Bytes> wire = (*platform)->GetEvidence(report_data_);
  EXPECT_TRUE(Has(wire.status().message(), "does not hold a generation number"));
}

TEST_F(TsmPlatformTest, ErrorsAndUnimplementedSealing) {
  std::unique_ptr<Platform> platform = Create();
  ASSERT_NE(platform, nullptr);
  EXPECT_EQ(platform->GetEvidence(Bytes(65, 0)).status().code(), StatusCode::kInvalidArgument);
  Result<SecretBytes> key = platform->DeriveSealingKey("store");
  EXPECT_EQ(key.status().code(), StatusCode::kUnimplemented);
  EXPECT_TRUE(Has(key.status().message(), "docs/distributed.md"));

  kernel_.fail_mkdir = true;
  EXPECT_EQ(platform->GetEvidence(report_data_).status().code(), StatusCode::kPermissionDenied);

  PlatformOptions missing = options_;
  missing.tsm_root = dir_ + "/no/such/dir";
  Result<std::unique_ptr<Platform>> none = CreateTsmPlatform(missing, &kernel_);
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Has(none.status().message(), "not a TDX or SEV-SNP guest"));
  // The public factory routes "tsm" to the real configfs; on this machine it is absent.
  PlatformOptions real = options_;
  real.tsm_root = dir_ + "/absent";
  EXPECT_EQ(CreatePlatform(real).status().code(), StatusCode::kUnavailable);
}

TEST(PosixTsmFilesTest, ReadsToEofWithLimitAndWritesOnce) {
  std::string tmpl = ::testing::TempDir() + "/chiron_tsmfiles_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl;
  TsmFiles* files = TsmFiles::Posix();
  WriteText(dir + "/outblob", std::string(10000, 'q'));
  Result<Bytes> read = files->ReadAttribute(dir + "/outblob", 10000);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 10000u);
  EXPECT_EQ(files->ReadAttribute(dir + "/outblob", 9999).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(files->ReadAttribute(dir + "/auxblob", 10).status().code(), StatusCode::kNotFound);
  // Writes never create attributes: configfs provides them.
  EXPECT_EQ(files->WriteAttribute(dir + "/inblob", Bytes{1}).code(), StatusCode::kNotFound);
  WriteText(dir + "/inblob", "");
  ASSERT_TRUE(files->WriteAttribute(dir + "/inblob", Bytes{1, 2, 3}).ok());
  EXPECT_EQ(ReadText(dir + "/inblob"), std::string("\x01\x02\x03", 3));
  EXPECT_TRUE(*files->IsDirectory(dir));
  EXPECT_FALSE(*files->IsDirectory(dir + "/inblob"));
  EXPECT_FALSE(*files->IsDirectory(dir + "/absent"));
  ASSERT_TRUE(files->MakeDirectory(dir + "/entry").ok());
  EXPECT_TRUE(files->RemoveDirectory(dir + "/entry").ok());
  EXPECT_TRUE(files->RemoveDirectory(dir + "/entry").ok());  // already gone: fine
  fs::remove_all(dir);
}

}  // namespace
}  // namespace chiron::tee

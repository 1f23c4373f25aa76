#include "client/cli/cli_common.h"

#include <unistd.h>

#include <cstdio>

#include "client/evidence_file.h"
#include "shared/attest/policy.h"

namespace chiron::client {

std::string GlobalOptions::ProfileDir() const {
  return profile_dir.empty() ? Profile::DefaultDirectory(operator_mode) : profile_dir;
}

namespace {
std::string& MutableProgramName() {
  static std::string* const name = new std::string("chiron");
  return *name;
}
}  // namespace

const char* ProgramName() { return MutableProgramName().c_str(); }
void SetProgramName(const std::string& name) { MutableProgramName() = name; }

int Fail(const Status& status) {
  std::fprintf(stderr, "%s: %s\n", ProgramName(), status.message().c_str());
  switch (status.code()) {
    case StatusCode::kUnauthenticated:
    case StatusCode::kDataLoss: return kExitVerificationFailed;
    case StatusCode::kPermissionDenied: return kExitRefused;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded: return kExitUnreachable;
    default: return kExitError;
  }
}

int FailVerification(const Status& status) {
  std::fprintf(stderr, "%s: verification FAILED: %s\n", ProgramName(), status.message().c_str());
  return kExitVerificationFailed;
}

int FailConnect(const Status& status) {
  if (status.code() == StatusCode::kUnauthenticated) return FailVerification(status);
  return Fail(status);
}

Result<std::shared_ptr<const attest::Verifier>> LoadVerifier(const std::string& policy_path) {
  auto policy = attest::Policy::LoadFile(policy_path);
  if (!policy.ok() && policy.status().code() == StatusCode::kNotFound) {
    return NotFoundError(
        "the attestation policy file " + policy_path +
        " does not exist: pass --policy FILE with the policy your server's operator published "
        "(for a sim server, the file `chirond --write-sim-policy` wrote); `register --policy "
        "FILE` saves it in the profile (docs/formats/policy.md)");
  }
  if (!policy.ok()) return policy.status();
  auto verifier = attest::Verifier::Create(std::move(*policy), LivePlatformVerifiers());
  if (!verifier.ok()) return verifier.status().WithContext("policy " + policy_path);
  return std::shared_ptr<const attest::Verifier>(
      std::make_shared<attest::Verifier>(std::move(*verifier)));
}

Result<Session> OpenSession(const GlobalOptions& global) {
  CHIRON_ASSIGN_OR_RETURN(Profile profile, Profile::Load(global.ProfileDir()));
  std::string server = !global.server.empty() ? global.server : profile.settings().server;
  std::string policy = !global.policy.empty() ? global.policy : profile.settings().policy_path;
  if (server.empty()) server = "127.0.0.1:7443";
  if (policy.empty()) {
    return InvalidArgumentError(
        "no attestation policy: pass --policy FILE, or save one in the profile with `" +
        global.program +
        " register --policy FILE` (the policy comes from the server's operator; for a sim "
        "server, the file `chirond --write-sim-policy` wrote; docs/formats/policy.md)");
  }
  return Session{std::move(profile), std::move(server), std::move(policy)};
}

Result<std::unique_ptr<Connection>> ConnectSession(const Session& session,
                                                   std::chrono::milliseconds timeout) {
  CHIRON_ASSIGN_OR_RETURN(auto verifier, LoadVerifier(session.policy_path));
  CHIRON_ASSIGN_OR_RETURN(auto identity, session.profile.TlsIdentity());
  ConnectOptions options;
  options.server = session.server;
  options.verifier = std::move(verifier);
  options.identity = std::move(identity);
  options.timeout = timeout;
  CHIRON_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, Connection::Connect(options));
  if (connection->server_insecure()) {
    std::fprintf(stderr,
                 "%s: WARNING: %s runs on the sim platform, a software simulation with no "
                 "hardware protection. Do not send real data to it.\n",
                 ProgramName(), session.server.c_str());
  }
  return connection;
}

std::string FormatBytes(uint64_t bytes) {
  char text[32];
  if (bytes < 1000) {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1000 * 1000) {
    std::snprintf(text, sizeof text, "%.1f kB", bytes / 1e3);
  } else if (bytes < 1000ull * 1000 * 1000) {
    std::snprintf(text, sizeof text, "%.1f MB", bytes / 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.2f GB", bytes / 1e9);
  }
  return text;
}

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (drawn_) std::fputc('\n', stderr);
}

void ProgressBar::Update(uint64_t done_bytes, uint64_t total_bytes, uint64_t base_bytes) {
  if (!enabled_ || total_bytes == 0) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && done_bytes < total_bytes && now - last_draw_ < std::chrono::milliseconds(100)) {
    return;
  }
  last_draw_ = now;
  double seconds = std::chrono::duration<double>(now - start_).count();
  double rate = seconds > 0 && done_bytes > base_bytes ? (done_bytes - base_bytes) / seconds : 0;
  double fraction = static_cast<double>(done_bytes) / static_cast<double>(total_bytes);
  constexpr int kWidth = 30;
  int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  char eta[32] = "--:--";
  if (rate > 0) {
    uint64_t left = static_cast<uint64_t>((total_bytes - done_bytes) / rate);
    std::snprintf(eta, sizeof eta, "%llu:%02llu", static_cast<unsigned long long>(left / 60),
                  static_cast<unsigned long long>(left % 60));
  }
  std::fprintf(stderr, "\r%s [%s] %3d%% %s / %s  %s/s  ETA %s  ", label_.c_str(), bar.c_str(),
               static_cast<int>(fraction * 100), FormatBytes(done_bytes).c_str(),
               FormatBytes(total_bytes).c_str(), FormatBytes(static_cast<uint64_t>(rate)).c_str(),
               eta);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace chiron::client

// `chiron audit [--verify] [--json]`: the principal's own audit records, verified end to end.
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "chiron/v1/audit.grpc.pb.h"
#include "client/cli/cli_common.h"
#include "shared/audit/chain.h"

namespace chiron::client {
namespace {

struct AuditArgs {
  bool verify = false;
  bool json = false;
};


std::string FormatTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

int RunAudit(const GlobalOptions& global, const AuditArgs& args) {
  auto session = OpenSession(global);
  if (!session.ok()) return Fail(session.status());
  auto connection = ConnectSession(*session);
  if (!connection.ok()) return FailConnect(connection.status());
  auto records = FetchAuditRecords(**connection);
  if (!records.ok()) return Fail(records.status());

  std::optional<audit::AuditHead> previous;
  std::optional<audit::AuditHead> head;
  if (args.verify) {
    auto loaded = session->profile.LoadAuditHead(session->server);
    if (!loaded.ok()) return Fail(loaded.status());
    previous = *loaded;
    Status verified = audit::VerifyAuditChain(*records, previous, session->profile.principal_id());
    if (!verified.ok()) return FailVerification(verified);
    head = audit::ChainHead(*records, previous);
    if (head) {
      Status saved = session->profile.SaveAuditHead(session->server, *head);
      if (!saved.ok()) return Fail(saved.WithContext("saving the verified audit head"));
    }
  }

  if (args.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const audit::AuditRecord& r : *records) {
      list.push_back({{"sequence", r.sequence},
                      {"time_unix", r.time_unix},
                      {"principal_id", r.principal_id},
                      {"event", r.event},
                      {"subject", r.subject},
                      {"previous_hash", HexEncode(r.previous_hash)},
                      {"hash", HexEncode(r.hash)}});
    }
    nlohmann::json out = {{"records", list}, {"verified", args.verify}};
    if (head) out["head"] = {{"sequence", head->sequence}, {"hash", HexEncode(head->hash)}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf("%-6s %-20s %-20s %s\n", "SEQ", "TIME (UTC)", "EVENT", "SUBJECT");
    for (const audit::AuditRecord& r : *records) {
      std::printf("%-6llu %-20s %-20s %s\n", static_cast<unsigned long long>(r.sequence),
                  FormatTime(r.time_unix).c_str(), r.event.c_str(), r.subject.c_str());
    }
    if (args.verify) {
      std::printf("audit chain verified: %zu records", records->size());
      if (head) {
        std::printf(", head %llu %s", static_cast<unsigned long long>(head->sequence),
                    HexEncode(head->hash).substr(0, 16).c_str());
      }
      if (previous) {
        std::printf(" (extends the head %llu seen before)",
                    static_cast<unsigned long long>(previous->sequence));
      }
      std::printf("\n");
    } else {
      std::printf("(not verified: pass --verify to check the hash chain end to end)\n");
    }
  }
  return kExitOk;
}

}  // namespace

void AddAuditCommands(CLI::App& app, GlobalOptions& global, CommandAction& action) {
  auto args = std::make_shared<AuditArgs>();
  auto* audit_cmd = app.add_subcommand("audit", "Show your audit records; --verify checks them");
  audit_cmd->footer(
      "--verify checks the hash chain from record 1 and that it extends the head verified last "
      "time (kept in the profile), so altered, removed, reordered, truncated or rolled-back "
      "records fail with exit code 2.\n\nExample:\n  " +
      global.program + " audit --verify");
  audit_cmd->add_flag("--verify", args->verify, "verify the hash chain end to end");
  audit_cmd->add_flag("--json", args->json, "print as JSON");
  audit_cmd->callback(
      [&global, &action, args] { action = [&global, args] { return RunAudit(global, *args); }; });
}

Result<std::vector<audit::AuditRecord>> FetchAuditRecords(Connection& connection) {
  auto stub = v1::Audit::NewStub(connection.channel());
  std::vector<audit::AuditRecord> records;
  uint64_t from = 1;
  for (;;) {
    v1::ListAuditRequest request;
    request.set_from_sequence(from);
    v1::ListAuditResponse response;
    auto context = connection.NewContext();
    CHIRON_RETURN_IF_ERROR(FromGrpc(stub->List(context.get(), request, &response), "Audit.List"));
    if (response.records().empty()) break;
    for (const v1::AuditRecord& in : response.records()) {
      // Bound what a hostile server can make the client hold or print (chain.h limits).
      if (in.principal_id().size() > audit::kMaxPrincipalIdSize ||
          in.event().size() > audit::kMaxEventSize ||
          in.subject().size() > audit::kMaxSubjectSize) {
        return DataLossError("audit record " + std::to_string(in.sequence()) +
                             " has an oversized field; the server is not behaving as a Chiron "
                             "runtime must");
      }
      audit::AuditRecord record;
      record.sequence = in.sequence();
      record.time_unix = in.time_unix();
      record.principal_id = in.principal_id();
      record.event = in.event();
      record.subject = in.subject();
      record.previous_hash = ToBytes(in.previous_hash());
      record.hash = ToBytes(in.hash());
      records.push_back(std::move(record));
    }
    uint64_t last = records.back().sequence;
    if (last < from) {
      return DataLossError("Audit.List answered record " + std::to_string(last) +
                           " when asked for records from " + std::to_string(from));
    }
    from = last + 1;
    if (records.size() > (size_t{1} << 24)) {
      return ResourceExhaustedError("more than 16M audit records; refusing to hold more");
    }
  }
  return records;
}

}  // namespace chiron::client

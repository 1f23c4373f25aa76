// Store: an owner's grants of Predict on its models to other principals. See store.h.
//
// Table grants(model_id, grantee_id, owner_id, sealed_record): the ids are plaintext (the host
// sees who may query which model, as it sees who owns what); the record (budget, used, times) is
// sealed under the catalog key with the row "model_id/grantee_id/owner_id" bound into the AAD.
// A row the host inserts, edits or copies from another (model, grantee, owner) fails to open, so
// it grants nothing; deleting a row only takes access away.
#include "runtime/store/store_impl.h"

namespace chiron::store {
namespace {

constexpr char kGrantsSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS grants(
  model_id TEXT NOT NULL,
  grantee_id TEXT NOT NULL REFERENCES principals(id),
  owner_id TEXT NOT NULL REFERENCES principals(id),
  sealed_record BLOB NOT NULL,
  PRIMARY KEY(model_id, grantee_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS grants_by_grantee ON grants(grantee_id);
)sql";

constexpr char kRecordPurpose[] = "grants.record";
constexpr uint8_t kRecordVersion = 1;

std::string GrantRowName(const ModelGrant& grant) {
  return grant.model_id + "/" + grant.grantee_id + "/" + grant.owner_id;
}

// version u8 | budget u64le | used u64le | created i64le | updated i64le
Bytes EncodeRecord(const ModelGrant& grant) {
  Bytes out;
  out.push_back(kRecordVersion);
  AppendU64Le(out, grant.budget);
  AppendU64Le(out, grant.used);
  AppendU64Le(out, static_cast<uint64_t>(grant.created_unix));
  AppendU64Le(out, static_cast<uint64_t>(grant.updated_unix));
  return out;
}

Status DecodeRecord(ByteSpan bytes, ModelGrant& grant) {
  ByteReader reader(bytes);
  CHIRON_ASSIGN_OR_RETURN(uint8_t version, reader.U8("grant record version"));
  if (version != kRecordVersion) {
    return DataLossError("store: grant record has unknown version " + std::to_string(version));
  }
  CHIRON_ASSIGN_OR_RETURN(grant.budget, reader.U64Le("grant budget"));
  CHIRON_ASSIGN_OR_RETURN(grant.used, reader.U64Le("grant usage"));
  CHIRON_ASSIGN_OR_RETURN(uint64_t created, reader.U64Le("grant creation time"));
  CHIRON_ASSIGN_OR_RETURN(uint64_t updated, reader.U64Le("grant update time"));
  grant.created_unix = static_cast<int64_t>(created);
  grant.updated_unix = static_cast<int64_t>(updated);
  if (!reader.empty()) return DataLossError("store: grant record has trailing bytes");
  return Status::Ok();
}

Status CheckIds(const std::string& model_id, const std::string& grantee_id) {
  if (!IsValidId(model_id) || !IsValidId(grantee_id)) {
    return InvalidArgumentError("grant: model and principal ids must be 1.." +
                                std::to_string(kMaxIdSize) + " characters of [A-Za-z0-9._-]");
  }
  return Status::Ok();
}

std::string DescribeGrant(const std::string& model_id, const std::string& grantee_id) {
  return "grant of model '" + model_id + "' to " + grantee_id;
}

}  // namespace

Status StoreImpl::CreateGrantsSchema() {
  return db_->Exec(kGrantsSchema, "create the grants table");
}

Result<std::vector<ModelGrant>> StoreImpl::LoadGrants(std::string_view where,
                                                      const std::string& value) {
  CHIRON_ASSIGN_OR_RETURN(
      Statement stmt,
      db_->Prepare("SELECT model_id, grantee_id, owner_id, sealed_record FROM grants WHERE " +
                       std::string(where) + " = ? ORDER BY model_id, grantee_id",
                   "read grants"));
  stmt.Bind(1, value);
  std::vector<ModelGrant> out;
  while (true) {
    CHIRON_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ModelGrant grant;
    grant.model_id = stmt.Text(0);
    grant.grantee_id = stmt.Text(1);
    grant.owner_id = stmt.Text(2);
    Result<SecretBytes> record =
        Unseal(keys_.catalog.span(), kRecordPurpose, GrantRowName(grant), stmt.Blob(3));
    if (!record.ok()) {
      return record.status().WithContext("store: " +
                                         DescribeGrant(grant.model_id, grant.grantee_id));
    }
    CHIRON_RETURN_IF_ERROR(DecodeRecord(record->span(), grant));
    out.push_back(std::move(grant));
  }
  std::stable_sort(out.begin(), out.end(), [](const ModelGrant& a, const ModelGrant& b) {
    return a.created_unix < b.created_unix;
  });
  return out;
}

Result<std::optional<ModelGrant>> StoreImpl::LoadGrant(const std::string& model_id,
                                                       const std::string& grantee_id) {
  CHIRON_ASSIGN_OR_RETURN(std::vector<ModelGrant> grants, LoadGrants("model_id", model_id));
  for (ModelGrant& grant : grants) {
    if (grant.grantee_id == grantee_id) return std::optional<ModelGrant>(std::move(grant));
  }
  return std::optional<ModelGrant>();
}

Status StoreImpl::StoreGrant(const ModelGrant& grant) {
  CHIRON_ASSIGN_OR_RETURN(Bytes sealed, Seal(keys_.catalog.span(), kRecordPurpose,
                                             GrantRowName(grant), EncodeRecord(grant)));
  return db_->Run("INSERT OR REPLACE INTO grants VALUES(?, ?, ?, ?)", "write grant",
                  grant.model_id, grant.grantee_id, grant.owner_id, sealed);
}

Result<ModelGrant> StoreImpl::PutGrant(const std::string& model_id, const std::string& owner_id,
                                       const std::string& grantee_id, uint64_t budget,
                                       const std::vector<AuditEvent>& audit) {
  CHIRON_RETURN_IF_ERROR(CheckIds(model_id, grantee_id));
  if (grantee_id == owner_id) {
    return InvalidArgumentError("grant: the owner of a model needs no grant on it");
  }
  std::lock_guard<std::mutex> lock(mu_);
  {
    // The caller (JobManager) has opened the model's sealed record; this re-checks, inside the
    // lock, that it still exists and belongs to the granting owner.
    CHIRON_ASSIGN_OR_RETURN(
        Statement model,
        db_->Prepare("SELECT owner_id FROM blobs WHERE kind = ? AND id = ?", "read model owner"));
    model.Bind(1, static_cast<int64_t>(BlobKind::kModel)).Bind(2, model_id);
    CHIRON_ASSIGN_OR_RETURN(bool row, model.Step());
    if (!row || model.Text(0) != owner_id) {
      return NotFoundError("grant: principal " + owner_id + " has no model '" + model_id + "'");
    }
  }
  CHIRON_ASSIGN_OR_RETURN(Principal grantee, GetPrincipalLocked(grantee_id));
  if (grantee.role != Role::kOwner) {
    // Providers may never see predictions (docs/threat-model.md).
    return PermissionDeniedError("grant: principal " + grantee_id + " is a " +
                                 std::string(RoleName(grantee.role)) +
                                 "; only owner-role principals may be granted predictions");
  }
  CHIRON_ASSIGN_OR_RETURN(std::optional<ModelGrant> existing, LoadGrant(model_id, grantee_id));
  ModelGrant grant;
  if (existing.has_value()) {
    grant = std::move(*existing);
  } else {
    grant.model_id = model_id;
    grant.grantee_id = grantee_id;
    grant.owner_id = owner_id;
    grant.created_unix = Now();
  }
  grant.budget = budget;
  grant.updated_unix = Now();
  CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
  CHIRON_RETURN_IF_ERROR(StoreGrant(grant));
  for (const AuditEvent& event : audit) {
    CHIRON_RETURN_IF_ERROR(AppendAuditInTransaction(event).status());
  }
  CHIRON_RETURN_IF_ERROR(txn.Commit());
  return grant;
}

Result<ModelGrant> StoreImpl::GetGrant(const std::string& model_id,
                                       const std::string& grantee_id) {
  CHIRON_RETURN_IF_ERROR(CheckIds(model_id, grantee_id));
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<ModelGrant> grant, LoadGrant(model_id, grantee_id));
  if (!grant.has_value()) return NotFoundError("no " + DescribeGrant(model_id, grantee_id));
  return std::move(*grant);
}

Result<std::vector<ModelGrant>> StoreImpl::ListGrants(const std::string& model_id) {
  if (!IsValidId(model_id)) return InvalidArgumentError("grant: malformed model id");
  std::lock_guard<std::mutex> lock(mu_);
  return LoadGrants("model_id", model_id);
}

Result<std::vector<ModelGrant>> StoreImpl::ListGrantsTo(const std::string& grantee_id) {
  if (!IsValidId(grantee_id)) return InvalidArgumentError("grant: malformed principal id");
  std::lock_guard<std::mutex> lock(mu_);
  return LoadGrants("grantee_id", grantee_id);
}

Status StoreImpl::DeleteGrant(const std::string& model_id, const std::string& grantee_id,
                              const std::vector<AuditEvent>& audit) {
  CHIRON_RETURN_IF_ERROR(CheckIds(model_id, grantee_id));
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
  CHIRON_RETURN_IF_ERROR(db_->Run("DELETE FROM grants WHERE model_id = ? AND grantee_id = ?",
                                  "delete grant", model_id, grantee_id));
  if (db_->changes() == 0) return NotFoundError("no " + DescribeGrant(model_id, grantee_id));
  for (const AuditEvent& event : audit) {
    CHIRON_RETURN_IF_ERROR(AppendAuditInTransaction(event).status());
  }
  return txn.Commit();
}

Status StoreImpl::DeleteGrants(const std::string& model_id) {
  if (!IsValidId(model_id)) return InvalidArgumentError("grant: malformed model id");
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Run("DELETE FROM grants WHERE model_id = ?", "delete a model's grants", model_id);
}

Result<ModelGrant> StoreImpl::ChargeGrant(const std::string& model_id,
                                          const std::string& grantee_id, uint64_t count,
                                          const std::vector<AuditEvent>& audit) {
  CHIRON_RETURN_IF_ERROR(CheckIds(model_id, grantee_id));
  std::lock_guard<std::mutex> lock(mu_);
  CHIRON_ASSIGN_OR_RETURN(std::optional<ModelGrant> found, LoadGrant(model_id, grantee_id));
  if (!found.has_value()) return NotFoundError("no " + DescribeGrant(model_id, grantee_id));
  ModelGrant grant = std::move(*found);
  if (grant.budget != 0 && (count > grant.budget || grant.used > grant.budget - count)) {
    // Say what is left: a request larger than the rest is not a spent budget, and a smaller
    // one would pass.
    const uint64_t left = grant.used < grant.budget ? grant.budget - grant.used : 0;
    if (left == 0) {
      return ResourceExhaustedError("your grant on this model has used all " +
                                    std::to_string(grant.budget) +
                                    " of its queries: ask the model's owner for more (they run "
                                    "`chiron model grant NAME --to YOUR_ID --budget N`)");
    }
    return ResourceExhaustedError(
        "your grant on this model has " + std::to_string(left) + " of its " +
        std::to_string(grant.budget) + " queries left and this request asks for " +
        std::to_string(count) + ": send at most " + std::to_string(left) +
        " samples (a smaller --count), or ask the model's owner for more (they run `chiron "
        "model grant NAME --to YOUR_ID --budget N`)");
  }
  grant.used += count;
  grant.updated_unix = Now();
  CHIRON_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
  CHIRON_RETURN_IF_ERROR(StoreGrant(grant));
  for (const AuditEvent& event : audit) {
    CHIRON_RETURN_IF_ERROR(AppendAuditInTransaction(event).status());
  }
  CHIRON_RETURN_IF_ERROR(txn.Commit());
  return grant;
}

}  // namespace chiron::store

#include "runtime/store/sqlite.h"

#include <sqlite3.h>

#include <utility>

namespace chiron::store {

Status Database::ErrorFor(int code, std::string_view what, std::string_view detail) {
  std::string message = "catalog: " + std::string(what) + ": " + std::string(detail);
  switch (code & 0xff) {
    case SQLITE_FULL:
      return ResourceExhaustedError(message + " (disk full: free disk space and retry)");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(message + " (the catalog file is corrupt or was altered)");
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return UnavailableError(message + " (busy: retry)");
    case SQLITE_CONSTRAINT: return FailedPreconditionError(message);
    case SQLITE_IOERR: return UnavailableError(message + " (I/O error)");
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return PermissionDeniedError(message + " (check the state directory's owner and mode)");
    default: return InternalError(message);
  }
}

Status Database::LastError(std::string_view what) const {
  return ErrorFor(sqlite3_extended_errcode(db_), what, sqlite3_errmsg(db_));
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path) {
  sqlite3* handle = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &handle,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    Status status = ErrorFor(rc, "cannot open '" + path + "'",
                             handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(rc));
    sqlite3_close(handle);
    return status;
  }
  std::unique_ptr<Database> db(new Database(handle));
  sqlite3_extended_result_codes(handle, 1);
  CHIRON_RETURN_IF_ERROR(db->Exec(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON; "
      "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
      "set pragmas on '" + path + "'"));
  // journal_mode answers with the mode it got: insist on WAL (a read-only or odd file system
  // would silently fall back).
  CHIRON_ASSIGN_OR_RETURN(Statement mode, db->Prepare("PRAGMA journal_mode", "read journal mode"));
  CHIRON_ASSIGN_OR_RETURN(bool has_row, mode.Step());
  if (!has_row || mode.Text(0) != "wal") {
    return FailedPreconditionError("catalog '" + path +
                                   "': cannot use write-ahead logging on this file system");
  }
  return db;
}

Database::~Database() { sqlite3_close_v2(db_); }

Status Database::Exec(std::string_view sql, std::string_view what) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string detail = error != nullptr ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    return ErrorFor(sqlite3_extended_errcode(db_), what, detail);
  }
  return Status::Ok();
}

Result<Statement> Database::Prepare(std::string_view sql, std::string_view what) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return LastError(what);
  return Statement(this, stmt, what);
}

int64_t Database::changes() const { return sqlite3_changes64(db_); }

Status Database::CheckpointTruncate() {
  int log_frames = 0;
  int checkpointed = 0;
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log_frames,
                                     &checkpointed);
  if (rc != SQLITE_OK) return LastError("checkpoint the write-ahead log");
  return Status::Ok();
}

Statement::Statement(Database* db, sqlite3_stmt* stmt, std::string_view what)
    : db_(db), stmt_(stmt), what_(what) {}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      what_(std::move(other.what_)),
      bind_status_(std::move(other.bind_status_)) {}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = db_->LastError(what_);
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                             SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = db_->LastError(what_);
  return *this;
}

Statement& Statement::Bind(int index, ByteSpan blob) {
  // A zero-length blob must still bind as a blob, not NULL.
  static const uint8_t kEmpty = 0;
  const void* data = blob.empty() ? &kEmpty : blob.data();
  int rc = sqlite3_bind_blob64(stmt_, index, data, blob.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = db_->LastError(what_);
  return *this;
}

Result<bool> Statement::Step() {
  if (!bind_status_.ok()) return bind_status_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->LastError(what_);
}

Status Statement::Run() {
  while (true) {
    CHIRON_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

Bytes Statement::Blob(int column) const {
  const uint8_t* data = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, column));
  int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr) return {};
  return Bytes(data, data + size);
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

Result<Transaction> Transaction::Begin(Database* db) {
  CHIRON_RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE", "begin transaction"));
  return Transaction(db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) db_->Exec("ROLLBACK", "roll back transaction").IgnoreError();
}

Status Transaction::Commit() {
  Status status = db_->Exec("COMMIT", "commit transaction");
  if (status.ok()) db_ = nullptr;
  return status;
}

}  // namespace chiron::store

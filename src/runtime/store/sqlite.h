// A thin RAII layer over the SQLite C API for the store's catalog (internal to chiron_store).
//
// Errors map to Status codes a caller can act on: SQLITE_FULL is ResourceExhausted ("disk
// full"), SQLITE_CORRUPT / SQLITE_NOTADB are DataLoss, SQLITE_BUSY / SQLITE_LOCKED Unavailable,
// constraint violations FailedPrecondition; everything else Internal. Messages name the
// statement's purpose and SQLite's own message.
//
// Thread safety: none; the Store serialises all use of one Database.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace chiron::store {

class Database;

// One prepared statement. Bind parameters are 1-based, columns 0-based.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, ByteSpan blob);

  // Advances: true if a row is available, false when done.
  Result<bool> Step();
  // Steps to completion (for statements that return no rows).
  Status Run();

  int64_t Int(int column) const;
  std::string Text(int column) const;
  Bytes Blob(int column) const;
  bool IsNull(int column) const;

 private:
  friend class Database;
  Statement(Database* db, sqlite3_stmt* stmt, std::string_view what);

  Database* db_;
  sqlite3_stmt* stmt_;
  std::string what_;
  Status bind_status_;
};

class Database {
 public:
  // Opens (creating if needed) the database file with the store's pragmas: WAL journal,
  // synchronous=FULL, secure_delete=ON, foreign_keys=ON.
  static Result<std::unique_ptr<Database>> Open(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements without parameters or results.
  Status Exec(std::string_view sql, std::string_view what);
  // `what` names the statement in error messages ("insert chunk").
  Result<Statement> Prepare(std::string_view sql, std::string_view what);
  // Prepares, binds `args` to parameters 1, 2, ... in order and runs to completion.
  template <typename... Args>
  Status Run(std::string_view sql, std::string_view what, const Args&... args) {
    CHIRON_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql, what));
    int index = 0;
    (stmt.Bind(++index, args), ...);
    return stmt.Run();
  }

  // The Status for the connection's last error, prefixed with `what`.
  Status LastError(std::string_view what) const;
  static Status ErrorFor(int code, std::string_view what, std::string_view detail);

  // Number of rows the last INSERT/UPDATE/DELETE changed.
  int64_t changes() const;

  // Checkpoints the WAL into the database and truncates it to zero bytes.
  Status CheckpointTruncate();

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// BEGIN IMMEDIATE ... COMMIT. Rolls back in the destructor unless Commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> Begin(Database* db);
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace chiron::store

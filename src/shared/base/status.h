// Status and Result<T>: the one error type of Chiron.
//
// Every fallible function returns a Status or a Result<T>; exceptions never cross a module
// boundary. Trusted code fails closed: build a result as an error and turn it into OK only once
// every check has passed.
//
// Messages are for people: say what was wrong and, where it helps, what to do next
// ("policy file /x.json: field 'min_svn' must be an integer; see docs/formats/policy.md").
//
// Thread safety: values; distinct objects may be used from different threads freely.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace chiron {

// Codes mirror gRPC's so the service layer maps them one to one.
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "INVALID_ARGUMENT: message" (or "OK").
  std::string ToString() const;

  // Returns a copy whose message is "context: message"; OK stays OK.
  Status WithContext(std::string_view context) const;

  // Explicitly discards a status where ignoring it is correct (best-effort cleanup).
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Short constructors: return InvalidArgumentError("...").
inline Status CancelledError(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status UnknownError(std::string m) { return {StatusCode::kUnknown, std::move(m)}; }
inline Status InvalidArgumentError(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status DeadlineExceededError(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExistsError(std::string m) {
  return {StatusCode::kAlreadyExists, std::move(m)};
}
inline Status PermissionDeniedError(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}
inline Status ResourceExhaustedError(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status FailedPreconditionError(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status AbortedError(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
inline Status OutOfRangeError(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status UnimplementedError(std::string m) {
  return {StatusCode::kUnimplemented, std::move(m)};
}
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status UnavailableError(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DataLossError(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status UnauthenticatedError(std::string m) {
  return {StatusCode::kUnauthenticated, std::move(m)};
}

// Result<T> holds either a T or a non-OK Status (abseil's StatusOr shape).
// Constructing a Result from an OK Status is an internal invariant violation and aborts.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(const T& value) : value_(value) {}                  // NOLINT: implicit by design
  Result(T&& value) : value_(std::move(value)) {}            // NOLINT
  Result(Status status) : status_(std::move(status)) {       // NOLINT
    if (status_.ok()) std::abort();
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : status_;
  }

  // Preconditions: ok(). Aborts otherwise (a broken invariant, not an input error).
  T& value() & {
    if (!ok()) std::abort();
    return *value_;
  }
  const T& value() const& {
    if (!ok()) std::abort();
    return *value_;
  }
  T&& value() && {
    if (!ok()) std::abort();
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace chiron

// Propagates a non-OK Status from an expression returning Status.
#define CHIRON_RETURN_IF_ERROR(expr)                   \
  do {                                                 \
    ::chiron::Status chiron_status_ = (expr);          \
    if (!chiron_status_.ok()) return chiron_status_;   \
  } while (0)

#define CHIRON_CONCAT_INNER_(a, b) a##b
#define CHIRON_CONCAT_(a, b) CHIRON_CONCAT_INNER_(a, b)

// `CHIRON_ASSIGN_OR_RETURN(auto x, Foo());` declares x from a Result or returns its error.
#define CHIRON_ASSIGN_OR_RETURN(lhs, expr) \
  CHIRON_ASSIGN_OR_RETURN_IMPL_(CHIRON_CONCAT_(chiron_result_, __LINE__), lhs, expr)
#define CHIRON_ASSIGN_OR_RETURN_IMPL_(result, lhs, expr) \
  auto result = (expr);                                  \
  if (!result.ok()) return result.status();              \
  lhs = std::move(result).value()

#include "shared/crypto/openssl_util.h"

namespace chiron::crypto::internal {

std::string TakeOpensslError() {
  unsigned long code = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  std::string text;
  if (code == 0) {
    text = "no OpenSSL error queued";
  } else {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    text = buffer;
  }
  ERR_clear_error();
  return text;
}

Status OpensslStatus(StatusCode code, const std::string& context) {
  return Status(code, context + " (" + TakeOpensslError() + ")");
}

}  // namespace chiron::crypto::internal

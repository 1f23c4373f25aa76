#include "shared/crypto/random.h"

#include <openssl/rand.h>

#include <algorithm>

#include "shared/crypto/openssl_util.h"

namespace chiron::crypto {

Status RandomFill(MutableByteSpan out) {
  size_t offset = 0;
  while (offset < out.size()) {
    size_t piece = std::min(out.size() - offset, internal::kMaxOpensslChunk);
    if (RAND_bytes(out.data() + offset, static_cast<int>(piece)) != 1) {
      SecureZero(out.data(), out.size());
      return internal::OpensslStatus(StatusCode::kInternal,
                                     "the random generator could not produce bytes");
    }
    offset += piece;
  }
  return Status::Ok();
}

Result<Bytes> RandomBytes(size_t size) {
  Bytes out(size);
  CHIRON_RETURN_IF_ERROR(RandomFill(out));
  return out;
}

Result<SecretBytes> RandomSecret(size_t size) {
  SecretBytes out(size);
  CHIRON_RETURN_IF_ERROR(RandomFill(out.mutable_span()));
  return out;
}

}  // namespace chiron::crypto

// SHA-2 digests and HMAC.
#pragma once

#include <memory>

#include "shared/base/bytes.h"
#include "shared/base/status.h"

namespace chiron::crypto {

enum class HashAlgorithm { kSha256, kSha384, kSha512 };

// Digest size in bytes (32, 48, 64).
size_t DigestSize(HashAlgorithm algorithm);

Bytes Sha256(ByteSpan data);
Bytes Sha384(ByteSpan data);
Bytes Sha512(ByteSpan data);
Bytes Digest(HashAlgorithm algorithm, ByteSpan data);

Result<Bytes> HmacSha256(ByteSpan key, ByteSpan data);

// Incremental hashing for large inputs (files, streams). Not thread safe.
class Hasher {
 public:
  explicit Hasher(HashAlgorithm algorithm);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void Update(ByteSpan data);
  // Returns the digest; the hasher may not be updated afterwards.
  Bytes Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace chiron::crypto

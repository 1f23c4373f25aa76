// AES-GCM for IVs longer than OpenSSL's provider accepts (128 bytes).
//
// SP 800-38D allows any IV length; OpenSSL 3.0 caps it at 128 bytes. Long IVs are never used
// by Chiron's formats, but the one-shot API promises every IV size, so this file computes GCM
// from its definition: AES-ECB (through EVP) for the block cipher, GHASH in portable code. It
// is slow (bitwise GHASH) and only reached for IVs over 128 bytes.
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

#include "shared/crypto/aes_gcm_internal.h"
#include "shared/crypto/openssl_util.h"

namespace chiron::crypto::internal {

GfBlock LoadBlock(const uint8_t* p) {
  GfBlock b;
  for (int i = 0; i < 8; ++i) b.hi = b.hi << 8 | p[i];
  for (int i = 8; i < 16; ++i) b.lo = b.lo << 8 | p[i];
  return b;
}

void StoreBlock(GfBlock b, uint8_t* p) {
  for (int i = 7; i >= 0; --i, b.hi >>= 8) p[i] = static_cast<uint8_t>(b.hi);
  for (int i = 15; i >= 8; --i, b.lo >>= 8) p[i] = static_cast<uint8_t>(b.lo);
}

GfBlock GfMultiply(GfBlock x, GfBlock y) {
  GfBlock z, v = y;
  for (int i = 0; i < 128; ++i) {
    uint64_t bit = i < 64 ? (x.hi >> (63 - i)) & 1 : (x.lo >> (127 - i)) & 1;
    if (bit) {
      z.hi ^= v.hi;
      z.lo ^= v.lo;
    }
    bool carry = v.lo & 1;
    v.lo = (v.lo >> 1) | (v.hi << 63);
    v.hi >>= 1;
    if (carry) v.hi ^= 0xe100000000000000ULL;
  }
  return z;
}

namespace {

using Block = GfBlock;
Block Load(const uint8_t* p) { return LoadBlock(p); }
void Store(Block b, uint8_t* p) { StoreBlock(b, p); }
Block Multiply(Block x, Block y) { return GfMultiply(x, y); }

class Ghash {
 public:
  explicit Ghash(Block h) : h_(h) {}
  // Absorbs `data` zero-padded to a whole number of blocks.
  void UpdatePadded(ByteSpan data) {
    for (size_t offset = 0; offset < data.size(); offset += 16) {
      uint8_t block[16] = {0};
      std::memcpy(block, data.data() + offset, std::min<size_t>(16, data.size() - offset));
      Absorb(Load(block));
    }
  }
  void UpdateLengths(uint64_t a_bits_or_zero, uint64_t b_bits) {
    Absorb(Block{a_bits_or_zero, b_bits});
  }
  Block value() const { return y_; }

 private:
  void Absorb(Block x) {
    y_.hi ^= x.hi;
    y_.lo ^= x.lo;
    y_ = Multiply(y_, h_);
  }
  Block h_;
  Block y_;
};

bool EncryptBlocks(EVP_CIPHER_CTX* ecb, const uint8_t* in, size_t size, uint8_t* out) {
  int written = 0;
  return EVP_EncryptUpdate(ecb, out, &written, in, static_cast<int>(size)) == 1 &&
         static_cast<size_t>(written) == size;
}

}  // namespace

Status AesGcmLongIv(ByteSpan key, ByteSpan iv, ByteSpan aad, ByteSpan input, bool encrypt,
                    uint8_t* output, uint8_t tag[16]) {
  const char* name = key.size() == 16   ? "AES-128-ECB"
                     : key.size() == 24 ? "AES-192-ECB"
                                        : "AES-256-ECB";
  std::unique_ptr<EVP_CIPHER, Deleter<EVP_CIPHER, EVP_CIPHER_free>> cipher(
      EVP_CIPHER_fetch(nullptr, name, nullptr));
  EvpCipherCtxPtr ecb(EVP_CIPHER_CTX_new());
  if (!cipher || !ecb ||
      EVP_EncryptInit_ex(ecb.get(), cipher.get(), nullptr, key.data(), nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ecb.get(), 0) != 1) {
    return OpensslStatus(StatusCode::kInternal, "AES-ECB setup for long-IV GCM failed");
  }
  uint8_t zero[16] = {0}, h_bytes[16];
  if (!EncryptBlocks(ecb.get(), zero, 16, h_bytes)) {
    return OpensslStatus(StatusCode::kInternal, "AES block encryption failed");
  }
  const Block h = Load(h_bytes);

  // J0 = IV || 0^31 || 1 for 96-bit IVs, else GHASH(IV || 0-pad || 0^64 || [len(IV)]_64).
  uint8_t j0[16] = {0};
  if (iv.size() == 12) {
    std::memcpy(j0, iv.data(), 12);
    j0[15] = 1;
  } else {
    Ghash iv_hash(h);
    iv_hash.UpdatePadded(iv);
    iv_hash.UpdateLengths(0, static_cast<uint64_t>(iv.size()) * 8);
    Store(iv_hash.value(), j0);
  }

  // Tag input: the ciphertext, which is the input when decrypting (hashed before decryption).
  Ghash tag_hash(h);
  tag_hash.UpdatePadded(aad);
  if (!encrypt) tag_hash.UpdatePadded(input);

  // CTR with inc32 from J0 + 1, in batches of 256 blocks.
  uint32_t counter = static_cast<uint32_t>(j0[12]) << 24 | static_cast<uint32_t>(j0[13]) << 16 |
                     static_cast<uint32_t>(j0[14]) << 8 | j0[15];
  uint8_t counters[4096], stream[4096];
  for (size_t offset = 0; offset < input.size(); offset += sizeof(stream)) {
    size_t piece = std::min(sizeof(stream), input.size() - offset);
    size_t blocks = (piece + 15) / 16;
    for (size_t b = 0; b < blocks; ++b) {
      ++counter;
      std::memcpy(counters + 16 * b, j0, 12);
      counters[16 * b + 12] = static_cast<uint8_t>(counter >> 24);
      counters[16 * b + 13] = static_cast<uint8_t>(counter >> 16);
      counters[16 * b + 14] = static_cast<uint8_t>(counter >> 8);
      counters[16 * b + 15] = static_cast<uint8_t>(counter);
    }
    if (!EncryptBlocks(ecb.get(), counters, 16 * blocks, stream)) {
      return OpensslStatus(StatusCode::kInternal, "AES block encryption failed");
    }
    for (size_t i = 0; i < piece; ++i) output[offset + i] = input[offset + i] ^ stream[i];
  }
  if (encrypt) tag_hash.UpdatePadded(ByteSpan(output, input.size()));
  tag_hash.UpdateLengths(static_cast<uint64_t>(aad.size()) * 8,
                         static_cast<uint64_t>(input.size()) * 8);
  uint8_t s[16], e_j0[16];
  Store(tag_hash.value(), s);
  if (!EncryptBlocks(ecb.get(), j0, 16, e_j0)) {
    return OpensslStatus(StatusCode::kInternal, "AES block encryption failed");
  }
  for (int i = 0; i < 16; ++i) tag[i] = s[i] ^ e_j0[i];
  SecureZero(stream, sizeof(stream));
  SecureZero(h_bytes, sizeof(h_bytes));
  return Status::Ok();
}

}  // namespace chiron::crypto::internal

// AES-256-GCM stream throughput against raw OpenSSL, measured in the same run.
//
//   ninja -C build crypto_bench && build/bin/crypto_bench
//
// Seals (and opens) a 64 MiB buffer as 64 KiB chunks with AeadStreamSealer/Opener, and the same
// buffer as one AES-256-GCM message with OpenSSL's EVP API (one context, one init, one update).
// Prints the best of several repetitions for each and the ratio stream / raw (goal >= 0.9).
// Also the tag-only check (AeadStreamOpener::VerifyChunk, GcmTagChecker: GHASH without
// decryption, what the runtime does to received chunks) against the stream's full open.
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>

#include "shared/base/bytes.h"
#include "shared/crypto/aead_stream.h"
#include "shared/crypto/random.h"

namespace {

using chiron::Bytes;
using chiron::ByteSpan;
using chiron::MutableByteSpan;
namespace crypto = chiron::crypto;

constexpr size_t kBufferSize = size_t{64} << 20;
constexpr size_t kChunkSize = size_t{64} << 10;
constexpr size_t kChunks = kBufferSize / kChunkSize;
constexpr int kRepetitions = 9;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "crypto_bench: %s failed\n", what);
  std::exit(1);
}

// Thread CPU time of one run: unlike wall time it excludes time spent descheduled, so the ratio
// stays meaningful on a machine shared with other work.
double Seconds(const std::function<void()>& run) {
  timespec start, end;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  run();
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
  return static_cast<double>(end.tv_sec - start.tv_sec) +
         static_cast<double>(end.tv_nsec - start.tv_nsec) * 1e-9;
}

// One-shot AES-256-GCM over the whole buffer: the baseline.
void RawGcm(bool encrypt, const Bytes& key, const Bytes& in, Bytes& out, uint8_t tag[16]) {
  static const uint8_t kIv[12] = {0};
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  int len = 0;
  if (ctx == nullptr || cipher == nullptr ||
      EVP_CipherInit_ex(ctx, cipher, nullptr, key.data(), kIv, encrypt ? 1 : 0) != 1 ||
      EVP_CipherUpdate(ctx, out.data(), &len, in.data(), static_cast<int>(in.size())) != 1) {
    Die("raw AES-GCM");
  }
  if (encrypt) {
    if (EVP_CipherFinal_ex(ctx, out.data() + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1) {
      Die("raw AES-GCM seal");
    }
  } else if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1 ||
             EVP_CipherFinal_ex(ctx, out.data() + len, &len) != 1) {
    Die("raw AES-GCM open");
  }
  EVP_CIPHER_free(cipher);
  EVP_CIPHER_CTX_free(ctx);
}

}  // namespace

int main() {
  auto key_or = crypto::RandomBytes(32);
  auto plaintext_or = crypto::RandomBytes(kBufferSize);
  if (!key_or.ok() || !plaintext_or.ok()) Die("random");
  const Bytes key = *key_or;
  const Bytes plaintext = *plaintext_or;
  const Bytes stream_aad = chiron::ToBytes("bench dataset");

  Bytes raw_ciphertext(kBufferSize), raw_plaintext(kBufferSize);
  uint8_t raw_tag[16];
  const size_t sealed_chunk = kChunkSize + crypto::kStreamTagSize;
  Bytes sealed(kChunks * sealed_chunk), opened(kBufferSize);
  Bytes nonce_prefix;

  auto raw_seal_run = [&] { RawGcm(true, key, plaintext, raw_ciphertext, raw_tag); };
  auto raw_open_run = [&] { RawGcm(false, key, raw_ciphertext, raw_plaintext, raw_tag); };
  // Stream: a new sealer per run (as per upload), output into one preallocated buffer.
  auto stream_seal_run = [&] {
    auto sealer = crypto::AeadStreamSealer::Create(key, stream_aad);
    if (!sealer.ok()) Die("sealer");
    for (size_t i = 0; i < kChunks; ++i) {
      ByteSpan in(plaintext.data() + i * kChunkSize, kChunkSize);
      MutableByteSpan out(sealed.data() + i * sealed_chunk, sealed_chunk);
      if (!sealer->SealChunkInto(in, i + 1 == kChunks, out).ok()) Die("SealChunkInto");
    }
    nonce_prefix = sealer->nonce_prefix();
  };
  auto stream_open_run = [&] {
    auto opener = crypto::AeadStreamOpener::Create(key, stream_aad, nonce_prefix);
    if (!opener.ok()) Die("opener");
    for (size_t i = 0; i < kChunks; ++i) {
      ByteSpan in(sealed.data() + i * sealed_chunk, sealed_chunk);
      MutableByteSpan out(opened.data() + i * kChunkSize, kChunkSize);
      if (!opener->OpenChunkInto(i, in, i + 1 == kChunks, out).ok()) Die("OpenChunkInto");
    }
  };
  // Tag only: every chunk authenticated, nothing decrypted.
  auto stream_verify_run = [&] {
    auto opener = crypto::AeadStreamOpener::Create(key, stream_aad, nonce_prefix);
    if (!opener.ok()) Die("opener");
    for (size_t i = 0; i < kChunks; ++i) {
      ByteSpan in(sealed.data() + i * sealed_chunk, sealed_chunk);
      if (!opener->VerifyChunk(i, in, i + 1 == kChunks).ok()) Die("VerifyChunk");
    }
  };
  // The allocating API, for reference.
  auto stream_seal_alloc_run = [&] {
    auto sealer = crypto::AeadStreamSealer::Create(key, stream_aad);
    if (!sealer.ok()) Die("sealer");
    for (size_t i = 0; i < kChunks; ++i) {
      ByteSpan in(plaintext.data() + i * kChunkSize, kChunkSize);
      if (!sealer->SealChunk(in, i + 1 == kChunks).ok()) Die("SealChunk");
    }
  };

  // Warm up, then interleave the contenders so background load hits them alike; keep the best.
  raw_seal_run();
  raw_open_run();
  stream_seal_run();
  stream_open_run();
  double raw_seal = 1e30, raw_open = 1e30, stream_seal = 1e30, stream_open = 1e30;
  double stream_seal_alloc = 1e30, stream_verify = 1e30;
  for (int i = 0; i < kRepetitions; ++i) {
    raw_seal = std::min(raw_seal, Seconds(raw_seal_run));
    stream_seal = std::min(stream_seal, Seconds(stream_seal_run));
    raw_open = std::min(raw_open, Seconds(raw_open_run));
    stream_open = std::min(stream_open, Seconds(stream_open_run));
    stream_seal_alloc = std::min(stream_seal_alloc, Seconds(stream_seal_alloc_run));
    stream_verify = std::min(stream_verify, Seconds(stream_verify_run));
  }
  if (raw_plaintext != plaintext) Die("raw round trip");
  if (opened != plaintext) Die("stream round trip");

  auto gbps = [](double seconds) { return kBufferSize / seconds / 1e9; };
  std::printf("AES-256-GCM, %zu MiB buffer, stream chunks of %zu KiB, best thread CPU time of %d\n",
              kBufferSize >> 20, kChunkSize >> 10, kRepetitions);
  std::printf("  seal  raw one-shot %6.2f GB/s   stream (SealChunkInto) %6.2f GB/s   ratio %.3f\n",
              gbps(raw_seal), gbps(stream_seal), raw_seal / stream_seal);
  std::printf("  open  raw one-shot %6.2f GB/s   stream (OpenChunkInto) %6.2f GB/s   ratio %.3f\n",
              gbps(raw_open), gbps(stream_open), raw_open / stream_open);
  std::printf("  seal  stream (SealChunk, allocating)   %6.2f GB/s   ratio %.3f\n",
              gbps(stream_seal_alloc), raw_seal / stream_seal_alloc);
  std::printf("  tag only (VerifyChunk, no decryption)   %6.2f GB/s   %.2fx the stream's open\n",
              gbps(stream_verify), stream_open / stream_verify);
  double worst = std::min(raw_seal / stream_seal, raw_open / stream_open);
  std::printf("stream/raw ratio (worst of seal, open): %.3f (goal >= 0.90) %s\n", worst,
              worst >= 0.9 ? "OK" : "BELOW GOAL");
  return 0;
}

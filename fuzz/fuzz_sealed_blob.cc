// Fuzzes the store's sealed-value parser and opener (docs/formats/sealed-blob.md) with hostile
// bytes, as a host that rewrites blob files or catalog columns would supply them: structure
// parsing, then authentication under a fixed key, purpose and row, so mutated seeds (valid sealed
// values under that key) reach the AEAD. Whatever opens must re-seal and re-open to the same
// plaintext.
#include <cstddef>
#include <cstdint>

#include "runtime/store/sealed.h"

namespace {
// The key, purpose and row the seed corpus was sealed with (fuzz/corpus/fuzz_sealed_blob).
const chiron::Bytes& FuzzKey() {
  static const chiron::Bytes key(32, 0x5a);
  return key;
}
constexpr char kPurpose[] = "blob.chunk";
constexpr char kRow[] = "seed/0";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron;
  ByteSpan input(data, size);
  auto view = store::ParseSealed(input);
  if (view.ok()) {
    if (view->header.size() != store::kSealedHeaderSize ||
        view->header.size() + view->nonce.size() + view->ciphertext.size() + view->tag.size() !=
            size) {
      __builtin_trap();
    }
  }
  auto opened = store::Unseal(FuzzKey(), kPurpose, kRow, input);
  if (opened.ok()) {
    if (!view.ok()) __builtin_trap();  // opened something that does not parse
    auto resealed = store::Seal(FuzzKey(), kPurpose, kRow, opened->span());
    if (!resealed.ok()) __builtin_trap();
    auto again = store::Unseal(FuzzKey(), kPurpose, kRow, *resealed);
    if (!again.ok() || !ConstantTimeEqual(again->span(), opened->span())) __builtin_trap();
    // The same bytes must not open under another row.
    if (store::Unseal(FuzzKey(), kPurpose, "seed/1", input).ok()) __builtin_trap();
  }
  return 0;
}

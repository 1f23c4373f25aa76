// libFuzzer target: the TDX quote parser (and the strict PEM decoder and PCK-extension DER
// reader it leads to) on arbitrary bytes. Seeds: fuzz/corpus/fuzz_tdx_quote (synthetic quotes).
#include <cstddef>
#include <cstdint>

#include "shared/attest/tdx/pck_extensions.h"
#include "shared/attest/tdx/tdx_collateral.h"
#include "shared/attest/tdx/tdx_quote.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chiron::ByteSpan input(data, size);
  chiron::Result<chiron::attest::tdx::TdxQuote> quote = chiron::attest::tdx::ParseTdxQuote(input);
  if (quote.ok() && quote->signed_bytes.size() != 632) __builtin_trap();
  chiron::attest::tdx::ParsePckExtensions(input).status().IgnoreError();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  chiron::attest::tdx::ParseTdxTcbInfo(text).status().IgnoreError();
  chiron::attest::tdx::ParseTdxQeIdentity(text).status().IgnoreError();
  return 0;
}

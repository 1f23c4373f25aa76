// libFuzzer target: the TDX quote parser (and the strict PEM decoder and PCK-extension DER
// reader it leads to) and the Intel quote header recognizer on arbitrary bytes. Oracle: a buffer
// the parser accepts is recognized as a TDX quote. Seeds: fuzz/corpus/fuzz_tdx_quote (synthetic
// quotes, a version 5 header).
#include <cstddef>
#include <cstdint>

#include "shared/attest/tdx/pck_extensions.h"
#include "shared/attest/tdx/tdx_collateral.h"
#include "shared/attest/tdx/tdx_quote.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chiron::ByteSpan input(data, size);
  chiron::Result<chiron::attest::tdx::TdxQuote> quote = chiron::attest::tdx::ParseTdxQuote(input);
  if (quote.ok() && quote->signed_bytes.size() != 632) __builtin_trap();
  auto header = chiron::attest::tdx::RecognizeIntelQuote(input);
  if (quote.ok() && !(header && header->tdx())) __builtin_trap();
  if (header) (void)chiron::attest::tdx::DescribeIntelQuote(*header);
  chiron::attest::tdx::ParsePckExtensions(input).status().IgnoreError();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  chiron::attest::tdx::ParseTdxTcbInfo(text).status().IgnoreError();
  chiron::attest::tdx::ParseTdxQeIdentity(text).status().IgnoreError();
  return 0;
}

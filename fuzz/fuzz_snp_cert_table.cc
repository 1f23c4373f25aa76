// libFuzzer target: the SEV-SNP certificate table parser (a host-filled auxblob) on arbitrary
// bytes. Seeds: fuzz/corpus/fuzz_snp_cert_table (synthetic tables; no real certificates).
#include <cstddef>
#include <cstdint>

#include "shared/attest/snp/snp_cert_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chiron::ByteSpan blob(data, size);
  auto table = chiron::attest::snp::ParseSnpCertTable(blob);
  if (table.ok()) {
    // Whatever was accepted came from inside the blob: no entry can be longer than it.
    for (const auto* field : {&table->vcek, &table->vlek, &table->ask, &table->ark, &table->crl}) {
      if (*field && (*field)->size() > size) __builtin_trap();
    }
  }
  return 0;
}

// Fuzzes the shape text of `chiron-operator recipe check/register --shape` (jobs::ParseShapeText)
// and the schema built from it (jobs::MakeProbeSchema). An accepted shape must print back to the
// same text and make a schema that validates, or be refused with InvalidArgument.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/jobs/recipe_probe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto shape = chiron::jobs::ParseShapeText(text);
  if (!shape.ok()) {
    if (shape.status().code() != chiron::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  if (shape->empty() || shape->size() > 4) __builtin_trap();
  std::string printed;
  for (uint32_t d : *shape) {
    if (d < 1 || d > (1u << 24)) __builtin_trap();
    printed += (printed.empty() ? "" : "x") + std::to_string(d);
  }
  // Leading zeros ("01") parse to the same numbers: compare numerically through a reparse.
  auto again = chiron::jobs::ParseShapeText(printed);
  if (!again.ok() || *again != *shape) __builtin_trap();
  auto schema = chiron::jobs::MakeProbeSchema(*shape, chiron::dataset::ElementType::kUint8, 10);
  if (!schema.ok() && schema.status().code() != chiron::StatusCode::kInvalidArgument) {
    __builtin_trap();
  }
  return 0;
}

// Fuzzes chirond's config file (`chirond --config FILE`): the line parser, then the entries
// applied to chirond's real option set through CLI11's validators. Whenever a file is accepted,
// the effective settings printed by --print-config must read back to the same settings.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/config/chirond_settings.h"

namespace {

// Parses `text` into a fresh option set; false if refused.
bool Load(std::string_view text, chiron::runtime::ChirondSettings& settings) {
  using namespace chiron::runtime;
  CLI::App app{"chirond", "chirond"};
  std::string config;
  bool print = false;
  app.add_option("--config", config);
  app.add_flag("--print-config", print);
  AddChirondOptions(app, settings);
  app.parse(std::vector<std::string>{});
  auto entries = ParseConfigText(text, "fuzz.conf");
  if (!entries.ok()) {
    if (entries.status().message().rfind("fuzz.conf", 0) != 0) __builtin_trap();  // names the file
    return false;
  }
  chiron::Status applied = ApplyConfigEntries(app, *entries, "fuzz.conf");
  if (!applied.ok() && applied.message().rfind("fuzz.conf:", 0) != 0) __builtin_trap();
  return applied.ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chiron::runtime;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ChirondSettings first;
  if (!Load(text, first)) return 0;
  const std::string printed = FormatSettings(first);
  ChirondSettings second;
  if (!Load(printed, second)) __builtin_trap();  // --print-config output must be a valid file
  if (FormatSettings(second) != printed) __builtin_trap();
  return 0;
}

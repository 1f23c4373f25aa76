// Test-only shared objects for the recipe loader's refusals (engine_test): one exports an entry
// record from a future ABI, the other (CHIRON_TEST_NO_ENTRY) exports no entry point at all.
#include "chiron/recipe_types.h"

#ifndef CHIRON_TEST_NO_ENTRY
extern "C" __attribute__((visibility("default"))) const ChironRecipeV1* chiron_recipe_v1() {
  static const ChironRecipeV1 kEntry = {CHIRON_RECIPE_ABI_VERSION + 1,
                                        static_cast<uint32_t>(sizeof(ChironRecipeV1)),
                                        1,
                                        "0.0.0",
                                        "future",
                                        nullptr,
                                        nullptr};
  return &kEntry;
}
#else
extern "C" __attribute__((visibility("default"))) int not_a_recipe() {
  return 42;
}
#endif

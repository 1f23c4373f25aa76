// Test-only recipes that load but fail in a way registration and `recipe check` must report:
//   CHIRON_TEST_CRASH_IN_DESCRIBE  Training() aborts the process: the recipe crashes while the
//                                  worker reads its declarations (registration refuses it);
//   otherwise                      BuildModel refuses every schema with a message
//                                  (`chiron-operator recipe check` shows that message).
#include <chiron/recipe.h>

#include <cstdlib>

namespace {

class Failing : public chiron::Recipe {
 public:
  const char* name() const override { return "failing"; }
  std::shared_ptr<chiron::RecipeModel> BuildModel(const chiron::DatasetSchema&,
                                                  std::string* error) const override {
    *error = "failing recipe: this model needs a 3x224x224 image (test message)";
    return nullptr;
  }
#ifdef CHIRON_TEST_CRASH_IN_DESCRIBE
  chiron::TrainingConfig Training(const chiron::DatasetSchema&) const override {
    std::abort();
  }
#endif
};

}  // namespace

CHIRON_RECIPE(Failing)

#include "worker/loader.h"

#include <dlfcn.h>

#include "worker/lockdown.h"

namespace chiron {

Result<void*> LoadRecipeAfterLockdown(const std::string& path) {
  // The recipe's static initialisers run inside dlopen: never before the cage is complete.
  if (!IsLockedDown()) {
    return FailedPreconditionError("refusing to load recipe " + path +
                                   " before Lockdown() succeeded");
  }
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* error = dlerror();
    return InvalidArgumentError("cannot load recipe " + path + ": " +
                                (error != nullptr ? error : "unknown dlopen error"));
  }
  return handle;
}

Result<void*> FindRecipeSymbol(void* handle, const std::string& name) {
  dlerror();
  void* symbol = dlsym(handle, name.c_str());
  if (symbol == nullptr) return NotFoundError("recipe does not define " + name);
  return symbol;
}

}  // namespace chiron

// Loading the provider's recipe, strictly after the lockdown.
//
// The recipe is a shared object: dlopen runs its static initialisers (and those of anything it
// pulls in) before returning, so the only safe moment to load it is once every wall of the
// sandbox stands. LoadRecipeAfterLockdown refuses to run otherwise.
//
// Dependencies: a recipe may only need libraries the worker has already loaded (libtorch,
// libstdc++, libc...): dlopen finds those by soname without touching the file system. Anything
// else would have to be opened from disk, which Landlock and the empty root refuse, so such a
// recipe fails to load with dlopen's message.
#pragma once

#include <string>

#include "shared/base/status.h"

namespace chiron {

// dlopen(path, RTLD_NOW | RTLD_LOCAL). Errors:
//   FailedPrecondition  Lockdown() has not succeeded in this process;
//   InvalidArgument     dlopen failed (message from dlerror: missing symbol, bad ELF...).
// The handle stays valid for the life of the process (the worker never unloads a recipe).
Result<void*> LoadRecipeAfterLockdown(const std::string& path);

// dlsym on a handle from LoadRecipeAfterLockdown; NotFound if absent.
Result<void*> FindRecipeSymbol(void* handle, const std::string& name);

}  // namespace chiron

#include "worker/torch_preinit.h"

#include <dlfcn.h>

#include <ATen/CPUGeneratorImpl.h>

namespace chiron::worker {

void PreinitializeTorchBeforeLockdown() {
  // libcpuinfo is a dependency of libtorch_cpu (no header in Debian's packages): look it up.
  using CpuinfoInitialize = bool (*)();
  if (auto init = reinterpret_cast<CpuinfoInitialize>(dlsym(RTLD_DEFAULT, "cpuinfo_initialize"))) {
    init();
  }
  (void)at::detail::getDefaultCPUGenerator();
}

}  // namespace chiron::worker

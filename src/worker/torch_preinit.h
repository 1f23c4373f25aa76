// What libtorch must do before the worker's lockdown, because it needs files the empty root no
// longer has. Torch-free header; the implementation includes ATen (one small TU).
#pragma once

namespace chiron::worker {

// Creates libtorch's default CPU generator (its seed comes from std::random_device, which opens
// /dev/urandom) and initialises cpuinfo (/proc/cpuinfo, /sys/devices/system/cpu). Starts no
// thread: call it while single-threaded, right before Lockdown().
void PreinitializeTorchBeforeLockdown();

}  // namespace chiron::worker

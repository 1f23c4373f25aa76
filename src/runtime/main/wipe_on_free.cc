// chirond zeroes every heap block before it is freed: its own, and gRPC's and OpenSSL's, whose
// request buffers (an HTTP/2 frame holding BeginUpload's data key, a decrypted TLS record, a
// Predict sample) chirond's code never sees and so cannot wipe one by one. Secrets chirond owns
// are wiped by type (SecretBytes, SecretVector, ScopedWipe); this closes the rest of the class:
// nothing freed keeps a secret until malloc happens to reuse the block.
//
// It replaces free and realloc in the chirond executable (the dynamic linker binds every
// library's calls to these), forwarding to glibc's own allocator, so blocks still come from and
// return to the one glibc heap. realloc never lets glibc move a block itself (that frees the old
// one unwiped): it grows by allocate, copy, wipe, free. Left out of sanitizer builds, which
// replace the allocator themselves.
//
// What it does not cover: buffers still alive (a connection's TLS read buffer until the
// connection closes) and memory returned by munmap before this runs (none: free runs first).
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

#include <malloc.h>
#include <string.h>

#include <cstddef>

extern "C" {
void __libc_free(void* block);     // glibc's free, exported for allocator wrappers
void* __libc_malloc(size_t size);  // glibc's malloc

void free(void* block) {
  if (block != nullptr) explicit_bzero(block, malloc_usable_size(block));
  __libc_free(block);
}

void* realloc(void* block, size_t size) {
  if (block == nullptr) return __libc_malloc(size);
  if (size == 0) {
    free(block);
    return nullptr;
  }
  const size_t usable = malloc_usable_size(block);
  if (size <= usable) return block;  // fits where it is; the tail stays the caller's
  void* grown = __libc_malloc(size);
  if (grown == nullptr) return nullptr;  // the old block stays valid, as realloc promises
  memcpy(grown, block, usable);
  free(block);
  return grown;
}
}  // extern "C"

#endif

// CHIRON_VECTOR_CLONES: compiles a hot loop for x86-64-v4 (AVX-512) and v3 (AVX2 + FMA) besides
// the default, chosen once at load time through an ifunc resolver (GCC's target_clones).
//
// Off under the sanitizers: their runtimes are not initialised when the dynamic loader runs the
// resolvers, and the instrumented resolver crashes the program before main (seen with TSan).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define CHIRON_VECTOR_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CHIRON_VECTOR_CLONES
#endif

#ifndef KEEL_SIMD_INTERNAL_H
#define KEEL_SIMD_INTERNAL_H
/* Shared by the kernel files: the target attributes of each level's bodies. */

#if defined(__x86_64__) || defined(__i386__)
#define KEEL_X86 1
#include <immintrin.h>
#define KEEL_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define KEEL_AVX2 __attribute__((target("avx2,fma")))
#else
#define KEEL_X86 0
#endif

#define KEEL_INLINE static inline __attribute__((always_inline))

#endif

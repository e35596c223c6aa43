/* Which SIMD level the kernels run at: detected once, cappable for tests. */
#include "keel_simd.h"
#include "simd_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static keel_simd_level detect_cpu(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return KEEL_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return KEEL_SIMD_AVX2;
#endif
    return KEEL_SIMD_GENERIC;
}

/* KEEL_SIMD=generic|avx2|avx512 lowers the level for a whole run (to compare paths, or to rule
 * one out); it never raises it above what the CPU has. Another value is ignored with a one-line
 * warning, so a typo does not silently leave the widest level on. */
static keel_simd_level detect(void) {
    keel_simd_level level = detect_cpu();
    const char *requested = getenv("KEEL_SIMD");
    if (!requested || !*requested) return level;
    keel_simd_level cap;
    if (strcmp(requested, "generic") == 0) cap = KEEL_SIMD_GENERIC;
    else if (strcmp(requested, "avx2") == 0) cap = KEEL_SIMD_AVX2;
    else if (strcmp(requested, "avx512") == 0) cap = KEEL_SIMD_AVX512;
    else {
        fprintf(stderr, "warning: KEEL_SIMD='%s' is not generic, avx2 or avx512; ignored\n", requested);
        return level;
    }
    return cap < level ? cap : level;
}

/* -1 until first asked. */
static _Atomic int detected_level = -1;
static _Atomic int level_cap = KEEL_SIMD_AVX512;

keel_simd_level keel_simd_detected_level(void) {
    int level = atomic_load_explicit(&detected_level, memory_order_relaxed);
    if (level < 0) {
        level = (int)detect();
        atomic_store_explicit(&detected_level, level, memory_order_relaxed);
    }
    return (keel_simd_level)level;
}

keel_simd_level keel_simd_level_in_use(void) {
    int detected = (int)keel_simd_detected_level();
    int cap = atomic_load_explicit(&level_cap, memory_order_relaxed);
    return (keel_simd_level)(detected < cap ? detected : cap);
}

void keel_simd_limit_level(keel_simd_level level) {
    atomic_store_explicit(&level_cap, (int)level, memory_order_relaxed);
}

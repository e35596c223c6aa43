#ifndef KEEL_SIMD_INTERNAL_H
#define KEEL_SIMD_INTERNAL_H
/* Shared by the kernel files: the target attributes of each level's bodies and their tail masks. */

#if defined(__x86_64__) || defined(__i386__)
#define KEEL_X86 1
#include <immintrin.h>
/* AVX-512F with VL: 256-bit halves in any of the 32 registers (cpu.c requires both). */
#define KEEL_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define KEEL_AVX2 __attribute__((target("avx2,fma")))
/* AVX512_BF16 with the BW/VL forms its 16-bit masked stores need, and prefetchw (every CPU with
 * AVX512_BF16 or AMX has it) for the output lines a block is about to write. */
#define KEEL_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,prfchw")))
#define KEEL_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,prfchw")))
#else
#define KEEL_X86 0
#endif

/* Optimised builds inline the kernels' helpers into their callers; unoptimised ones (debug builds
 * compile C at -O0) call them instead, since -O0 gives every inlined copy its own stack slots:
 * the depthwise NHWC body, inlined, took an 8.2 MB frame and overflowed an 8 MB thread stack. */
#ifdef __OPTIMIZE__
#define KEEL_INLINE static inline __attribute__((always_inline))
#else
#define KEEL_INLINE static inline
#endif

#if KEEL_X86
#include <stddef.h>

/* The first `count` of 16 lanes (none when count <= 0): masks for a vector's ragged tail. */
KEEL_INLINE __mmask16 keel_avx512_lanes(ptrdiff_t count) {
    return (__mmask16)(count >= 16 ? 0xFFFF : count <= 0 ? 0 : (1u << count) - 1);
}

/* The first `count` of 8 lanes all ones, the others zero: maskload/maskstore's form. */
KEEL_INLINE KEEL_AVX2 __m256i keel_avx2_lanes(ptrdiff_t count) {
    __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count < 0 ? 0 : count > 8 ? 8 : count)), index);
}

/* A masked AVX2 store that is a plain store when every lane is kept. AMD's Zen 1–3 run vmaskmovps
 * stores in microcode: on Zen 3 one took 6.4 ns against 0.4 for a plain store, which held
 * MobileNetV2's pointwise and depthwise layers to 2–5 GB/s. Masked loads are fast everywhere. */
KEEL_INLINE KEEL_AVX2 void keel_avx2_store(__m256i mask, float *pointer, __m256 value) {
    int lanes = _mm256_movemask_ps(_mm256_castsi256_ps(mask));
    if (lanes == 0xFF) _mm256_storeu_ps(pointer, value);
    else if (lanes) _mm256_maskstore_ps(pointer, mask, value);
}

/* Masked loads and stores with one argument order for both levels. */
#define KEEL_AVX512_LOAD(mask, pointer) _mm512_maskz_loadu_ps(mask, pointer)
#define KEEL_AVX512_STORE(mask, pointer, value) _mm512_mask_storeu_ps(pointer, mask, value)
#define KEEL_AVX2_LOAD(mask, pointer) _mm256_maskload_ps(pointer, mask)
#define KEEL_AVX2_STORE(mask, pointer, value) keel_avx2_store(mask, pointer, value)

/* Maximum that is NaN when either operand is: max_ps returns its second operand when either is
 * NaN, so only a NaN first operand needs putting back (pooling must not drop a NaN). */
KEEL_INLINE KEEL_AVX512 __m512 keel_avx512_max_nan(__m512 a, __m512 b) {
    return _mm512_mask_mov_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a);
}
KEEL_INLINE KEEL_AVX2 __m256 keel_avx2_max_nan(__m256 a, __m256 b) {
    return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}

/* `value` where `x` ≥ `threshold`, else 0 (and 0 where x is NaN). */
KEEL_INLINE KEEL_AVX512 __m512 keel_avx512_zero_below(__m512 x, float threshold, __m512 value) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(threshold), _CMP_GE_OQ), value);
}
KEEL_INLINE KEEL_AVX2 __m256 keel_avx2_zero_below(__m256 x, float threshold, __m256 value) {
    return _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(threshold), _CMP_GE_OQ), value);
}

/* A vector's lanes folded into one by halves (a tree in a fixed order, so the result does not
 * depend on who calls): log2(lanes) shuffle-and-combine steps where a lane-by-lane scalar chain
 * held a short softmax row to the latency of 16 dependent adds (Swin's 49-key rows: 1.2 ns per
 * value, against 0.5 for ViT's 197). The max is NaN when any lane is. */
#define KEEL_AVX512_FOLD(v, COMBINE)                                                                       \
    v = COMBINE(v, _mm512_shuffle_f32x4(v, v, 0x4E));                                                        \
    v = COMBINE(v, _mm512_shuffle_f32x4(v, v, 0xB1));                                                        \
    v = COMBINE(v, _mm512_permute_ps(v, 0x4E));                                                              \
    v = COMBINE(v, _mm512_permute_ps(v, 0xB1))
#define KEEL_AVX2_FOLD(v, COMBINE)                                                                         \
    v = COMBINE(v, _mm256_permute2f128_ps(v, v, 1));                                                         \
    v = COMBINE(v, _mm256_permute_ps(v, 0x4E));                                                              \
    v = COMBINE(v, _mm256_permute_ps(v, 0xB1))
KEEL_INLINE KEEL_AVX512 float keel_avx512_fold_sum(__m512 v) {
    KEEL_AVX512_FOLD(v, _mm512_add_ps);
    return _mm512_cvtss_f32(v);
}
KEEL_INLINE KEEL_AVX512 float keel_avx512_fold_max(__m512 v) {
    KEEL_AVX512_FOLD(v, keel_avx512_max_nan);
    return _mm512_cvtss_f32(v);
}
KEEL_INLINE KEEL_AVX2 float keel_avx2_fold_sum(__m256 v) {
    KEEL_AVX2_FOLD(v, _mm256_add_ps);
    return _mm256_cvtss_f32(v);
}
KEEL_INLINE KEEL_AVX2 float keel_avx2_fold_max(__m256 v) {
    KEEL_AVX2_FOLD(v, keel_avx2_max_nan);
    return _mm256_cvtss_f32(v);
}

/* `case n: BLOCK(n, ...); break;` for n = 1…6, 8 or 12: a switch that gives each register-block
 * height its own fully unrolled body. */
#define KEEL_CASES_UP_TO_6(BLOCK, ...)                                                              \
    case 1: BLOCK(1, __VA_ARGS__); break; case 2: BLOCK(2, __VA_ARGS__); break;                     \
    case 3: BLOCK(3, __VA_ARGS__); break; case 4: BLOCK(4, __VA_ARGS__); break;                     \
    case 5: BLOCK(5, __VA_ARGS__); break; case 6: BLOCK(6, __VA_ARGS__); break;
#define KEEL_CASES_UP_TO_8(BLOCK, ...)                                                              \
    KEEL_CASES_UP_TO_6(BLOCK, __VA_ARGS__)                                                          \
    case 7: BLOCK(7, __VA_ARGS__); break; case 8: BLOCK(8, __VA_ARGS__); break;
#define KEEL_CASES_UP_TO_12(BLOCK, ...)                                                             \
    KEEL_CASES_UP_TO_8(BLOCK, __VA_ARGS__)                                                          \
    case 9: BLOCK(9, __VA_ARGS__); break; case 10: BLOCK(10, __VA_ARGS__); break;                   \
    case 11: BLOCK(11, __VA_ARGS__); break; case 12: BLOCK(12, __VA_ARGS__); break;
#endif

#endif

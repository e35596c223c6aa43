#ifndef KEEL_SIMD_ACTIVATION_H
#define KEEL_SIMD_ACTIVATION_H
/* The fused epilogue's activations on one vector, per ISA. exp is the usual range reduction
 * x = n·ln2 + r with a degree-6 polynomial for e^r (about 2 ulp); sigmoid, swish and tanh are
 * built on it. Shared by every kernel that fuses an epilogue.
 *
 * NaN stays NaN, as ONNX Runtime's Relu, Clip and Sigmoid keep it: max_ps and min_ps return their
 * second operand when either is NaN, so the clamps here take the value second (MAX(0, x), not
 * MAX(x, 0), which turned a NaN into 0 behind every fused ReLU).
 *
 * GELU is 0.5·x·(1 + erf(x/√2)), as ONNX Runtime and PyTorch compute it, with erf(u) for |u| ≤ 4.1
 * as u·P(u²)/Q(u²), P of degree 6 and Q of degree 5 in u² (fitted by iteratively reweighted least
 * squares; 1.6e-9 from erf in exact arithmetic, a few fp32 ulps as evaluated). Past 4.1 erf is ±1
 * in fp32, and the fit gives exactly ±1 at the clamp, so GELU(x) is exactly x above x ≈ 5.8 and 0
 * below −5.8. The error is absolute in Φ (within 1e-6·|GELU| + 2e-7·|x|, 9e-7 at most, near x = −5):
 * where Φ is tiny the result is no longer accurate in relative terms, as it is not in those
 * runtimes either. An earlier form through erfc (t·e^(−z² + P(t)), a division, a degree-9 polynomial
 * and an exponential) kept 1e-6 relative accuracy there and cost twice as much: 0.65 against 0.32 ns
 * per value on one Zen 4 core, 6% of ConvNeXt's and ViT's time at batch 1. */
#include "keel_epilogue.h"
#include "simd_internal.h"

#if KEEL_X86

/* Vectors the lockstep functions take at once: each step of a function is applied to all of them in
 * turn. One vector's GELU is a chain of dependent operations (two polynomials and a division),
 * which left the FMA ports idle while out-of-order execution did not fill them from the next
 * vector; in lockstep GELU ran 1.8 → 1.1 ns per value on Zen 3 (in its earlier erfc form). Swish,
 * sigmoid and tanh, half as long, measured slower this way inside the GEMM epilogue (the lockstep
 * call cost more than it overlapped), so they stay one vector at a time. The one-vector GELU is the
 * lockstep one on lane 0 (the others fold away). */
enum { LOCKSTEP = 4 };

/* Rounding x·log2e to the integer n by adding 1.5·2^23 in the same FMA (one rounding, to nearest
 * even) leaves n in the sum's low mantissa bits, from which 2^n is built without a round and a
 * conversion: swish ran 8% faster on Zen 3. The sum's bit pattern is EXP_SHIFTER_BITS + n. */
#define EXP_SHIFTER 12582912.0f
#define EXP_SHIFTER_BITS 0x4B400000
#define LOCKSTEP_EACH(j) for (int j = 0; j < LOCKSTEP; j++)

#define DEFINE_ACTIVATIONS(PREFIX, ATTRIBUTE, VEC, IVEC, SET1, ADD, SUB, MUL, DIV, FMADD, MIN, MAX,            \
                           TIMES_POWER_OF_TWO, SELECT_NEGATIVE)                                               \
    /* 2^n · e^r for integral n in [−126, 127] and |r| ≤ ln2/2 (a little past it is fine), n given also \
     * as shifted = n + EXP_SHIFTER (whose low mantissa bits are n); the polynomial by Estrin's scheme, \
     * three levels of FMAs where Horner's chain had six. vscalefps in place of the integer 2^n made   \
     * swish 8% and softmax 2–4% faster on Zen 4, with the same bits. */                               \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_scaled_exp(VEC shifted, VEC n, VEC r) {                                 \
        VEC r2 = MUL(r, r);                                                                                    \
        VEC q0 = FMADD(SET1(1.6666665459e-1f), r, SET1(5.0000001201e-1f));                                    \
        VEC q1 = FMADD(SET1(8.3334519073e-3f), r, SET1(4.1665795894e-2f));                                    \
        VEC q2 = FMADD(SET1(1.9875691500e-4f), r, SET1(1.3981999507e-3f));                                    \
        VEC p = FMADD(FMADD(FMADD(q2, r2, q1), r2, q0), r2, ADD(r, SET1(1.0f)));                               \
        return TIMES_POWER_OF_TWO(p, shifted, n);                                                              \
    }                                                                                                          \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_exp(VEC x) {                                                            \
        x = MIN(SET1(88.37626f), MAX(SET1(-87.33654f), x));                                                    \
        VEC shifted = FMADD(x, SET1(1.44269504088896341f), SET1(EXP_SHIFTER));                                 \
        VEC n = SUB(shifted, SET1(EXP_SHIFTER));                                                               \
        VEC r = FMADD(n, SET1(-0.693359375f), x);                                                              \
        r = FMADD(n, SET1(2.12194440e-4f), r);                                                                 \
        return PREFIX##_scaled_exp(shifted, n, r);                                                             \
    }                                                                                                          \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_sigmoid(VEC x) {                                                        \
        return DIV(SET1(1.0f), ADD(SET1(1.0f), PREFIX##_exp(SUB(SET1(0.0f), x))));                             \
    }                                                                                                          \
    /* x ← GELU(x). The clamp keeps ±inf finite inside; NaN passes through the half, and −inf gives      \
     * −inf + inf = NaN, as ONNX Runtime's 0.5·x·(1 + erf(x/√2)) gives (−inf · 0). */                   \
    KEEL_INLINE ATTRIBUTE void PREFIX##_gelu_lockstep(VEC *x) {                                                \
        VEC u[LOCKSTEP], square[LOCKSTEP], numerator[LOCKSTEP], denominator[LOCKSTEP];                          \
        LOCKSTEP_EACH(j) u[j] = MIN(MAX(MUL(x[j], SET1(0.70710678118654752f)), SET1(-4.1f)), SET1(4.1f));       \
        LOCKSTEP_EACH(j) square[j] = MUL(u[j], u[j]);                                                          \
        LOCKSTEP_EACH(j) {                                                                                     \
            VEC s = square[j];                                                                                 \
            VEC n = FMADD(s, SET1(-1.390114916e-08f), SET1(4.825798829e-06f));                                 \
            n = FMADD(s, n, SET1(3.843600136e-04f));                                                           \
            n = FMADD(s, n, SET1(3.843734529e-03f));                                                           \
            n = FMADD(s, n, SET1(5.436870892e-02f));                                                           \
            n = FMADD(s, n, SET1(1.846914532e-01f));                                                           \
            numerator[j] = MUL(u[j], FMADD(s, n, SET1(1.128379183e+00f)));                                     \
            VEC d = FMADD(s, SET1(6.443693032e-05f), SET1(1.312668623e-03f));                                  \
            d = FMADD(s, d, SET1(1.546781704e-02f));                                                           \
            d = FMADD(s, d, SET1(1.138526767e-01f));                                                           \
            d = FMADD(s, d, SET1(4.970120981e-01f));                                                           \
            denominator[j] = FMADD(s, d, SET1(1.0f));                                                          \
        }                                                                                                      \
        LOCKSTEP_EACH(j) {                                                                                     \
            VEC half = MUL(x[j], SET1(0.5f));                                                                  \
            x[j] = FMADD(half, DIV(numerator[j], denominator[j]), half);                                       \
        }                                                                                                      \
    }                                                                                                          \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_gelu(VEC x) {                                                           \
        VEC lanes[LOCKSTEP] = { x };                                                                           \
        PREFIX##_gelu_lockstep(lanes);                                                                         \
        return lanes[0];                                                                                       \
    }                                                                                                          \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_activate(VEC x, const keel_epilogue *e) {                               \
        switch (e->activation) {                                                                               \
        case KEEL_ACTIVATION_NONE: return x;                                                                   \
        case KEEL_ACTIVATION_RELU: return MAX(SET1(0.0f), x);                                                  \
        case KEEL_ACTIVATION_CLIP: return MIN(SET1(e->parameter1), MAX(SET1(e->parameter0), x));               \
        case KEEL_ACTIVATION_LEAKY_RELU: return SELECT_NEGATIVE(x, MUL(x, SET1(e->parameter0)));               \
        case KEEL_ACTIVATION_SIGMOID: return PREFIX##_sigmoid(x);                                              \
        /* x / (1 + e^−x): one rounding and one operation fewer than x · sigmoid(x). */                        \
        case KEEL_ACTIVATION_SWISH: return DIV(x, ADD(SET1(1.0f), PREFIX##_exp(SUB(SET1(0.0f), x))));          \
        case KEEL_ACTIVATION_HARD_SIGMOID:                                                                     \
            return MIN(SET1(1.0f), MAX(SET1(0.0f), FMADD(x, SET1(e->parameter0), SET1(e->parameter1))));       \
        case KEEL_ACTIVATION_HARD_SWISH:                                                                       \
            return MUL(x, MIN(SET1(1.0f), MAX(SET1(0.0f), ADD(DIV(x, SET1(6.0f)), SET1(0.5f)))));              \
        case KEEL_ACTIVATION_TANH:                                                                             \
            return SUB(MUL(SET1(2.0f), PREFIX##_sigmoid(ADD(x, x))), SET1(1.0f));                              \
        case KEEL_ACTIVATION_GELU: return PREFIX##_gelu(x);                                                    \
        case KEEL_ACTIVATION_GELU_TANH:                                                                        \
            return MUL(x, PREFIX##_sigmoid(MUL(FMADD(MUL(x, x), SET1(0.044715f * 1.5957691216057308f),          \
                                                     SET1(1.5957691216057308f)), x)));                         \
        }                                                                                                      \
        return x;                                                                                              \
    }

/* Lanes of x that are negative take the value of `negative`. */
#define KEEL_AVX512_SELECT_NEGATIVE(x, negative)                                                               \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), x, negative)
#define KEEL_AVX2_SELECT_NEGATIVE(x, negative) _mm256_blendv_ps(x, negative, x)
/* p·2^n, n integral in [−126, 127]: AVX-512 scales by n itself (one vscalefps); AVX2 builds 2^n from
 * `shifted`'s low mantissa bits (n + EXP_SHIFTER), an integer add, a shift and a multiply. */
#define KEEL_AVX512_TIMES_POWER_OF_TWO(p, shifted, n) _mm512_scalef_ps(p, n)
#define KEEL_AVX2_TIMES_POWER_OF_TWO(p, shifted, n)                                                            \
    _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(                                                    \
                         _mm256_add_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(127 - EXP_SHIFTER_BITS)), 23)))

/* Each ISA file instantiates its own: KEEL_AVX512_ACTIVATIONS defines keel_avx512_exp,
 * keel_avx512_sigmoid and keel_avx512_activate; KEEL_AVX2_ACTIVATIONS the keel_avx2_ ones. */
#define KEEL_AVX512_ACTIVATIONS                                                                                \
    DEFINE_ACTIVATIONS(keel_avx512, KEEL_AVX512, __m512, __m512i, _mm512_set1_ps, _mm512_add_ps, _mm512_sub_ps, \
                       _mm512_mul_ps, _mm512_div_ps, _mm512_fmadd_ps, _mm512_min_ps, _mm512_max_ps,           \
                       KEEL_AVX512_TIMES_POWER_OF_TWO, KEEL_AVX512_SELECT_NEGATIVE)
#define KEEL_AVX2_ACTIVATIONS                                                                                  \
    DEFINE_ACTIVATIONS(keel_avx2, KEEL_AVX2, __m256, __m256i, _mm256_set1_ps, _mm256_add_ps, _mm256_sub_ps,     \
                       _mm256_mul_ps, _mm256_div_ps, _mm256_fmadd_ps, _mm256_min_ps, _mm256_max_ps,           \
                       KEEL_AVX2_TIMES_POWER_OF_TWO, KEEL_AVX2_SELECT_NEGATIVE)

#endif
#endif

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
 * GELU x·Φ(x) is computed through erfc so that it stays accurate in relative terms where Φ is
 * tiny (x ≪ 0), which 0.5·x·(1 + erf(x/√2)) in fp32 is not: with z = |x|/√2 and t = 1/(1 + z/2),
 * erfc(z) = t·exp(−z² + P(t)), P a degree-9 polynomial fitted (weighted least squares, relative
 * error 5e-8 over z ∈ [0, 10]) to log(erfc(z)/t) + z². z² = x²/2 is split into its rounded value
 * and the rounding error (an FMA), and e^(−z² + P − error) is taken as one exponential whose range
 * reduction subtracts n·ln2 from −z² alone (exactly) before adding P − error to the remainder:
 * rounding −z² + P to one float near −40 would lose 2e-6. (Two exponentials, e^(−z²)·e^(P − error),
 * were as accurate and a fifth slower.) Within 1e-6 relative of the exact
 * GELU for |x| ≤ 9 (about 5e-7 measured); below x ≈ −13, where the exact value is a denormal, the
 * clamped exponentials give a value of magnitude under 1e-37 instead. */
#include "keel_epilogue.h"
#include "simd_internal.h"

#if KEEL_X86

/* Vectors the lockstep functions take at once: each step of a function is applied to all of them in
 * turn. One vector's GELU is a chain of about 80 cycles of dependent operations (a division, two
 * polynomials, an exponential), which left the FMA ports idle while out-of-order execution did not
 * fill them from the next vector; in lockstep GELU ran 1.8 → 1.1 ns per value on Zen 3. Swish,
 * sigmoid and tanh, half as long, measured slower this way inside the GEMM epilogue (the lockstep
 * call cost more than it overlapped), so they stay one vector at a time. The one-vector GELU is the
 * lockstep one on lane 0 (the others fold away); the exponential inside stays one vector at a time
 * (in lockstep too it was no faster, and inlined at every activation it made the kernels take 5×
 * as long to compile). */
enum { LOCKSTEP = 4 };

/* Rounding x·log2e to the integer n by adding 1.5·2^23 in the same FMA (one rounding, to nearest
 * even) leaves n in the sum's low mantissa bits, from which 2^n is built without a round and a
 * conversion: swish ran 8% faster on Zen 3. The sum's bit pattern is EXP_SHIFTER_BITS + n. */
#define EXP_SHIFTER 12582912.0f
#define EXP_SHIFTER_BITS 0x4B400000
#define LOCKSTEP_EACH(j) for (int j = 0; j < LOCKSTEP; j++)

#define DEFINE_ACTIVATIONS(PREFIX, ATTRIBUTE, VEC, IVEC, SET1, ADD, SUB, MUL, DIV, FMADD, FMSUB, MIN, MAX,     \
                           TIMES_POWER_OF_TWO, SELECT_NEGATIVE, SELECT_BY_SIGN)                               \
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
    /* e^(a + b) without rounding a + b to one float: a is reduced by n·ln2 (exactly, as in exp) and b       \
     * added to the small remainder. Needs a + b in [−87.3, 88.3] and |b| small next to |a|'s range. */      \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_exp_of_sum(VEC a, VEC b) {                                              \
        VEC shifted = FMADD(ADD(a, b), SET1(1.44269504088896341f), SET1(EXP_SHIFTER));                         \
        VEC n = SUB(shifted, SET1(EXP_SHIFTER));                                                               \
        VEC r = FMADD(n, SET1(-0.693359375f), a);                                                              \
        r = ADD(FMADD(n, SET1(2.12194440e-4f), r), b);                                                         \
        return PREFIX##_scaled_exp(shifted, n, r);                                                             \
    }                                                                                                          \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_sigmoid(VEC x) {                                                        \
        return DIV(SET1(1.0f), ADD(SET1(1.0f), PREFIX##_exp(SUB(SET1(0.0f), x))));                             \
    }                                                                                                          \
    /* x ← GELU(x). */                                                                                         \
    KEEL_INLINE ATTRIBUTE void PREFIX##_gelu_lockstep(VEC *x) {                                                \
        VEC z[LOCKSTEP], t[LOCKSTEP], p[LOCKSTEP], exponent[LOCKSTEP], rest[LOCKSTEP];                         \
        /* |x| capped at 20 (beyond it the tail is under 1e-37 either way) keeps ±inf finite inside. */         \
        LOCKSTEP_EACH(j) z[j] = MIN(MAX(x[j], SUB(SET1(0.0f), x[j])), SET1(20.0f));                            \
        LOCKSTEP_EACH(j) t[j] = DIV(SET1(1.0f), FMADD(z[j], SET1(0.35355339059327376f), SET1(1.0f)));          \
        LOCKSTEP_EACH(j) {                                                                                     \
            /* P(t) = Σ c_i·t^i (c_0 = −1.2654…, c_9 = 0.1423…) by Estrin's scheme. */                         \
            VEC t2 = MUL(t[j], t[j]), t4 = MUL(t2, t2);                                                        \
            VEC g0 = FMADD(SET1(0.998495876789093f), t[j], SET1(-1.2654415369033813f));                        \
            VEC g1 = FMADD(SET1(0.028554458171129227f), t[j], SET1(0.38786450028419495f));                     \
            VEC g2 = FMADD(SET1(-0.11539376527070999f), t[j], SET1(0.019533643499016762f));                    \
            VEC g3 = FMADD(SET1(1.1239129304885864f), t[j], SET1(-0.653101921081543f));                        \
            VEC g4 = FMADD(SET1(0.14232930541038513f), t[j], SET1(-0.6667534112930298f));                      \
            p[j] = FMADD(FMADD(FMADD(g4, t2, g3), t2, g2), t4, FMADD(g1, t2, g0));                             \
        }                                                                                                      \
        LOCKSTEP_EACH(j) {                                                                                     \
            VEC square = MUL(z[j], z[j]);                                                                      \
            VEC error = FMSUB(z[j], z[j], square);                                                             \
            /* −z² ≥ −86 keeps the exponent normal (P is within [−1.27, 0.01]); it binds only past |x| ≈ 18.5. */ \
            exponent[j] = MAX(MUL(square, SET1(-0.5f)), SET1(-86.0f));                                         \
            rest[j] = FMADD(error, SET1(-0.5f), p[j]);                                                         \
        }                                                                                                      \
        LOCKSTEP_EACH(j) exponent[j] = PREFIX##_exp_of_sum(exponent[j], rest[j]);                              \
        LOCKSTEP_EACH(j) {                                                                                     \
            VEC tail = MUL(MUL(SET1(0.5f), t[j]), exponent[j]);                                                \
            /* The negative side multiplies by max(x, −20) so that a large finite −x gives (−)0; x·0 (−0   \
             * for finite x) then makes −inf NaN, as ONNX Runtime's 0.5·x·(1 + erf(x/√2)) gives (−inf · 0). */  \
            x[j] = SELECT_BY_SIGN(x[j], MUL(x[j], SUB(SET1(1.0f), tail)),                                      \
                                  ADD(MUL(MAX(x[j], SET1(-20.0f)), tail), MUL(x[j], SET1(0.0f))));             \
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
/* `negative` where x < 0, else `other`. */
#define KEEL_AVX512_SELECT_BY_SIGN(x, other, negative)                                                         \
    _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), other, negative)
#define KEEL_AVX2_SELECT_BY_SIGN(x, other, negative)                                                           \
    _mm256_blendv_ps(other, negative, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ))
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
                       _mm512_mul_ps, _mm512_div_ps, _mm512_fmadd_ps, _mm512_fmsub_ps, _mm512_min_ps,           \
                       _mm512_max_ps, KEEL_AVX512_TIMES_POWER_OF_TWO, KEEL_AVX512_SELECT_NEGATIVE,              \
                       KEEL_AVX512_SELECT_BY_SIGN)
#define KEEL_AVX2_ACTIVATIONS                                                                                  \
    DEFINE_ACTIVATIONS(keel_avx2, KEEL_AVX2, __m256, __m256i, _mm256_set1_ps, _mm256_add_ps, _mm256_sub_ps,     \
                       _mm256_mul_ps, _mm256_div_ps, _mm256_fmadd_ps, _mm256_fmsub_ps, _mm256_min_ps,           \
                       _mm256_max_ps, KEEL_AVX2_TIMES_POWER_OF_TWO, KEEL_AVX2_SELECT_NEGATIVE,                  \
                       KEEL_AVX2_SELECT_BY_SIGN)

#endif
#endif

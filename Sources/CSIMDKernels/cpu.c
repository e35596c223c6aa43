/* The CPU capability set, detected once, and the kernel table filled from it.
 *
 * KEEL_SIMD narrows the capabilities for a whole run (to compare paths, or to rule one out); it
 * never adds one the CPU lacks. It is a comma-separated list of names:
 *   generic      none of Keel's own SIMD kernels
 *   avx2         AVX2+FMA only
 *   avx512       the AVX-512 family: AVX-512F+VL and, where present, AVX512_BF16 and AMX
 *   avx512bf16   AVX-512F and AVX512_BF16, no AMX
 *   amx          everything up to AMX
 *   neon         Arm Advanced SIMD
 * Names without a sign are united (none given: everything the CPU has); `-name` then removes that
 * capability and those built on it (-avx512 also removes AVX512_BF16 and AMX; -avx512bf16 removes
 * AMX, whose kernels convert with AVX512_BF16). So `KEEL_SIMD=avx512,-amx` runs the AVX512_BF16
 * kernels on an AMX machine. An unknown name is ignored with a one-line warning, so a typo does
 * not silently leave everything on. */
#include "keel_kernels.h"
#include "isa_entries.h"
#include "line_matrices.h"
#include "panel_gemm.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
#include <sys/syscall.h>
#include <unistd.h>
#endif

enum {
    ALL = KEEL_CPU_AVX2 | KEEL_CPU_AVX512 | KEEL_CPU_AVX512_BF16 | KEEL_CPU_AMX_BF16 | KEEL_CPU_NEON,
    /* What each capability's kernels also use: removing one removes those that need it. */
    NEEDS_AVX2 = KEEL_CPU_AVX2 | KEEL_CPU_AVX512 | KEEL_CPU_AVX512_BF16 | KEEL_CPU_AMX_BF16,
    NEEDS_AVX512 = KEEL_CPU_AVX512 | KEEL_CPU_AVX512_BF16 | KEEL_CPU_AMX_BF16,
    NEEDS_AVX512_BF16 = KEEL_CPU_AVX512_BF16 | KEEL_CPU_AMX_BF16,
};

/* Linux keeps the 8 KB AMX tile state off until a process asks for it (arch_prctl). */
static int linux_grants_amx(void) {
#if defined(__linux__) && (defined(__x86_64__) || defined(__i386__))
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

static uint32_t detect_cpu(void) {
    uint32_t found = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the wider registers. */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) found |= KEEL_CPU_AVX2;
    /* The AVX-512 kernels multiply short tails on 256-bit EVEX halves (AVX-512VL), which every
     * AVX-512 CPU but the Xeon Phis has; those run the AVX2 kernels. */
    if ((found & KEEL_CPU_AVX2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
        found |= KEEL_CPU_AVX512;
    unsigned eax, ebx, ecx, edx;
    /* The bf16 kernels also use AVX-512BW (16-bit masked stores), which every such CPU has. */
    if ((found & KEEL_CPU_AVX512) && __builtin_cpu_supports("avx512bw")
        && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5)))
        found |= KEEL_CPU_AVX512_BF16;
    /* CPUID.7.0:EDX bit 22 is AMX-BF16, bit 24 AMX-TILE. */
    if ((found & KEEL_CPU_AVX512_BF16) && __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)
        && (edx & (1u << 22)) && (edx & (1u << 24)))
        found |= KEEL_CPU_AMX_BF16;
#elif defined(__aarch64__)
    found |= KEEL_CPU_NEON;
#endif
    return found;
}

static uint32_t named(const char *name, size_t length) {
    static const struct { const char *name; uint32_t set; } names[] = {
        { "generic", 0 },
        { "avx2", KEEL_CPU_AVX2 },
        { "avx512", NEEDS_AVX2 },
        { "avx512bf16", KEEL_CPU_AVX2 | KEEL_CPU_AVX512 | KEEL_CPU_AVX512_BF16 },
        { "amx", NEEDS_AVX2 },
        { "neon", KEEL_CPU_NEON },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == length && strncmp(names[i].name, name, length) == 0) return names[i].set;
    return UINT32_MAX;
}

/* What `-name` removes. */
static uint32_t removed_by(const char *name, size_t length) {
    uint32_t set = named(name, length);
    if (set == UINT32_MAX) return set;
    if (length == 4 && strncmp(name, "avx2", 4) == 0) return NEEDS_AVX2;
    if (length == 6 && strncmp(name, "avx512", 6) == 0) return NEEDS_AVX512;
    if (length == 10 && strncmp(name, "avx512bf16", 10) == 0) return NEEDS_AVX512_BF16;
    if (length == 3 && strncmp(name, "amx", 3) == 0) return KEEL_CPU_AMX_BF16;
    return set;
}

static uint32_t allowed_by_environment(void) {
    const char *request = getenv("KEEL_SIMD");
    if (!request || !*request) return ALL;
    uint32_t wanted = 0, unwanted = 0;
    int any_wanted = 0;
    for (const char *token = request; *token;) {
        size_t length = strcspn(token, ",");
        int negative = token[0] == '-';
        const char *name = token + negative;
        size_t name_length = length - (size_t)negative;
        uint32_t set = negative ? removed_by(name, name_length) : named(name, name_length);
        if (set == UINT32_MAX) {
            fprintf(stderr, "warning: KEEL_SIMD name '%.*s' is not generic, avx2, avx512, avx512bf16, amx or neon; "
                            "ignored\n", (int)length, token);
        } else if (negative) {
            unwanted |= set;
        } else {
            wanted |= set;
            any_wanted = 1;
        }
        token += length;
        if (*token == ',') token++;
    }
    return (any_wanted ? wanted : ALL) & ~unwanted;
}

/* -1 until first asked. */
static _Atomic int64_t detected = -1;
static _Atomic uint32_t in_use_mask = ALL;
static keel_kernel_table tables[ALL + 1];
static _Atomic(const keel_kernel_table *) current = NULL;

uint32_t keel_cpu_detected(void) {
    int64_t value = atomic_load_explicit(&detected, memory_order_acquire);
    if (value < 0) {
        uint32_t allowed = allowed_by_environment();
        uint32_t found = detect_cpu() & allowed;
        if ((found & KEEL_CPU_AMX_BF16) && !linux_grants_amx()) found &= ~(uint32_t)KEEL_CPU_AMX_BF16;
        value = found;
        atomic_store_explicit(&detected, value, memory_order_release);
    }
    return (uint32_t)value;
}

/* The table for a capability set: each entry from the widest ISA that has a body for it. */
static void fill(keel_kernel_table *table, uint32_t capabilities) {
    memset(table, 0, sizeof *table);
#if defined(__x86_64__) || defined(__i386__)
#define KEEL_USE_FP32_KERNELS(PREFIX, ROWS, SPLIT)                                                          \
    table->sgemm = keel_##PREFIX##_sgemm;                                                                   \
    table->sgemm_prologue = keel_##PREFIX##_sgemm_prologue;                                                 \
    table->sgemm_rows = ROWS;                                                                               \
    table->sgemm_split_panels = SPLIT;                                                                      \
    table->depthwise_conv = keel_##PREFIX##_depthwise_conv;                                                 \
    table->grouped_conv = keel_##PREFIX##_grouped_conv;                                                     \
    table->direct_conv_rows = keel_##PREFIX##_direct_conv_rows;                                             \
    table->winograd_input_tile = keel_##PREFIX##_winograd_input_tile;                                       \
    table->winograd_output_tile = keel_##PREFIX##_winograd_output_tile;                                     \
    table->winograd2_input_tile = keel_##PREFIX##_winograd2_input_tile;                                     \
    table->winograd2_output_tile = keel_##PREFIX##_winograd2_output_tile;                                   \
    table->winograd_filter_transform = keel_##PREFIX##_winograd_filter_transform;                         \
    table->line_transform = keel_##PREFIX##_line_transform;
    if (capabilities & KEEL_CPU_AVX512) {
        KEEL_USE_FP32_KERNELS(avx512, AVX512_ROWS, 0)
    } else if (capabilities & KEEL_CPU_AVX2) {
        KEEL_USE_FP32_KERNELS(avx2, AVX2_ROWS, 1)
    }
#undef KEEL_USE_FP32_KERNELS
    if (capabilities & KEEL_CPU_AVX512) {
        table->softmax_rows = keel_avx512_softmax_rows;
        table->layer_norm_rows = keel_avx512_layer_norm_rows;
        table->activate_rows = keel_avx512_activate_rows;
        table->pool_rows = keel_avx512_pool_rows;
        table->scaled_transpose = keel_avx512_scaled_transpose;
    } else if (capabilities & KEEL_CPU_AVX2) {
        table->softmax_rows = keel_avx2_softmax_rows;
        table->layer_norm_rows = keel_avx2_layer_norm_rows;
        table->activate_rows = keel_avx2_activate_rows;
        table->pool_rows = keel_avx2_pool_rows;
        table->scaled_transpose = keel_avx2_scaled_transpose;
    }
    if (capabilities & KEEL_CPU_AMX_BF16) {
        table->bf16_conv = keel_amx_bf16_conv;
        table->bf16_conv_direct = keel_amx_bf16_conv_direct;
    }
    else if (capabilities & KEEL_CPU_AVX512_BF16) table->bf16_conv = keel_avx512bf16_bf16_conv;
    if (capabilities & KEEL_CPU_AVX512_BF16) {
        table->depthwise_conv_bf16 = keel_avx512bf16_depthwise_conv;
        table->bf16_scale_depth = keel_avx512bf16_scale_depth;
    }
#else
    (void)capabilities;
#endif
}

static void publish(uint32_t capabilities) {
    keel_kernel_table *table = &tables[capabilities & ALL];
    fill(table, capabilities);
    atomic_store_explicit(&in_use_mask, capabilities, memory_order_relaxed);
    atomic_store_explicit(&current, table, memory_order_release);
}

uint32_t keel_cpu_in_use(void) {
    (void)keel_kernels();
    return atomic_load_explicit(&in_use_mask, memory_order_relaxed);
}

void keel_cpu_restrict(uint32_t allowed) { publish(keel_cpu_detected() & allowed); }

const keel_kernel_table *keel_kernels(void) {
    const keel_kernel_table *table = atomic_load_explicit(&current, memory_order_acquire);
    if (table) return table;
    publish(keel_cpu_detected());
    return atomic_load_explicit(&current, memory_order_acquire);
}

const float *keel_line_matrix(int kind, int *rows, int *columns) {
    static const struct { const float *values; int rows, columns; } matrices[] = {
        [KEEL_LINE_INPUT_6] = {keel_line_input_6, 6, 6},    [KEEL_LINE_OUTPUT_6] = {keel_line_output_6, 4, 6},
        [KEEL_LINE_INPUT_8] = {keel_line_input_8, 8, 8},    [KEEL_LINE_OUTPUT_8] = {keel_line_output_8, 4, 8},
        [KEEL_LINE_INPUT_10] = {keel_line_input_10, 10, 10}, [KEEL_LINE_OUTPUT_10] = {keel_line_output_10, 4, 10},
    };
    if (kind <= KEEL_LINE_GENERIC || kind > KEEL_LINE_OUTPUT_10) return NULL;
    *rows = matrices[kind].rows;
    *columns = matrices[kind].columns;
    return matrices[kind].values;
}

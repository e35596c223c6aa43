/* Keel's fp32 GEMM against OpenBLAS's sgemm on the (m, k, n) products the benchmark models run, one
 * thread. Keel is timed with B read in place from a row-major matrix and with B packed once into
 * panels (how prepared weights reach it); OpenBLAS with its own packing included, as every call
 * pays it. Prints GFLOP/s (best of several repetitions, in this thread's CPU time so that other
 * processes taking the core do not count) and the largest difference from OpenBLAS.
 * With GEMM_BENCH_SPLIT=1 it instead times one thread's share of each product split over two
 * threads by rows and by columns (PanelGEMM.columnSplitRatio). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keel_kernels.h"

void openblas_set_num_threads(int);
char *openblas_get_corename(void);

struct shape { const char *model; long m, k, n; };

static const struct shape shapes[] = {
    { "vgg16 block3", 3136, 2304, 256 },
    { "vgg16 block4", 784, 4608, 512 },
    { "vgg16 block5", 196, 4608, 512 },
    { "resnet50 stem", 12544, 147, 64 },
    { "resnet50 1x1", 3136, 64, 256 },
    { "resnet50 1x1", 3136, 256, 64 },
    { "resnet50 3x3", 3136, 576, 64 },
    { "resnet50 1x1", 784, 512, 128 },
    { "resnet50 1x1", 784, 128, 512 },
    { "resnet50 3x3", 784, 1152, 128 },
    { "resnet50 1x1", 196, 1024, 256 },
    { "resnext50 1x1", 196, 1024, 512 },
    { "resnext50 1x1", 196, 1024, 1024 },
    { "rows 4 KB + 64 B apart", 196, 1040, 512 },
    { "resnet50 1x1", 196, 256, 1024 },
    { "resnet50 3x3", 196, 2304, 256 },
    { "resnet50 1x1", 49, 2048, 512 },
    { "resnet50 1x1", 49, 512, 2048 },
    { "resnet50 3x3", 49, 4608, 512 },
    { "mobilenetv2 1x1", 12544, 32, 16 },
    { "mobilenetv2 1x1", 12544, 16, 96 },
    { "efficientnetv2 1x1", 3136, 192, 48 },
    { "efficientnetv2 1x1", 3136, 48, 192 },
    { "mnasnet 1x1", 12544, 16, 48 },
    { "mobilenetv2 1x1", 3136, 144, 24 },
    { "mnasnet 1x1", 3136, 72, 24 },
    { "mnasnet 1x1", 784, 120, 40 },
    { "mobilenetv3 1x1", 3136, 24, 72 },
    { "mobilenetv2 1x1", 3136, 24, 144 },
    { "mobilenetv2 1x1", 784, 192, 32 },
    { "mobilenetv2 1x1", 196, 384, 64 },
    { "mobilenetv2 1x1", 196, 576, 96 },
    { "mobilenetv2 1x1", 49, 960, 160 },
    { "mobilenetv2 1x1", 49, 320, 1280 },
    { "mobilenetv4 3x3s2", 3136, 288, 32 },
    { "mobilenetv4 3x3s2", 784, 288, 96 },
    { "vit attention qk", 197, 64, 197 },
    { "vit attention pv", 197, 197, 64 },
    { "vit_s_16 qkv", 197, 384, 1152 },
    { "vit_s_16 proj", 197, 384, 384 },
    { "vit_s_16 mlp1", 197, 384, 1536 },
    { "vit_s_16 mlp2", 197, 1536, 384 },
    { "vit_b_16 qkv", 197, 768, 2304 },
    { "vit_b_16 proj", 197, 768, 768 },
    { "vit_b_16 mlp1", 197, 768, 3072 },
    { "vit_b_16 mlp2", 197, 3072, 768 },
    { "xception 1x1", 21609, 64, 128 },
    { "xception 1x1", 21609, 128, 128 },
    { "xception 1x1", 5476, 128, 256 },
    { "xception 1x1", 5476, 256, 256 },
    { "xception 1x1", 361, 728, 728 },
    { "xception 1x1", 1369, 256, 256 },
    { "xception 1x1", 100, 1024, 1536 },
    { "densenet 1x1", 49, 992, 128 },
    { "densenet 1x1", 784, 480, 128 },
    { "inception 1x1", 289, 768, 192 },
    { "convnext 1x1", 3136, 96, 384 },
    { "convnext 1x1", 3136, 384, 96 },
    { "convnext 1x1", 196, 384, 1536 },
    { "convnext 1x1", 196, 1536, 384 },
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* [k][n] row-major into 32-column panels, the last zero-padded: [panel][k][32], or as two [k][16]
 * halves where the kernel table asks for split panels (GEMM_BENCH_INTERLEAVED=1 keeps them
 * interleaved, to compare). */
static int split_panels(void) {
    const char *interleaved = getenv("GEMM_BENCH_INTERLEAVED");
    return keel_kernels()->sgemm_split_panels && !(interleaved && *interleaved == '1');
}

static keel_gemm_right panel_operand(const float *panels, long k) {
    return split_panels() ? (keel_gemm_right){ panels, 16, k * KEEL_PANEL_COLUMNS, 1, 16 * k }
                          : (keel_gemm_right){ panels, KEEL_PANEL_COLUMNS, k * KEEL_PANEL_COLUMNS, 1, 16 };
}

static void pack_panels(const float *b, long k, long n, float *panels) {
    long count = (n + KEEL_PANEL_COLUMNS - 1) / KEEL_PANEL_COLUMNS;
    memset(panels, 0, sizeof(float) * count * k * KEEL_PANEL_COLUMNS);
    const int split = split_panels();
    for (long j = 0; j < n; j++) {
        float *panel = panels + (j / KEEL_PANEL_COLUMNS) * k * KEEL_PANEL_COLUMNS;
        long lane = j % KEEL_PANEL_COLUMNS;
        for (long p = 0; p < k; p++) {
            if (split) panel[(lane / 16) * 16 * k + p * 16 + lane % 16] = b[p * n + j];
            else panel[p * KEEL_PANEL_COLUMNS + lane] = b[p * n + j];
        }
    }
}

enum { OPENBLAS, KEEL_ROW_MAJOR, KEEL_PANELS };

/* One thread's share of a product split over two threads: the first half of the rows, or the
 * first half of the panels (each thread then packs every row of A). */
static double half_share(int by_rows, const struct shape *s, const float *a, const float *panels, float *c,
                         double seconds) {
    const keel_kernel_table *table = keel_kernels();
    long m = s->m, k = s->k, n = s->n, panel_count = (n + KEEL_PANEL_COLUMNS - 1) / KEEL_PANEL_COLUMNS;
    long rows = by_rows ? (m + 1) / 2 : m;
    long columns = by_rows ? n : ((panel_count + 1) / 2) * KEEL_PANEL_COLUMNS;
    if (columns > n) columns = n;
    double best = 1e30, spent = 0;
    for (int round = 0; round < 4 || (spent < seconds && round < 1000); round++) {
        double start = now();
        table->sgemm(rows, columns, k, (keel_gemm_left){ a, k, 1, 0, 0 }, panel_operand(panels, k), c, n, NULL);
        double elapsed = now() - start;
        if (round > 0) { spent += elapsed; if (elapsed < best) best = elapsed; }
    }
    return best * 1e3;
}

static void run(int which, const struct shape *s, const float *a, const float *b, const float *panels, float *c) {
    const keel_kernel_table *table = keel_kernels();
    long m = s->m, k = s->k, n = s->n;
    if (which == OPENBLAS) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
    } else if (which == KEEL_ROW_MAJOR) {
        table->sgemm(m, n, k, (keel_gemm_left){ a, k, 1, 0, 0 }, (keel_gemm_right){ b, n, KEEL_PANEL_COLUMNS, 0, 16 }, c,
                     n, NULL);
    } else {
        table->sgemm(m, n, k, (keel_gemm_left){ a, k, 1, 0, 0 }, panel_operand(panels, k), c, n, NULL);
    }
}

/* Best GFLOP/s over repetitions lasting about `seconds` in all. */
static double measure(int which, const struct shape *s, const float *a, const float *b, const float *panels, float *c,
                      double seconds) {
    double flops = 2.0 * s->m * s->k * s->n, best = 1e30, spent = 0;
    run(which, s, a, b, panels, c);
    for (int round = 0; round < 3 || (spent < seconds && round < 1000); round++) {
        double start = now();
        run(which, s, a, b, panels, c);
        double elapsed = now() - start;
        spent += elapsed;
        if (elapsed < best) best = elapsed;
    }
    return flops / best * 1e-9;
}

/* GFLOP/s with B's panels cold, as in a model, where each layer's weights come from memory: every
 * call reads another of enough copies to overflow the last-level cache (GEMM_BENCH_COLD=MB, 256 by
 * default). A stays warm, as a layer's input written just before. With `cold_left`
 * (GEMM_BENCH_COLD_A=MB) A is the cold one instead: a layer's input at batch 8, megabytes written
 * a whole layer earlier; B stays warm. */
static double measure_cold(const struct shape *s, const float *a, const float *panels, float *c, double seconds,
                           int cold_left) {
    const keel_kernel_table *table = keel_kernels();
    long panel_floats = (s->n + KEEL_PANEL_COLUMNS - 1) / KEEL_PANEL_COLUMNS * s->k * KEEL_PANEL_COLUMNS;
    long floats = cold_left ? s->m * s->k : panel_floats;
    const char *setting = getenv(cold_left ? "GEMM_BENCH_COLD_A" : "GEMM_BENCH_COLD");
    long megabytes = atol(setting) > 0 ? atol(setting) : 256;
    long copies = megabytes * 1024 * 1024 / (long)(sizeof(float) * floats) + 2;
    float *pool = malloc(sizeof(float) * floats * copies);
    if (!pool) { fprintf(stderr, "gemm_bench: out of memory\n"); exit(1); }
    for (long i = 0; i < copies; i++) memcpy(pool + i * floats, cold_left ? a : panels, sizeof(float) * floats);
    double flops = 2.0 * s->m * s->k * s->n, best = 1e30, spent = 0;
    for (int round = 0; round < 3 || (spent < seconds && round < 1000); round++) {
        const float *copy = pool + (round % copies) * floats;
        double start = now();
        table->sgemm(s->m, s->n, s->k, (keel_gemm_left){ cold_left ? copy : a, s->k, 1, 0, 0 },
                     panel_operand(cold_left ? panels : copy, s->k), c, s->n, NULL);
        double elapsed = now() - start;
        spent += elapsed;
        if (elapsed < best) best = elapsed;
    }
    free(pool);
    return flops / best * 1e-9;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0.3;
    const char *only = argc > 2 ? argv[2] : NULL;
    openblas_set_num_threads(1);
    printf("OpenBLAS core: %s\n", openblas_get_corename());
    if (!keel_kernels()->sgemm) {
        fprintf(stderr, "gemm_bench: this CPU has no Keel sgemm kernel (needs AVX2 or AVX-512)\n");
        return 1;
    }
    printf("%-16s %6s %5s %5s %9s %9s %9s %7s %9s\n", "shape", "m", "k", "n", "OpenBLAS", "Keel", "Keel-pk",
           "ratio", "max diff");
    double log_ratio = 0;
    int counted = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct shape *s = &shapes[i];
        if (only && !strstr(s->model, only)) continue;
        long panels_count = (s->n + KEEL_PANEL_COLUMNS - 1) / KEEL_PANEL_COLUMNS;
        float *a = malloc(sizeof(float) * s->m * s->k), *b = malloc(sizeof(float) * s->k * s->n);
        float *panels = malloc(sizeof(float) * panels_count * s->k * KEEL_PANEL_COLUMNS);
        float *reference = malloc(sizeof(float) * s->m * s->n), *c = malloc(sizeof(float) * s->m * s->n);
        if (!a || !b || !panels || !reference || !c) { fprintf(stderr, "gemm_bench: out of memory\n"); return 1; }
        srand(7);
        for (long j = 0; j < s->m * s->k; j++) a[j] = (float)rand() / (float)RAND_MAX - 0.5f;
        for (long j = 0; j < s->k * s->n; j++) b[j] = (float)rand() / (float)RAND_MAX - 0.5f;
        pack_panels(b, s->k, s->n, panels);
        if (getenv("GEMM_BENCH_SPLIT")) {
            double by_rows = half_share(1, s, a, panels, c, seconds), by_columns = half_share(0, s, a, panels, c, seconds);
            printf("%-16s %6ld %5ld %5ld  one thread's half: rows %.3f ms, columns %.3f ms (columns/rows %.2f)\n",
                   s->model, s->m, s->k, s->n, by_rows, by_columns, by_columns / by_rows);
            free(a); free(b); free(panels); free(reference); free(c);
            continue;
        }
        if (getenv("GEMM_BENCH_COLD") || getenv("GEMM_BENCH_COLD_A")) {
            const int cold_left = getenv("GEMM_BENCH_COLD_A") != NULL;
            printf("%-16s %6ld %5ld %5ld %9s %9s %9.1f   (%s cold: a new copy each call)\n", s->model, s->m, s->k, s->n,
                   "-", "-", measure_cold(s, a, panels, c, seconds, cold_left), cold_left ? "A" : "B's panels");
            free(a); free(b); free(panels); free(reference); free(c);
            continue;
        }
        double blas = measure(OPENBLAS, s, a, b, panels, reference, seconds);
        double keel = measure(KEEL_ROW_MAJOR, s, a, b, panels, c, seconds);
        double packed = measure(KEEL_PANELS, s, a, b, panels, c, seconds);
        double diff = 0;
        for (long j = 0; j < s->m * s->n; j++) diff = fmax(diff, fabs(c[j] - reference[j]));
        printf("%-16s %6ld %5ld %5ld %9.1f %9.1f %9.1f %7.2f %9.2g\n", s->model, s->m, s->k, s->n, blas, keel, packed,
               packed / blas, diff);
        log_ratio += log(packed / blas);
        counted++;
        free(a); free(b); free(panels); free(reference); free(c);
    }
    if (counted) printf("geometric mean Keel-pk / OpenBLAS: %.2f\n", exp(log_ratio / counted));
    return 0;
}

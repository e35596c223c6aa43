/* The persistent worker pool (keel_worker_pool.h). One job at a time: the caller publishes a job
 * descriptor on its own stack through `current` and bumps `epoch`; workers claim chunks with an
 * atomic counter. Workers protect the descriptor with a hazard slot (set, then re-check
 * `current`), and the caller clears `current` and waits for the slots before its stack frame goes
 * away, so a worker that wakes late never reads a dead or reused descriptor. */
#define _GNU_SOURCE
#include "keel_worker_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

enum { MAX_WORKERS = 63 };

typedef struct {
    keel_chunk_fn body;
    void *context;
    ptrdiff_t chunks;
    _Atomic ptrdiff_t next_chunk;
    _Atomic ptrdiff_t finished_chunks;
    /* 1 once every chunk has finished; the caller sleeps on it. */
    _Atomic uint32_t complete;
    _Atomic int caller_sleeping;
} pool_job;

static struct {
    _Atomic(pool_job *) current;
    _Atomic uint32_t epoch;
    _Atomic int sleepers;
    _Atomic(pool_job *) hazard[MAX_WORKERS];
    _Atomic int busy;
    _Atomic int workers;
    _Atomic int spin_microseconds;
    pthread_mutex_t grow_lock;
} pool = {.spin_microseconds = 50, .grow_lock = PTHREAD_MUTEX_INITIALIZER};

/* Set on workers for good and on a caller while it runs chunks: a nested call runs inline. */
static _Thread_local int inside_chunk;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline int64_t now_nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Sleeping until `*word` differs from `value`, and waking such sleepers. */
#if defined(__linux__)
static void sleep_while_equal(_Atomic uint32_t *word, uint32_t value) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}
static void wake_sleepers(_Atomic uint32_t *word, int count) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}
#else
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_signal = PTHREAD_COND_INITIALIZER;
static void sleep_while_equal(_Atomic uint32_t *word, uint32_t value) {
    pthread_mutex_lock(&sleep_lock);
    while (atomic_load(word) == value) pthread_cond_wait(&sleep_signal, &sleep_lock);
    pthread_mutex_unlock(&sleep_lock);
}
static void wake_sleepers(_Atomic uint32_t *word, int count) {
    (void)word, (void)count;
    pthread_mutex_lock(&sleep_lock);
    pthread_cond_broadcast(&sleep_signal);
    pthread_mutex_unlock(&sleep_lock);
}
#endif

/* Spins (pausing or yielding) up to the pool's spin time for `*word` to leave `value`, then sleeps; returns the new
 * value. `sleepers` counts the sleep so a waker knows to make the system call (the increment and
 * the re-check, against the waker's store and load, are sequentially consistent). */
static uint32_t wait_for_change(_Atomic uint32_t *word, uint32_t value, _Atomic int *sleepers, int yield) {
    const int64_t deadline = now_nanoseconds() + 1000 * (int64_t)atomic_load_explicit(&pool.spin_microseconds,
                                                                                         memory_order_relaxed);
    for (int round = 0;; round++) {
        uint32_t seen = atomic_load_explicit(word, memory_order_acquire);
        if (seen != value) return seen;
        if ((round & 31) == 31 && now_nanoseconds() >= deadline) break;
        if (yield) sched_yield();
        else cpu_relax();
    }
    for (;;) {
        atomic_fetch_add(sleepers, 1);
        uint32_t seen = atomic_load(word);
        if (seen == value) sleep_while_equal(word, value);
        atomic_fetch_sub(sleepers, 1);
        seen = atomic_load(word);
        if (seen != value) return seen;
    }
}

static void run_chunks(pool_job *job) {
    for (;;) {
        const ptrdiff_t chunk = atomic_fetch_add(&job->next_chunk, 1);
        if (chunk >= job->chunks) return;
        job->body(job->context, chunk);
        if (atomic_fetch_add(&job->finished_chunks, 1) + 1 == job->chunks) {
            atomic_store(&job->complete, 1);
            if (atomic_load(&job->caller_sleeping)) wake_sleepers(&job->complete, 1);
        }
    }
}

static void *worker_main(void *argument) {
    const int index = (int)(intptr_t)argument;
    inside_chunk = 1;
    uint32_t epoch = atomic_load(&pool.epoch);
    for (;;) {
        epoch = wait_for_change(&pool.epoch, epoch, &pool.sleepers, 1);
        pool_job *job = atomic_load(&pool.current);
        if (!job) continue;
        atomic_store(&pool.hazard[index], job);
        if (atomic_load(&pool.current) == job) run_chunks(job);
        atomic_store(&pool.hazard[index], NULL);
    }
    return NULL;
}

/* Starts workers until there are `wanted` (or thread creation fails: the caller then just runs
 * more chunks itself). */
static int ensure_workers(int wanted) {
    if (wanted > MAX_WORKERS) wanted = MAX_WORKERS;
    if (atomic_load(&pool.workers) >= wanted) return atomic_load(&pool.workers);
    pthread_mutex_lock(&pool.grow_lock);
    while (atomic_load(&pool.workers) < wanted) {
        const int index = atomic_load(&pool.workers);
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        const int failed = pthread_create(&thread, &attributes, worker_main, (void *)(intptr_t)index);
        pthread_attr_destroy(&attributes);
        if (failed) break;
        atomic_store(&pool.workers, index + 1);
    }
    pthread_mutex_unlock(&pool.grow_lock);
    return atomic_load(&pool.workers);
}

int keel_pool_run(ptrdiff_t chunks, ptrdiff_t helpers, keel_chunk_fn body, void *context) {
    if (chunks <= 0) return 1;
    if (inside_chunk || chunks == 1 || helpers <= 0) {
        for (ptrdiff_t chunk = 0; chunk < chunks; chunk++) body(context, chunk);
        return 1;
    }
    int idle = 0;
    if (!atomic_compare_exchange_strong(&pool.busy, &idle, 1)) return 0;
    const int workers = ensure_workers(helpers < MAX_WORKERS ? (int)helpers : MAX_WORKERS);

    pool_job job = {.body = body, .context = context, .chunks = chunks};
    atomic_store(&pool.current, &job);
    atomic_fetch_add(&pool.epoch, 1);
    if (atomic_load(&pool.sleepers) > 0) wake_sleepers(&pool.epoch, (int)(chunks - 1 < helpers ? chunks - 1 : helpers));

    inside_chunk = 1;
    run_chunks(&job);
    inside_chunk = 0;
    /* Yielding, not pausing: the scheduler often wakes a worker on the caller's own core when the
     * other one is busy, and a pausing caller would keep it from running. */
    wait_for_change(&job.complete, 0, &job.caller_sleeping, 1);
    atomic_store(&pool.current, NULL);
    for (int index = 0; index < workers; index++) {
        while (atomic_load(&pool.hazard[index]) == &job) sched_yield();
    }
    atomic_store(&pool.busy, 0);
    return 1;
}

void keel_pool_set_spin_microseconds(int microseconds) {
    atomic_store(&pool.spin_microseconds, microseconds < 0 ? 0 : microseconds);
}

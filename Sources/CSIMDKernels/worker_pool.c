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
/* 0 on a caller's thread, 1 + the worker's index on a pool worker: who ran a balanced share. */
static _Thread_local int pool_identity;

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

/* The CPU the pool's holder ran on when it published the current job (−1: unknown). */
static _Atomic int caller_cpu = -1;
/* The CPUs this process may use, as the first worker found them. */
#if defined(__linux__)
static cpu_set_t process_cpus;
static _Atomic int process_cpus_known;
#endif

/* Keeps a worker off the CPU its caller runs on. Woken by the caller's futex wake, a worker was
 * sometimes placed on the caller's own (virtual) CPU and stayed there for dozens of jobs, the other
 * CPU idle: MobileNetV2 at batch 1 ran its first runs at one thread's speed (Zen 3 guest, 9.7 ms
 * against 5.1), which a ten-run benchmark reported as its median. A worker that finds itself on the
 * caller's CPU narrows its affinity to every other CPU the process may use (and back to all of
 * them, minus the caller's new CPU, whenever that moves); with one CPU nothing changes. */
static void avoid_caller_cpu(void) {
#if defined(__linux__)
    const int caller = atomic_load_explicit(&caller_cpu, memory_order_relaxed);
    if (caller < 0 || caller >= CPU_SETSIZE || !atomic_load(&process_cpus_known) || sched_getcpu() != caller) return;
    cpu_set_t others = process_cpus;
    if (!CPU_ISSET(caller, &others) || CPU_COUNT(&others) < 2) return;
    CPU_CLR(caller, &others);
    sched_setaffinity(0, sizeof others, &others);
#endif
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
    pool_identity = index + 1;
#if defined(__linux__)
    if (index == 0 && sched_getaffinity(0, sizeof process_cpus, &process_cpus) == 0) atomic_store(&process_cpus_known, 1);
#endif
    uint32_t epoch = atomic_load(&pool.epoch);
    for (;;) {
        epoch = wait_for_change(&pool.epoch, epoch, &pool.sleepers, 1);
        pool_job *job = atomic_load(&pool.current);
        if (!job) continue;
        atomic_store(&pool.hazard[index], job);
        if (atomic_load(&pool.current) == job) {
            avoid_caller_cpu();
            run_chunks(job);
        }
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
#if defined(__linux__)
    atomic_store_explicit(&caller_cpu, sched_getcpu(), memory_order_relaxed);
#endif
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

/* One keel_pool_run_units call as the worker pool sees it: chunk p is participant p. */
typedef struct {
    keel_unit_fn body;
    void *context;
    ptrdiff_t participants;
    /* Per participant, the units of its share not yet taken: front in the low 32 bits, end in
     * the high 32. */
    _Atomic uint64_t shares[64];
} unit_job;

enum { FRONT = 0, BACK = 1 };

/* A unit taken from the front or back of share `share`, or −1 when none is left. */
static ptrdiff_t take(unit_job *job, ptrdiff_t share, int end) {
    uint64_t range = atomic_load(&job->shares[share]);
    for (;;) {
        const uint64_t front = range & 0xFFFFFFFFu, back = range >> 32;
        if (front >= back) return -1;
        const uint64_t next = end == FRONT ? (back << 32) | (front + 1) : ((back - 1) << 32) | front;
        if (atomic_compare_exchange_weak(&job->shares[share], &range, next))
            return end == FRONT ? (ptrdiff_t)front : (ptrdiff_t)(back - 1);
    }
}

static void run_participant(void *context, ptrdiff_t participant) {
    unit_job *job = context;
    for (ptrdiff_t unit; (unit = take(job, participant, FRONT)) >= 0;) job->body(job->context, unit, participant);
    for (ptrdiff_t other = 1; other < job->participants; other++) {
        const ptrdiff_t share = (participant + other) % job->participants;
        for (ptrdiff_t unit; (unit = take(job, share, BACK)) >= 0;) job->body(job->context, unit, participant);
    }
}

void keel_pool_run_units(ptrdiff_t units, ptrdiff_t participants, keel_unit_fn body, void *context) {
    if (units <= 0) return;
    if (units > 0xFFFFFFFF) {
        /* More than a share's 32-bit bounds hold: no sharing, every unit in order. */
        for (ptrdiff_t unit = 0; unit < units; unit++) body(context, unit, 0);
        return;
    }
    unit_job job = {.body = body, .context = context};
    job.participants = participants < 1 ? 1 : participants > 64 ? 64 : participants;
    if (job.participants > units) job.participants = units;
    for (ptrdiff_t p = 0; p < job.participants; p++) {
        const uint64_t front = (uint64_t)(units * p / job.participants);
        const uint64_t back = (uint64_t)(units * (p + 1) / job.participants);
        atomic_init(&job.shares[p], (back << 32) | front);
    }
    if (job.participants > 1 && keel_pool_run(job.participants, job.participants - 1, run_participant, &job)) return;
    /* One participant, or the pool busy with another caller: this thread runs every share. */
    run_participant(&job, 0);
}


/* Relative speeds of the threads that run balanced shares, by pool identity (caller 0, worker i
 * at i + 1); 0 is "not measured yet" and counts as 1. Only the pool's holder updates them. */
static _Atomic double relative_speed[MAX_WORKERS + 1];

enum { MAX_SHARES = MAX_WORKERS + 1 };

typedef struct {
    keel_share_fn body;
    void *context;
    ptrdiff_t bounds[MAX_SHARES + 1];
    int64_t nanoseconds[MAX_SHARES];
    int ran_by[MAX_SHARES];
    _Atomic int taken[MAX_SHARES];
    ptrdiff_t shares;
} balanced_job;

/* Each chunk of the pool job runs one share: the share sized for this thread if it is still
 * free, else the first one left. */
static void run_share(void *context, ptrdiff_t chunk) {
    (void)chunk;
    balanced_job *job = context;
    ptrdiff_t share = pool_identity;
    if (share >= job->shares || atomic_exchange(&job->taken[share], 1)) {
        for (share = 0; share < job->shares && atomic_exchange(&job->taken[share], 1); share++) {}
        if (share == job->shares) return;
    }
    const int64_t start = now_nanoseconds();
    job->body(job->context, job->bounds[share], job->bounds[share + 1], share);
    job->nanoseconds[share] = now_nanoseconds() - start;
    job->ran_by[share] = pool_identity;
}

static double speed_of(int identity) {
    const double speed = atomic_load_explicit(&relative_speed[identity], memory_order_relaxed);
    return speed > 0 ? speed : 1;
}

/* How far one job moves the estimate, and the bounds it stays in. A thread descheduled during one
 * job looks slow in it: a small step keeps that from skewing the next jobs much (0.3 cost a few
 * percent while other processes preempted threads at random), while a core that stays slower
 * still gets its share within ten or so jobs (a layer each); the bounds keep a thread that stalled
 * from being starved of work for the next hundred. */
static const double SPEED_UPDATE = 0.15, SLOWEST = 0.25, FASTEST = 4;

int keel_pool_run_balanced(ptrdiff_t count, ptrdiff_t shares, keel_share_fn body, void *context) {
    if (count <= 0) return 1;
    if (shares > count) shares = count;
    if (shares > MAX_SHARES) shares = MAX_SHARES;
    if (shares <= 1 || inside_chunk) {
        body(context, 0, count, 0);
        return 1;
    }
    balanced_job job = {.body = body, .context = context, .shares = shares};
    double total = 0, cumulative = 0;
    for (int share = 0; share < shares; share++) total += speed_of(share);
    job.bounds[0] = 0;
    for (int share = 0; share < shares; share++) {
        cumulative += speed_of(share);
        ptrdiff_t bound = share + 1 == shares ? count : (ptrdiff_t)(count * (cumulative / total) + 0.5);
        /* Every share keeps at least one item. */
        const ptrdiff_t lowest = job.bounds[share] + 1, highest = count - (shares - share - 1);
        job.bounds[share + 1] = bound < lowest ? lowest : bound > highest ? highest : bound;
        job.ran_by[share] = -1;
        atomic_init(&job.taken[share], 0);
    }
    if (!keel_pool_run(shares, shares - 1, run_share, &job)) return 0;
    /* Shares run by the thread they were sized for: move each thread's speed towards what it
     * showed against the others. */
    double speeds[MAX_SHARES], mean = 0;
    for (int share = 0; share < shares; share++) {
        if (job.ran_by[share] != share || job.nanoseconds[share] <= 0) return 1;
        speeds[share] = (double)(job.bounds[share + 1] - job.bounds[share]) / (double)job.nanoseconds[share];
        mean += speeds[share] / (double)shares;
    }
    for (int share = 0; share < shares; share++) {
        double updated = (1 - SPEED_UPDATE) * speed_of(share) + SPEED_UPDATE * speeds[share] / mean;
        updated = updated < SLOWEST ? SLOWEST : updated > FASTEST ? FASTEST : updated;
        atomic_store_explicit(&relative_speed[share], updated, memory_order_relaxed);
    }
    return 1;
}

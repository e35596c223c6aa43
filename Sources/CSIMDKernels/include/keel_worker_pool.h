#ifndef KEEL_WORKER_POOL_H
#define KEEL_WORKER_POOL_H
/* A process-wide pool of persistent worker threads for Keel's parallel loops. A fork/join through
 * the system's dispatch costs microseconds per layer, and far more when a woken worker was
 * descheduled; batch-1 MobileNet layers run for tens of microseconds. Workers here wait on an
 * atomic job counter: a short bounded spin after each job, then a futex (condition-variable off
 * Linux) sleep, so nothing spins while idle. The caller runs chunks itself and claims every chunk
 * no worker has started, so a late worker costs nothing; which thread runs a chunk never changes
 * the chunk's bounds, so results do not depend on it. */

#include <stddef.h>

/* Runs chunk `chunk` of a job; `context` is the caller's. */
typedef void (*keel_chunk_fn)(void *context, ptrdiff_t chunk);

/* Runs `body(context, c)` for every c in 0 ..< chunks, on the calling thread and up to
 * `helpers` pool workers (created on first use, kept for the process), and returns when all
 * have finished. Returns 0, having run nothing, when the pool is serving another caller (the
 * caller then uses its own fallback). Called from inside a chunk, it runs every chunk inline on
 * that thread. A body must not unwind or longjmp out: a trap ends the process, so no caller is
 * left waiting. */
int keel_pool_run(ptrdiff_t chunks, ptrdiff_t helpers, keel_chunk_fn body, void *context);

/* Microseconds workers spin after a job before sleeping (the default is 50); 0 sleeps at once.
 * For measurements. */
void keel_pool_set_spin_microseconds(int microseconds);

#endif

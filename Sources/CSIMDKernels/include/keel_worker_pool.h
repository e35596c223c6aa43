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

/* Runs unit `unit` of a job as participant `participant` (0 ..< participants). */
typedef void (*keel_unit_fn)(void *context, ptrdiff_t unit, ptrdiff_t participant);

/* Runs `body` for every unit in 0 ..< units on up to `participants` threads (at most 64; the caller
 * and pool workers). Participant p first runs its own share, units p·units/participants ..<
 * (p+1)·units/participants, from the front, then takes units from the back of the others'
 * shares. Balanced cores so keep the split a static one gives (each core's data stays in its own
 * cache: consecutive units should share their operands), and a slower core (this host's two vCPUs
 * often differ by 30% or more while a neighbour loads one) hands the rest of its share to a
 * faster one. When the pool serves another caller, the caller runs every unit itself. */
void keel_pool_run_units(ptrdiff_t units, ptrdiff_t participants, keel_unit_fn body, void *context);

/* Runs items first ..< end of a job as share `share` (0 ..< shares: an index for per-thread
 * scratch). */
typedef void (*keel_share_fn)(void *context, ptrdiff_t first, ptrdiff_t end, ptrdiff_t share);

/* Runs `body` over 0 ..< count cut into `shares` contiguous shares, one per thread (the caller and
 * pool workers), each sized by how fast its thread ran its share of earlier jobs: on this host
 * one vCPU often runs 20–40% slower than the other for seconds at a time (a neighbour on its
 * sibling hyperthread), and an even split made the faster thread wait at every layer. Each share
 * keeps at least one item; called from inside a chunk, the one share runs inline. For work whose result does not depend on where it is cut. Returns 0,
 * having run nothing, when the pool serves another caller. */
int keel_pool_run_balanced(ptrdiff_t count, ptrdiff_t shares, keel_share_fn body, void *context);

/* Microseconds workers spin after a job before sleeping (the default is 50); 0 sleeps at once.
 * For measurements. */
void keel_pool_set_spin_microseconds(int microseconds);

#endif

// A pool of worker threads that wait for work by spinning for a moment before they sleep.
//
// Decoding one token runs about a hundred parallel steps of 10–100 µs each (one per matrix
// product, attention, ...). Handing such a step to threads that sleep costs a wake-up
// (tens of µs on a virtual machine) every time; workers that keep polling for a short while
// after each step pick the next one up within a fraction of a microsecond. After
// `EQT_SPIN_NANOSECONDS` without work they sleep on a condition variable, so an idle
// process does not hold a core.
//
// Used by Sources/EasyQuant/Support/Parallel.swift; not a public API of EasyQuant.
#ifndef EASYQUANT_CTHREADS_H
#define EASYQUANT_CTHREADS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eqt_pool eqt_pool;

/// The work of one step: called once for every index 0 ..< count, from the calling thread and
/// the pool's workers, in no set order.
typedef void (*eqt_body)(void *context, size_t index);

/// A pool of `helpers` worker threads (the caller of eqt_pool_run is one more); NULL when a
/// thread cannot be started. Pools live as long as the process.
eqt_pool *eqt_pool_create(int helpers);

/// The process's pool for `threads` threads in all (threads − 1 workers, 2 ≤ threads ≤ 256),
/// made on first use and kept; NULL when threads is out of that range or its workers could
/// not start (remembered: not tried again). After the first call for a thread count, one
/// atomic load: decoding asks for it at every step.
eqt_pool *eqt_pool_shared(int threads);

/// Runs body(context, i) for every i in 0 ..< count on the calling thread and the pool's
/// workers, and returns 1 when all calls have returned. Returns 0 at once, running nothing,
/// when the pool is already running a step (a nested call, or another thread's): the
/// caller then runs the step another way.
int eqt_pool_run(eqt_pool *pool, size_t count, eqt_body body, void *context);

/// What the pools' hand-offs cost while counting was on (eqt_stats_count), over all pools:
/// steps run; the calling threads' time from the end of one step to the start of their
/// pool's next (their own work between steps, which the workers wait through); and the
/// workers' time taking and running indices, and waiting (polling or asleep) for a step.
typedef struct eqt_stats {
    unsigned long long steps;
    unsigned long long between_ns;
    unsigned long long worker_busy_ns;
    unsigned long long worker_wait_ns;
} eqt_stats;

/// Starts counting from zero (on != 0), or stops. Off, the pools read no clocks.
void eqt_stats_count(int on);

/// The counts so far.
eqt_stats eqt_stats_read(void);

#ifdef __cplusplus
}
#endif

#endif

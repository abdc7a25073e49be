// The spinning worker pool of CThreads.h.
//
// One step at a time. Everything a worker needs to take an index is one 64-bit word,
// `state`: the step's tag (bumped once per step), its index count, and the next index to
// hand out. A participant takes index i by compare-and-swap of that word from
// (tag, count, i) to (tag, count, i + 1), and only then reads the step's body and context:
// the step cannot end (and its slot cannot be reused) before every taken index has run,
// so what it reads is that step's, even for a worker that was asleep through many steps.
// Body and context sit in one of two slots by the tag's parity, so publishing the next
// step never writes the slot of the one that may still be finishing.
//
// Sleeping without a lost wake-up: a worker raises `sleepers` and reads `state` again under
// the mutex before it waits; eqt_pool_run stores the new `state` and then reads `sleepers`.
// Both are sequentially consistent, so either the worker sees the new step or the caller
// sees the sleeper and broadcasts under the mutex.
#define _GNU_SOURCE
#include "CThreads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/// How long an idle worker polls before it sleeps.
#define EQT_SPIN_NANOSECONDS 200000

/// The fields of `state`: tag (24 bits) | count (20 bits) | next (20 bits).
#define EQT_INDEX_BITS 20
#define EQT_INDEX_MASK ((UINT64_C(1) << EQT_INDEX_BITS) - 1)
static inline uint64_t eqt_tag(uint64_t s) { return s >> (2 * EQT_INDEX_BITS); }
static inline size_t eqt_count(uint64_t s) { return (size_t)((s >> EQT_INDEX_BITS) & EQT_INDEX_MASK); }
static inline size_t eqt_next(uint64_t s) { return (size_t)(s & EQT_INDEX_MASK); }

struct eqt_slot {
    _Atomic(eqt_body) body;
    _Atomic(void *) context;
};

struct eqt_pool {
    atomic_int busy;           // 1 while a step runs (taken by compare-and-swap)
    uint64_t last_end;         // when the calling thread's last step ended (counting only),
    unsigned last_epoch;       // in which counting (eqt_epoch) it was taken
    _Atomic uint64_t state;    // tag | count | next
    atomic_size_t done;        // indices of the current step whose call has returned
    atomic_int sleepers;       // workers waiting on `wake`
    struct eqt_slot slots[2];  // body and context, by the tag's parity
    pthread_mutex_t mutex;
    pthread_cond_t wake;
};

static inline void eqt_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint64_t eqt_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/// eqt_stats_count's switch and counters (relaxed: they only add up).
static atomic_int eqt_counting;
static atomic_uint eqt_epoch;  // one more at every start, so that no pool counts from a step of an earlier one
static atomic_ullong eqt_steps, eqt_between_ns, eqt_busy_ns, eqt_wait_ns;

void eqt_stats_count(int on) {
    if (on) {
        atomic_fetch_add(&eqt_epoch, 1);
        atomic_store(&eqt_steps, 0); atomic_store(&eqt_between_ns, 0);
        atomic_store(&eqt_busy_ns, 0); atomic_store(&eqt_wait_ns, 0);
    }
    atomic_store(&eqt_counting, on != 0);
}

eqt_stats eqt_stats_read(void) {
    return (eqt_stats){atomic_load(&eqt_steps), atomic_load(&eqt_between_ns), atomic_load(&eqt_busy_ns),
                       atomic_load(&eqt_wait_ns)};
}

/// Takes and runs indices of the step tagged `tag` until none are left (or it is over).
/// The indices a participant ran are added to `done` once, when it finds none left: one
/// write to that shared line per participant and step, not one per index.
static void eqt_work(eqt_pool *p, uint64_t tag) {
    size_t ran = 0;
    uint64_t s = atomic_load(&p->state);
    while (eqt_tag(s) == tag && eqt_next(s) < eqt_count(s)) {
        if (!atomic_compare_exchange_weak(&p->state, &s, s + 1)) continue;  // s now holds the current word
        struct eqt_slot *slot = &p->slots[tag & 1];
        eqt_body body = atomic_load_explicit(&slot->body, memory_order_relaxed);
        void *context = atomic_load_explicit(&slot->context, memory_order_relaxed);
        body(context, eqt_next(s));
        ran++;
        s = atomic_load(&p->state);
    }
    if (ran > 0) atomic_fetch_add_explicit(&p->done, ran, memory_order_release);
}

static void *eqt_worker(void *arg) {
    eqt_pool *p = arg;
    uint64_t seen = eqt_tag(atomic_load(&p->state));
    uint64_t idle_since = 0;  // when this worker last finished a step (counting only),
    unsigned idle_epoch = 0;  // in which counting
    for (;;) {
        // Poll for the next step, then sleep.
        uint64_t start = eqt_now();
        unsigned spins = 0;
        while (eqt_tag(atomic_load_explicit(&p->state, memory_order_acquire)) == seen) {
            eqt_relax();
            if (++spins % 256 == 0 && eqt_now() - start > EQT_SPIN_NANOSECONDS) {
                pthread_mutex_lock(&p->mutex);
                atomic_fetch_add(&p->sleepers, 1);
                while (eqt_tag(atomic_load(&p->state)) == seen) pthread_cond_wait(&p->wake, &p->mutex);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->mutex);
                break;
            }
        }
        seen = eqt_tag(atomic_load(&p->state));
        if (atomic_load_explicit(&eqt_counting, memory_order_relaxed)) {
            uint64_t start = eqt_now();
            unsigned epoch = atomic_load_explicit(&eqt_epoch, memory_order_relaxed);
            if (idle_since != 0 && idle_epoch == epoch)
                atomic_fetch_add_explicit(&eqt_wait_ns, start - idle_since, memory_order_relaxed);
            eqt_work(p, seen);
            idle_since = eqt_now();
            idle_epoch = epoch;
            atomic_fetch_add_explicit(&eqt_busy_ns, idle_since - start, memory_order_relaxed);
        } else {
            idle_since = 0;
            eqt_work(p, seen);
        }
    }
    return NULL;
}

eqt_pool *eqt_pool_create(int helpers) {
    if (helpers < 1) return NULL;
    eqt_pool *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    for (int t = 0; t < helpers; t++) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, eqt_worker, p);
        pthread_attr_destroy(&attr);
        // Workers already started only ever wait on a pool nobody uses.
        if (failed) return NULL;
    }
    return p;
}

int eqt_pool_run(eqt_pool *p, size_t count, eqt_body body, void *context) {
    if (count > EQT_INDEX_MASK) return 0;
    int idle = 0;
    if (!atomic_compare_exchange_strong(&p->busy, &idle, 1)) return 0;
    if (count == 0) { atomic_store(&p->busy, 0); return 1; }
    int counting = atomic_load_explicit(&eqt_counting, memory_order_relaxed);
    unsigned epoch = atomic_load_explicit(&eqt_epoch, memory_order_relaxed);
    if (counting && p->last_end != 0 && p->last_epoch == epoch)
        atomic_fetch_add_explicit(&eqt_between_ns, eqt_now() - p->last_end, memory_order_relaxed);
    uint64_t tag = (eqt_tag(atomic_load(&p->state)) + 1) & ((UINT64_C(1) << (64 - 2 * EQT_INDEX_BITS)) - 1);
    struct eqt_slot *slot = &p->slots[tag & 1];
    atomic_store_explicit(&slot->body, body, memory_order_relaxed);
    atomic_store_explicit(&slot->context, context, memory_order_relaxed);
    atomic_store(&p->done, 0);
    atomic_store(&p->state, tag << (2 * EQT_INDEX_BITS) | (uint64_t)count << EQT_INDEX_BITS);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
    eqt_work(p, tag);
    while (atomic_load_explicit(&p->done, memory_order_acquire) < count) eqt_relax();
    if (counting) {
        p->last_end = eqt_now();
        p->last_epoch = epoch;
        atomic_fetch_add_explicit(&eqt_steps, 1, memory_order_relaxed);
    } else {
        p->last_end = 0;
    }
    atomic_store(&p->busy, 0);
    return 1;
}

/// eqt_pool_shared's pools by thread count, and the thread counts whose workers did not start.
#define EQT_MAX_THREADS 256
static _Atomic(eqt_pool *) eqt_shared[EQT_MAX_THREADS + 1];
static atomic_bool eqt_shared_failed[EQT_MAX_THREADS + 1];
static pthread_mutex_t eqt_shared_mutex = PTHREAD_MUTEX_INITIALIZER;

eqt_pool *eqt_pool_shared(int threads) {
    if (threads < 2 || threads > EQT_MAX_THREADS) return NULL;
    eqt_pool *p = atomic_load_explicit(&eqt_shared[threads], memory_order_acquire);
    if (p != NULL || atomic_load_explicit(&eqt_shared_failed[threads], memory_order_relaxed)) return p;
    // First use: made under the mutex, so that two threads asking at once start one pool.
    pthread_mutex_lock(&eqt_shared_mutex);
    p = atomic_load_explicit(&eqt_shared[threads], memory_order_relaxed);
    if (p == NULL && !atomic_load_explicit(&eqt_shared_failed[threads], memory_order_relaxed)) {
        p = eqt_pool_create(threads - 1);
        if (p == NULL) atomic_store_explicit(&eqt_shared_failed[threads], 1, memory_order_relaxed);
        else atomic_store_explicit(&eqt_shared[threads], p, memory_order_release);
    }
    pthread_mutex_unlock(&eqt_shared_mutex);
    return p;
}

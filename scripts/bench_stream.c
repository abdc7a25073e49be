// Memory bandwidth, STREAM style, for scripts/bench-stream: a triad a = b + s·c and a read
// (Σ of one array) over arrays far larger than the caches, split over 1 and 2 threads
// (pthreads, each thread its own contiguous part, clocked from the first worker's start to
// the last one's end), the median of 15 passes. Bytes counted as STREAM counts them: 3 arrays
// for the triad (no write-allocate traffic), 1 for the read. The arrays ask for 2 MiB pages (madvise MADV_HUGEPAGE), as eqgen's weights do:
// through 4 KiB pages this virtual machine reads markedly slower. With 2 threads or more it
// also times how long one cache line takes to go from one core to another and back (two
// threads handing a counter to each other), the median of 15 passes of 100,000 round trips
// (each after 20,000 untimed ones: a new thread at first runs slower, as if not yet settled):
// on this virtual machine that tells where its two virtual CPUs sit at the moment, on cores
// that share a die (about 120 ns) or on cores of different dies, which are farther apart
// (300–400 ns) and each have their own path to memory. Prints one JSON object.
//     cc -O2 -march=native -pthread bench_stream.c -o bench_stream && ./bench_stream [MiB per array] [threads...]
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define HUGE_PAGE ((size_t)2 << 20)

static double *a, *b, *c;
static size_t n;

struct part { size_t lo, hi; int kind, threads; double sum, start, end; };

// Workers that have arrived for the current pass (they spin until all have).
static atomic_int arrived;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *work(void *arg) {
    struct part *p = arg;
    // A spinning start among the workers only: each begins once all are running, so none
    // waits to be woken while the others already read.
    atomic_fetch_add(&arrived, 1);
    while (atomic_load(&arrived) < p->threads) {}
    p->start = now();
    if (p->kind == 0) {
        for (size_t i = p->lo; i < p->hi; i++) a[i] = b[i] + 3.0 * c[i];
    } else {
        // Eight chains of float additions: with four, the additions' latency held one thread
        // back. Scalar loads: on this machine they read at least as fast as vector loads.
        double s[8] = {0};
        size_t i = p->lo;
        for (; i + 8 <= p->hi; i += 8)
            for (int j = 0; j < 8; j++) s[j] += b[i + j];
        for (; i < p->hi; i++) s[0] += b[i];
        p->sum = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    }
    p->end = now();
    return NULL;
}

// Seconds of one pass of `kind` on `threads` threads: from the first worker's start to the
// last one's end, as the workers clock them. (The main thread used to clock the pass between
// two barriers; with more threads than cores it sometimes read the start late, while the
// workers already ran, and reported 2-thread reads far beyond what the machine can do.)
static double pass(int kind, int threads, double *sink) {
    pthread_t tid[64];
    struct part parts[64];
    atomic_store(&arrived, 0);
    for (int t = 0; t < threads; t++) {
        parts[t] = (struct part){n * t / threads, n * (t + 1) / threads, kind, threads, 0, 0, 0};
        pthread_create(&tid[t], NULL, work, &parts[t]);
    }
    double first = 0, last = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        *sink += parts[t].sum;
        if (t == 0 || parts[t].start < first) first = parts[t].start;
        if (t == 0 || parts[t].end > last) last = parts[t].end;
    }
    return last - first;
}

// The line two threads hand to each other: odd values are the first thread's turn to be
// answered, even ones the second's.
static _Alignas(64) atomic_long baton;
enum { WARM_UP = 20000, ROUND_TRIPS = WARM_UP + 100000 };

static void *answer(void *arg) {
    (void)arg;
    for (long i = 1; i <= ROUND_TRIPS; i++) {
        while (atomic_load_explicit(&baton, memory_order_acquire) != 2 * i - 1) {}
        atomic_store_explicit(&baton, 2 * i, memory_order_release);
    }
    return NULL;
}

// Nanoseconds of one round trip of a cache line between two threads, over ROUND_TRIPS.
static double round_trip(void) {
    pthread_t tid;
    atomic_store(&baton, 0);
    pthread_create(&tid, NULL, answer, NULL);
    double start = 0;
    for (long i = 1; i <= ROUND_TRIPS; i++) {
        if (i == WARM_UP + 1) start = now();
        atomic_store_explicit(&baton, 2 * i - 1, memory_order_release);
        while (atomic_load_explicit(&baton, memory_order_acquire) != 2 * i) {}
    }
    double seconds = now() - start;
    pthread_join(tid, NULL);
    return seconds / (ROUND_TRIPS - WARM_UP) * 1e9;
}

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 256;
    n = mib * 1024 * 1024 / sizeof(double);
    size_t bytes = (n * sizeof(double) + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    a = aligned_alloc(HUGE_PAGE, bytes);
    b = aligned_alloc(HUGE_PAGE, bytes);
    c = aligned_alloc(HUGE_PAGE, bytes);
    if (!a || !b || !c) { fprintf(stderr, "out of memory\n"); return 1; }
    // Advice only; before the first write, so the pages are made large.
    madvise(a, bytes, MADV_HUGEPAGE); madvise(b, bytes, MADV_HUGEPAGE); madvise(c, bytes, MADV_HUGEPAGE);
    for (size_t i = 0; i < n; i++) { a[i] = 0; b[i] = 1.0 + (double)(i % 7); c[i] = 2.0; }
    double sink = 0;
    printf("{\"mib_per_array\": %zu, \"runs\": [", mib);
    int first = 1;
    for (int arg = 2; arg < (argc > 2 ? argc : 4); arg++) {
        int threads = argc > 2 ? atoi(argv[arg]) : arg - 1;
        if (threads < 1 || threads > 64) continue;
        // The median pass, not the best: on a shared virtual machine single passes run up to
        // twice as fast as the rest now and then, and the best of several reported that.
        enum { PASSES = 15 };
        double times[2][PASSES];
        for (int rep = 0; rep < PASSES; rep++)
            for (int kind = 0; kind < 2; kind++) times[kind][rep] = pass(kind, threads, &sink);
        qsort(times[0], PASSES, sizeof(double), by_value);
        qsort(times[1], PASSES, sizeof(double), by_value);
        double median[2] = {times[0][PASSES / 2], times[1][PASSES / 2]};
        printf("%s{\"threads\": %d, \"triad_gb_s\": %.2f, \"read_gb_s\": %.2f, \"read_best_gb_s\": %.2f", first ? "" : ", ", threads,
               3.0 * n * sizeof(double) / median[0] / 1e9, 1.0 * n * sizeof(double) / median[1] / 1e9,
               1.0 * n * sizeof(double) / times[1][0] / 1e9);
        if (threads >= 2) {
            double trips[PASSES];
            for (int rep = 0; rep < PASSES; rep++) trips[rep] = round_trip();
            qsort(trips, PASSES, sizeof(double), by_value);
            printf(", \"core_round_trip_ns\": %.0f", trips[PASSES / 2]);
        }
        printf("}");
        first = 0;
    }
    printf("], \"check\": %g}\n", sink > 0 ? 1.0 : 0.0);
    return 0;
}

// Memory bandwidth, STREAM style, for scripts/bench-stream: a triad a = b + s·c and a read
// (Σ of one array) over arrays far larger than the caches, split over 1 and 2 threads
// (pthreads, each thread its own contiguous part), the median of 15 passes. Bytes
// counted as STREAM counts them: 3 arrays for the triad (no write-allocate traffic), 1 for
// the read. Prints one JSON object.
//     cc -O2 -march=native -pthread bench_stream.c -o bench_stream && ./bench_stream [MiB per array] [threads...]
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double *a, *b, *c;
static size_t n;

struct part { size_t lo, hi; int kind; double sum; pthread_barrier_t *barrier; };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *work(void *arg) {
    struct part *p = arg;
    pthread_barrier_wait(p->barrier);
    if (p->kind == 0) {
        for (size_t i = p->lo; i < p->hi; i++) a[i] = b[i] + 3.0 * c[i];
    } else {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t i = p->lo;
        for (; i + 4 <= p->hi; i += 4) { s0 += b[i]; s1 += b[i + 1]; s2 += b[i + 2]; s3 += b[i + 3]; }
        for (; i < p->hi; i++) s0 += b[i];
        p->sum = s0 + s1 + s2 + s3;
    }
    pthread_barrier_wait(p->barrier);
    return NULL;
}

// Seconds of one pass of `kind` on `threads` threads (the main thread is one of them).
static double pass(int kind, int threads, double *sink) {
    pthread_t tid[64];
    struct part parts[64];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, threads + 1);
    for (int t = 0; t < threads; t++) {
        parts[t] = (struct part){n * t / threads, n * (t + 1) / threads, kind, 0, &start};
        pthread_create(&tid[t], NULL, work, &parts[t]);
    }
    // Every worker waits on `start`, works, then waits on `start` again (a reusable
    // barrier), so the clock runs from the release to the last worker's arrival.
    pthread_barrier_wait(&start);
    double t0 = now();
    pthread_barrier_wait(&start);
    double t1 = now();
    for (int t = 0; t < threads; t++) { pthread_join(tid[t], NULL); *sink += parts[t].sum; }
    pthread_barrier_destroy(&start);
    return t1 - t0;
}

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 256;
    n = mib * 1024 * 1024 / sizeof(double);
    a = aligned_alloc(64, n * sizeof(double));
    b = aligned_alloc(64, n * sizeof(double));
    c = aligned_alloc(64, n * sizeof(double));
    if (!a || !b || !c) { fprintf(stderr, "out of memory\n"); return 1; }
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
        printf("%s{\"threads\": %d, \"triad_gb_s\": %.2f, \"read_gb_s\": %.2f, \"read_best_gb_s\": %.2f}", first ? "" : ", ", threads,
               3.0 * n * sizeof(double) / median[0] / 1e9, 1.0 * n * sizeof(double) / median[1] / 1e9,
               1.0 * n * sizeof(double) / times[1][0] / 1e9);
        first = 0;
    }
    printf("], \"check\": %g}\n", sink > 0 ? 1.0 : 0.0);
    return 0;
}

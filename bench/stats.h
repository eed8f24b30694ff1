/* Latency samples shared by the C load generators: collect, merge, print as JSON. */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct samples {
    double *values;
    size_t count, capacity;
    long errors;
};

static inline void samples_add(struct samples *s, double value) {
    if (s->count == s->capacity) {
        s->capacity = s->capacity ? s->capacity * 2 : 1024;
        s->values = realloc(s->values, s->capacity * sizeof *s->values);
        if (!s->values) { perror("realloc"); exit(1); }
    }
    s->values[s->count++] = value;
}

static inline void samples_reset(struct samples *s) { s->count = 0; s->errors = 0; }

static inline void samples_free(struct samples *s) { free(s->values); memset(s, 0, sizeof *s); }

static inline void samples_merge(struct samples *into, const struct samples *from) {
    for (size_t i = 0; i < from->count; i++) samples_add(into, from->values[i]);
    into->errors += from->errors;
}

static int samples_compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline double samples_quantile(struct samples *s, double q) {
    if (s->count == 0) return 0;
    size_t i = (size_t)(q * (double)(s->count - 1) + 0.5);
    return s->values[i];
}

/* {"ops": N, "errors": E, "seconds": S, "ops_per_s": R, "p50_ms": A, "p99_ms": B} */
static inline void samples_print_json(struct samples *s, double seconds) {
    qsort(s->values, s->count, sizeof *s->values, samples_compare);
    printf("{\"ops\": %zu, \"errors\": %ld, \"seconds\": %.3f, \"ops_per_s\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f}",
           s->count, s->errors, seconds, seconds > 0 ? (double)s->count / seconds : 0.0,
           samples_quantile(s, 0.50) * 1e3, samples_quantile(s, 0.99) * 1e3);
    fflush(stdout);
}

#endif

// The public kernels: each forwards to its copy for the widest instruction set this CPU
// has, found once (cpuid through __builtin_cpu_supports) and kept in `level`. The
// environment variable EASYQUANT_KERNELS=baseline|avx2|avx512 caps the choice, to test
// or time the narrower copies on a wide machine (a set the CPU lacks is never chosen).
#include "kernels_internal.h"

#include <stdlib.h>
#include <string.h>

enum { LEVEL_UNKNOWN = -1, LEVEL_BASELINE = 0, LEVEL_AVX2 = 1, LEVEL_AVX512 = 2 };

static int level = LEVEL_UNKNOWN;

// Whether the CPU has AVX-512 VNNI and GFNI, which the batch-1 copy for AVX-512 needs (at
// the AVX-512 level; without them the AVX2 copy runs): -1 unknown.
static int vnni = -1;

static int has_vnni(void) {
    int v = __atomic_load_n(&vnni, __ATOMIC_RELAXED);
    if (v < 0) {
#if EQK_X86
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("gfni") ? 1 : 0;
#else
        v = 0;
#endif
        __atomic_store_n(&vnni, v, __ATOMIC_RELAXED);
    }
    return v;
}

static int detect_cpu(void) {
#if EQK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return LEVEL_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return LEVEL_AVX2;
#endif
    return LEVEL_BASELINE;
}

static int detect(void) {
    int l = detect_cpu();
    const char *cap = getenv("EASYQUANT_KERNELS");
    if (cap == NULL) return l;
    if (strcmp(cap, "baseline") == 0) return LEVEL_BASELINE;
    if (strcmp(cap, "avx2") == 0) return l < LEVEL_AVX2 ? l : LEVEL_AVX2;
    return l;
}

// Racing first calls all store the same value, so a relaxed atomic is enough.
static inline int current_level(void) {
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (l == LEVEL_UNKNOWN) {
        l = detect();
        __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    }
    return l;
}

#if EQK_X86
#define DISPATCH(name, args)                                    \
    switch (current_level()) {                                  \
    case LEVEL_AVX512: return name##_avx512 args;               \
    case LEVEL_AVX2: return name##_avx2 args;                   \
    default: return name##_baseline args;                       \
    }
#else
#define DISPATCH(name, args) return name##_baseline args;
#endif

int eqk_use_isa(const char *name) {
    int cpu = detect_cpu(), wanted;
    if (strcmp(name, "auto") == 0) wanted = detect();
    else if (strcmp(name, "baseline") == 0) wanted = LEVEL_BASELINE;
    else if (strcmp(name, "avx2") == 0) wanted = LEVEL_AVX2;
    else if (strcmp(name, "avx512") == 0) wanted = LEVEL_AVX512;
    else return 0;
    if (wanted > cpu) return 0;
    __atomic_store_n(&level, wanted, __ATOMIC_RELAXED);
    return 1;
}

const char *eqk_isa(void) {
    switch (current_level()) {
    case LEVEL_AVX512: return "avx512";
    case LEVEL_AVX2: return "avx2";
    default: return "baseline";
    }
}

float eqk_softmax_unnormalised(float *row, size_t count, size_t length, float scale) {
    DISPATCH(eqk_softmax_unnormalised, (row, count, length, scale))
}
float eqk_softmax_int32_unnormalised(void *scores, float rowScale, const float *colScale, size_t count, size_t length) {
    DISPATCH(eqk_softmax_int32_unnormalised, (scores, rowScale, colScale, count, length))
}
void eqk_softmax(float *row, size_t count, size_t length, float scale) {
    DISPATCH(eqk_softmax, (row, count, length, scale))
}
float eqk_log_sum_exp(const float *row, size_t count) { DISPATCH(eqk_log_sum_exp, (row, count)) }
void eqk_quantize_rows_int8(const float *x, size_t rows, size_t cols, int8_t *out, float *scales, int32_t *sums,
                            size_t group) {
    DISPATCH(eqk_quantize_rows_int8, (x, rows, cols, out, scales, sums, group))
}
void eqk_swiglu(const float *gate, const float *up, size_t count, float *out) {
    DISPATCH(eqk_swiglu, (gate, up, count, out))
}
void eqk_gelu(const float *x, size_t count, float *out) { DISPATCH(eqk_gelu, (x, count, out)) }
void eqk_rms_norm(const float *x, size_t rows, size_t cols, const float *gamma, float eps, float *out) {
    DISPATCH(eqk_rms_norm, (x, rows, cols, gamma, eps, out))
}
void eqk_layer_norm(const float *x, size_t rows, size_t cols, const float *gamma, const float *beta, float eps,
                    float *out) {
    DISPATCH(eqk_layer_norm, (x, rows, cols, gamma, beta, eps, out))
}
void eqk_add(const float *y, float *x, size_t count) { DISPATCH(eqk_add, (y, x, count)) }
void eqk_add_bias(float *x, size_t rows, size_t cols, size_t ld, const float *bias) {
    DISPATCH(eqk_add_bias, (x, rows, cols, ld, bias))
}
void eqk_rescale_int32(float *y, size_t ldy, const int32_t *acc, size_t ldacc, size_t rows, size_t cols,
                       const float *rowScale, const float *colScale, const float *colZero, const int32_t *rowSum,
                       size_t sumStride, int accumulate) {
    DISPATCH(eqk_rescale_int32, (y, ldy, acc, ldacc, rows, cols, rowScale, colScale, colZero, rowSum, sumStride, accumulate))
}
void eqk_scale_rows(float *y, size_t ldy, const float *x, size_t ldx, size_t rows, size_t cols, const float *factor) {
    DISPATCH(eqk_scale_rows, (y, ldy, x, ldx, rows, cols, factor))
}
void eqk_column_absmax(const float *x, size_t rows, size_t cols, size_t ld, float *max) {
    DISPATCH(eqk_column_absmax, (x, rows, cols, ld, max))
}
void eqk_scale_columns(const float *x, size_t ldx, size_t rows, size_t cols, const float *factor, float *y, size_t ldy) {
    DISPATCH(eqk_scale_columns, (x, ldx, rows, cols, factor, y, ldy))
}

void eqk_attend_one(const float *q, size_t group, size_t d, const float *k, size_t ldk, const float *v, size_t ldv,
                    size_t keys, float scale, float *scores, float *out, float *partial) {
    DISPATCH(eqk_attend_one, (q, group, d, k, ldk, v, ldv, keys, scale, scores, out, partial))
}

void eqk_attend_one_f16(const float *q, size_t group, size_t d, const uint16_t *k, size_t ldk, const uint16_t *v,
                        size_t ldv, size_t keys, float scale, float *scores, float *out, float *partial) {
    DISPATCH(eqk_attend_one_f16, (q, group, d, k, ldk, v, ldv, keys, scale, scores, out, partial))
}
size_t eqk_f32_to_f16(const float *x, size_t count, uint16_t *out) { DISPATCH(eqk_f32_to_f16, (x, count, out)) }
void eqk_f16_to_f32(const uint16_t *x, size_t count, float *out) { DISPATCH(eqk_f16_to_f32, (x, count, out)) }
size_t eqk_argmax(const float *x, size_t count) { DISPATCH(eqk_argmax, (x, count)) }

// AVX-512 CPUs without VNNI run the AVX2 copy (256-bit maddubs), which reads as fast.
void eqk_gemv_s8(const int8_t *w, size_t quads, size_t groupQuads, const int32_t *wsum, const float *scale,
                 const float *zero, const int8_t *x, float xscale, const int32_t *xsums,
                 const float *bias, size_t tile0, size_t tile1, float *y, size_t n) {
#if EQK_X86
    switch (current_level()) {
    case LEVEL_AVX512:
        if (has_vnni())
            return eqk_gemv_s8_vnni(w, quads, groupQuads, wsum, scale, zero, x, xscale, xsums, bias, tile0, tile1, y, n);
        return eqk_gemv_s8_avx2(w, quads, groupQuads, wsum, scale, zero, x, xscale, xsums, bias, tile0, tile1, y, n);
    case LEVEL_AVX2:
        return eqk_gemv_s8_avx2(w, quads, groupQuads, wsum, scale, zero, x, xscale, xsums, bias, tile0, tile1, y, n);
    default: break;
    }
#endif
    eqk_gemv_s8_baseline(w, quads, groupQuads, wsum, scale, zero, x, xscale, xsums, bias, tile0, tile1, y, n);
}

void eqk_gemv_u4(const uint8_t *w, size_t quads, size_t groupQuads, int32_t codeOffset, const float *scale,
                 const float *zero, const int8_t *x, float xscale, const int32_t *xsums,
                 const float *bias, size_t tile0, size_t tile1, float *y, size_t n) {
#if EQK_X86
    switch (current_level()) {
    case LEVEL_AVX512:
        if (has_vnni())
            return eqk_gemv_u4_vnni(w, quads, groupQuads, codeOffset, scale, zero, x, xscale, xsums, bias, tile0, tile1, y, n);
        return eqk_gemv_u4_avx2(w, quads, groupQuads, codeOffset, scale, zero, x, xscale, xsums, bias, tile0, tile1, y, n);
    case LEVEL_AVX2:
        return eqk_gemv_u4_avx2(w, quads, groupQuads, codeOffset, scale, zero, x, xscale, xsums, bias, tile0, tile1, y, n);
    default: break;
    }
#endif
    eqk_gemv_u4_baseline(w, quads, groupQuads, codeOffset, scale, zero, x, xscale, xsums, bias, tile0, tile1, y, n);
}

// Float arithmetic only: the AVX-512 copy (compiled with VNNI allowed) needs no VNNI, but
// it lives in the VNNI file, so AVX-512 CPUs without VNNI take the AVX2 copy.
void eqk_gemv_f32(const void *w, int nibbles, size_t quads, size_t groupQuads, int32_t codeOffset, const float *scale,
                  const float *zero, const float *x, const float *bias, size_t tile0, size_t tile1,
                  float *y, size_t n) {
#if EQK_X86
    switch (current_level()) {
    case LEVEL_AVX512:
        if (has_vnni())
            return eqk_gemv_f32_vnni(w, nibbles, quads, groupQuads, codeOffset, scale, zero, x, bias, tile0, tile1, y, n);
        return eqk_gemv_f32_avx2(w, nibbles, quads, groupQuads, codeOffset, scale, zero, x, bias, tile0, tile1, y, n);
    case LEVEL_AVX2:
        return eqk_gemv_f32_avx2(w, nibbles, quads, groupQuads, codeOffset, scale, zero, x, bias, tile0, tile1, y, n);
    default: break;
    }
#endif
    eqk_gemv_f32_baseline(w, nibbles, quads, groupQuads, codeOffset, scale, zero, x, bias, tile0, tile1, y, n);
}

const char *eqk_gemv_isa(void) {
#if EQK_X86
    switch (current_level()) {
    case LEVEL_AVX512: return has_vnni() ? "avx512-vnni" : "avx2";
    case LEVEL_AVX2: return "avx2";
    default: break;
    }
#endif
    return "baseline";
}

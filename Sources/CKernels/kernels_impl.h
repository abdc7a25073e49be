// The body of every kernel, written once over EQK_W-lane vectors (clang/GCC vector
// extensions) and included by one file per instruction set (kernels_avx512.c,
// kernels_avx2.c, kernels_baseline.c), which first sets EQK_W (the float lanes of one
// register), EQK_NAME(f) (the name of f's copy for that set) and the target attribute of
// every function in the file. Helpers are static, so each file has its own. Not a
// public header.
//
// Everything stays in the float arithmetic the Swift versions used (the same exp
// polynomial, division for quantization, half-to-even rounding by the 1.5·2^23 trick);
// copies with FMA may fuse a multiply and an add, which only tightens results.
#include "kernels_internal.h"

#include <math.h>
#include <string.h>
#if EQK_W == 16 || EQK_W == 8
#include <immintrin.h>
#endif

#define EQK_INLINE static inline __attribute__((always_inline))

enum { W = EQK_W };
typedef float vf __attribute__((vector_size(4 * EQK_W), aligned(4)));
typedef int32_t vi __attribute__((vector_size(4 * EQK_W), aligned(4)));
typedef int8_t vb __attribute__((vector_size(EQK_W), aligned(1)));

EQK_INLINE vf splat(float c) { return (vf){0} + c; }
EQK_INLINE vi splati(int32_t c) { return (vi){0} + c; }
EQK_INLINE vf load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
EQK_INLINE void store(float *p, vf v) { memcpy(p, &v, sizeof v); }
EQK_INLINE vi loadi(const int32_t *p) { vi v; memcpy(&v, p, sizeof v); return v; }
/// mask ? a : b, lane by lane (mask lanes are all ones or all zeros).
EQK_INLINE vf select(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }
EQK_INLINE vi selecti(vi mask, vi a, vi b) { return (mask & a) | (~mask & b); }
EQK_INLINE vf vmax(vf a, vf b) { return select(a < b, b, a); }
EQK_INLINE vf vabs(vf a) { return (vf)((vi)a & splati(0x7FFFFFFF)); }

EQK_INLINE float hsum(vf v) {
    float s = 0;
    for (int l = 0; l < W; l++) s += v[l];
    return s;
}
EQK_INLINE double hsum_double(vf v) {
    double s = 0;
    for (int l = 0; l < W; l++) s += (double)v[l];
    return s;
}
EQK_INLINE float hmax(vf v) {
    float m = v[0];
    for (int l = 1; l < W; l++) m = v[l] > m ? v[l] : m;
    return m;
}

/// Loads p[0..<n] (n < W) with `fill` in the other lanes.
EQK_INLINE vf load_partial(const float *p, size_t n, float fill) {
    float buf[W];
    for (int l = 0; l < W; l++) buf[l] = fill;
    memcpy(buf, p, n * sizeof(float));
    return load(buf);
}
EQK_INLINE void store_partial(float *p, size_t n, vf v) {
    float buf[W];
    store(buf, v);
    memcpy(p, buf, n * sizeof(float));
}

// 1.5·2^23: adding it to a float of magnitude below 2^22 rounds to the nearest integer
// (ties to even) and leaves that integer in the low mantissa bits.
#define ROUNDING_MAGIC 12582912.0f
#define ROUNDING_BITS 0x4B400000

/// e^x per lane. Below −87 the result is e^−87 (keeps clear of denormals; harmless next
/// to the 1 that softmax always has); above 88.72 it is +∞.
EQK_INLINE vf vexp(vf x) {
    const float log2e = 1.4426950408889634f;
    // ln 2 in two parts: n·ln2Hi is exact for |n| ≤ 2^9.
    const float ln2hi = 0.693359375f, ln2lo = -2.1219444005469058e-4f;
    vf xc = select(x < splat(-87.0f), splat(-87.0f), x);
    xc = select(xc > splat(88.37f), splat(88.37f), xc);
    vf t = xc * log2e + ROUNDING_MAGIC;
    vf nf = t - ROUNDING_MAGIC;
    vi n = (vi)t - ROUNDING_BITS;
    vf r = xc - nf * ln2hi;
    r = r - nf * ln2lo;
    // e^r, |r| ≤ ln2/2: Taylor to r^7 (truncation below 6e-9 relative).
    vf p = splat(1.0f / 5040);
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * (r * r) + r + 1.0f;
    vf scale = (vf)((n + 127) << 23);
    return select(x > splat(88.72f), splat(INFINITY), p * scale);
}

EQK_INLINE float row_max(const float *p, size_t n) {
    size_t j = 0;
    float m = -INFINITY;
    if (n >= W) {
        vf a = load(p), b = a;
        j = W;
        for (; j + 2 * W <= n; j += 2 * W) { a = vmax(a, load(p + j)); b = vmax(b, load(p + j + W)); }
        for (; j + W <= n; j += W) a = vmax(a, load(p + j));
        m = hmax(vmax(a, b));
    }
    for (; j < n; j++) m = p[j] > m ? p[j] : m;
    return m;
}

/// Writes exp(scale·x − m) over row[0..<length] and returns its sum.
EQK_INLINE float exp_shifted(float *row, size_t length, float scale, float m) {
    vf mv = splat(m), sv = splat(scale);
    vf a0 = {0}, a1 = {0};
    size_t j = 0;
    for (; j + 2 * W <= length; j += 2 * W) {
        vf e0 = vexp(load(row + j) * sv - mv), e1 = vexp(load(row + j + W) * sv - mv);
        store(row + j, e0); store(row + j + W, e1);
        a0 += e0; a1 += e1;
    }
    for (; j + W <= length; j += W) {
        vf e = vexp(load(row + j) * sv - mv);
        store(row + j, e);
        a0 += e;
    }
    if (j < length) {
        size_t n = length - j;
        // Padding lanes are cleared before they reach the sum.
        vf e = vexp(load_partial(row + j, n, 0) * sv - mv);
        float buf[W];
        store(buf, e);
        for (size_t l = n; l < W; l++) buf[l] = 0;
        memcpy(row + j, buf, n * sizeof(float));
        a1 += load(buf);
    }
    return hsum(a0 + a1);
}

float EQK_NAME(eqk_softmax_unnormalised)(float *row, size_t count, size_t length, float scale) {
    // max(scale·x) = scale·max(x) because scale > 0.
    float m = scale * row_max(row, length);
    float sum = exp_shifted(row, length, scale, m);
    memset(row + length, 0, (count - length) * sizeof(float));
    return sum;
}

float EQK_NAME(eqk_softmax_int32_unnormalised)(void *scores, float rowScale, const float *colScale, size_t count,
                                                size_t length) {
    // In place: the int32 products become floats lane by lane (each lane is read before
    // it is written), moved through vector registers only, so no typed alias is made.
    const int32_t *acc = (const int32_t *)scores;
    float *row = (float *)scores;
    vf rs = splat(rowScale), mx = splat(-INFINITY);
    size_t j = 0;
    for (; j + W <= length; j += W) {
        vf s = __builtin_convertvector(loadi(acc + j), vf) * rs * load(colScale + j);
        store(row + j, s);
        mx = vmax(mx, s);
    }
    float m = hmax(mx);
    for (; j < length; j++) {
        int32_t a;
        memcpy(&a, acc + j, sizeof a);
        float s = (float)a * rowScale * colScale[j];
        memcpy(row + j, &s, sizeof s);
        m = s > m ? s : m;
    }
    float sum = exp_shifted(row, length, 1.0f, m);
    memset(row + length, 0, (count - length) * sizeof(float));
    return sum;
}

void EQK_NAME(eqk_softmax)(float *row, size_t count, size_t length, float scale) {
    float m = scale * row_max(row, length);
    float inv = 1.0f / exp_shifted(row, length, scale, m);
    vf iv = splat(inv);
    size_t j = 0;
    for (; j + W <= length; j += W) store(row + j, load(row + j) * iv);
    for (; j < length; j++) row[j] *= inv;
    memset(row + length, 0, (count - length) * sizeof(float));
}

float EQK_NAME(eqk_log_sum_exp)(const float *row, size_t count) {
    float m = row_max(row, count);
    if (isinf(m)) return m;
    vf mv = splat(m);
    // Four accumulators: each lane sums at most count/64 terms in float.
    vf a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    size_t j = 0;
    for (; j + 4 * W <= count; j += 4 * W) {
        a0 += vexp(load(row + j) - mv);
        a1 += vexp(load(row + j + W) - mv);
        a2 += vexp(load(row + j + 2 * W) - mv);
        a3 += vexp(load(row + j + 3 * W) - mv);
    }
    double total = hsum_double(a0) + hsum_double(a1) + hsum_double(a2) + hsum_double(a3);
    for (; j + W <= count; j += W) total += hsum_double(vexp(load(row + j) - mv));
    for (; j < count; j++) total += exp((double)(row[j] - m));
    return m + (float)log(total);
}

void EQK_NAME(eqk_quantize_rows_int8)(const float *x, size_t rows, size_t cols, int8_t *out, float *scales,
                            int32_t *sums, size_t group) {
    size_t groups = (cols + group - 1) / group;
    for (size_t i = 0; i < rows; i++) {
        const float *row = x + i * cols;
        int8_t *dst = out + i * cols;
        vf mx = {0};
        size_t j = 0;
        for (; j + W <= cols; j += W) mx = vmax(mx, vabs(load(row + j)));
        float maxAbs = hmax(mx);
        for (; j < cols; j++) { float a = fabsf(row[j]); maxAbs = a > maxAbs ? a : maxAbs; }
        float scale = maxAbs / 127.0f;
        scales[i] = scale;
        if (scale == 0) {
            memset(dst, 0, cols);
            if (sums) memset(sums + i * groups, 0, groups * sizeof(int32_t));
            continue;
        }
        vf sv = splat(scale);
        vi lo = splati(-127), hi = splati(127);
        j = 0;
        for (; j + W <= cols; j += W) {
            // Division, not a reciprocal product: the codes are round(x / scale) exactly.
            vi q = (vi)(load(row + j) / sv + ROUNDING_MAGIC) - ROUNDING_BITS;
            // max|x|/scale can round to just above 127.
            q = selecti(q < lo, lo, q);
            q = selecti(q > hi, hi, q);
            vb b = __builtin_convertvector(q, vb);
            memcpy(dst + j, &b, sizeof b);
        }
        for (; j < cols; j++) {
            int32_t q = (int32_t)((row[j] / scale + ROUNDING_MAGIC) - ROUNDING_MAGIC);
            dst[j] = (int8_t)(q < -127 ? -127 : q > 127 ? 127 : q);
        }
        if (!sums) continue;
        for (size_t g = 0; g < groups; g++) {
            size_t a = g * group, b = a + group < cols ? a + group : cols;
            int32_t total = 0;
            for (size_t k = a; k < b; k++) total += dst[k];
            sums[i * groups + g] = total;
        }
    }
}

void EQK_NAME(eqk_swiglu)(const float *gate, const float *up, size_t count, float *out) {
    size_t j = 0;
    for (; j + W <= count; j += W) {
        vf g = load(gate + j);
        store(out + j, g / (1.0f + vexp(-g)) * load(up + j));
    }
    if (j < count) {
        size_t n = count - j;
        vf g = load_partial(gate + j, n, 0);
        store_partial(out + j, n, g / (1.0f + vexp(-g)) * load_partial(up + j, n, 0));
    }
}

EQK_INLINE vf gelu_vector(vf x) {
    const float c = 0.7978845608028654f; // √(2/π)
    vf u = c * (x + 0.044715f * (x * x * x));
    return x / (1.0f + vexp(-2.0f * u));
}

void EQK_NAME(eqk_gelu)(const float *x, size_t count, float *out) {
    size_t j = 0;
    for (; j + W <= count; j += W) store(out + j, gelu_vector(load(x + j)));
    if (j < count) store_partial(out + j, count - j, gelu_vector(load_partial(x + j, count - j, 0)));
}

void EQK_NAME(eqk_rms_norm)(const float *x, size_t rows, size_t cols, const float *gamma, float eps, float *out) {
    for (size_t i = 0; i < rows; i++) {
        const float *row = x + i * cols;
        float *dst = out + i * cols;
        vf acc = {0};
        size_t j = 0;
        for (; j + W <= cols; j += W) { vf v = load(row + j); acc += v * v; }
        double sum = hsum_double(acc);
        for (; j < cols; j++) sum += (double)(row[j] * row[j]);
        float rstd = 1.0f / sqrtf((float)(sum / (double)cols) + eps);
        vf rv = splat(rstd);
        j = 0;
        for (; j + W <= cols; j += W) store(dst + j, load(row + j) * rv * load(gamma + j));
        for (; j < cols; j++) dst[j] = row[j] * rstd * gamma[j];
    }
}

void EQK_NAME(eqk_layer_norm)(const float *x, size_t rows, size_t cols, const float *gamma, const float *beta,
                    float eps, float *out) {
    float n = (float)cols;
    for (size_t i = 0; i < rows; i++) {
        const float *row = x + i * cols;
        float *dst = out + i * cols;
        vf acc = {0};
        size_t j = 0;
        for (; j + W <= cols; j += W) acc += load(row + j);
        float sum = hsum(acc);
        for (; j < cols; j++) sum += row[j];
        // The mean as hi + lo: lo = mean(x − hi) from a second pass, which also sums
        // (x − hi)² (nearly exact once hi is close), so large offsets cancel.
        float hi = sum / n;
        vf hv = splat(hi), dacc = {0}, sqacc = {0};
        j = 0;
        for (; j + W <= cols; j += W) { vf d = load(row + j) - hv; dacc += d; sqacc += d * d; }
        float dsum = hsum(dacc), sq = hsum(sqacc);
        for (; j < cols; j++) { float d = row[j] - hi; dsum += d; sq += d * d; }
        float lo = dsum / n;
        float variance = sq / n - lo * lo;
        if (!(variance > 0)) variance = 0;
        float rstd = 1.0f / sqrtf(variance + eps);
        vf lv = splat(lo), rv = splat(rstd);
        j = 0;
        for (; j + W <= cols; j += W)
            store(dst + j, ((load(row + j) - hv) - lv) * rv * load(gamma + j) + load(beta + j));
        for (; j < cols; j++) dst[j] = ((row[j] - hi) - lo) * rstd * gamma[j] + beta[j];
    }
}

void EQK_NAME(eqk_add)(const float *y, float *x, size_t count) {
    size_t j = 0;
    for (; j + W <= count; j += W) store(x + j, load(x + j) + load(y + j));
    for (; j < count; j++) x[j] += y[j];
}

void EQK_NAME(eqk_add_bias)(float *x, size_t rows, size_t cols, size_t ld, const float *bias) {
    for (size_t i = 0; i < rows; i++) {
        float *row = x + i * ld;
        size_t j = 0;
        for (; j + W <= cols; j += W) store(row + j, load(row + j) + load(bias + j));
        for (; j < cols; j++) row[j] += bias[j];
    }
}

void EQK_NAME(eqk_rescale_int32)(float *y, size_t ldy, const int32_t *acc, size_t ldacc, size_t rows, size_t cols,
                       const float *rowScale, const float *colScale, const float *colZero,
                       const int32_t *rowSum, size_t sumStride, int accumulate) {
    int zeroPoints = colZero != NULL && rowSum != NULL;
    for (size_t i = 0; i < rows; i++) {
        float *dst = y + i * ldy;
        const int32_t *c = acc + i * ldacc;
        float sx = rowScale[i];
        float sum = zeroPoints ? (float)rowSum[i * sumStride] : 0.0f;
        vf sxv = splat(sx), sumv = splat(sum);
        size_t j = 0;
        for (; j + W <= cols; j += W) {
            vf v = __builtin_convertvector(loadi(c + j), vf);
            if (zeroPoints) v = v - load(colZero + j) * sumv;
            v = sxv * load(colScale + j) * v;
            store(dst + j, accumulate ? load(dst + j) + v : v);
        }
        for (; j < cols; j++) {
            float v = (float)c[j];
            if (zeroPoints) v = v - colZero[j] * sum;
            v = sx * colScale[j] * v;
            dst[j] = accumulate ? dst[j] + v : v;
        }
    }
}

void EQK_NAME(eqk_scale_rows)(float *y, size_t ldy, const float *x, size_t ldx, size_t rows, size_t cols, const float *factor) {
    for (size_t i = 0; i < rows; i++) {
        float *dst = y + i * ldy;
        const float *src = x + i * ldx;
        vf f = splat(factor[i]);
        size_t j = 0;
        for (; j + W <= cols; j += W) store(dst + j, load(src + j) * f);
        for (; j < cols; j++) dst[j] = src[j] * factor[i];
    }
}

void EQK_NAME(eqk_column_absmax)(const float *x, size_t rows, size_t cols, size_t ld, float *max) {
    for (size_t i = 0; i < rows; i++) {
        const float *row = x + i * ld;
        size_t j = 0;
        for (; j + W <= cols; j += W) store(max + j, vmax(load(max + j), vabs(load(row + j))));
        for (; j < cols; j++) { float a = fabsf(row[j]); max[j] = a > max[j] ? a : max[j]; }
    }
}

void EQK_NAME(eqk_scale_columns)(const float *x, size_t ldx, size_t rows, size_t cols, const float *factor, float *y,
                                 size_t ldy) {
    for (size_t i = 0; i < rows; i++) {
        const float *src = x + i * ldx;
        float *dst = y + i * ldy;
        size_t j = 0;
        for (; j + W <= cols; j += W) store(dst + j, load(src + j) * load(factor + j));
        for (; j < cols; j++) dst[j] = src[j] * factor[j];
    }
}

/// Σ of the lanes, pairwise (shorter dependency chains than `hsum`; attention only).
EQK_INLINE float hsum_pairwise(vf v) {
    float b[W];
    store(b, v);
    for (int w = W / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) b[l] += b[l + w];
    return b[0];
}

/// hsum_pairwise of four vectors at once, into r[0...3]: the same additions in the same
/// order (lane l plus lane l + w for w = W/2, W/4, ..., 1), so the same float bits, but each
/// level adds the halves of two vectors in one vector addition instead of lane by lane.
EQK_INLINE void hsum4_pairwise(vf s0, vf s1, vf s2, vf s3, float *r) {
#if EQK_W == 16
    vf x = __builtin_shufflevector(s0, s1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
           __builtin_shufflevector(s0, s1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    vf y = __builtin_shufflevector(s2, s3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
           __builtin_shufflevector(s2, s3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    // x = [s0: 8 | s1: 8], y = [s2: 8 | s3: 8]; next, lane l plus lane l + 4 of each 8.
    vf z = __builtin_shufflevector(x, y, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
           __builtin_shufflevector(x, y, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    typedef float vf8 __attribute__((vector_size(32), aligned(4)));
    vf8 u = __builtin_shufflevector(z, z, 0, 1, 4, 5, 8, 9, 12, 13) + __builtin_shufflevector(z, z, 2, 3, 6, 7, 10, 11, 14, 15);
#elif EQK_W == 8
    vf x = __builtin_shufflevector(s0, s1, 0, 1, 2, 3, 8, 9, 10, 11) + __builtin_shufflevector(s0, s1, 4, 5, 6, 7, 12, 13, 14, 15);
    vf y = __builtin_shufflevector(s2, s3, 0, 1, 2, 3, 8, 9, 10, 11) + __builtin_shufflevector(s2, s3, 4, 5, 6, 7, 12, 13, 14, 15);
    // x = [s0: 4 | s1: 4], y = [s2: 4 | s3: 4]; next, lane l plus lane l + 2 of each 4.
    vf u = __builtin_shufflevector(x, y, 0, 1, 4, 5, 8, 9, 12, 13) + __builtin_shufflevector(x, y, 2, 3, 6, 7, 10, 11, 14, 15);
#else
    r[0] = hsum_pairwise(s0); r[1] = hsum_pairwise(s1); r[2] = hsum_pairwise(s2); r[3] = hsum_pairwise(s3);
    return;
#endif
#if EQK_W == 16 || EQK_W == 8
    // u = [s0: 2 | s1: 2 | s2: 2 | s3: 2]; last, lane l plus lane l + 1.
    typedef float vf4 __attribute__((vector_size(16), aligned(4)));
    vf4 sums = __builtin_shufflevector(u, u, 0, 2, 4, 6) + __builtin_shufflevector(u, u, 1, 3, 5, 7);
    memcpy(r, &sums, sizeof sums);
#endif
}

// Half precision (IEEE 754 binary16): what a KV cache stored as f16 holds. The copies for
// AVX-512 and AVX2 convert a vector at a time with the F16C instructions; the portable
// copy and the scalar tails use the two functions below, which give the same bits.

/// The half with bits h as a float (exact: every half is a float).
EQK_INLINE float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF, bits;
    if (exponent == 0x1F) bits = sign | 0x7F800000 | (mantissa << 13);           // ±∞, NaN
    else if (exponent != 0) bits = sign | ((exponent + 112) << 23) | (mantissa << 13); // rebias 15 → 127
    else {                                                                        // ±0 and subnormals: mantissa·2^−24
        float f = (float)mantissa * 0x1p-24f;
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/// The half nearest to f (ties to even), as vcvtps2ph rounds: beyond 65,504 by half a step
/// or more it is ±∞; NaN stays NaN (made quiet).
EQK_INLINE uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, a = x & 0x7FFFFFFF;
    if (a > 0x7F800000) return (uint16_t)(sign | 0x7E00 | ((a >> 13) & 0x3FF));
    if (a >= 0x477FF000) return (uint16_t)(sign | 0x7C00);  // ≥ 65,520: rounds to ∞
    if (a >= 0x38800000) {                                  // a normal half (≥ 2^−14)
        uint32_t r = a + 0xFFF + ((a >> 13) & 1);           // round at bit 13, ties to even
        return (uint16_t)(sign | ((r - 0x38000000) >> 13)); // rebias 127 → 15
    }
    // A subnormal half (or 0): the nearest multiple of 2^−24, ties to even, by the 2^23
    // trick (|f|·2^24 < 1024 is exact, so a fused multiply-add rounds the same). 1024 comes
    // out as 0x400, the smallest normal half.
    float rounded = fabsf(f) * 0x1p24f + 8388608.0f;
    return (uint16_t)(sign | (uint32_t)(rounded - 8388608.0f));
}

/// W halves from p as floats.
EQK_INLINE vf load_half(const uint16_t *p) {
#if EQK_W == 16
    return (vf)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
#elif EQK_W == 8
    return (vf)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
#else
    float b[W];
    for (int l = 0; l < W; l++) b[l] = half_to_float(p[l]);
    return load(b);
#endif
}

/// W floats to p as halves.
EQK_INLINE void store_half(uint16_t *p, vf v) {
#if EQK_W == 16
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtps_ph((__m512)v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#elif EQK_W == 8
    _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph((__m256)v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#else
    for (int l = 0; l < W; l++) p[l] = float_to_half(v[l]);
#endif
}

size_t EQK_NAME(eqk_f32_to_f16)(const float *x, size_t count, uint16_t *out) {
    // Values of magnitude 65,520 or more become ±∞: counted, so that a cache can tell.
    vi big = splati(0);
    size_t i = 0, overflows = 0;
    for (; i + W <= count; i += W) {
        vf v = load(x + i);
        big += (vabs(v) >= splat(65520.0f)) & splati(1);
        store_half(out + i, v);
    }
    for (int l = 0; l < W; l++) overflows += (size_t)big[l];
    for (; i < count; i++) {
        overflows += fabsf(x[i]) >= 65520.0f;
        out[i] = float_to_half(x[i]);
    }
    return overflows;
}

void EQK_NAME(eqk_f16_to_f32)(const uint16_t *x, size_t count, float *out) {
    size_t i = 0;
    for (; i + W <= count; i += W) store(out + i, load_half(x + i));
    for (; i < count; i++) out[i] = half_to_float(x[i]);
}

// Decoding attention reads keys and values held as floats or as halves: the helpers below
// take the element type as a flag that is a constant wherever they are inlined, so each
// kernel compiles to one loop per type and the float one is what it was before halves.

/// The address of element i of rows held as floats (half = 0) or halves (half = 1).
EQK_INLINE const void *kv_at(const void *p, size_t i, int half) {
    return (const char *)p + i * (half ? 2 : 4);
}
EQK_INLINE vf load_kv(const void *p, size_t i, int half) {
    return half ? load_half((const uint16_t *)p + i) : load((const float *)p + i);
}
EQK_INLINE float scalar_kv(const void *p, size_t i, int half) {
    return half ? half_to_float(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

/// scores[t] = q·k_t for the keys t0 ..< t0 + 4: four independent sums, so that the loads
/// and multiply-adds of neighbouring keys overlap.
EQK_INLINE void dot4(const float *q, const void *k, size_t ldk, size_t d, float *scores, int half) {
    vf s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    size_t c = 0;
    for (; c + W <= d; c += W) {
        vf qc = load(q + c);
        s0 += qc * load_kv(k, c, half); s1 += qc * load_kv(k, ldk + c, half);
        s2 += qc * load_kv(k, 2 * ldk + c, half); s3 += qc * load_kv(k, 3 * ldk + c, half);
    }
    float r[4];
    hsum4_pairwise(s0, s1, s2, s3, r);
    for (; c < d; c++)
        for (int j = 0; j < 4; j++) r[j] += q[c] * scalar_kv(k, j * ldk + c, half);
    memcpy(scores, r, sizeof r);
}

EQK_INLINE float dot1(const float *q, const void *k, size_t d, int half) {
    vf s0 = {0};
    size_t c = 0;
    for (; c + W <= d; c += W) s0 += load(q + c) * load_kv(k, c, half);
    float r = hsum_pairwise(s0);
    for (; c < d; c++) r += q[c] * scalar_kv(k, c, half);
    return r;
}

/// Heads of a group taken together by decoding attention: each key and value row is read
/// once for all of them (from memory for the first, from L1 for the rest) instead of once
/// per head, and their value sums (up to 4 vectors each) stay in registers.
#define EQK_BUNDLE 3

/// out_h += Σ_t p_h,t·v_t for the `bundle` heads of one pass (p_h,t = scores[h·keys + t]),
/// then out_h ×= inverse[h]. Each head's sums run over t in order, as for a head alone.
EQK_INLINE void weigh_values(const float *scores, size_t keys, const void *v, size_t ldv, size_t d, float *out,
                             const float *inverse, int bundle, int half) {
    for (size_t c0 = 0; c0 < d; c0 += 4 * W) {
        size_t span = d - c0 < 4 * W ? d - c0 : 4 * W, full = span / W;
        vf a[EQK_BUNDLE][4];
        for (int h = 0; h < bundle; h++) a[h][0] = a[h][1] = a[h][2] = a[h][3] = (vf){0};
        if (full == 4) {  // the common case (head sizes of 4W and more), without a branch per vector
            for (size_t t = 0; t < keys; t++) {
                size_t vt = t * ldv + c0;
                vf r0 = load_kv(v, vt, half), r1 = load_kv(v, vt + W, half), r2 = load_kv(v, vt + 2 * W, half),
                   r3 = load_kv(v, vt + 3 * W, half);
                for (int h = 0; h < bundle; h++) {
                    vf p = splat(scores[h * keys + t]);
                    a[h][0] += p * r0; a[h][1] += p * r1; a[h][2] += p * r2; a[h][3] += p * r3;
                }
            }
        } else {
            for (size_t t = 0; t < keys; t++) {
                size_t vt = t * ldv + c0;
                for (int h = 0; h < bundle; h++) {
                    vf p = splat(scores[h * keys + t]);
                    if (full > 0) a[h][0] += p * load_kv(v, vt, half);
                    if (full > 1) a[h][1] += p * load_kv(v, vt + W, half);
                    if (full > 2) a[h][2] += p * load_kv(v, vt + 2 * W, half);
                }
            }
        }
        for (int h = 0; h < bundle; h++) {
            float *oh = out + h * d;
            vf inv = splat(inverse[h]);
            for (size_t i = 0; i < full; i++) store(oh + c0 + i * W, a[h][i] * inv);
            for (size_t c = c0 + full * W; c < c0 + span; c++) {
                float sum = 0;
                for (size_t t = 0; t < keys; t++) sum += scores[h * keys + t] * scalar_kv(v, t * ldv + c, half);
                oh[c] = sum * inverse[h];
            }
        }
    }
}

/// One pass over the keys and values for `bundle` (1 ... EQK_BUNDLE) heads of the group.
EQK_INLINE void attend_bundle(const float *q, int bundle, size_t d, const void *k, size_t ldk, const void *v,
                              size_t ldv, size_t keys, float scale, float *scores, float *out, float *partial,
                              int first, int half) {
    size_t rowBytes = d * (half ? 2 : 4), t = 0;
    for (; t + 4 <= keys; t += 4) {
        if (first) {
            // The first pass reads keys and values from memory (the weights streamed since
            // the last token evicted them): ask for the keys 16 rows ahead, and for each value
            // row as its key is scored, so that the values arrive while the scores are
            // computed instead of after them.
            for (size_t r = 0; r < 4; r++)
                for (size_t c = 0; c < rowBytes; c += 64) {
                    __builtin_prefetch((const char *)kv_at(v, (t + r) * ldv, half) + c, 0, 3);
                    if (t + 16 + r < keys) __builtin_prefetch((const char *)kv_at(k, (t + 16 + r) * ldk, half) + c, 0, 3);
                }
        }
        for (int h = 0; h < bundle; h++) dot4(q + h * d, kv_at(k, t * ldk, half), ldk, d, scores + h * keys + t, half);
    }
    for (; t < keys; t++)
        for (int h = 0; h < bundle; h++) scores[h * keys + t] = dot1(q + h * d, kv_at(k, t * ldk, half), d, half);
    float inverse[EQK_BUNDLE];
    for (int h = 0; h < bundle; h++) {
        float *sh = scores + h * keys;
        float m = scale * row_max(sh, keys);
        float sum = exp_shifted(sh, keys, scale, m);
        // A part of the keys leaves Σ p·v undivided and reports its maximum and Σ p instead.
        inverse[h] = partial == NULL ? 1.0f / sum : 1.0f;
        if (partial != NULL) { partial[2 * h] = m; partial[2 * h + 1] = sum; }
    }
    weigh_values(scores, keys, v, ldv, d, out, inverse, bundle, half);
}

EQK_INLINE void attend_one(const float *q, size_t group, size_t d, const void *k, size_t ldk, const void *v,
                           size_t ldv, size_t keys, float scale, float *scores, float *out, float *partial, int half) {
    // The bundle size is a constant in each call below, so the arrays of registers unroll.
    for (size_t h = 0; h < group; h += EQK_BUNDLE) {
        size_t n = group - h < EQK_BUNDLE ? group - h : EQK_BUNDLE;
        float *ph = partial == NULL ? NULL : partial + 2 * h;
        if (n == 3)
            attend_bundle(q + h * d, 3, d, k, ldk, v, ldv, keys, scale, scores, out + h * d, ph, h == 0, half);
        else if (n == 2)
            attend_bundle(q + h * d, 2, d, k, ldk, v, ldv, keys, scale, scores, out + h * d, ph, h == 0, half);
        else
            attend_bundle(q + h * d, 1, d, k, ldk, v, ldv, keys, scale, scores, out + h * d, ph, h == 0, half);
    }
}

void EQK_NAME(eqk_attend_one)(const float *q, size_t group, size_t d, const float *k, size_t ldk, const float *v,
                              size_t ldv, size_t keys, float scale, float *scores, float *out, float *partial) {
    attend_one(q, group, d, k, ldk, v, ldv, keys, scale, scores, out, partial, 0);
}

void EQK_NAME(eqk_attend_one_f16)(const float *q, size_t group, size_t d, const uint16_t *k, size_t ldk,
                                  const uint16_t *v, size_t ldv, size_t keys, float scale, float *scores, float *out,
                                  float *partial) {
    attend_one(q, group, d, k, ldk, v, ldv, keys, scale, scores, out, partial, 1);
}

size_t EQK_NAME(eqk_argmax)(const float *x, size_t count) {
    // The largest value, NaN never taken (vmax keeps m where a lane of x is NaN: m < NaN is
    // false), then the first index that holds it.
    vf m = splat(-INFINITY);
    size_t i = 0;
    for (; i + W <= count; i += W) m = vmax(m, load(x + i));
    float best = hmax(m);
    for (; i < count; i++) best = x[i] > best ? x[i] : best;
    for (i = 0; i < count; i++)
        if (x[i] == best) return i;
    return 0;
}

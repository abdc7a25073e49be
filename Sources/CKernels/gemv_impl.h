// The batch-1 int8 matrix × vector product (eqk_gemv_s8), written once and included by
// one file per instruction set: kernels_gemv_vnni.c (AVX-512 VNNI), kernels_avx2.c and
// kernels_baseline.c, each of which first defines EQK_GEMV_NAME(f) and one of
// EQK_GEMV_VNNI, EQK_GEMV_AVX2 or neither (portable C). Not a public header.
//
// Only the inner product over 64-byte blocks (16 output channels × 4 inputs) differs per
// set. The rescale that turns a group's int32 sums into floats is one expression shape,
// the same as eqk_rescale_int32's, so that a compiler that fuses a multiply and an add in
// one fuses it in the other too and both give the same float bits.
#include "CKernels.h"

#include <string.h>
#if defined(EQK_GEMV_VNNI) || defined(EQK_GEMV_AVX2)
#include <immintrin.h>
#endif

// The 16-lane vectors below only pass between always-inlined helpers, so the calling
// convention clang warns about for copies without AVX-512 never applies.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float gemv_vf __attribute__((vector_size(64), aligned(4)));
typedef int32_t gemv_vi __attribute__((vector_size(64), aligned(4)));

static inline __attribute__((always_inline)) gemv_vf gemv_load_f(const float *p) { gemv_vf v; memcpy(&v, p, sizeof v); return v; }
static inline __attribute__((always_inline)) gemv_vi gemv_load_i(const int32_t *p) { gemv_vi v; memcpy(&v, p, sizeof v); return v; }

/// Σ over quads q0 ..< q1 of one tile: lane o gets Σ_j w[q][o][j]·x[4q + j] exactly.
/// `tile` points at quad 0 of the tile; `wsum` (VNNI only) at the group's 16 weight sums.
static inline __attribute__((always_inline)) gemv_vi gemv_tile_sum(const int8_t *tile, const int8_t *x, size_t q0, size_t q1,
                                                                   const int32_t *wsum) {
    gemv_vi out;
#if defined(EQK_GEMV_VNNI)
    // vpdpbusd multiplies unsigned by signed bytes: x + 128 (x ^ 0x80) times w, then the
    // 128·Σw this adds is taken off again. Two chains hide the instruction's latency.
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
    size_t q = q0;
    for (; q + 2 <= q1; q += 2) {
        int32_t x0, x1;
        memcpy(&x0, x + 4 * q, 4); memcpy(&x1, x + 4 * q + 4, 4);
        a0 = _mm512_dpbusd_epi32(a0, _mm512_set1_epi32(x0 ^ (int32_t)0x80808080), _mm512_loadu_si512(tile + 64 * q));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_set1_epi32(x1 ^ (int32_t)0x80808080), _mm512_loadu_si512(tile + 64 * q + 64));
    }
    if (q < q1) {
        int32_t x0;
        memcpy(&x0, x + 4 * q, 4);
        a0 = _mm512_dpbusd_epi32(a0, _mm512_set1_epi32(x0 ^ (int32_t)0x80808080), _mm512_loadu_si512(tile + 64 * q));
    }
    __m512i s = _mm512_sub_epi32(_mm512_add_epi32(a0, a1), _mm512_slli_epi32(_mm512_loadu_si512(wsum), 7));
    memcpy(&out, &s, sizeof out);
#elif defined(EQK_GEMV_AVX2)
    // maddubs multiplies unsigned by signed bytes with 16-bit saturating pair sums:
    // |w| times x·sign(w) is w·x, and with |x| ≤ 127, |w| ≤ 128 a pair stays ≤ 32,512.
    (void)wsum;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
    for (size_t q = q0; q < q1; q++) {
        int32_t x0;
        memcpy(&x0, x + 4 * q, 4);
        __m256i xb = _mm256_set1_epi32(x0);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(tile + 64 * q));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(tile + 64 * q + 32));
        __m256i p0 = _mm256_maddubs_epi16(_mm256_abs_epi8(w0), _mm256_sign_epi8(xb, w0));
        __m256i p1 = _mm256_maddubs_epi16(_mm256_abs_epi8(w1), _mm256_sign_epi8(xb, w1));
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(p0, ones));
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(p1, ones));
    }
    memcpy((char *)&out, &lo, 32);
    memcpy((char *)&out + 32, &hi, 32);
#else
    (void)wsum;
    int32_t acc[16] = {0};
    for (size_t q = q0; q < q1; q++) {
        const int8_t *b = tile + 64 * q;
        const int8_t *xq = x + 4 * q;
        for (int o = 0; o < 16; o++)
            acc[o] += (int32_t)b[4 * o] * xq[0] + (int32_t)b[4 * o + 1] * xq[1] + (int32_t)b[4 * o + 2] * xq[2] +
                      (int32_t)b[4 * o + 3] * xq[3];
    }
    memcpy(&out, acc, sizeof out);
#endif
    return out;
}

/// `start` plus Σ over octets b0 ..< b1 of one 4-bit tile: lane o gets start + Σ u[o,i]·x[i]
/// exactly, where byte 4o + j of octet b holds u[o, 8b + j] in its low nibble and
/// u[o, 8b + 4 + j] in its high one (0...15, unsigned). (The callers' start is −c·Σx, which
/// then costs nothing: it is where one chain of sums begins.)
static inline __attribute__((always_inline)) gemv_vi gemv_tile_sum_u4(const uint8_t *tile, const int8_t *x, size_t b0,
                                                                      size_t b1, int32_t start) {
    gemv_vi out;
#if defined(EQK_GEMV_VNNI)
    // The nibbles are the unsigned operand of vpdpbusd and x the signed one: no offset.
    // The high nibbles come down in one instruction: a GF(2) affine map per byte whose
    // matrix moves bits 4–7 to 0–3 and clears the rest (a 16-bit shift would need a mask too).
    const __m512i mask = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi64(0x1020408000000000LL);
    __m512i a0 = _mm512_set1_epi32(start), a1 = _mm512_setzero_si512();
    for (size_t b = b0; b < b1; b++) {
        int32_t x0, x1;
        memcpy(&x0, x + 8 * b, 4); memcpy(&x1, x + 8 * b + 4, 4);
        __m512i w = _mm512_loadu_si512(tile + 64 * b);
        a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(w, mask), _mm512_set1_epi32(x0));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_gf2p8affine_epi64_epi8(w, high, 0), _mm512_set1_epi32(x1));
    }
    __m512i s = _mm512_add_epi32(a0, a1);
    memcpy(&out, &s, sizeof out);
#elif defined(EQK_GEMV_AVX2)
    // maddubs: nibble (≤ 15) times x (|x| ≤ 127), pairs ≤ 3,810; the two halves of an octet
    // added in 16 bits (≤ 7,620) before widening.
    const __m256i mask = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    __m256i lo = _mm256_set1_epi32(start), hi = _mm256_set1_epi32(start);
    for (size_t b = b0; b < b1; b++) {
        int32_t x0, x1;
        memcpy(&x0, x + 8 * b, 4); memcpy(&x1, x + 8 * b + 4, 4);
        __m256i xb0 = _mm256_set1_epi32(x0), xb1 = _mm256_set1_epi32(x1);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(tile + 64 * b));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(tile + 64 * b + 32));
        __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(w0, mask), xb0),
                                      _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(w0, 4), mask), xb1));
        __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(w1, mask), xb0),
                                      _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(w1, 4), mask), xb1));
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(p0, ones));
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(p1, ones));
    }
    memcpy((char *)&out, &lo, 32);
    memcpy((char *)&out + 32, &hi, 32);
#else
    int32_t acc[16];
    for (int o = 0; o < 16; o++) acc[o] = start;
    for (size_t b = b0; b < b1; b++) {
        const uint8_t *w = tile + 64 * b;
        const int8_t *xb = x + 8 * b;
        for (int o = 0; o < 16; o++)
            for (int j = 0; j < 4; j++)
                acc[o] += (int32_t)(w[4 * o + j] & 0x0F) * xb[j] + (int32_t)(w[4 * o + j] >> 4) * xb[4 + j];
    }
    memcpy(&out, acc, sizeof out);
#endif
    return out;
}

/// One group's int32 sums of a tile turned into floats as eqk_rescale_int32 does, added to
/// `acc` (or replacing it for the first group).
static inline __attribute__((always_inline)) gemv_vf gemv_rescale(gemv_vf acc, gemv_vi sum, size_t g, gemv_vf sxv,
                                                                  const float *scale, const float *zero,
                                                                  const int32_t *xsums) {
    gemv_vf v = __builtin_convertvector(sum, gemv_vf);
    if (zero != NULL) {
        gemv_vf sumv = (gemv_vf){0} + (float)xsums[g];
        v = v - gemv_load_f(zero) * sumv;
    }
    v = sxv * gemv_load_f(scale) * v;
    return g == 0 ? v : acc + v;
}

/// y[n0 ..< n0 + 16] (as far as n) = acc (+ bias), as eqk_add_bias adds it.
static inline __attribute__((always_inline)) void gemv_store(gemv_vf acc, const float *bias, size_t n0, float *y, size_t n) {
    if (n - n0 >= 16) {  // a whole tile: one load of the bias, one store
        if (bias != NULL) acc = acc + gemv_load_f(bias + n0);
        memcpy(y + n0, &acc, sizeof acc);
        return;
    }
    size_t count = n - n0;
    if (bias != NULL) {
        float b[16] = {0};
        memcpy(b, bias + n0, count * sizeof(float));
        acc = acc + gemv_load_f(b);
    }
    memcpy(y + n0, &acc, count * sizeof(float));
}

/// eqk_gemv_u4's tiles when every group is whole and begins an octet (quads a multiple of an
/// even groupQuads: group:32 and k a multiple of 32, the usual case), `octets` per group.
/// The same sums and float steps as the general loop below, without its bookkeeping: there,
/// working out each group's bounds takes about as many instructions as the group's four
/// blocks of group:32 themselves; here the bounds are fixed, and with `octets` a constant
/// (4 for group:32) a group's blocks are one straight run of loads and products.
static inline __attribute__((always_inline)) void gemv_u4_whole_groups(const uint8_t *w, size_t groups, size_t octets,
                                                                       int32_t codeOffset, const float *scale,
                                                                       const float *zero, const int8_t *x, gemv_vf sxv,
                                                                       const int32_t *xsums, const float *bias,
                                                                       size_t tile0, size_t tile1, float *y, size_t n) {
    for (size_t t = tile0; t < tile1; t++) {
        const uint8_t *block = w + t * groups * octets * 64;
        const float *tileScale = scale + t * groups * 16, *tileZero = zero == NULL ? NULL : zero + t * groups * 16;
        gemv_vf acc = {0};
        for (size_t g = 0; g < groups; g++, block += 64 * octets) {
            gemv_vi sum = gemv_tile_sum_u4(block, x + 8 * octets * g, 0, octets, -codeOffset * xsums[g]);
            acc = gemv_rescale(acc, sum, g, sxv, tileScale + 16 * g, tileZero == NULL ? NULL : tileZero + 16 * g, xsums);
        }
        gemv_store(acc, bias, t * 16, y, n);
    }
}

void EQK_GEMV_NAME(eqk_gemv_u4)(const uint8_t *w, size_t quads, size_t groupQuads, int32_t codeOffset,
                                const float *scale, const float *zero, const int8_t *x, float xscale,
                                const int32_t *xsums, const float *bias, size_t tile0, size_t tile1, float *y,
                                size_t n) {
    size_t groups = (quads + groupQuads - 1) / groupQuads, octets = (quads + 1) / 2;
    gemv_vf sxv = (gemv_vf){0} + xscale;
    if (groupQuads % 2 == 0 && quads % groupQuads == 0) {
        // One copy with the group's length a constant for group:32, one for the rest.
        if (groupQuads == 8)
            gemv_u4_whole_groups(w, groups, 4, codeOffset, scale, zero, x, sxv, xsums, bias, tile0, tile1, y, n);
        else
            gemv_u4_whole_groups(w, groups, groupQuads / 2, codeOffset, scale, zero, x, sxv, xsums, bias, tile0, tile1, y, n);
        return;
    }
    for (size_t t = tile0; t < tile1; t++) {
        const uint8_t *tile = w + t * octets * 64;
        size_t n0 = t * 16;
        gemv_vf acc = {0};
        for (size_t g = 0; g < groups; g++) {
            size_t q0 = g * groupQuads, q1 = q0 + groupQuads < quads ? q0 + groupQuads : quads;
            // Σ (u − c)·x = Σ u·x − c·Σx; the padding past k holds x = 0.
            gemv_vi sum = gemv_tile_sum_u4(tile, x, q0 / 2, (q1 + 1) / 2, -codeOffset * xsums[g]);
            acc = gemv_rescale(acc, sum, g, sxv, scale + (t * groups + g) * 16, zero == NULL ? NULL : zero + (t * groups + g) * 16, xsums);
        }
        gemv_store(acc, bias, n0, y, n);
    }
}

void EQK_GEMV_NAME(eqk_gemv_s8)(const int8_t *w, size_t quads, size_t groupQuads, const int32_t *wsum,
                                const float *scale, const float *zero, const int8_t *x, float xscale,
                                const int32_t *xsums, const float *bias, size_t tile0, size_t tile1, float *y,
                                size_t n) {
    size_t groups = (quads + groupQuads - 1) / groupQuads;
    gemv_vf sxv = (gemv_vf){0} + xscale;
    for (size_t t = tile0; t < tile1; t++) {
        const int8_t *tile = w + t * quads * 64;
        size_t n0 = t * 16;
        gemv_vf acc = {0};
        for (size_t g = 0; g < groups; g++) {
            size_t q0 = g * groupQuads, q1 = q0 + groupQuads < quads ? q0 + groupQuads : quads;
            gemv_vi sum = gemv_tile_sum(tile, x, q0, q1, wsum + (t * groups + g) * 16);
            acc = gemv_rescale(acc, sum, g, sxv, scale + (t * groups + g) * 16, zero == NULL ? NULL : zero + (t * groups + g) * 16, xsums);
        }
        gemv_store(acc, bias, n0, y, n);
    }
}

/// lanes[o] += Σ_j (code(o, j) − z[o])·x[j] for the 16 channels of one block of 4 inputs,
/// the codes sign-extended from the bytes of each 32-bit lane (byte j of lane o).
static inline __attribute__((always_inline)) gemv_vf gemv_f32_quad(gemv_vf f, gemv_vi v, gemv_vf z, const float *x) {
    f = f + (__builtin_convertvector((v << 24) >> 24, gemv_vf) - z) * x[0];
    f = f + (__builtin_convertvector((v << 16) >> 24, gemv_vf) - z) * x[1];
    f = f + (__builtin_convertvector((v << 8) >> 24, gemv_vf) - z) * x[2];
    f = f + (__builtin_convertvector(v >> 24, gemv_vf) - z) * x[3];
    return f;
}

/// The same for packed nibbles: code = nibble − offset, nibble j of the half `shift` (0 or 4).
static inline __attribute__((always_inline)) gemv_vf gemv_f32_nibbles(gemv_vf f, gemv_vi v, int shift, gemv_vf z,
                                                                      const float *x) {
    f = f + (__builtin_convertvector((v >> shift) & 0xF, gemv_vf) - z) * x[0];
    f = f + (__builtin_convertvector((v >> (8 + shift)) & 0xF, gemv_vf) - z) * x[1];
    f = f + (__builtin_convertvector((v >> (16 + shift)) & 0xF, gemv_vf) - z) * x[2];
    f = f + (__builtin_convertvector((v >> (24 + shift)) & 0xF, gemv_vf) - z) * x[3];
    return f;
}

void EQK_GEMV_NAME(eqk_gemv_f32)(const void *w, int nibbles, size_t quads, size_t groupQuads, int32_t codeOffset,
                                 const float *scale, const float *zero, const float *x, const float *bias,
                                 size_t tile0, size_t tile1, float *y, size_t n) {
    size_t groups = (quads + groupQuads - 1) / groupQuads;
    size_t tileBytes = nibbles ? (quads + 1) / 2 * 64 : quads * 64;
    for (size_t t = tile0; t < tile1; t++) {
        const uint8_t *tile = (const uint8_t *)w + t * tileBytes;
        size_t n0 = t * 16;
        gemv_vf acc = {0};
        for (size_t g = 0; g < groups; g++) {
            size_t q0 = g * groupQuads, q1 = q0 + groupQuads < quads ? q0 + groupQuads : quads;
            // The zero point (and, for packed nibbles, the offset) is taken off each code, so
            // no large sums cancel.
            gemv_vf z = (zero != NULL ? gemv_load_f(zero + (t * groups + g) * 16) : (gemv_vf){0}) + (float)(nibbles ? codeOffset : 0);
            gemv_vf f0 = {0}, f1 = {0};
            if (nibbles) {
                for (size_t q = q0; q < q1; q += 2) {
                    gemv_vi v;
                    memcpy(&v, tile + 64 * (q / 2), sizeof v);
                    f0 = gemv_f32_nibbles(f0, v, 0, z, x + 4 * q);
                    if (q + 1 < q1) f1 = gemv_f32_nibbles(f1, v, 4, z, x + 4 * q + 4);
                }
            } else {
                size_t q = q0;
                for (; q + 2 <= q1; q += 2) {
                    gemv_vi v0, v1;
                    memcpy(&v0, tile + 64 * q, sizeof v0);
                    memcpy(&v1, tile + 64 * q + 64, sizeof v1);
                    f0 = gemv_f32_quad(f0, v0, z, x + 4 * q);
                    f1 = gemv_f32_quad(f1, v1, z, x + 4 * q + 4);
                }
                if (q < q1) {
                    gemv_vi v0;
                    memcpy(&v0, tile + 64 * q, sizeof v0);
                    f0 = gemv_f32_quad(f0, v0, z, x + 4 * q);
                }
            }
            gemv_vf v = gemv_load_f(scale + (t * groups + g) * 16) * (f0 + f1);
            acc = g == 0 ? v : acc + v;
        }
        gemv_store(acc, bias, n0, y, n);
    }
}

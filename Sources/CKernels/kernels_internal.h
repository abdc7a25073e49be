// The copies of each kernel per instruction set, and the dispatch between them
// (dispatch.c). Not a public header.
#ifndef EASYQUANT_CKERNELS_INTERNAL_H
#define EASYQUANT_CKERNELS_INTERNAL_H

#include "CKernels.h"

#define EQK_DECLARE(suffix)                                                                                   \
    float eqk_softmax_unnormalised_##suffix(float *row, size_t count, size_t length, float scale);            \
    float eqk_softmax_int32_unnormalised_##suffix(void *scores, float rowScale, const float *colScale,           \
                                                  size_t count, size_t length);                               \
    void eqk_softmax_##suffix(float *row, size_t count, size_t length, float scale);                          \
    float eqk_log_sum_exp_##suffix(const float *row, size_t count);                                           \
    void eqk_quantize_rows_int8_##suffix(const float *x, size_t rows, size_t cols, int8_t *out, float *scales, \
                                         int32_t *sums, size_t group);                                        \
    void eqk_swiglu_##suffix(const float *gate, const float *up, size_t count, float *out);                   \
    void eqk_gelu_##suffix(const float *x, size_t count, float *out);                                         \
    void eqk_rms_norm_##suffix(const float *x, size_t rows, size_t cols, const float *gamma, float eps,        \
                               float *out);                                                                   \
    void eqk_layer_norm_##suffix(const float *x, size_t rows, size_t cols, const float *gamma,                \
                                 const float *beta, float eps, float *out);                                   \
    void eqk_add_##suffix(const float *y, float *x, size_t count);                                            \
    void eqk_add_bias_##suffix(float *x, size_t rows, size_t cols, size_t ld, const float *bias);             \
    void eqk_rescale_int32_##suffix(float *y, size_t ldy, const int32_t *acc, size_t ldacc, size_t rows,      \
                                    size_t cols, const float *rowScale, const float *colScale,                \
                                    const float *colZero, const int32_t *rowSum, size_t sumStride,            \
                                    int accumulate);                                                          \
    void eqk_column_absmax_##suffix(const float *x, size_t rows, size_t cols, size_t ld, float *max);         \
    void eqk_scale_columns_##suffix(const float *x, size_t ldx, size_t rows, size_t cols, const float *factor, \
                                    float *y, size_t ldy);                                                    \
    void eqk_scale_rows_##suffix(float *y, size_t ldy, const float *x, size_t ldx, size_t rows, size_t cols,  \
                                 const float *factor);                                                       \
    void eqk_attend_one_##suffix(const float *q, size_t group, size_t d, const float *k, size_t ldk,           \
                                 const float *v, size_t ldv, size_t keys, float scale, float *scores,         \
                                 float *out, float *partial);                                                \
    void eqk_attend_one_f16_##suffix(const float *q, size_t group, size_t d, const uint16_t *k, size_t ldk,   \
                                     const uint16_t *v, size_t ldv, size_t keys, float scale, float *scores,  \
                                     float *out, float *partial);                                            \
    size_t eqk_f32_to_f16_##suffix(const float *x, size_t count, uint16_t *out);                                \
    void eqk_f16_to_f32_##suffix(const uint16_t *x, size_t count, float *out);                                \
    size_t eqk_argmax_##suffix(const float *x, size_t count);

#define EQK_DECLARE_GEMV(suffix)                                                                                  \
    void eqk_gemv_s8_##suffix(const int8_t *w, size_t quads, size_t groupQuads, const int32_t *wsum,             \
                              const float *scale, const float *zero, const int8_t *x, float xscale,  \
                              const int32_t *xsums, const float *bias, size_t tile0, size_t tile1, float *y,     \
                              size_t n);                                                                         \
    void eqk_gemv_u4_##suffix(const uint8_t *w, size_t quads, size_t groupQuads, int32_t codeOffset,             \
                              const float *scale, const float *zero, const int8_t *x, float xscale,  \
                              const int32_t *xsums, const float *bias, size_t tile0, size_t tile1, float *y,     \
                              size_t n);                                                                         \
    void eqk_gemv_f32_##suffix(const void *w, int nibbles, size_t quads, size_t groupQuads, int32_t codeOffset,  \
                               const float *scale, const float *zero, const float *x,                \
                               const float *bias, size_t tile0, size_t tile1, float *y, size_t n);

#if defined(__x86_64__) && defined(__clang__)
#define EQK_X86 1
EQK_DECLARE_GEMV(vnni)
EQK_DECLARE_GEMV(avx2)
EQK_DECLARE(avx512)
EQK_DECLARE(avx2)
#else
#define EQK_X86 0
#endif
EQK_DECLARE(baseline)
EQK_DECLARE_GEMV(baseline)

#endif

// Element-wise and row-wise float kernels of EasyQuant's forward pass.
//
// Each kernel is compiled several times, for AVX-512, for AVX2 with FMA and for the
// baseline instruction set, and the copy for the running CPU is chosen at the first
// call (x86-64 with clang; elsewhere there is one copy).
// The binary therefore runs on any x86-64 CPU and still uses the widest vectors there are.
//
// Callers (Sources/EasyQuant/Kernels/VectorOps.swift) check every shape and pointer once
// before calling; these functions trust their arguments. Inputs must be finite unless a
// function says otherwise. Sizes are element counts.
#ifndef EASYQUANT_CKERNELS_H
#define EASYQUANT_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The instruction set the kernels run with on this CPU: "avx512", "avx2" or "baseline".
const char *eqk_isa(void);

/// Makes the kernels use the copy for `name` ("baseline", "avx2", "avx512", or "auto" for
/// the default choice) from now on, for tests and timing; returns 0, changing nothing, for
/// an unknown name or a set this CPU lacks. Not for use while kernels run on other threads.
int eqk_use_isa(const char *name);

/// Softmax of one row in place with a causal length: row[0..<length] becomes
/// exp(scale·x − max)/Σ and row[length..<count] becomes 0. 1 ≤ length ≤ count, scale > 0.
void eqk_softmax(float *row, size_t count, size_t length, float scale);

/// Unnormalised causal softmax of one row in place: row[0..<length] becomes
/// exp(scale·x − scale·max), row[length..<count] becomes 0; returns Σ of the kept
/// entries (≥ 1), by which the caller divides later. 1 ≤ length ≤ count, scale > 0.
float eqk_softmax_unnormalised(float *row, size_t count, size_t length, float scale);

/// `eqk_softmax_unnormalised` of int32 scores rescaled in place: scores holds count int32
/// products acc[j], which become floats exp(s[j] − max s) for j < length (0 after), with
/// s[j] = acc[j]·rowScale·colScale[j]; returns Σ (≥ 1). 1 ≤ length ≤ count.
float eqk_softmax_int32_unnormalised(void *scores, float rowScale, const float *colScale, size_t count, size_t length);

/// log Σ exp(row[j]) over count ≥ 1 entries, as max + log Σ exp(x − max), the sum
/// finished in double. ±∞ maxima are returned as they are.
float eqk_log_sum_exp(const float *row, size_t count);

/// Per-row symmetric int8 quantization of rows × cols floats: scales[i] = max|x[i,:]|/127,
/// out[i,j] = round_half_even(x[i,j]/scales[i]) within −127...127 (0 for a zero row).
/// When sums is not NULL, sums[i·groups + g] = Σ of the codes of columns
/// g·group ..< min(cols, (g+1)·group), groups = ⌈cols/group⌉ (group ≥ 1).
void eqk_quantize_rows_int8(const float *x, size_t rows, size_t cols, int8_t *out, float *scales,
                            int32_t *sums, size_t group);

/// out[i] = silu(gate[i])·up[i], silu(g) = g/(1 + e^−g). out may equal gate or up.
void eqk_swiglu(const float *gate, const float *up, size_t count, float *out);

/// GPT-2's tanh GELU as x/(1 + e^(−2u)), u = √(2/π)(x + 0.044715x³). out may equal x.
void eqk_gelu(const float *x, size_t count, float *out);

/// RMSNorm of rows × cols: out = x/√(mean x² + eps)·gamma. out may equal x.
void eqk_rms_norm(const float *x, size_t rows, size_t cols, const float *gamma, float eps, float *out);

/// LayerNorm of rows × cols with a two-part mean (hi + lo) so that large common offsets
/// cancel exactly: out = (x − μ)/√(σ² + eps)·gamma + beta. out may equal x.
void eqk_layer_norm(const float *x, size_t rows, size_t cols, const float *gamma, const float *beta,
                    float eps, float *out);

/// x[i] += y[i].
void eqk_add(const float *y, float *x, size_t count);

/// x[i·ld + j] += bias[j] for i < rows, j < cols.
void eqk_add_bias(float *x, size_t rows, size_t cols, size_t ld, const float *bias);

/// The int8 product's rescale for rows × cols outputs:
/// y[i·ldy + j] (=, or += when accumulate) rowScale[i]·colScale[j]·(acc[i·ldacc + j] − colZero[j]·rowSum[i·sumStride]),
/// the zero-point term only when colZero and rowSum are not NULL.
void eqk_rescale_int32(float *y, size_t ldy, const int32_t *acc, size_t ldacc, size_t rows, size_t cols,
                       const float *rowScale, const float *colScale, const float *colZero,
                       const int32_t *rowSum, size_t sumStride, int accumulate);

/// y[i·ldy + j] = x[i·ldx + j]·factor[i] for rows × cols.
void eqk_scale_rows(float *y, size_t ldy, const float *x, size_t ldx, size_t rows, size_t cols, const float *factor);

/// max[j] = max(max[j], |x[i·ld + j]|) over rows × cols: running column maxima.
void eqk_column_absmax(const float *x, size_t rows, size_t cols, size_t ld, float *max);

/// y[i·ldy + j] = x[i·ldx + j]·factor[j] for rows × cols.
void eqk_scale_columns(const float *x, size_t ldx, size_t rows, size_t cols, const float *factor, float *y, size_t ldy);

/// Attention of one query position (decoding) for `group` query heads of size d that share
/// one key/value head: for head h (q + h·d, out + h·d),
///     out_h = Σ_t softmax_t(scale·q_h·k_t)·v_t   over the keys t < keys (k + t·ldk, v + t·ldv),
/// with the softmax exponentials those of eqk_softmax_unnormalised. scores holds
/// group·keys floats of scratch. keys ≥ 1, scale > 0. Up to three heads are done in one
/// pass over the rows (each row read once for all of them); each head's sums run in the
/// same order as for a head alone, so the grouping does not change the result.
/// With `partial` (2·group floats) the keys are one part of a longer run: out_h is left as
/// Σ_t p_t·v_t with p_t = exp(scale·q_h·k_t − m_h), and partial[2h] = m_h (the largest
/// scale·q_h·k_t), partial[2h + 1] = Σ_t p_t, from which parts are merged.
void eqk_attend_one(const float *q, size_t group, size_t d, const float *k, size_t ldk, const float *v, size_t ldv,
                    size_t keys, float scale, float *scores, float *out, float *partial);

/// eqk_attend_one over keys and values held as halves (IEEE binary16 bits; ldk and ldv in
/// halves): the same result, bit for bit, as eqk_attend_one over their floats.
void eqk_attend_one_f16(const float *q, size_t group, size_t d, const uint16_t *k, size_t ldk, const uint16_t *v,
                        size_t ldv, size_t keys, float scale, float *scores, float *out, float *partial);

/// out[i] = the half nearest x[i] (IEEE binary16 bits, ties to even; ±∞ from ±65,520 on,
/// NaN stays NaN). Returns how many x[i] were beyond the halves' range (|x| ≥ 65,520,
/// infinities included), which became ±∞.
size_t eqk_f32_to_f16(const float *x, size_t count, uint16_t *out);

/// out[i] = the half with bits x[i], as a float (exact).
void eqk_f16_to_f32(const uint16_t *x, size_t count, float *out);

/// The first index of the largest of x[0 ..< count], NaNs passed over (0 if all are NaN
/// or count is 0).
size_t eqk_argmax(const float *x, size_t count);

/// Rearranges an n × k int8 matrix (element (o, i), output channel o and input i, at
/// src[o·rowStride + i·columnStride]) into eqk_gemv_s8's streaming layout: tiles of 16
/// output channels, each holding ⌈k/4⌉ blocks of 64 bytes (channel c's inputs 4q ..< 4q+4 at
/// bytes 4c ..< 4c+4 of block q), tile after tile; missing channels and inputs are 0.
/// dst holds ⌈n/16⌉·⌈k/4⌉·64 bytes. wsum[G(g, o)] becomes the sum of channel o's codes over
/// block group g (quads g·groupQuads ..< (g+1)·groupQuads).
///
/// Per-group arrays (wsum, scale, zero) of the batch-1 products are laid out tile by tile,
/// so that a tile's product reads them front to back as it reads its blocks: the value of
/// group g and channel o is at G(g, o) = ((o/16)·groups + g)·16 + o%16, groups = ⌈quads/groupQuads⌉.
void eqk_gemv_s8_pack(const int8_t *src, size_t rowStride, size_t columnStride, size_t n, size_t k,
                      size_t groupQuads, int8_t *dst, int32_t *wsum);

/// Batch-1 int8 product in the layout of eqk_gemv_s8_pack, for tiles tile0 ..< tile1:
/// for every output channel o < n of those tiles,
///     y[o] = Σ_g (xscale·scale[G(g, o)])·(Σ_{i in g} w[o,i]·x[i] − zero[G(g, o)]·xsums[g]) (+ bias[o])
/// with the int32 sums exact and the float steps those of eqk_rescale_int32 and eqk_add_bias
/// (the same bits as the batch product through them). x holds 4·quads codes in −127...127
/// (zero past k); quads and groupQuads as packed; zero and xsums together or both NULL;
/// bias may be NULL.
void eqk_gemv_s8(const int8_t *w, size_t quads, size_t groupQuads, const int32_t *wsum, const float *scale,
                 const float *zero, const int8_t *x, float xscale, const int32_t *xsums,
                 const float *bias, size_t tile0, size_t tile1, float *y, size_t n);

/// Rearranges an n × k matrix of 4-bit codes (held one per byte, element (o, i) at
/// src[o·rowStride + i·columnStride], each plus codeOffset in 0...15) into eqk_gemv_u4's
/// layout: tiles of 16 output channels, each holding ⌈k/8⌉ blocks of 64 bytes, where byte
/// 4c + j of block b holds channel c's input 8b + j in its low nibble and input 8b + 4 + j in
/// its high one; missing channels and inputs are 0. dst holds ⌈n/16⌉·⌈k/8⌉·64 bytes.
void eqk_gemv_u4_pack(const int8_t *src, size_t rowStride, size_t columnStride, size_t n, size_t k, int32_t codeOffset,
                      uint8_t *dst);

/// eqk_gemv_s8 for 4-bit codes kept packed (eqk_gemv_u4_pack's layout): the same result,
/// with code = nibble − codeOffset. groupQuads is even unless there is one group; xsums
/// (Σ of x's codes per group) is required; zero may be NULL.
void eqk_gemv_u4(const uint8_t *w, size_t quads, size_t groupQuads, int32_t codeOffset, const float *scale,
                 const float *zero, const int8_t *x, float xscale, const int32_t *xsums,
                 const float *bias, size_t tile0, size_t tile1, float *y, size_t n);

/// Batch-1 product of float activations with a weight in eqk_gemv_s8_pack's layout (nibbles
/// == 0) or eqk_gemv_u4_pack's (nibbles != 0): for every output channel o < n of tiles
/// tile0 ..< tile1, y[o] = Σ_g scale[G(g, o)]·Σ_{i in g} (code[o,i] − zero[G(g, o)])·x[i]
/// (+ bias[o]), in float, code = nibble − codeOffset for nibbles. x holds 8·⌈quads/2⌉ floats,
/// zero past k; zero and bias may be NULL.
void eqk_gemv_f32(const void *w, int nibbles, size_t quads, size_t groupQuads, int32_t codeOffset, const float *scale,
                  const float *zero, const float *x, const float *bias, size_t tile0, size_t tile1,
                  float *y, size_t n);

/// One product of a parallel step of batch-1 products (several weights reading one input,
/// such as q, k and v): eqk_gemv_s8 when `wsum` is set, else eqk_gemv_u4 (packed nibbles),
/// for `rows` rows of x (row r at x + r·xStride, its scale xscales[r], its group sums at
/// xsums + r·sumStride) into y + r·n.
typedef struct eqk_gemv_product {
    const void *w;
    size_t quads, groupQuads;
    int32_t codeOffset;
    const int32_t *wsum;
    const float *scale, *zero;
    const int8_t *x;
    size_t xStride;
    const float *xscales;
    const int32_t *xsums;
    size_t sumStride;
    size_t rows;
    const float *bias;
    float *y;
    size_t n;
} eqk_gemv_product;

/// A run of whole tiles (tile0 ..< tile1) of one product of a step.
typedef struct eqk_gemv_run {
    size_t product, tile0, tile1;
} eqk_gemv_run;

/// A parallel step: its products and the runs handed out over them.
typedef struct eqk_gemv_step {
    const eqk_gemv_product *products;
    const eqk_gemv_run *runs;
} eqk_gemv_step;

/// Computes run `index` of the eqk_gemv_step at `step`: the shape of a worker pool's body
/// (CThreads' eqt_body), so that a step hands its runs to the threads with no other code
/// between them and the kernels.
void eqk_gemv_step_run(void *step, size_t index);

/// out[r·groups + g] = Σ of x's codes (row r at x + r·stride) over inputs g·group ..<
/// min(k, (g+1)·group), for r < rows and g < ⌈k/group⌉.
void eqk_sum_groups_s8(const int8_t *x, size_t rows, size_t stride, size_t k, size_t group, int32_t *out);

/// Codes start ..< start+count of a packed 4-bit array (element e in the low nibble of byte
/// e/2 when e is even, the high one when odd; two's complement when isSigned) as bytes.
void eqk_widen_nibbles(const uint8_t *packed, size_t start, size_t count, int isSigned, int8_t *out);

/// The name of the copy eqk_gemv_s8 runs: "avx512-vnni", "avx2" or "baseline".
const char *eqk_gemv_isa(void);

#ifdef __cplusplus
}
#endif

#endif

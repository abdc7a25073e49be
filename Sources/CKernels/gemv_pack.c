// The streaming layout of eqk_gemv_s8: a weight matrix rearranged once, at load, so that
// the batch-1 product reads it front to back in 64-byte blocks.
#include "CKernels.h"

#include <string.h>

void eqk_gemv_s8_pack(const int8_t *src, size_t rowStride, size_t columnStride, size_t n, size_t k,
                      size_t groupQuads, int8_t *dst, int32_t *wsum) {
    size_t quads = (k + 3) / 4, tiles = (n + 15) / 16;
    size_t groups = (quads + groupQuads - 1) / groupQuads;
    memset(dst, 0, tiles * quads * 64);
    memset(wsum, 0, groups * tiles * 16 * sizeof(int32_t));
    for (size_t t = 0; t < tiles; t++) {
        int8_t *tile = dst + t * quads * 64;
        size_t outputs = n - t * 16 < 16 ? n - t * 16 : 16;
        for (size_t q = 0; q < quads; q++) {
            size_t inputs = k - 4 * q < 4 ? k - 4 * q : 4;
            int32_t *sums = wsum + (t * groups + q / groupQuads) * 16;
            for (size_t o = 0; o < outputs; o++) {
                const int8_t *row = src + (t * 16 + o) * rowStride + 4 * q * columnStride;
                for (size_t j = 0; j < inputs; j++) {
                    int8_t v = row[j * columnStride];
                    tile[64 * q + 4 * o + j] = v;
                    sums[o] += v;
                }
            }
        }
    }
}

void eqk_gemv_u4_pack(const int8_t *src, size_t rowStride, size_t columnStride, size_t n, size_t k, int32_t codeOffset,
                      uint8_t *dst) {
    size_t octets = (k + 7) / 8, tiles = (n + 15) / 16;
    memset(dst, 0, tiles * octets * 64);
    for (size_t t = 0; t < tiles; t++) {
        uint8_t *tile = dst + t * octets * 64;
        size_t outputs = n - t * 16 < 16 ? n - t * 16 : 16;
        for (size_t o = 0; o < outputs; o++) {
            const int8_t *row = src + (t * 16 + o) * rowStride;
            for (size_t i = 0; i < k; i++) {
                uint8_t u = (uint8_t)((row[i * columnStride] + codeOffset) & 0x0F);
                size_t b = i / 8, j = i % 8;
                tile[64 * b + 4 * o + (j & 3)] |= (uint8_t)(j < 4 ? u : u << 4);
            }
        }
    }
}

void eqk_widen_nibbles(const uint8_t *packed, size_t start, size_t count, int isSigned, int8_t *out) {
    size_t i = 0;
    if (count > 0 && (start & 1)) {
        // An odd first element: the high nibble of its byte.
        uint8_t b = packed[start >> 1];
        out[i++] = isSigned ? (int8_t)b >> 4 : (int8_t)(b >> 4);
    }
    const uint8_t *p = packed + ((start + i) >> 1);
    size_t pairs = (count - i) / 2;
    if (isSigned) {
        for (size_t j = 0; j < pairs; j++) {
            uint8_t b = p[j];
            out[i + 2 * j] = (int8_t)(uint8_t)(b << 4) >> 4;
            out[i + 2 * j + 1] = (int8_t)b >> 4;
        }
    } else {
        for (size_t j = 0; j < pairs; j++) {
            uint8_t b = p[j];
            out[i + 2 * j] = (int8_t)(b & 0x0F);
            out[i + 2 * j + 1] = (int8_t)(b >> 4);
        }
    }
    i += 2 * pairs;
    if (i < count) {
        // A last element in the low nibble of its byte.
        uint8_t b = p[pairs];
        out[i] = isSigned ? (int8_t)(uint8_t)(b << 4) >> 4 : (int8_t)(b & 0x0F);
    }
}

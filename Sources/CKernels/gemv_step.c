// A parallel step of batch-1 products run from C: the worker pool calls eqk_gemv_step_run
// for each run of tiles, which calls the kernel the product needs. Decoding makes about a
// hundred such steps per token; running them with no Swift between the pool and the
// kernels leaves no reference counting or closure calls in each hand-out.
#include "CKernels.h"

void eqk_gemv_step_run(void *step, size_t index) {
    const eqk_gemv_step *s = step;
    const eqk_gemv_run *run = &s->runs[index];
    const eqk_gemv_product *p = &s->products[run->product];
    for (size_t r = 0; r < p->rows; r++) {
        const int8_t *x = p->x + r * p->xStride;
        const int32_t *sums = p->xsums == NULL ? NULL : p->xsums + r * p->sumStride;
        float *y = p->y + r * p->n;
        if (p->wsum != NULL)
            eqk_gemv_s8(p->w, p->quads, p->groupQuads, p->wsum, p->scale, p->zero, x, p->xscales[r], sums, p->bias,
                        run->tile0, run->tile1, y, p->n);
        else
            eqk_gemv_u4(p->w, p->quads, p->groupQuads, p->codeOffset, p->scale, p->zero, x, p->xscales[r], sums, p->bias,
                        run->tile0, run->tile1, y, p->n);
    }
}

void eqk_sum_groups_s8(const int8_t *x, size_t rows, size_t stride, size_t k, size_t group, int32_t *out) {
    size_t groups = (k + group - 1) / group;
    for (size_t r = 0; r < rows; r++) {
        const int8_t *row = x + r * stride;
        for (size_t g = 0; g < groups; g++) {
            size_t end = (g + 1) * group < k ? (g + 1) * group : k;
            int32_t s = 0;
            for (size_t i = g * group; i < end; i++) s += row[i];
            out[r * groups + g] = s;
        }
    }
}

/* The CPU's steps of distributed plans (core/dist_exec.c): strided copies of token rows between slabs,
 * halos and exchange buffers, and the log-sum-exp merge of the text queries' partial outputs. */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"

stile_status stile_cpu_copy_rows(void *device, const stile_copy_rows *c, void *stream)
{
    (void)device;
    (void)stream;
    for (int64_t n = 0; n < c->ext[0]; n++)
        for (int64_t t = 0; t < c->ext[1]; t++)
            for (int64_t h = 0; h < c->ext[2]; h++) {
                char *d = c->dst.base + n * c->dst.s[0] + t * c->dst.s[1] + h * c->dst.s[2];
                const char *s = c->src.base + n * c->src.s[0] + t * c->src.s[1] + h * c->src.s[2];
                if (c->dst.s[3] == (int64_t)c->bytes && c->src.s[3] == (int64_t)c->bytes) {
                    memcpy(d, s, (size_t)c->ext[3] * c->bytes); /* the rows of a line are contiguous on both sides */
                    continue;
                }
                for (int64_t w = 0; w < c->ext[3]; w++) memcpy(d + w * c->dst.s[3], s + w * c->src.s[3], c->bytes);
            }
    return STILE_OK;
}

stile_status stile_cpu_merge(void *device, const stile_merge *m, void *stream)
{
    (void)device;
    (void)stream;
    const int64_t part = m->batch * m->rows * m->heads * m->dim, lse_part = m->batch * m->heads * m->rows, D = m->dim;
    for (int64_t b = 0; b < m->batch; b++)
        for (int64_t h = 0; h < m->heads; h++)
            for (int64_t r = 0; r < m->rows; r++) {
                const int64_t li = (b * m->heads + h) * m->rows + r;
                double mx = -INFINITY;
                for (int i = 0; i < m->n; i++) mx = fmax(mx, m->lse_parts[i * lse_part + li]);
                float acc[CPU_MAX_HEAD_DIM] = {0};
                double sum = 0;
                if (mx > -INFINITY)
                    for (int i = 0; i < m->n; i++) {
                        const double w = exp(m->lse_parts[i * lse_part + li] - mx);
                        sum += w;
                        const int64_t in = i * part + ((b * m->rows + r) * m->heads + h) * D;
                        for (int64_t d = 0; d < D; d++) acc[d] += (float)(w * stile_load_f32(m->o_parts, m->dtype, in + d));
                    }
                const stile_strides s = {m->o_batch, m->o_row, D, 1};
                stile_cpu_store_row(m->o, m->dtype, &s, b, h, r, D, acc, sum > 0 ? (float)(1.0 / sum) : 0.0f);
                if (m->lse) m->lse[(b * m->heads + h) * m->lse_row + r] = sum > 0 ? (float)(mx + log(sum)) : -INFINITY;
            }
    return STILE_OK;
}

/* The conformance harness's buffers: see conf_buffers.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf_buffers.h"

int conf_mirror_init(stile_device *dev, conf_mirror *m, size_t bytes)
{
    m->bytes = bytes;
    m->host = malloc(bytes + STILE_CONF_GUARD_BYTES);
    if (!m->host) return 0;
    memset(m->host + bytes, STILE_CONF_GUARD_BYTE, STILE_CONF_GUARD_BYTES);
    return stile_buffer_create(dev, bytes + STILE_CONF_GUARD_BYTES, &m->dev) == STILE_OK;
}

void conf_mirror_free(conf_mirror *m)
{
    free(m->host);
    stile_buffer_destroy(&m->dev);
}

int conf_up(conf_mirror *m) { return stile_buffer_upload(m->dev, 0, m->host, m->bytes + STILE_CONF_GUARD_BYTES) == STILE_OK; }
int conf_poison(conf_mirror *m)
{
    memset(m->host, 0xff, m->bytes);
    return conf_up(m);
}

int conf_down(conf_mirror *m, unsigned char *dst) { return stile_buffer_download(m->dev, 0, dst, m->bytes + STILE_CONF_GUARD_BYTES) == STILE_OK; }

stile_io conf_device_io(const conf_mirror m[5], int packed, size_t lead, size_t hd, const size_t span[4], size_t lse_bytes,
                        stile_dtype dt)
{
    char *q0 = (char *)stile_buffer_data(m[0].dev) + lead;
    return (stile_io){.struct_size = sizeof(stile_io), .q = stile_tensor_at(q0, span[0], dt),
                      .k = stile_tensor_at(packed ? q0 + hd : (char *)stile_buffer_data(m[1].dev) + lead, span[1], dt),
                      .v = stile_tensor_at(packed ? q0 + 2 * hd : (char *)stile_buffer_data(m[2].dev) + lead, span[2], dt),
                      .o = stile_tensor_at((char *)stile_buffer_data(m[3].dev) + lead, span[3], dt),
                      .lse = stile_tensor_at(stile_buffer_data(m[4].dev), lse_bytes, STILE_DTYPE_F32)};
}

static uint64_t mix(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int64_t grid_tiles(const stile_problem *p)
{
    int64_t tiles = 1;
    for (int a = 0; a < 3; a++) tiles *= (p->canvas[a] + p->tile[a] - 1) / p->tile[a];
    return tiles;
}

size_t conf_key_tiles_bytes(const stile_problem *p)
{
    return (size_t)((p->batch ? p->batch : 1) * p->heads * grid_tiles(p) * p->key_tiles_k) * sizeof(int32_t);
}

void conf_key_tiles_fill(const stile_problem *p, uint64_t seed, int32_t *dst)
{
    const int64_t tiles = grid_tiles(p), k = p->key_tiles_k, B = p->batch ? p->batch : 1;
    uint64_t s = seed ^ 0x2545f4914f6cdd1du;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < p->heads; h++) {
            const int64_t most = k * (h + 1) / p->heads > 1 ? k * (h + 1) / p->heads : 1;
            for (int64_t q = 0; q < tiles; q++, dst += k) {
                for (int64_t i = 0; i < k; i++) dst[i] = -1;
                if (mix(&s) % 16 == 0) continue; /* an empty row */
                for (int64_t i = 0; i < most; i++) {
                    const uint64_t r = mix(&s) % 8;
                    if (r == 0) continue;                                                    /* a gap */
                    if (r == 1 && i > 0) dst[i] = dst[mix(&s) % (uint64_t)i];               /* a repeat (or a gap) */
                    else dst[i] = (int32_t)(mix(&s) % (uint64_t)tiles);
                }
                if (mix(&s) % 4 == 0) dst[mix(&s) % (uint64_t)most] = (int32_t)q; /* the query's own tile */
            }
        }
}

double conf_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

int64_t conf_span_of(const stile_strides *s, const int64_t ext[4])
{
    return s->batch * (ext[0] - 1) + s->token * (ext[1] - 1) + s->head * (ext[2] - 1) + s->dim * (ext[3] - 1) + 1;
}

int conf_guard_intact(const unsigned char *buf, size_t bytes)
{
    for (size_t i = 0; i < STILE_CONF_GUARD_BYTES; i++)
        if (buf[bytes + i] != STILE_CONF_GUARD_BYTE) return 0;
    return 1;
}

void conf_contract_problem(stile_problem *p)
{
    if (p->batch == 0) p->batch = 1;
    const int64_t S = p->canvas[0] * p->canvas[1] * p->canvas[2] + p->text;
    stile_strides *own[4] = {&p->q, &p->k, &p->v, &p->o};
    for (int i = 0; i < 4; i++)
        if (!own[i]->batch && !own[i]->token && !own[i]->head && !own[i]->dim)
            *own[i] = (stile_strides){.batch = S * p->heads * p->head_dim, .token = p->heads * p->head_dim, .head = p->head_dim, .dim = 1};
}

int conf_gaps_poisoned(const unsigned char *buf, size_t span_bytes, const stile_strides *s, const int64_t ext[4], size_t es)
{
    unsigned char *reached = calloc(span_bytes / es, 1);
    if (!reached) return -1;
    for (int64_t b = 0; b < ext[0]; b++)
        for (int64_t t = 0; t < ext[1]; t++)
            for (int64_t h = 0; h < ext[2]; h++)
                for (int64_t d = 0; d < ext[3]; d++) reached[b * s->batch + t * s->token + h * s->head + d * s->dim] = 1;
    int ok = 1;
    for (size_t e = 0; e < span_bytes / es; e++)
        for (size_t c = 0; !reached[e] && c < es; c++) ok &= buf[e * es + c] == 0xff;
    free(reached);
    return ok;
}

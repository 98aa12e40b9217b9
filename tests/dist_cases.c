/* Distributed plans' checks, whatever the transport (dist_cases.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist_cases.h"

enum { GUARD = 64 };

/* canvas 10 x 9 x 11, tile 2 x 3 x 2: a 5 x 3 x 6 grid whose last w tile is partial */
const dist_case dist_cases_cpu[] = {
    {"halo t, text, per-head windows", STILE_DIST_HALO, STILE_DIST_AXIS_T, 1, {10, 9, 11}, {2, 3, 2}, 3, 16, 5, 2,
     {{1, 3, 3}, {3, 1, 5}, {5, 3, 1}}, STILE_DTYPE_F32, 0, 0},
    {"halo w, a window reaching two slabs away", STILE_DIST_HALO, STILE_DIST_AXIS_W, 1, {10, 9, 11}, {2, 3, 2}, 2, 8, 0, 0,
     {{3, 3, 5}, {1, 1, 3}}, STILE_DTYPE_F32, 0, 0},
    {"halo w, uneven split, text, bf16", STILE_DIST_HALO, STILE_DIST_AXIS_W, 1, {10, 9, 11}, {2, 3, 2}, 2, 32, 4, 1,
     {{3, 3, 3}, {1, 3, 5}}, STILE_DTYPE_BF16, 1, 0},
    {"halo auto axis, batch 2, f16", STILE_DIST_HALO, STILE_DIST_AXIS_AUTO, 2, {10, 9, 11}, {2, 3, 2}, 2, 16, 3, 1,
     {{3, 3, 3}, {5, 1, 1}}, STILE_DTYPE_F16, 0, 0},
    {"halo t, whole-grid window (every rank's halo is the rest)", STILE_DIST_HALO, STILE_DIST_AXIS_T, 1, {10, 9, 11}, {2, 3, 2}, 1,
     8, 2, 0, {{9, 9, 9}}, STILE_DTYPE_F32, 0, 0},
    {"halo h, text all padding", STILE_DIST_HALO, STILE_DIST_AXIS_H, 1, {10, 9, 11}, {2, 3, 2}, 2, 16, 3, 3,
     {{3, 3, 3}, {1, 1, 1}}, STILE_DTYPE_F32, 0, 0},
    {"heads, text", STILE_DIST_HEADS, STILE_DIST_AXIS_W, 1, {10, 9, 11}, {2, 3, 2}, 0, 16, 3, 1,
     {{3, 3, 3}, {1, 3, 5}}, STILE_DTYPE_F32, 0, 2},
    {"heads, uneven split, batch 2, bf16", STILE_DIST_HEADS, STILE_DIST_AXIS_T, 2, {10, 9, 11}, {2, 3, 2}, 0, 32, 4, 2,
     {{3, 1, 3}, {5, 3, 1}}, STILE_DTYPE_BF16, 1, 1},
};
const int dist_ncases_cpu = sizeof dist_cases_cpu / sizeof *dist_cases_cpu;

/* 6 x 8 x 8 tiles take the Hopper kernel's wide shape, 4 x 4 x 4 its narrow one (bf16/f16, d 64 or 128);
 * f32 the portable kernel. The last w tile is partial in each. */
const dist_case dist_cases_gpu[] = {
    {"gpu halo w, 6x8x8 tiles, text, bf16 d128", STILE_DIST_HALO, STILE_DIST_AXIS_W, 1, {12, 16, 22}, {6, 8, 8}, 2, 128, 70, 6,
     {{1, 1, 3}, {3, 3, 1}}, STILE_DTYPE_BF16, 0, 0},
    {"gpu halo t, 4x4x4 tiles, f16 d64", STILE_DIST_HALO, STILE_DIST_AXIS_T, 1, {8, 12, 18}, {4, 4, 4}, 2, 64, 0, 0,
     {{1, 3, 3}, {3, 1, 5}}, STILE_DTYPE_F16, 0, 0},
    {"gpu halo w, 4x4x4 tiles, uneven, batch 2, text, bf16 d64", STILE_DIST_HALO, STILE_DIST_AXIS_W, 2, {8, 12, 18}, {4, 4, 4}, 2, 64, 9,
     2, {{3, 3, 3}, {1, 3, 5}}, STILE_DTYPE_BF16, 1, 0},
    {"gpu halo t, 6x8x8 tiles, text, bf16 d128", STILE_DIST_HALO, STILE_DIST_AXIS_T, 1, {12, 16, 22}, {6, 8, 8}, 2, 128, 33, 0,
     {{3, 3, 3}, {1, 1, 1}}, STILE_DTYPE_BF16, 0, 0},
    {"gpu heads, 6x8x8 tiles, text, bf16 d128", STILE_DIST_HEADS, STILE_DIST_AXIS_W, 1, {12, 16, 22}, {6, 8, 8}, 0, 128, 5, 1,
     {{3, 3, 3}, {1, 3, 3}}, STILE_DTYPE_BF16, 0, 1},
    {"gpu halo w, text, f32 d32 (portable)", STILE_DIST_HALO, STILE_DIST_AXIS_W, 1, {8, 12, 18}, {4, 4, 4}, 2, 32, 3, 1,
     {{3, 3, 3}, {1, 1, 5}}, STILE_DTYPE_F32, 0, 0},
};
const int dist_ncases_gpu = sizeof dist_cases_gpu / sizeof *dist_cases_gpu;

static void fail(const stile_comm *comm, int *failures, const char *name, const char *fmt, const char *detail)
{
    fprintf(stderr, "rank %d: %s: ", comm->rank, name);
    fprintf(stderr, fmt, detail);
    fprintf(stderr, "\n");
    (*failures)++;
}

/* Token index in the whole canvas of token i of the slab box org/ext (natural order). */
static int64_t whole_token(const stile_problem *p, const int64_t org[3], const int64_t ext[3], int64_t i)
{
    const int64_t t = i / (ext[1] * ext[2]), h = i / ext[2] % ext[1], w = i % ext[2];
    return ((org[0] + t) * p->canvas[1] + org[1] + h) * p->canvas[2] + org[2] + w;
}

/* Buffers on the device: n tensors, each its host bytes (plus GUARD guard bytes after, copied too). */
typedef struct dbufs {
    int n;
    stile_buffer *b[5];
} dbufs;

static stile_status upload(stile_device *dev, dbufs *d, const void *host, size_t bytes, stile_tensor *t, stile_dtype dt, size_t span)
{
    stile_buffer **b = &d->b[d->n++];
    stile_status st = stile_buffer_create(dev, span, b);
    if (st == STILE_OK) st = stile_buffer_upload(*b, 0, host, span);
    *t = stile_tensor_at(*b ? stile_buffer_data(*b) : NULL, bytes, dt);
    return st;
}

static void dbufs_free(dbufs *d)
{
    for (int i = 0; i < d->n; i++) stile_buffer_destroy(&d->b[i]);
    d->n = 0;
}

int dist_run_case(stile_device *dev, const stile_comm *comm, const dist_case *c, uint64_t seed)
{
    const int rank = comm->rank, ranks = comm->size;
    if (c->axis != STILE_DIST_AXIS_AUTO) {
        const int64_t n = (c->canvas[c->axis - 1] + c->tile[c->axis - 1] - 1) / c->tile[c->axis - 1];
        if (n < ranks) {
            if (rank == 0) printf("%-58s skipped: %lld tiles along the axis, %d ranks\n", c->name, (long long)n, ranks);
            return 0;
        }
    }
    int failures = 0;
    const int64_t heads = c->heads_per_rank ? c->heads_per_rank * ranks : c->heads;
    int64_t(*win)[3] = calloc((size_t)heads, sizeof *win);
    int nwin = 0;
    while (nwin < 4 && c->windows[nwin][0]) nwin++;
    for (int64_t h = 0; h < heads; h++) memcpy(win[h], c->windows[h % nwin], sizeof win[h]);
    stile_problem p = {.struct_size = sizeof p, .batch = c->batch, .canvas = {c->canvas[0], c->canvas[1], c->canvas[2]},
                       .tile = {c->tile[0], c->tile[1], c->tile[2]}, .head_windows = (const int64_t(*)[3])win, .heads = heads,
                       .head_dim = c->head_dim, .text = c->text, .text_padding = c->padding, .dtype = c->dtype};
    const int64_t grid[3] = {(p.canvas[0] + p.tile[0] - 1) / p.tile[0], (p.canvas[1] + p.tile[1] - 1) / p.tile[1],
                             (p.canvas[2] + p.tile[2] - 1) / p.tile[2]};
    int64_t split[64];
    stile_dist_params dp = {.struct_size = sizeof dp, .mode = c->mode, .axis = c->axis};
    if (c->uneven && ranks <= 64) {
        const int64_t n = grid[c->axis - 1];
        for (int i = 0; i < ranks; i++) split[i] = i == ranks - 1 ? n - (ranks - 1) : 1;
        dp.split = split;
    }
    const int64_t video = p.canvas[0] * p.canvas[1] * p.canvas[2], tokens = video + p.text, B = p.batch, H = heads, D = p.head_dim;
    const size_t es = stile_dtype_size(p.dtype), row = (size_t)(H * D) * es, whole = (size_t)(B * tokens) * row;
    const size_t wl = (size_t)(B * H * tokens) * sizeof(float);
    char *q = malloc(whole), *k = malloc(whole), *v = malloc(whole), *o1 = malloc(whole), *ow = malloc(whole);
    float *lse1 = malloc(wl), *lsew = malloc(wl);
    stile_conf_fill_normal(q, p.dtype, B * tokens * H * D, seed);
    stile_conf_fill_normal(k, p.dtype, B * tokens * H * D, seed + 1);
    stile_conf_fill_normal(v, p.dtype, B * tokens * H * D, seed + 2);
    memset(o1, 0xff, whole);
    memset(lse1, 0xff, wl);
    dbufs bufs = {0};
    char *sq = NULL, *sk = NULL, *svv = NULL, *so = NULL;
    float *sl = NULL;
    int64_t *rows = NULL;
    double *ref_o = NULL, *ref_lse = NULL;
    stile_check chk = {0};
    stile_dist_info info = {0};
    int bitwise = 0;

    /* the single-device plan over the whole problem, on this rank's device */
    stile_plan *plan = NULL;
    stile_io io1 = {.struct_size = sizeof io1};
    stile_status st = stile_plan_create(dev, &p, &plan);
    if (st == STILE_OK && !(st = upload(dev, &bufs, q, whole, &io1.q, p.dtype, whole)) && !(st = upload(dev, &bufs, k, whole, &io1.k, p.dtype, whole)) &&
        !(st = upload(dev, &bufs, v, whole, &io1.v, p.dtype, whole)) && !(st = upload(dev, &bufs, o1, whole, &io1.o, p.dtype, whole)) &&
        !(st = upload(dev, &bufs, lse1, wl, &io1.lse, STILE_DTYPE_F32, wl)) && !(st = stile_plan_execute(plan, &io1)) &&
        !(st = stile_buffer_download(bufs.b[3], 0, o1, whole)))
        st = stile_buffer_download(bufs.b[4], 0, lse1, wl);
    stile_plan_destroy(&plan);
    dbufs_free(&bufs);
    if (st != STILE_OK) fail(comm, &failures, c->name, "single-device plan: %s", stile_last_error());

    stile_dist_plan *dplan = NULL;
    if (!failures && (st = stile_dist_plan_create(dev, &p, comm, &dp, &dplan)) != STILE_OK)
        fail(comm, &failures, c->name, "stile_dist_plan_create: %s", stile_last_error());
    if (failures) goto done;
    stile_dist_plan_get_info(dplan, &info);
    int64_t org[3] = {0, 0, 0}, ext[3] = {p.canvas[0], p.canvas[1], p.canvas[2]};
    const int a = info.axis;
    org[a] = info.slab_tiles[0] * p.tile[a];
    ext[a] = info.slab_canvas[a];
    const int64_t sv = ext[0] * ext[1] * ext[2], S = info.slab_tokens;
    const size_t sb = (size_t)(B * S) * row, lb = (size_t)(B * H * S) * sizeof(float);
    sq = malloc(sb);
    sk = malloc(sb);
    svv = malloc(sb);
    so = malloc(sb + GUARD);
    sl = malloc(lb + GUARD);
    rows = malloc((size_t)S * sizeof *rows);
    for (int64_t i = 0; i < S; i++) rows[i] = i < sv ? whole_token(&p, org, ext, i) : video + i - sv;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < S; i++) {
            const size_t from = (size_t)(b * tokens + rows[i]) * row, to = (size_t)(b * S + i) * row;
            memcpy(sq + to, q + from, row);
            memcpy(sk + to, k + from, row);
            memcpy(svv + to, v + from, row);
        }
    memset(so, 0xff, sb); /* NaN in every dtype */
    memset(sl, 0xff, lb);
    memset(so + sb, 0xA5, GUARD);
    memset((char *)sl + lb, 0xA5, GUARD);
    stile_io io = {.struct_size = sizeof io};
    if ((st = upload(dev, &bufs, sq, sb, &io.q, p.dtype, sb)) || (st = upload(dev, &bufs, sk, sb, &io.k, p.dtype, sb)) ||
        (st = upload(dev, &bufs, svv, sb, &io.v, p.dtype, sb)) || (st = upload(dev, &bufs, so, sb, &io.o, p.dtype, sb + GUARD)) ||
        (st = upload(dev, &bufs, sl, lb, &io.lse, STILE_DTYPE_F32, lb + GUARD)))
        fail(comm, &failures, c->name, "buffers: %s", stile_last_error());
    else if ((st = stile_dist_execute(dplan, &io)) != STILE_OK)
        fail(comm, &failures, c->name, "stile_dist_execute: %s", stile_last_error());
    else if ((st = stile_buffer_download(bufs.b[3], 0, so, sb + GUARD)) || (st = stile_buffer_download(bufs.b[4], 0, sl, lb + GUARD)))
        fail(comm, &failures, c->name, "download: %s", stile_last_error());
    dbufs_free(&bufs);
    if (failures) goto done;
    for (int g = 0; g < GUARD; g++)
        if ((unsigned char)so[sb + g] != 0xA5 || ((unsigned char *)sl)[lb + g] != 0xA5) {
            fail(comm, &failures, c->name, "%s", "a guard band after o or lse was written");
            break;
        }
    /* the slab's rows back into whole-problem tensors (NaN elsewhere), against the oracle on those rows */
    memset(ow, 0xff, whole);
    for (int64_t i = 0; i < (int64_t)(B * H * tokens); i++) lsew[i] = NAN;
    int64_t differ = 0, compared = 0;
    bitwise = c->mode == STILE_DIST_HEADS || (a == 0 && c->mode == STILE_DIST_HALO);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < S; i++) {
            const size_t at = (size_t)(b * tokens + rows[i]) * row;
            memcpy(ow + at, so + (size_t)(b * S + i) * row, row);
            for (int64_t h = 0; h < H; h++) lsew[(b * H + h) * tokens + rows[i]] = sl[(b * H + h) * S + i];
            if (bitwise && (c->mode == STILE_DIST_HEADS || i < sv)) {
                compared++;
                differ += memcmp(ow + at, o1 + at, row) != 0;
                for (int64_t h = 0; h < H; h++)
                    differ += memcmp(&lsew[(b * H + h) * tokens + rows[i]], &lse1[(b * H + h) * tokens + rows[i]], sizeof(float)) != 0;
            }
        }
    ref_o = malloc((size_t)(B * S * H * D) * sizeof(double));
    ref_lse = malloc((size_t)(B * H * S) * sizeof(double));
    stile_io hio = {.struct_size = sizeof hio, .q = stile_tensor_at(q, whole, p.dtype), .k = stile_tensor_at(k, whole, p.dtype),
                    .v = stile_tensor_at(v, whole, p.dtype), .o = stile_tensor_at(ow, whole, p.dtype),
                    .lse = stile_tensor_at(lsew, wl, STILE_DTYPE_F32)};
    if ((st = stile_oracle(&p, &hio, rows, S, ref_o, ref_lse)) != STILE_OK ||
        (st = stile_check_output(&p, &hio, rows, S, ref_o, ref_lse, &chk)) != STILE_OK)
        fail(comm, &failures, c->name, "oracle: %s", stile_last_error());
    else if (!chk.passed) {
        char d[160];
        snprintf(d, sizeof d, "NMSE %.3g (bound %.0e), lse error %.3g, %lld non-finite", chk.nmse, chk.threshold, chk.lse_max_abs_error,
                 (long long)chk.nonfinite);
        fail(comm, &failures, c->name, "against the oracle: %s", d);
    }
    if (differ) {
        char d[96];
        snprintf(d, sizeof d, "%lld of %lld rows (o rows and lse values)", (long long)differ, (long long)compared);
        fail(comm, &failures, c->name, "not bitwise the single-device output: %s", d);
    }
done:
    printf("rank %d/%d %-58s %s axis %c slab [%lld, %lld) halo %lld+%lld interior [%lld, %lld) sent %lld B, NMSE %.2e%s: %s\n", rank, ranks,
           c->name, c->mode == STILE_DIST_HALO ? "halo" : "heads", "thw"[info.axis], (long long)info.slab_tiles[0],
           (long long)info.slab_tiles[1], (long long)info.halo_tiles[0], (long long)info.halo_tiles[1], (long long)info.interior_tiles[0],
           (long long)info.interior_tiles[1], (long long)info.bytes_sent, chk.nmse, bitwise ? ", bitwise" : "", failures ? "FAIL" : "ok");
    fflush(stdout);
    stile_dist_plan_destroy(&dplan);
    free(ref_o);
    free(ref_lse);
    free(sq);
    free(sk);
    free(svv);
    free(so);
    free(sl);
    free(rows);
    free(win);
    free(q);
    free(k);
    free(v);
    free(o1);
    free(ow);
    free(lse1);
    free(lsew);
    return failures;
}

int dist_bad_calls(stile_device *dev, const stile_comm *comm)
{
    int failures = 0;
    const int ranks = comm->size;
    stile_problem p = {.struct_size = sizeof p, .canvas = {12, 4, 4}, .tile = {2, 2, 2}, .window = {1, 1, 1}, .heads = 3, .head_dim = 8};
    stile_dist_plan *d = NULL;
    stile_dist_params dp = {.struct_size = sizeof dp, .axis = STILE_DIST_AXIS_T};
    struct {
        const char *what;
        stile_status want;
        stile_problem p;
        stile_dist_params dp;
    } bad[] = {
        {"more ranks than tiles along t", STILE_ERR_INVALID_SIZE, p, dp},
        {"a split not summing to the grid", STILE_ERR_INVALID_SIZE, p, dp},
        {"tiled order", STILE_ERR_UNSUPPORTED, p, dp},
        {"strides set", STILE_ERR_UNSUPPORTED, p, dp},
        {"heads not a multiple of the ranks", STILE_ERR_UNSUPPORTED, p, dp},
        {"an unknown mode", STILE_ERR_INVALID_ARGUMENT, p, dp},
    };
    const int64_t zeros[8] = {0};
    bad[0].p.canvas[0] = 2; /* one tile along t */
    bad[0].p.canvas[1] = bad[0].p.canvas[2] = 2;
    bad[1].dp.split = zeros;
    bad[2].p.order = STILE_ORDER_TILED;
    bad[3].p.q.token = 3 * 8;
    bad[4].dp.mode = STILE_DIST_HEADS;
    bad[4].p.heads = ranks + 1;
    bad[5].dp.mode = (stile_dist_mode)7;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (i == 0 && ranks < 2) continue;
        const stile_status st = stile_dist_plan_create(dev, &bad[i].p, comm, &bad[i].dp, &d);
        if (st != bad[i].want || d) {
            char m[200];
            snprintf(m, sizeof m, "%s: status %d (%s), wanted %d", bad[i].what, (int)st, stile_last_error(), (int)bad[i].want);
            fail(comm, &failures, "bad calls", "%s", m);
        }
        stile_dist_plan_destroy(&d);
    }
    stile_comm wrong = *comm;
    wrong.rank = ranks;
    if (stile_dist_plan_create(dev, &p, &wrong, &dp, &d) != STILE_ERR_INVALID_ARGUMENT) fail(comm, &failures, "bad calls", "%s", "rank out of range");
    return failures;
}


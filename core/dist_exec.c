/* Executing a distributed plan (stile_dist.h): halo mode (pack, exchange while the interior computes,
 * unpack, the boundary, the text queries' merge) and head mode (all-to-all, the whole canvas on this
 * rank's heads, all-to-all back). Every step is queued on the caller's stream. */
#include <stdlib.h>
#include <string.h>

#include "dist.h"

/* Tokens on one side of a copy: a box of the canvas (org, ext: video tokens per axis), base at its
 * first token of batch entry 0, token_bytes between tokens, batch_bytes between batch entries. */
typedef struct dist_view {
    char *base;
    int64_t org[3], ext[3];
    int64_t token_bytes, batch_bytes;
} dist_view;

typedef struct exec_ctx {
    stile_dist_plan *d;
    const stile_io *io;
    void *stream;
} exec_ctx;

static char *buf(const stile_buffer *b) { return stile_buffer_data(b); }

/* A view of the canvas box org/ext at base, rows of token_bytes, `extra` tokens (text) after the video. */
static dist_view view(void *base, const int64_t org[3], const int64_t ext[3], int64_t extra, size_t token_bytes)
{
    dist_view v = {.base = base, .token_bytes = (int64_t)token_bytes};
    memcpy(v.org, org, sizeof v.org);
    memcpy(v.ext, ext, sizeof v.ext);
    v.batch_bytes = (ext[0] * ext[1] * ext[2] + extra) * v.token_bytes;
    return v;
}

static int64_t video_of(const dist_view *v) { return v->ext[0] * v->ext[1] * v->ext[2]; }

/* Copy the canvas box org/ext (inside both views) from src to dst: row bytes per token, starting col
 * bytes into each side's token (dcol, scol), nb batch entries (the views' batch_bytes apart). */
static stile_status copy_box(const exec_ctx *x, int64_t nb, const dist_view *dst, size_t dcol, const dist_view *src, size_t scol,
                             const int64_t org[3], const int64_t ext[3], size_t row)
{
    stile_copy_rows c = {.ext = {nb, ext[0], ext[1], ext[2]}, .bytes = row};
    if (!ext[0] || !ext[1] || !ext[2]) return STILE_OK;
    const dist_view *v[2] = {dst, src};
    for (int i = 0; i < 2; i++) {
        const dist_view *s = v[i];
        const int64_t at = ((org[0] - s->org[0]) * s->ext[1] + org[1] - s->org[1]) * s->ext[2] + org[2] - s->org[2];
        const int64_t st[4] = {s->batch_bytes, s->ext[1] * s->ext[2] * s->token_bytes, s->ext[2] * s->token_bytes, s->token_bytes};
        if (i == 0) {
            c.dst.base = s->base + at * s->token_bytes + dcol;
            memcpy(c.dst.s, st, sizeof st);
        } else {
            c.src.base = s->base + at * s->token_bytes + scol;
            memcpy(c.src.s, st, sizeof st);
        }
    }
    const stile_device *dev = x->d->device;
    return dev->backend->copy_rows(dev->impl, &c, x->stream);
}

/* Copy the n tokens after the video of src (the text) to after the video of dst, as copy_box. */
static stile_status copy_text(const exec_ctx *x, int64_t nb, const dist_view *dst, size_t dcol, const dist_view *src, size_t scol, int64_t n, size_t row)
{
    if (!n) return STILE_OK;
    stile_copy_rows c = {.ext = {nb, 1, 1, n}, .bytes = row};
    c.dst.base = dst->base + video_of(dst) * dst->token_bytes + dcol;
    c.src.base = src->base + video_of(src) * src->token_bytes + scol;
    c.dst.s[0] = dst->batch_bytes;
    c.dst.s[3] = dst->token_bytes;
    c.src.s[0] = src->batch_bytes;
    c.src.s[3] = src->token_bytes;
    const stile_device *dev = x->d->device;
    return dev->backend->copy_rows(dev->impl, &c, x->stream);
}

/* The video box org/ext and then the text rows (t of them), as copy_box and copy_text. */
static stile_status copy_tokens(const exec_ctx *x, int64_t nb, const dist_view *dst, size_t dcol, const dist_view *src, size_t scol,
                                const int64_t org[3], const int64_t ext[3], int64_t t, size_t row)
{
    const stile_status st = copy_box(x, nb, dst, dcol, src, scol, org, ext, row);
    return st != STILE_OK ? st : copy_text(x, nb, dst, dcol, src, scol, t, row);
}

static stile_status exchange(const exec_ctx *x, const stile_comm_msg *s, int ns, const stile_comm_msg *r, int nr)
{
    const stile_comm *c = &x->d->comm;
    void *pending = NULL;
    stile_status st = c->exchange_start(c->ctx, s, ns, r, nr, x->stream, &pending);
    return st != STILE_OK ? st : c->exchange_wait(c->ctx, pending, x->stream);
}

static stile_status run_region(const exec_ctx *x, const stile_io *io, const stile_region *rg)
{
    for (int a = 0; a < 3; a++)
        if (rg->run[0][a] >= rg->run[1][a] && !rg->text_queries) return STILE_OK;
    const stile_plan *pl = x->d->local;
    stile_exec_info info;
    memset(&info, 0, sizeof info);
    stile_status st = pl->device->backend->execute_region(pl->device->impl, pl, pl->impl, io, rg, &info);
    if (st == STILE_OK && x->io->info) *x->io->info = info;
    return st;
}

/* ---- halo mode ---- */

/* The text queries' partial outputs (each rank attended its own slab) merged across the ranks. */
static stile_status merge_text(const exec_ctx *x, const stile_io *lio)
{
    stile_dist_plan *d = x->d;
    const int64_t B = d->r.p.batch, H = d->r.p.heads, T = d->r.p.text, S = d->slab_video + T;
    const size_t part = (size_t)(B * T) * d->token_bytes, lpart = (size_t)(B * H * T) * sizeof(float);
    const int64_t zero[3] = {0, 0, 0};
    const dist_view o = view(lio->o.data, d->slab_org, d->slab_ext, T, d->token_bytes);
    const dist_view mine = view(buf(d->parts) + (size_t)d->me * part, zero, zero, T, d->token_bytes);
    stile_status st = copy_text(x, B, &mine, 0, &o, 0, T, d->token_bytes);
    if (st != STILE_OK) return st;
    /* this rank's text LSE: [B, H] rows of T floats at slab_video of each row of S */
    stile_copy_rows c = {.ext = {B, H, 1, 1}, .bytes = (size_t)T * sizeof(float)};
    c.src.base = (const char *)lio->lse.data + d->slab_video * (int64_t)sizeof(float);
    c.src.s[0] = H * S * (int64_t)sizeof(float);
    c.src.s[1] = S * (int64_t)sizeof(float);
    c.dst.base = buf(d->parts_lse) + (size_t)d->me * lpart;
    c.dst.s[0] = H * T * (int64_t)sizeof(float);
    c.dst.s[1] = T * (int64_t)sizeof(float);
    if ((st = d->device->backend->copy_rows(d->device->impl, &c, x->stream)) != STILE_OK) return st;
    stile_comm_msg *m = malloc(4 * (size_t)d->P * sizeof *m);
    if (!m) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "stile_dist_execute: out of memory");
    int n = 0;
    for (int p = 0; p < d->P; p++) {
        if (p == d->me) continue;
        m[n++] = (stile_comm_msg){p, buf(d->parts) + (size_t)d->me * part, part};
        m[n++] = (stile_comm_msg){p, buf(d->parts_lse) + (size_t)d->me * lpart, lpart};
    }
    for (int p = 0, k = n; p < d->P; p++) {
        if (p == d->me) continue;
        m[k++] = (stile_comm_msg){p, buf(d->parts) + (size_t)p * part, part};
        m[k++] = (stile_comm_msg){p, buf(d->parts_lse) + (size_t)p * lpart, lpart};
    }
    st = exchange(x, m, n, m + n, n);
    free(m);
    if (st != STILE_OK) return st;
    stile_merge mg = {.n = d->P, .batch = B, .rows = T, .heads = H, .dim = d->r.p.head_dim, .dtype = d->r.p.dtype,
                      .o_parts = buf(d->parts), .lse_parts = (const float *)buf(d->parts_lse),
                      .o = (char *)x->io->o.data + (size_t)d->slab_video * d->token_bytes, .o_batch = S * H * d->r.p.head_dim,
                      .o_row = H * d->r.p.head_dim, .lse = x->io->lse.data ? (float *)x->io->lse.data + d->slab_video : NULL,
                      .lse_row = S};
    return d->device->backend->merge(d->device->impl, &mg, x->stream);
}

/* A message's k and v boxes in the send or receive buffer. */
static void msg_views(const stile_dist_plan *d, const dist_msg *m, char *base, dist_view *k, dist_view *v)
{
    *k = view(base + m->offset, m->box_org, m->box_ext, 0, d->token_bytes);
    *v = view(base + m->offset + m->bytes / 2, m->box_org, m->box_ext, 0, d->token_bytes);
}

static stile_status run_halo(stile_dist_plan *d, const stile_io *io)
{
    const exec_ctx x = {d, io, io->stream};
    const int a = d->axis;
    const int64_t B = d->r.p.batch, T = d->r.p.text;
    const size_t tb = d->token_bytes;
    const dist_view uk = view(io->k.data, d->slab_org, d->slab_ext, T, tb), uv = view(io->v.data, d->slab_org, d->slab_ext, T, tb);
    const dist_view kx = view(buf(d->kx), d->ext_org, d->ext_ext, T, tb), vx = view(buf(d->vx), d->ext_org, d->ext_ext, T, tb);
    stile_status st;
    /* this slab's keys and values into the local canvas, and into the messages for the neighbours */
    if ((st = copy_tokens(&x, B, &kx, 0, &uk, 0, d->slab_org, d->slab_ext, T, tb)) ||
        (st = copy_tokens(&x, B, &vx, 0, &uv, 0, d->slab_org, d->slab_ext, T, tb)))
        return st;
    stile_comm_msg *m = malloc((size_t)(d->nsend + d->nrecv + 1) * sizeof *m);
    if (!m) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "stile_dist_execute: out of memory");
    for (int i = 0; i < d->nsend; i++) {
        const dist_msg *s = &d->sends[i];
        dist_view mk, mv;
        msg_views(d, s, buf(d->send_buf), &mk, &mv);
        if ((st = copy_box(&x, B, &mk, 0, &uk, 0, s->box_org, s->box_ext, tb)) || (st = copy_box(&x, B, &mv, 0, &uv, 0, s->box_org, s->box_ext, tb))) {
            free(m);
            return st;
        }
        m[i] = (stile_comm_msg){s->peer, buf(d->send_buf) + s->offset, s->bytes};
    }
    for (int i = 0; i < d->nrecv; i++)
        m[d->nsend + i] = (stile_comm_msg){d->recvs[i].peer, buf(d->recv_buf) + d->recvs[i].offset, d->recvs[i].bytes};
    void *pending = NULL;
    st = d->comm.exchange_start(d->comm.ctx, m, d->nsend, m + d->nsend, d->nrecv, x.stream, &pending);
    free(m);
    if (st != STILE_OK) return st;

    /* the interior (and the text queries over this slab) while the halos travel */
    const int merging = T > 0 && d->P > 1;
    stile_io lio = *io;
    lio.k = stile_tensor_at(buf(d->kx), stile_buffer_size(d->kx), d->r.p.dtype);
    lio.v = stile_tensor_at(buf(d->vx), stile_buffer_size(d->vx), d->r.p.dtype);
    if (merging && !io->lse.data) lio.lse = stile_tensor_at(buf(d->lse_buf), stile_buffer_size(d->lse_buf), STILE_DTYPE_F32);
    const int64_t e0 = d->ext_tiles[0];
    stile_region rg = {.text_queries = T > 0, .text_keys = d->me == 0 || d->P == 1};
    for (int i = 0; i < 3; i++) {
        rg.hold[1][i] = d->local->layout.grid[i];
        rg.run[1][i] = d->local->layout.grid[i];
    }
    rg.hold[0][a] = d->lo[d->me] - e0;
    rg.hold[1][a] = d->hi[d->me] - e0;
    rg.run[0][a] = d->interior[0] - e0;
    rg.run[1][a] = d->interior[1] - e0;
    st = run_region(&x, &lio, &rg);
    stile_status wst = d->comm.exchange_wait(d->comm.ctx, pending, x.stream); /* always: the transfer must end */
    if (st != STILE_OK) return st;
    if (wst != STILE_OK) return wst;

    /* the halos into the local canvas, then the query tiles that need them */
    for (int i = 0; i < d->nrecv; i++) {
        const dist_msg *r = &d->recvs[i];
        dist_view mk, mv;
        msg_views(d, r, buf(d->recv_buf), &mk, &mv);
        if ((st = copy_box(&x, B, &kx, 0, &mk, 0, r->box_org, r->box_ext, tb)) || (st = copy_box(&x, B, &vx, 0, &mv, 0, r->box_org, r->box_ext, tb)))
            return st;
    }
    rg.text_queries = 0;
    const int64_t sides[2][2] = {{d->lo[d->me], d->interior[0]}, {d->interior[1], d->hi[d->me]}};
    for (int s = 0; s < 2; s++) {
        if (sides[s][0] >= sides[s][1]) continue;
        rg.run[0][a] = sides[s][0] - e0;
        rg.run[1][a] = sides[s][1] - e0;
        if ((st = run_region(&x, &lio, &rg)) != STILE_OK) return st;
    }
    return merging ? merge_text(&x, &lio) : STILE_OK;
}

/* ---- head mode ---- */

static stile_status run_heads(stile_dist_plan *d, const stile_io *io)
{
    const exec_ctx x = {d, io, io->stream};
    const int64_t B = d->r.p.batch, T = d->r.p.text, hl = d->hl, S = d->slab_video + T, N = d->r.tokens;
    const size_t tb = d->token_bytes, row = (size_t)hl * (size_t)d->r.p.head_dim * d->elem, col = (size_t)d->me * row;
    const int64_t zero[3] = {0, 0, 0}, *canvas = d->r.p.canvas;
    const stile_tensor *ut[3] = {&io->q, &io->k, &io->v};
    stile_buffer *full[3] = {d->qf, d->kf, d->vf};
    const int want_lse = io->lse.data != NULL;
    stile_status st = STILE_OK;
    stile_comm_msg *m = malloc(2 * (size_t)d->P * sizeof *m);
    if (!m) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "stile_dist_execute: out of memory");
    int n = 0;
    /* out: q, k, v of this slab for each peer's heads; in: each peer's slab for this rank's heads */
    size_t off = 0;
    for (int p = 0; p < d->P && !st; p++) {
        if (p == d->me) continue;
        const size_t part = (size_t)(B * d->slab_video) * row;
        for (int i = 0; i < 3 && !st; i++) {
            const dist_view u = view(ut[i]->data, d->slab_org, d->slab_ext, T, tb);
            const dist_view s = view(buf(d->send_buf) + off + (size_t)i * part, d->slab_org, d->slab_ext, 0, row);
            st = copy_box(&x, B, &s, 0, &u, (size_t)p * row, d->slab_org, d->slab_ext, row);
        }
        m[n++] = (stile_comm_msg){p, buf(d->send_buf) + off, 3 * part};
        off += 3 * part;
    }
    off = 0;
    for (int p = 0, k = n; p < d->P; p++) {
        if (p == d->me) continue;
        int64_t org[3], ext[3];
        stile_dist_slab_box(d, d->lo[p], d->hi[p], org, ext);
        const size_t part = (size_t)(B * ext[0] * ext[1] * ext[2]) * row;
        m[k++] = (stile_comm_msg){p, buf(d->recv_buf) + off, 3 * part};
        off += 3 * part;
    }
    void *pending = NULL;
    if (!st) st = d->comm.exchange_start(d->comm.ctx, m, n, m + n, n, x.stream, &pending);
    if (st) {
        free(m);
        return st;
    }
    /* this slab and the text, this rank's heads, straight into the whole canvas */
    for (int i = 0; i < 3 && !st; i++) {
        const dist_view u = view(ut[i]->data, d->slab_org, d->slab_ext, T, tb), f = view(buf(full[i]), zero, canvas, T, row);
        st = copy_tokens(&x, B, &f, 0, &u, col, d->slab_org, d->slab_ext, T, row);
    }
    stile_status wst = d->comm.exchange_wait(d->comm.ctx, pending, x.stream);
    if (!st) st = wst;
    off = 0;
    for (int p = 0; p < d->P && !st; p++) {
        if (p == d->me) continue;
        int64_t org[3], ext[3];
        stile_dist_slab_box(d, d->lo[p], d->hi[p], org, ext);
        const size_t part = (size_t)(B * ext[0] * ext[1] * ext[2]) * row;
        for (int i = 0; i < 3 && !st; i++) {
            const dist_view r = view(buf(d->recv_buf) + off + (size_t)i * part, org, ext, 0, row), f = view(buf(full[i]), zero, canvas, T, row);
            st = copy_box(&x, B, &f, 0, &r, 0, org, ext, row);
        }
        off += 3 * part;
    }
    if (!st) {
        stile_io lio = {.struct_size = sizeof lio, .stream = io->stream, .info = io->info};
        const size_t fb = stile_buffer_size(d->qf);
        lio.q = stile_tensor_at(buf(d->qf), fb, d->r.p.dtype);
        lio.k = stile_tensor_at(buf(d->kf), fb, d->r.p.dtype);
        lio.v = stile_tensor_at(buf(d->vf), fb, d->r.p.dtype);
        lio.o = stile_tensor_at(buf(d->of), fb, d->r.p.dtype);
        if (want_lse) lio.lse = stile_tensor_at(buf(d->lsef), stile_buffer_size(d->lsef), STILE_DTYPE_F32);
        st = stile_plan_execute(d->local, &lio);
    }
    /* back: each peer's slab and the text of this rank's heads out; this slab's of theirs in. Per peer
     * one message: o's video rows, o's text rows, then (with lse) [B, hl] rows of LSE over the same tokens. */
    const dist_view of = view(buf(d->of), zero, canvas, T, row);
    const dist_view uo = view(io->o.data, d->slab_org, d->slab_ext, T, tb);
    n = 0;
    off = 0;
    for (int p = 0; p < d->P && !st; p++) {
        int64_t org[3], ext[3];
        stile_dist_slab_box(d, d->lo[p], d->hi[p], org, ext);
        const int64_t sv = ext[0] * ext[1] * ext[2];
        if (p == d->me) continue;
        const dist_view s = view(buf(d->send_buf) + off, org, ext, T, row);
        st = copy_tokens(&x, B, &s, 0, &of, 0, org, ext, T, row);
        size_t bytes = (size_t)(B * (sv + T)) * row;
        if (want_lse && !st) {
            /* [B, hl] rows of sv + T floats: per batch entry, the box then the text of lsef's rows */
            for (int64_t b = 0; b < B && !st; b++) {
                const dist_view lf = view(buf(d->lsef) + (size_t)(b * hl * N) * sizeof(float), zero, canvas, T, sizeof(float));
                const dist_view ls = view(buf(d->send_buf) + off + bytes + (size_t)(b * hl * (sv + T)) * sizeof(float), org, ext, T, sizeof(float));
                st = copy_tokens(&x, hl, &ls, 0, &lf, 0, org, ext, T, sizeof(float));
            }
            bytes += (size_t)(B * hl * (sv + T)) * sizeof(float);
        }
        m[n++] = (stile_comm_msg){p, buf(d->send_buf) + off, bytes};
        off += bytes;
    }
    const size_t in_bytes = (size_t)(B * S) * row + (want_lse ? (size_t)(B * hl * S) * sizeof(float) : 0);
    for (int p = 0, k = n, i = 0; p < d->P; p++) {
        if (p == d->me) continue;
        m[k++] = (stile_comm_msg){p, buf(d->recv_buf) + (size_t)i++ * in_bytes, in_bytes};
    }
    if (!st) st = d->comm.exchange_start(d->comm.ctx, m, n, m + n, n, x.stream, &pending);
    free(m);
    if (st) return st;
    /* this rank's own heads of its slab while the rest travels */
    st = copy_tokens(&x, B, &uo, col, &of, 0, d->slab_org, d->slab_ext, T, row);
    wst = d->comm.exchange_wait(d->comm.ctx, pending, x.stream);
    if (!st) st = wst;
    for (int p = 0, i = 0; p < d->P && !st; p++) {
        if (p == d->me) continue;
        const dist_view r = view(buf(d->recv_buf) + (size_t)i++ * in_bytes, d->slab_org, d->slab_ext, T, row);
        st = copy_tokens(&x, B, &uo, (size_t)p * row, &r, 0, d->slab_org, d->slab_ext, T, row);
    }
    if (st || !want_lse) return st;
    /* the LSE rows: [B, H, S] of the caller from [B, hl, S] per rank (this rank's from lsef) */
    const int64_t H = d->r.p.heads;
    for (int p = 0, i = 0; p < d->P && !st; p++) {
        for (int64_t b = 0; b < B && !st; b++) {
            dist_view dst = view((float *)io->lse.data + (b * H + p * hl) * S, d->slab_org, d->slab_ext, T, sizeof(float));
            if (p == d->me) {
                dist_view lf = view(buf(d->lsef) + (size_t)(b * hl * N) * sizeof(float), zero, canvas, T, sizeof(float));
                st = copy_tokens(&x, hl, &dst, 0, &lf, 0, d->slab_org, d->slab_ext, T, sizeof(float));
            } else {
                dist_view r = view(buf(d->recv_buf) + (size_t)i * in_bytes + (size_t)(B * S) * row + (size_t)(b * hl * S) * sizeof(float),
                                   d->slab_org, d->slab_ext, T, sizeof(float));
                st = copy_tokens(&x, hl, &dst, 0, &r, 0, d->slab_org, d->slab_ext, T, sizeof(float));
            }
        }
        if (p != d->me) i++;
    }
    return st;
}

/* ---- the public call ---- */

static stile_status check_io(const stile_dist_plan *d, const stile_io *io)
{
    const size_t need = (size_t)(d->r.p.batch * (d->slab_video + d->r.p.text)) * d->token_bytes;
    const stile_tensor *t[4] = {&io->q, &io->k, &io->v, &io->o};
    static const char *nm[4] = {"io->q", "io->k", "io->v", "io->o"};
    stile_status st;
    for (int i = 0; i < 4; i++) {
        if ((st = stile_tensor_check(d->local, t[i], nm[i], need)) != STILE_OK) return st;
        if (!t[i]->data) return stile_fail(STILE_ERR_UNSUPPORTED, "stile_dist_execute: %s: tensors at addresses only", nm[i]);
    }
    for (int i = 0; i < 3; i++)
        if (stile_tensor_overlaps(&io->o, need, t[i], need)) return stile_fail(STILE_ERR_ALIASING, "io->o overlaps %s", nm[i]);
    if (io->lse.data || io->lse.handle) {
        const size_t lneed = (size_t)(d->r.p.batch * d->r.p.heads * (d->slab_video + d->r.p.text)) * sizeof(float);
        if ((st = stile_tensor_check_as(d->local, &io->lse, "io->lse", STILE_DTYPE_F32, lneed)) != STILE_OK) return st;
        for (int i = 0; i < 4; i++)
            if (stile_tensor_overlaps(&io->lse, lneed, t[i], need)) return stile_fail(STILE_ERR_ALIASING, "io->lse overlaps %s", nm[i]);
    }
    if (io->key_tiles.data || io->key_tiles.handle)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_dist_execute: io->key_tiles is set, but a distributed plan has windows");
    return STILE_OK;
}

stile_status stile_dist_execute(stile_dist_plan *plan, const stile_io *io)
{
    if (!plan || !io) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_dist_execute: %s is NULL", plan ? "io" : "plan");
    const stile_device *previous = stile_log_enter(plan->device);
    stile_io cur;
    stile_status st = stile_io_import(io, &cur, "stile_dist_execute");
    if (st == STILE_OK) st = check_io(plan, &cur);
    if (st == STILE_OK) st = plan->mode == STILE_DIST_HALO ? run_halo(plan, &cur) : run_heads(plan, &cur);
    stile_log_leave(previous);
    return st;
}

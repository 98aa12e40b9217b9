/* Planning a problem over ranks (stile_dist.h): the slabs, each rank's halo and the messages that
 * carry it, the query tiles that need no halo, and the local plan each rank executes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

void stile_comm_free(stile_comm *comm)
{
    if (!comm) return;
    if (comm->release) comm->release(comm->ctx);
    memset(comm, 0, sizeof *comm);
}

static const char axis_name[3] = {'t', 'h', 'w'};

/* Tokens of tiles [t0, t1) along axis a. */
static void tile_range_tokens(const stile_resolved *r, int a, int64_t t0, int64_t t1, int64_t *org, int64_t *ext)
{
    const int64_t end = t1 * r->p.tile[a];
    *org = t0 * r->p.tile[a];
    *ext = (end < r->p.canvas[a] ? end : r->p.canvas[a]) - *org;
}

void stile_dist_slab_box(const stile_dist_plan *d, int64_t t0, int64_t t1, int64_t org[3], int64_t ext[3])
{
    for (int a = 0; a < 3; a++) {
        org[a] = 0;
        ext[a] = d->r.p.canvas[a];
    }
    tile_range_tokens(&d->r, d->axis, t0, t1, &org[d->axis], &ext[d->axis]);
}

/* Rank i's tiles [*t0, *t1) of n split as evenly as possible over P ranks (the first n % P one more). */
static void even_split(int64_t n, int P, int i, int64_t *t0, int64_t *t1)
{
    *t0 = i * (n / P) + (i < n % P ? i : n % P);
    *t1 = *t0 + n / P + (i < n % P);
}

/* Tiles per rank along axis a: the caller's split, or as even as possible (even_split). */
static stile_status make_split(const stile_resolved *r, int a, int P, const int64_t *split, int64_t *lo, int64_t *hi)
{
    const int64_t n = r->grid[a];
    if (P > n)
        return stile_fail(STILE_ERR_INVALID_SIZE, "stile_dist_plan_create: %d ranks but %lld tiles along %c: at most one rank per tile",
                          P, (long long)n, axis_name[a]);
    int64_t at = 0;
    for (int i = 0; i < P; i++) {
        int64_t e0, e1;
        even_split(n, P, i, &e0, &e1);
        const int64_t len = split ? split[i] : e1 - e0;
        if (len < 1)
            return stile_fail(STILE_ERR_INVALID_SIZE, "stile_dist_params.split[%d]=%lld: each rank needs at least one tile", i,
                              (long long)len);
        lo[i] = at;
        hi[i] = at + len;
        at += len;
        if (at > n) break;
    }
    if (at != n)
        return stile_fail(STILE_ERR_INVALID_SIZE, "stile_dist_params.split sums to %lld%s, but the grid has %lld tiles along %c",
                          (long long)at, at > n ? " or more" : "", (long long)n, axis_name[a]);
    return STILE_OK;
}

/* The reach of the windows on axis a from slab [a0, a1): the key tiles its query tiles attend,
 * [*e0, *e1) (the union over heads), and those query tiles whose windows stay inside the slab, [*i0, *i1). */
static void slab_reach(const stile_resolved *r, int a, int64_t a0, int64_t a1, int64_t *e0, int64_t *e1, int64_t *i0, int64_t *i1)
{
    const int64_t n = r->grid[a];
    *e0 = a0;
    *e1 = a1;
    *i0 = a1;
    *i1 = a0;
    for (int64_t q = a0; q < a1; q++) {
        int inside = 1;
        for (int64_t h = 0; h < r->p.heads; h++) {
            const int64_t w = r->windows[h][a] < n ? r->windows[h][a] : n, s = stile_window_start(q, w, n);
            if (s < *e0) *e0 = s;
            if (s + w > *e1) *e1 = s + w;
            if (s < a0 || s + w > a1) inside = 0;
        }
        if (inside) {
            if (q < *i0) *i0 = q;
            *i1 = q + 1;
        }
    }
    if (*i0 >= *i1) *i0 = *i1 = a0; /* empty */
}

/* The halo mode's local canvas reproduces the whole grid's windows for every query tile of the slab
 * (a window clamped inside the grid lies inside the union of the slab's windows, so clamping it to that
 * union moves it the same way). Checked here rather than trusted. */
static stile_status check_windows(const stile_dist_plan *d)
{
    const int a = d->axis;
    const int64_t n = d->r.grid[a], e0 = d->ext_tiles[0], m = d->ext_tiles[1] - e0;
    for (int64_t q = d->lo[d->me]; q < d->hi[d->me]; q++)
        for (int64_t h = 0; h < d->r.p.heads; h++) {
            const int64_t w = d->r.windows[h][a], wg = w < n ? w : n, wl = w < m ? w : m;
            const int64_t sg = stile_window_start(q, wg, n), sl = e0 + stile_window_start(q - e0, wl, m);
            if (sg != sl || wg != wl)
                return stile_fail(STILE_ERR_BACKEND, "stile_dist_plan_create: internal: head %lld, tile %lld along %c: window [%lld, %lld) "
                                  "of the grid but [%lld, %lld) of the local canvas",
                                  (long long)h, (long long)q, axis_name[a], (long long)sg, (long long)(sg + wg), (long long)sl,
                                  (long long)(sl + wl));
        }
    return STILE_OK;
}

/* Auto axis: the fewest video tokens in the largest slab, then the fewest halo tokens, then the outer axis. */
static int pick_axis(const stile_resolved *r, int P)
{
    int best = -1;
    int64_t best_max = 0, best_halo = 0;
    for (int a = 0; a < 3; a++) {
        if (r->grid[a] < P) continue;
        const int64_t cross = r->video / r->p.canvas[a]; /* tokens of one token-thick cross-section */
        int64_t max = 0, halo = 0;
        for (int i = 0; i < P; i++) {
            int64_t t0, t1, org, ext, e0, e1, i0, i1, below, above;
            even_split(r->grid[a], P, i, &t0, &t1);
            tile_range_tokens(r, a, t0, t1, &org, &ext);
            if (ext * cross > max) max = ext * cross;
            slab_reach(r, a, t0, t1, &e0, &e1, &i0, &i1);
            tile_range_tokens(r, a, e0, t0, &org, &below);
            tile_range_tokens(r, a, t1, e1, &org, &above);
            halo += (below + above) * cross;
        }
        if (best < 0 || max < best_max || (max == best_max && halo < best_halo)) {
            best = a;
            best_max = max;
            best_halo = halo;
        }
    }
    return best;
}

/* Attended (query, key) pairs of one batch entry and head h among the plan's queries of the slab box
 * of tiles [lo, hi) along axis (video queries: window and valid text keys). */
static double slab_pairs(const stile_resolved *r, int axis, int64_t lo, int64_t hi, int64_t h)
{
    const int64_t *g = r->grid;
    int64_t ext_tok[3][2]; /* per axis: tokens of a whole tile, of the last (partial) one */
    for (int a = 0; a < 3; a++) {
        ext_tok[a][0] = r->p.tile[a];
        ext_tok[a][1] = r->p.canvas[a] - (g[a] - 1) * r->p.tile[a];
    }
    int64_t q0[3] = {0, 0, 0}, q1[3] = {g[0], g[1], g[2]};
    q0[axis] = lo;
    q1[axis] = hi;
    /* per axis, the sum over the query tiles of (tokens of the query tile x tokens of its window's tiles) */
    double per_axis[3];
    for (int a = 0; a < 3; a++) {
        const int64_t n = g[a], w = r->windows[h][a] < n ? r->windows[h][a] : n;
        per_axis[a] = 0;
        for (int64_t q = q0[a]; q < q1[a]; q++) {
            const int64_t s = stile_window_start(q, w, n);
            double keys = 0;
            for (int64_t k = s; k < s + w; k++) keys += (double)ext_tok[a][k == n - 1];
            per_axis[a] += (double)ext_tok[a][q == n - 1] * keys;
        }
    }
    int64_t qtok = 1;
    for (int a = 0; a < 3; a++) {
        int64_t o, e;
        tile_range_tokens(r, a, q0[a], q1[a], &o, &e);
        qtok *= e;
    }
    return per_axis[0] * per_axis[1] * per_axis[2] + (double)qtok * (double)r->text_valid;
}

static stile_status alloc(stile_dist_plan *d, size_t bytes, stile_buffer **out)
{
    return stile_buffer_create(d->device, bytes ? bytes : 1, out);
}

/* The halo mode: the local canvas, interior, messages and buffers of this rank. */
static stile_status plan_halo(stile_dist_plan *d)
{
    const stile_resolved *r = &d->r;
    const int a = d->axis, me = d->me;
    const int64_t B = r->p.batch, H = r->p.heads;
    int64_t e0, e1, i0, i1;
    slab_reach(r, a, d->lo[me], d->hi[me], &e0, &e1, &i0, &i1);
    d->ext_tiles[0] = e0;
    d->ext_tiles[1] = e1;
    d->interior[0] = i0;
    d->interior[1] = i1;
    stile_dist_slab_box(d, e0, e1, d->ext_org, d->ext_ext);
    d->ext_video = d->ext_ext[0] * d->ext_ext[1] * d->ext_ext[2];
    stile_status st = check_windows(d);
    if (st != STILE_OK) return st;

    /* the messages: to each peer whose windows reach into this slab, from each peer this slab's reach into */
    d->sends = calloc((size_t)d->P, sizeof *d->sends);
    d->recvs = calloc((size_t)d->P, sizeof *d->recvs);
    if (!d->sends || !d->recvs) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory planning a distributed problem");
    size_t send_bytes = 0, recv_bytes = 0;
    for (int p = 0; p < d->P; p++) {
        if (p == me) continue;
        int64_t pe0, pe1, pi0, pi1;
        slab_reach(r, a, d->lo[p], d->hi[p], &pe0, &pe1, &pi0, &pi1);
        for (int dir = 0; dir < 2; dir++) {
            /* dir 0: what p needs of this slab; dir 1: what this rank needs of p's */
            const int64_t t0 = dir ? (d->lo[p] > e0 ? d->lo[p] : e0) : (d->lo[me] > pe0 ? d->lo[me] : pe0);
            const int64_t t1 = dir ? (d->hi[p] < e1 ? d->hi[p] : e1) : (d->hi[me] < pe1 ? d->hi[me] : pe1);
            if (t0 >= t1) continue;
            dist_msg *m = dir ? &d->recvs[d->nrecv++] : &d->sends[d->nsend++];
            m->peer = p;
            m->tiles[0] = t0;
            m->tiles[1] = t1;
            stile_dist_slab_box(d, t0, t1, m->box_org, m->box_ext);
            m->bytes = 2 * (size_t)(B * m->box_ext[0] * m->box_ext[1] * m->box_ext[2]) * d->token_bytes;
            size_t *total = dir ? &recv_bytes : &send_bytes;
            m->offset = *total;
            *total += m->bytes;
        }
    }
    d->info.bytes_sent = (int64_t)send_bytes;
    d->info.bytes_received = (int64_t)recv_bytes;
    d->info.halo_tiles[0] = d->lo[me] - e0;
    d->info.halo_tiles[1] = e1 - d->hi[me];
    d->info.interior_tiles[0] = i0;
    d->info.interior_tiles[1] = i1;

    /* the local problem: the slab with its halos, every head, the text */
    stile_problem lp = r->p;
    memset(&lp.q, 0, 4 * sizeof lp.q);
    lp.canvas[a] = d->ext_ext[a];
    lp.head_windows = (const int64_t(*)[3])r->windows;
    if ((st = stile_plan_create(d->device, &lp, &d->local)) != STILE_OK) return st;

    const size_t kv = (size_t)(B * (d->ext_video + r->p.text)) * d->token_bytes;
    if ((st = alloc(d, kv, &d->kx)) || (st = alloc(d, kv, &d->vx)) || (st = alloc(d, send_bytes, &d->send_buf)) ||
        (st = alloc(d, recv_bytes, &d->recv_buf)))
        return st;
    if (r->p.text > 0 && d->P > 1) {
        const size_t rows = (size_t)(B * r->p.text);
        if ((st = alloc(d, (size_t)d->P * rows * d->token_bytes, &d->parts)) ||
            (st = alloc(d, (size_t)d->P * rows * (size_t)H * sizeof(float), &d->parts_lse)) ||
            (st = alloc(d, (size_t)(B * H * (d->slab_video + r->p.text)) * sizeof(float), &d->lse_buf)))
            return st;
        d->info.bytes_sent += (int64_t)((size_t)(d->P - 1) * rows * (d->token_bytes + (size_t)H * sizeof(float)));
        d->info.bytes_received = d->info.bytes_sent - (int64_t)send_bytes + (int64_t)recv_bytes;
    }
    double pairs = 0;
    for (int64_t h = 0; h < H; h++) pairs += slab_pairs(r, a, d->lo[me], d->hi[me], h);
    /* text queries: this slab's video keys, and on rank 0 the valid text keys */
    pairs += (double)H * (double)r->p.text * (double)(d->slab_video + (me == 0 ? r->text_valid : 0));
    d->info.flops = 4.0 * (double)r->p.head_dim * (double)B * pairs;
    return STILE_OK;
}

/* The head mode: this rank's heads over the whole canvas. */
static stile_status plan_heads(stile_dist_plan *d)
{
    const stile_resolved *r = &d->r;
    const int64_t B = r->p.batch, H = r->p.heads;
    if (H % d->P)
        return stile_fail(STILE_ERR_UNSUPPORTED, "stile_dist_plan_create: head mode splits the heads evenly: %lld heads over %d ranks",
                          (long long)H, d->P);
    d->hl = H / d->P;
    d->info.heads_local[0] = d->me * d->hl;
    d->info.heads_local[1] = (d->me + 1) * d->hl;
    stile_problem lp = r->p;
    memset(&lp.q, 0, 4 * sizeof lp.q);
    lp.heads = d->hl;
    lp.head_windows = (const int64_t(*)[3])(r->windows + d->me * d->hl);
    stile_status st = stile_plan_create(d->device, &lp, &d->local);
    if (st != STILE_OK) return st;
    const size_t row = (size_t)d->hl * (size_t)r->p.head_dim * d->elem, full = (size_t)(B * r->tokens) * row;
    if ((st = alloc(d, full, &d->qf)) || (st = alloc(d, full, &d->kf)) || (st = alloc(d, full, &d->vf)) ||
        (st = alloc(d, full, &d->of)) || (st = alloc(d, (size_t)(B * d->hl * r->tokens) * sizeof(float), &d->lsef)))
        return st;
    /* out: q, k, v of the slab for each peer's heads; back: o of each peer's slab and the text for this rank's heads */
    size_t sent = 0, received = 0;
    for (int p = 0; p < d->P; p++) {
        if (p == d->me) continue;
        int64_t org[3], ext[3];
        stile_dist_slab_box(d, d->lo[p], d->hi[p], org, ext);
        const size_t theirs = (size_t)(ext[0] * ext[1] * ext[2]);
        sent += 3 * (size_t)(B * d->slab_video) * row + (size_t)B * (theirs + (size_t)r->p.text) * row;
        received += 3 * (size_t)B * theirs * row + (size_t)(B * (d->slab_video + r->p.text)) * row;
    }
    /* room for the LSE rows too, when an execution wants them (not counted as bytes moved above) */
    const size_t lse_rows = (size_t)(B * d->hl * (r->tokens + d->P * r->p.text)) * sizeof(float);
    const size_t bufs = (sent > received ? sent : received) + lse_rows;
    if ((st = alloc(d, bufs, &d->send_buf)) || (st = alloc(d, bufs, &d->recv_buf))) return st;
    d->info.bytes_sent = (int64_t)sent;
    d->info.bytes_received = (int64_t)received;
    stile_plan_info pi;
    stile_plan_get_info(d->local, &pi);
    d->info.flops = pi.flops;
    return STILE_OK;
}

static stile_status check_comm(const stile_comm *c)
{
    if (c->struct_size != sizeof *c)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_dist_plan_create: comm->struct_size=%u, expected %zu", c->struct_size,
                          sizeof *c);
    if (c->size < 1 || c->rank < 0 || c->rank >= c->size)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_dist_plan_create: comm has rank %d of %d", c->rank, c->size);
    if (!c->exchange_start || !c->exchange_wait || !c->allreduce)
        return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_dist_plan_create: comm lacks exchange_start, exchange_wait or allreduce");
    return STILE_OK;
}

static stile_status check_problem(const stile_device *device, const stile_problem *p)
{
    if (p->order != STILE_ORDER_NATURAL)
        return stile_fail(STILE_ERR_UNSUPPORTED, "stile_dist_plan_create: slabs hold their tokens in natural order (order=%d)", (int)p->order);
    if (p->key_tiles_k)
        return stile_fail(STILE_ERR_UNSUPPORTED, "stile_dist_plan_create: caller-chosen key tiles are not distributed");
    const stile_strides *s = &p->q;
    for (int i = 0; i < 4; i++)
        if (s[i].batch || s[i].token || s[i].head || s[i].dim)
            return stile_fail(STILE_ERR_UNSUPPORTED, "stile_dist_plan_create: the slabs' tensors are contiguous [B, S, H, D]: "
                              "the problem's %s strides must be unset", (const char *[]){"q", "k", "v", "o"}[i]);
    if (!device->backend->execute_region || !device->backend->copy_rows || !device->backend->merge)
        return stile_fail(STILE_ERR_UNSUPPORTED, "stile_dist_plan_create: the %s backend has no distributed steps", device->backend->name);
    return STILE_OK;
}

static stile_status dist_create(stile_device *device, const stile_problem *p, const stile_comm *comm, const stile_dist_params *dp,
                                stile_dist_plan *d)
{
    stile_status st;
    stile_problem pc;
    if ((st = check_comm(comm)) || (st = stile_problem_import(p, &pc, "stile_dist_plan_create")) || (st = check_problem(device, &pc)) ||
        (st = stile_resolve(&pc, &d->r)))
        return st;
    d->device = device;
    d->comm = *comm;
    d->P = comm->size;
    d->me = comm->rank;
    d->mode = dp->mode;
    if (dp->mode != STILE_DIST_HALO && dp->mode != STILE_DIST_HEADS)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_dist_params.mode=%d: not a mode", (int)dp->mode);
    if ((int)dp->axis < STILE_DIST_AXIS_AUTO || dp->axis > STILE_DIST_AXIS_W)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_dist_params.axis=%d: not an axis", (int)dp->axis);
    d->axis = dp->axis == STILE_DIST_AXIS_AUTO ? pick_axis(&d->r, d->P) : (int)dp->axis - 1;
    if (d->axis < 0)
        return stile_fail(STILE_ERR_INVALID_SIZE, "stile_dist_plan_create: %d ranks, but the grid has %lld x %lld x %lld tiles: "
                          "no axis has a tile per rank", d->P, (long long)d->r.grid[0], (long long)d->r.grid[1], (long long)d->r.grid[2]);
    d->lo = malloc((size_t)d->P * sizeof *d->lo);
    d->hi = malloc((size_t)d->P * sizeof *d->hi);
    if (!d->lo || !d->hi) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory planning a distributed problem");
    if ((st = make_split(&d->r, d->axis, d->P, dp->split, d->lo, d->hi))) return st;
    stile_dist_slab_box(d, d->lo[d->me], d->hi[d->me], d->slab_org, d->slab_ext);
    d->slab_video = d->slab_ext[0] * d->slab_ext[1] * d->slab_ext[2];
    d->elem = stile_dtype_size(d->r.p.dtype);
    d->token_bytes = (size_t)(d->r.p.heads * d->r.p.head_dim) * d->elem;

    stile_dist_info *in = &d->info;
    in->rank = d->me;
    in->ranks = d->P;
    in->axis = d->axis;
    in->mode = d->mode;
    in->slab_tiles[0] = d->lo[d->me];
    in->slab_tiles[1] = d->hi[d->me];
    memcpy(in->slab_canvas, d->slab_ext, sizeof in->slab_canvas);
    in->slab_tokens = d->slab_video + d->r.p.text;
    return d->mode == STILE_DIST_HALO ? plan_halo(d) : plan_heads(d);
}

stile_status stile_dist_plan_create(stile_device *device, const stile_problem *p, const stile_comm *comm,
                                    const stile_dist_params *params, stile_dist_plan **out)
{
    if (out) *out = NULL;
    if (!device || !p || !comm || !out)
        return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_dist_plan_create: %s is NULL",
                          !device ? "device" : !p ? "p" : !comm ? "comm" : "out");
    stile_dist_params dp = {.struct_size = sizeof dp};
    if (params) {
        if (params->struct_size != sizeof *params)
            return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_dist_plan_create: params->struct_size=%u, expected %zu",
                              params->struct_size, sizeof *params);
        dp = *params;
    }
    stile_dist_plan *d = calloc(1, sizeof *d);
    if (!d) return stile_fail(STILE_ERR_OUT_OF_MEMORY, "out of memory planning a distributed problem");
    const stile_device *previous = stile_log_enter(device);
    stile_status st = dist_create(device, p, comm, &dp, d);
    stile_log_leave(previous);
    if (st != STILE_OK) {
        stile_dist_plan_destroy(&d);
        return st;
    }
    *out = d;
    return STILE_OK;
}

void stile_dist_plan_destroy(stile_dist_plan **plan)
{
    if (!plan || !*plan) return;
    stile_dist_plan *d = *plan;
    stile_buffer **bufs[] = {&d->kx, &d->vx, &d->send_buf, &d->recv_buf, &d->lse_buf, &d->parts, &d->parts_lse,
                             &d->qf, &d->kf, &d->vf, &d->of, &d->lsef};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) stile_buffer_destroy(bufs[i]);
    stile_plan_destroy(&d->local);
    if (d->r.windows) stile_resolved_free(&d->r);
    free(d->lo);
    free(d->hi);
    free(d->sends);
    free(d->recvs);
    free(d);
    *plan = NULL;
}

stile_status stile_dist_plan_get_info(const stile_dist_plan *plan, stile_dist_info *out)
{
    if (!plan || !out) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_dist_plan_get_info: %s is NULL", plan ? "out" : "plan");
    *out = plan->info;
    return STILE_OK;
}

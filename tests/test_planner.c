/* Planner invariants: grid, equal window size for every query tile, full windows, clamping at the
 * canvas edges, partial tiles, text accounting, per-head windows, the GPU schedule table, layout maps,
 * JSON, the transposed schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "stile_internal.h"

static stile_plan *plan_of(const stile_problem *p)
{
    stile_plan *plan = NULL;
    stile_status st = stile_plan_create(conf_cpu, p, &plan);
    if (st != STILE_OK) print_error("plan_create: %s (%s)\n", stile_status_string(st), conf_last_log());
    assert_int_equal(st, STILE_OK);
    return plan;
}

/* The axis rule, written out in the test from the contract's words. */
static void expected_range(int64_t q, int64_t w, int64_t n, int64_t *lo, int64_t *hi)
{
    if (w >= n) { *lo = 0; *hi = n; return; }
    int64_t s = q - w / 2;
    s = s < 0 ? 0 : s;
    s = s > n - w ? n - w : s;
    *lo = s;
    *hi = s + w;
}

static void test_hunyuan_720p_has_300_tiles_27_per_query_tile_and_91_percent_sparsity(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {30, 48, 80}, .tile = {6, 8, 8}, .window = {3, 3, 3}, .heads = 24, .head_dim = 128, .text = 256};
    stile_plan *plan = plan_of(&p);
    stile_plan_info in;
    assert_int_equal(stile_plan_get_info(plan, &in), STILE_OK);
    assert_string_equal(in.path, "cblas"); /* the kernel the CPU backend runs */
    assert_int_equal(in.tiles, 300);
    assert_int_equal(in.grid[0], 5);
    assert_int_equal(in.grid[1], 6);
    assert_int_equal(in.grid[2], 10);
    assert_int_equal(in.video_tokens, 115200);
    assert_int_equal(in.tokens, 115456);
    assert_int_equal(in.distinct_windows, 1);
    assert_true(in.sparsity > 0.91 - 1e-12 && in.sparsity < 0.91 + 1e-12);
    /* pairs: video x 27 tiles x 384 + video x 256 text + 256 text x (115200 + 256), times 24 heads */
    int64_t per_head = 115200LL * 27 * 384 + 115200LL * 256 + 256LL * 115456;
    assert_int_equal(in.attended_pairs, 24 * per_head);
    assert_true(in.flops == 4.0 * 128 * (double)in.attended_pairs);
    for (int64_t q = 0; q < in.tiles; q++) {
        const int32_t *t;
        int64_t n;
        assert_int_equal(stile_plan_key_tiles(plan, 23, q, &t, &n), STILE_OK);
        assert_int_equal(n, 27);
    }
    stile_plan_destroy(&plan);
    assert_null(plan);
}

static void check_schedule(const stile_problem *p)
{
    stile_plan *plan = plan_of(p);
    stile_plan_info in;
    stile_plan_get_info(plan, &in);
    const int64_t *n = in.grid;
    for (int64_t h = 0; h < p->heads; h++) {
        const int64_t *w = p->head_windows ? p->head_windows[h] : p->window;
        stile_head_info hi;
        assert_int_equal(stile_plan_get_head(plan, h, &hi), STILE_OK);
        int64_t want = 1;
        for (int a = 0; a < 3; a++) {
            assert_int_equal(hi.effective[a], w[a] < n[a] ? w[a] : n[a]);
            want *= hi.effective[a];
        }
        assert_int_equal(hi.key_tiles, want);
        for (int64_t q = 0; q < in.tiles; q++) {
            const int32_t *t;
            int64_t cnt;
            assert_int_equal(stile_plan_key_tiles(plan, h, q, &t, &cnt), STILE_OK);
            assert_int_equal(cnt, want); /* the same number for every query tile */
            int64_t qc[3] = {q / (n[1] * n[2]), (q / n[2]) % n[1], q % n[2]};
            int self = 0;
            for (int64_t i = 0; i < cnt; i++) {
                if (i) assert_true(t[i] > t[i - 1]); /* ascending, no repeats */
                assert_true(t[i] >= 0 && t[i] < in.tiles);
                int64_t kc[3] = {t[i] / (n[1] * n[2]), (t[i] / n[2]) % n[1], t[i] % n[2]};
                for (int a = 0; a < 3; a++) {
                    int64_t lo, hi2;
                    expected_range(qc[a], w[a], n[a], &lo, &hi2);
                    assert_true(kc[a] >= lo && kc[a] < hi2);
                }
                self |= t[i] == q;
            }
            assert_true(self); /* a clamped window still holds its own tile */
            /* the runs cover exactly these tiles, each run maximal (no two runs touch) */
            const stile_schedule *sc = &plan->schedules[plan->head_schedule[h]];
            int64_t covered = 0;
            for (int32_t r = sc->run_start[q]; r < sc->run_start[q + 1]; r++) {
                assert_true(sc->runs[r].end > sc->runs[r].first);
                if (r > sc->run_start[q]) assert_true(sc->runs[r].first > sc->runs[r - 1].end);
                for (int32_t k = sc->runs[r].first; k < sc->runs[r].end; k++) assert_int_equal(t[covered++], k);
            }
            assert_int_equal(covered, cnt);
        }
    }
    stile_plan_destroy(&plan);
}

static void test_every_query_tile_attends_the_same_number_of_tiles_inside_its_window(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    printf("  seed %llu\n", (unsigned long long)seed);
    srand((unsigned)seed);
    for (int trial = 0; trial < 60; trial++) {
        stile_problem p = {.struct_size = sizeof p, .heads = 1, .head_dim = 64};
        for (int a = 0; a < 3; a++) {
            p.canvas[a] = 1 + rand() % 23;
            p.tile[a] = 1 + rand() % 6;
            p.window[a] = 1 + rand() % 7;
        }
        check_schedule(&p);
    }
}

static void test_window_at_least_the_grid_is_full(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {5, 7, 9}, .tile = {2, 4, 4}, .window = {3, 2, 100}, .heads = 1, .head_dim = 64};
    stile_plan *plan = plan_of(&p);
    stile_plan_info in;
    stile_plan_get_info(plan, &in);
    assert_int_equal(in.tiles, 18);
    assert_true(in.sparsity == 0.0);
    assert_int_equal(in.attended_pairs, in.full_pairs);
    stile_plan_destroy(&plan);
}

static void test_window_at_canvas_corner_is_clamped_inside(void **state)
{
    (void)state;
    /* One axis of 6 tiles, window 4 (even): q=0 -> [0,4), q=3 -> [1,5), q=5 -> [2,6). Window 3 over 5 tiles:
     * q=0 -> [0,3), q=2 -> [1,4), q=4 -> [2,5). Hand-computed from the contract. */
    stile_problem p = {.struct_size = sizeof p, .canvas = {1, 5, 6}, .tile = {1, 1, 1}, .window = {1, 3, 4}, .heads = 1, .head_dim = 64};
    stile_plan *plan = plan_of(&p);
    const int32_t *t;
    int64_t n;
    struct { int64_t q; int32_t first, last; } cases[] = {
        {0 * 6 + 0, 0 * 6 + 0, 2 * 6 + 3}, /* corner (0,0): h [0,3), w [0,4) */
        {4 * 6 + 5, 2 * 6 + 2, 4 * 6 + 5}, /* corner (4,5): h [2,5), w [2,6) */
        {2 * 6 + 3, 1 * 6 + 1, 3 * 6 + 4}, /* middle (2,3): h [1,4), w [1,5) */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(stile_plan_key_tiles(plan, 0, cases[i].q, &t, &n), STILE_OK);
        assert_int_equal(n, 12);
        assert_int_equal(t[0], cases[i].first);
        assert_int_equal(t[n - 1], cases[i].last);
    }
    stile_plan_destroy(&plan);
}

/* Count attended pairs token by token from the definition. */
static int64_t brute_pairs(const stile_problem *p, const int64_t win[3])
{
    int64_t n[3], video = p->canvas[0] * p->canvas[1] * p->canvas[2], pairs = 0;
    for (int a = 0; a < 3; a++) n[a] = (p->canvas[a] + p->tile[a] - 1) / p->tile[a];
    for (int64_t i = 0; i < video; i++)
        for (int64_t j = 0; j < video; j++) {
            int64_t qi[3] = {i / (p->canvas[1] * p->canvas[2]), (i / p->canvas[2]) % p->canvas[1], i % p->canvas[2]};
            int64_t kj[3] = {j / (p->canvas[1] * p->canvas[2]), (j / p->canvas[2]) % p->canvas[1], j % p->canvas[2]};
            int ok = 1;
            for (int a = 0; a < 3; a++) {
                int64_t lo, hi;
                expected_range(qi[a] / p->tile[a], win[a], n[a], &lo, &hi);
                ok &= kj[a] / p->tile[a] >= lo && kj[a] / p->tile[a] < hi;
            }
            pairs += ok;
        }
    return pairs;
}

static void test_partial_tiles_count_only_their_real_tokens(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {5, 7, 9}, .tile = {2, 4, 4}, .window = {3, 1, 3}, .heads = 1, .head_dim = 64};
    stile_plan *plan = plan_of(&p);
    stile_plan_info in;
    stile_plan_get_info(plan, &in);
    assert_int_equal(in.grid[0], 3);
    assert_int_equal(in.grid[1], 2);
    assert_int_equal(in.grid[2], 3);
    assert_int_equal(in.attended_video_pairs, brute_pairs(&p, p.window));
    const stile_layout *l = &plan->layout;
    assert_int_equal(l->tile_start[l->tiles], 5 * 7 * 9);
    int64_t ext[3];
    stile_layout_tile_extent(l, l->tiles - 1, ext, NULL); /* far corner: 1 x 3 x 1 tokens */
    assert_int_equal(ext[0], 1);
    assert_int_equal(ext[1], 3);
    assert_int_equal(ext[2], 1);
    stile_plan_destroy(&plan);
}

static void test_text_tokens_add_window_free_pairs_and_skip_padding_keys(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {3, 5, 6}, .tile = {2, 2, 4}, .window = {1, 3, 1}, .heads = 2, .head_dim = 64, .text = 7,
                       .text_padding = 3, .batch = 2};
    stile_plan *plan = plan_of(&p);
    stile_plan_info in;
    stile_plan_get_info(plan, &in);
    const int64_t video = 90, valid = 4;
    assert_int_equal(in.text_valid, valid);
    int64_t per_head = brute_pairs(&p, p.window) + video * valid + 7 * (video + valid);
    assert_int_equal(in.attended_pairs, 2 * 2 * per_head);
    assert_int_equal(in.full_pairs, 2 * 2 * (video + 7) * (video + valid));
    stile_plan_destroy(&plan);
}

static void test_per_head_windows_share_schedules_when_effective_windows_match(void **state)
{
    (void)state;
    /* grid 3x2x3: 5x9x9 and 3x2x3 are both the full grid once clamped */
    const int64_t w[5][3] = {{1, 1, 1}, {3, 1, 3}, {5, 9, 9}, {1, 1, 1}, {3, 2, 3}};
    stile_problem p = {.struct_size = sizeof p, .canvas = {5, 7, 9}, .tile = {2, 4, 4}, .head_windows = w, .heads = 5, .head_dim = 64};
    check_schedule(&p);
    stile_plan *plan = plan_of(&p);
    stile_plan_info in;
    stile_plan_get_info(plan, &in);
    assert_int_equal(in.distinct_windows, 3);
    stile_head_info a, b;
    stile_plan_get_head(plan, 0, &a);
    stile_plan_get_head(plan, 3, &b);
    assert_int_equal(a.schedule, b.schedule);
    stile_plan_get_head(plan, 2, &a);
    stile_plan_get_head(plan, 4, &b);
    assert_int_equal(a.schedule, b.schedule);
    assert_int_equal(a.window[0], 5);
    assert_int_equal(a.effective[0], 3);
    assert_true(a.sparsity == 0.0);
    int64_t sum = 0;
    for (int h = 0; h < 5; h++) sum += brute_pairs(&p, w[h]);
    assert_int_equal(in.attended_video_pairs, sum);
    stile_plan_destroy(&plan);
}

/* The table GPU kernels walk (core/schedule_table.h), packed as both GPU backends pack it. */
static void test_schedule_table_holds_each_heads_key_tiles_and_every_query_row_once(void **state)
{
    (void)state;
    const int64_t w[5][3] = {{1, 1, 1}, {3, 1, 3}, {5, 9, 9}, {1, 1, 1}, {3, 2, 3}};
    stile_problem p = {.struct_size = sizeof p, .canvas = {5, 7, 9}, .tile = {2, 4, 4}, .head_windows = w, .heads = 5, .head_dim = 64, .text = 40,
                       .text_padding = 3};
    stile_plan *plan = plan_of(&p);
    const int64_t rows = 16, tiles = plan->layout.tiles, video = 5 * 7 * 9, tokens = video + 40;
    const size_t headers[2] = {STILE_TAB_HEADER_INTS * sizeof(int32_t), 0}, ts_sizes[2] = {sizeof(int32_t), sizeof(int64_t)};
    for (int v = 0; v < 2; v++) {
        void *host;
        stile_sched_table t;
        assert_int_equal(stile_sched_table_pack(plan, rows, headers[v], ts_sizes[v], &host, &t), STILE_OK);
        const char *buf = host;
        assert_int_equal(t.tile_start, headers[v]);
        assert_true(t.tile_start < t.row_start && t.row_start < t.head_row && t.head_row < t.key_tiles && t.key_tiles < t.blocks &&
                    t.blocks < t.query_start && t.query_start < t.query_tiles && t.query_tiles < t.bytes);
        assert_int_equal(t.query_start - t.blocks, (size_t)t.nblocks * STILE_BLOCK_INTS * sizeof(int32_t));
        assert_int_equal(t.query_tiles - t.query_start, t.head_row - t.row_start); /* one transposed row per forward row */
        assert_int_equal(t.bytes - t.query_tiles, t.blocks - t.key_tiles);         /* as many pairs either way */
        for (size_t i = 0; i < headers[v]; i++) assert_int_equal(buf[i], 0); /* the backend's to fill */
        int64_t ts[64];
        assert_true(tiles < 64);
        for (int64_t q = 0; q <= tiles; q++) {
            ts[q] = v == 0 ? ((const int32_t *)(buf + t.tile_start))[q] : ((const int64_t *)(buf + t.tile_start))[q];
            assert_int_equal(ts[q], plan->layout.tile_start[q]);
        }
        const int32_t *row_start = (const int32_t *)(buf + t.row_start), *head_row = (const int32_t *)(buf + t.head_row),
                      *key_tiles = (const int32_t *)(buf + t.key_tiles), *blocks = (const int32_t *)(buf + t.blocks),
                      *query_start = (const int32_t *)(buf + t.query_start), *query_tiles = (const int32_t *)(buf + t.query_tiles);
        for (int h = 0; h < 5; h++)
            for (int64_t q = 0; q < tiles; q++) {
                const int32_t *want;
                int64_t n;
                assert_int_equal(stile_plan_key_tiles(plan, h, q, &want, &n), STILE_OK);
                const int32_t r = head_row[h] + (int32_t)q;
                assert_int_equal(row_start[r + 1] - row_start[r], n);
                for (int64_t i = 0; i < n; i++) assert_int_equal(key_tiles[row_start[r] + i], want[i]);
                /* the transposed row of key tile q, at the same index */
                assert_int_equal(stile_plan_query_tiles(plan, h, q, &want, &n), STILE_OK);
                assert_int_equal(query_start[r + 1] - query_start[r], n);
                for (int64_t i = 0; i < n; i++) assert_int_equal(query_tiles[query_start[r] + i], want[i]);
            }
        char *seen = calloc((size_t)tokens, 1);
        for (int b = 0; b < t.nblocks; b++) {
            const int32_t *blk = blocks + STILE_BLOCK_INTS * b;
            const int32_t tile = blk[STILE_BLOCK_TILE], row = blk[STILE_BLOCK_ROW], n = blk[STILE_BLOCK_NROWS];
            assert_true(n >= 1 && n <= rows);
            if (tile == STILE_BLOCK_TEXT) assert_int_equal(row, 0);
            else assert_int_equal(blk[STILE_BLOCK_TOKEN], ts[tile] + row);
            for (int32_t i = 0; i < n; i++) {
                const int64_t tok = blk[STILE_BLOCK_TOKEN] + i;
                assert_true(tok < (tile == STILE_BLOCK_TEXT ? tokens : ts[tile + 1]));
                assert_int_equal(seen[tok]++, 0);
            }
        }
        for (int64_t i = 0; i < tokens; i++) assert_int_equal(seen[i], 1);
        free(seen);
        free(host);
    }
    stile_plan_destroy(&plan);
}

static void test_layout_maps_natural_and_tiled_order_both_ways(void **state)
{
    (void)state;
    const int64_t canvas[3] = {5, 7, 9}, tile[3] = {2, 4, 4};
    stile_layout l;
    assert_int_equal(stile_layout_init(&l, canvas, tile), STILE_OK);
    const int64_t n = 5 * 7 * 9;
    char *seen = calloc(n, 1);
    for (int64_t i = 0; i < n; i++) {
        int64_t t = stile_layout_natural_to_tiled(&l, i);
        assert_true(t >= 0 && t < n);
        assert_false(seen[t]);
        seen[t] = 1;
        assert_int_equal(stile_layout_tiled_to_natural(&l, t), i);
    }
    /* the first tile holds tokens (0..1, 0..3, 0..3) in raster order */
    assert_int_equal(stile_layout_tiled_to_natural(&l, 0), 0);
    assert_int_equal(stile_layout_tiled_to_natural(&l, 1), 1);
    assert_int_equal(stile_layout_tiled_to_natural(&l, 4), 9);
    assert_int_equal(stile_layout_tiled_to_natural(&l, 16), 63);
    free(seen);
    stile_layout_free(&l);
}

static void test_hunyuan_with_24_distinct_windows_plans_24_schedules(void **state)
{
    (void)state;
    int64_t w[24][3];
    for (int h = 0; h < 24; h++) {
        w[h][0] = 1 + h % 5;
        w[h][1] = 1 + (h / 5) % 6;
        w[h][2] = 1 + (h * 7) % 10;
    }
    stile_problem p = {.struct_size = sizeof p, .canvas = {30, 48, 80}, .tile = {6, 8, 8}, .head_windows = (const int64_t(*)[3])w, .heads = 24,
                       .head_dim = 128, .text = 256};
    stile_plan *plan = plan_of(&p);
    stile_plan_info in;
    stile_plan_get_info(plan, &in);
    assert_int_equal(in.distinct_windows, 24);
    stile_plan_destroy(&plan);
}

static void test_plan_json_holds_grid_accounting_and_schedules(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {5, 7, 9}, .tile = {2, 4, 4}, .window = {3, 1, 3}, .heads = 2, .head_dim = 64, .text = 3};
    stile_plan *plan = plan_of(&p);
    size_t len = 0;
    assert_int_equal(stile_plan_json(plan, 0, NULL, 0, &len), STILE_ERR_BUFFER_TOO_SMALL);
    char *buf = malloc(len + 1);
    assert_int_equal(stile_plan_json(plan, 0, buf, len, &len), STILE_ERR_BUFFER_TOO_SMALL); /* no room for the NUL */
    assert_int_equal(stile_plan_json(plan, 0, buf, len + 1, &len), STILE_OK);
    json_error_t err;
    json_t *j = json_loads(buf, 0, &err);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "tiles")), 18);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "grid"), 2)), 3);
    json_t *s0 = json_array_get(json_object_get(j, "schedules"), 0);
    assert_int_equal(json_array_size(json_object_get(s0, "key_tiles")), 18);
    assert_int_equal(json_array_size(json_object_get(j, "heads")), 2);
    stile_plan_info in;
    stile_plan_get_info(plan, &in);
    assert_int_equal(json_integer_value(json_object_get(j, "attended_pairs")), in.attended_pairs);
    json_decref(j);
    assert_int_equal(stile_plan_json(plan, 1, buf, len + 1, &len), STILE_OK);
    assert_null(strstr(buf, "\"key_tiles\":["));
    free(buf);
    stile_plan_destroy(&plan);
}

/* The transposed schedule (the backward's dK/dV rows) is the forward schedule inverted by brute
 * force: key tile k of head h lists exactly the query tiles whose key tiles hold k, ascending. */
static void check_transposed(const stile_problem *p, int64_t want_min, int64_t want_max)
{
    stile_plan *plan = plan_of(p);
    stile_plan_info in;
    assert_int_equal(stile_plan_get_info(plan, &in), STILE_OK);
    const int64_t T = in.tiles;
    int32_t *want = malloc((size_t)T * sizeof *want);
    assert_non_null(want);
    for (int64_t h = 0; h < p->heads; h++) {
        stile_head_info hi;
        assert_int_equal(stile_plan_get_head(plan, h, &hi), STILE_OK);
        int64_t total = 0, mn = INT64_MAX, mx = 0;
        for (int64_t k = 0; k < T; k++) {
            int64_t nwant = 0;
            for (int64_t q = 0; q < T; q++) {
                const int32_t *t;
                int64_t n;
                assert_int_equal(stile_plan_key_tiles(plan, h, q, &t, &n), STILE_OK);
                for (int64_t i = 0; i < n; i++)
                    if (t[i] == k) want[nwant++] = (int32_t)q;
            }
            const int32_t *got;
            int64_t ngot;
            assert_int_equal(stile_plan_query_tiles(plan, h, k, &got, &ngot), STILE_OK);
            assert_int_equal(ngot, nwant);
            assert_memory_equal(got, want, (size_t)nwant * sizeof *want);
            total += ngot;
            mn = ngot < mn ? ngot : mn;
            mx = ngot > mx ? ngot : mx;
        }
        assert_int_equal(total, hi.key_tiles * T); /* every pair once either way */
        assert_int_equal(hi.min_query_tiles, mn);
        assert_int_equal(hi.max_query_tiles, mx);
        if (h == 0 && want_max) {
            assert_int_equal(mn, want_min);
            assert_int_equal(mx, want_max);
        }
    }
    free(want);
    stile_plan_destroy(&plan);
}

static void test_transposed_schedule_inverts_the_key_tiles(void **state)
{
    (void)state;
    /* HunyuanVideo, grid 5 x 6 x 10, window 3: per axis the key tiles at the edges are attended by 2
     * query tiles, the middle ones by up to 5 (t), 4 (h) and 4 (w): 8 to 80 per key tile */
    stile_problem p = {.struct_size = sizeof p, .canvas = {30, 48, 80}, .tile = {6, 8, 8}, .window = {3, 3, 3}, .heads = 1, .head_dim = 64};
    check_transposed(&p, 8, 80);
    /* per-head windows: even, clamped, whole-axis and past-the-grid, over partial tiles */
    static const int64_t wins[4][3] = {{2, 2, 2}, {1, 3, 4}, {5, 1, 2}, {9, 9, 9}};
    stile_problem q = {.struct_size = sizeof q, .canvas = {7, 10, 13}, .tile = {2, 3, 3}, .head_windows = wins, .heads = 4, .head_dim = 8};
    check_transposed(&q, 0, 0);
    stile_problem one = {.struct_size = sizeof one, .canvas = {1, 1, 5}, .tile = {1, 1, 1}, .window = {1, 1, 1}, .heads = 1, .head_dim = 8};
    check_transposed(&one, 1, 1);
}

static void test_transposed_schedule_refuses_bad_arguments(void **state)
{
    (void)state;
    stile_problem p = {.struct_size = sizeof p, .canvas = {2, 4, 4}, .tile = {1, 2, 2}, .window = {1, 1, 1}, .heads = 2, .head_dim = 8};
    stile_plan *plan = plan_of(&p);
    const int32_t *t;
    int64_t n;
    assert_int_equal(stile_plan_query_tiles(plan, 2, 0, &t, &n), STILE_ERR_OUT_OF_RANGE);
    assert_int_equal(stile_plan_query_tiles(plan, -1, 0, &t, &n), STILE_ERR_OUT_OF_RANGE);
    assert_int_equal(stile_plan_query_tiles(plan, 0, 8, &t, &n), STILE_ERR_OUT_OF_RANGE);
    assert_non_null(strstr(conf_last_log(), "key tile 8"));
    assert_int_equal(stile_plan_query_tiles(plan, 0, 0, NULL, &n), STILE_ERR_NULL_ARGUMENT);
    assert_int_equal(stile_plan_query_tiles(NULL, 0, 0, &t, &n), STILE_ERR_NULL_ARGUMENT);
    assert_int_equal(stile_plan_query_tiles(plan, 1, 7, &t, &n), STILE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(t[0], 7);
    stile_plan_destroy(&plan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hunyuan_720p_has_300_tiles_27_per_query_tile_and_91_percent_sparsity),
        cmocka_unit_test(test_every_query_tile_attends_the_same_number_of_tiles_inside_its_window),
        cmocka_unit_test(test_window_at_least_the_grid_is_full),
        cmocka_unit_test(test_window_at_canvas_corner_is_clamped_inside),
        cmocka_unit_test(test_partial_tiles_count_only_their_real_tokens),
        cmocka_unit_test(test_text_tokens_add_window_free_pairs_and_skip_padding_keys),
        cmocka_unit_test(test_per_head_windows_share_schedules_when_effective_windows_match),
        cmocka_unit_test(test_schedule_table_holds_each_heads_key_tiles_and_every_query_row_once),
        cmocka_unit_test(test_layout_maps_natural_and_tiled_order_both_ways),
        cmocka_unit_test(test_hunyuan_with_24_distinct_windows_plans_24_schedules),
        cmocka_unit_test(test_plan_json_holds_grid_accounting_and_schedules),
        cmocka_unit_test(test_transposed_schedule_inverts_the_key_tiles),
        cmocka_unit_test(test_transposed_schedule_refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, conf_group_open_cpu, conf_group_close_cpu);
}

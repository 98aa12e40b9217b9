/* `stile bench --ranks N`: one problem over N CUDA devices of this host (distributed plans,
 * docs/distributed.md), one process per device forked here, NCCL between them (libstile_nccl, loaded
 * at run time: the CLI itself needs neither NCCL nor the CUDA runtime to start). In one
 * run: the whole problem on cuda:0 alone, then each mode asked for (halo, heads) over the N ranks; the
 * median of the slowest rank's time per execution, the speed-up over one device, and the bytes each
 * mode moves per rank. Rank 0 prints and writes the record (schema stile-bench/2, kinds dist-*). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_json.h"
#include "cli.h"
#if STILE_HAVE_NCCL
#include "stile/stile_nccl.h"
#endif

#if !STILE_HAVE_NCCL
int cmd_bench_ranks(const cli_opts *o, const stile_problem *p, const char *name)
{
    (void)p;
    (void)name;
    fprintf(stderr, "stile bench: --ranks %d: this build has no NCCL transport (libstile_nccl: CUDA with nccl.h and libnccl)\n", o->ranks);
    return 2;
}
#else

/* libstile_nccl's and NCCL's calls, from the library found at run time. */
typedef struct nccl_fns {
    ncclResult_t (*get_unique_id)(ncclUniqueId *id);
    stile_status (*comm_init)(int nranks, const ncclUniqueId *id, int rank, int cuda_device, stile_comm *out);
} nccl_fns;

/* libstile_nccl of this version: where the loader finds it (installed), else beside this program's
 * build tree (build/tools/stile, build/transports/). 0, or 1 with the reason printed. */
static int load_nccl(nccl_fns *f)
{
    const char *name = "libstile_nccl.so." STILE_VERSION_STRING;
    void *h = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    char path[4096], tried[4200] = "";
    if (!h) {
        snprintf(tried, sizeof tried, "%s", dlerror());
        const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 64);
        if (n > 0) {
            path[n] = 0;
            char *slash = strrchr(path, '/');
            if (slash) {
                snprintf(slash, sizeof path - (size_t)(slash - path), "/../transports/%s", name);
                h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
                if (!h) snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "; %s", dlerror());
            }
        }
    }
    if (h) {
        *(void **)&f->get_unique_id = dlsym(h, "ncclGetUniqueId");
        *(void **)&f->comm_init = dlsym(h, "stile_comm_nccl_init");
    }
    if (!h || !f->get_unique_id || !f->comm_init) {
        fprintf(stderr, "stile bench: --ranks: the NCCL transport (%s) did not load: %s\n", name, h ? "a symbol is missing" : tried);
        return 1;
    }
    return 0;
}

typedef struct rank_ctx {
    const cli_opts *o;
    stile_device *dev;
    stile_comm comm;
    stile_buffer *one; /* a float for barriers and maxima */
} rank_ctx;

/* The largest x over the ranks (a barrier too). */
static double rank_max(rank_ctx *c, double x)
{
    float f = (float)x;
    if (stile_buffer_upload(c->one, 0, &f, sizeof f) != STILE_OK ||
        c->comm.allreduce(c->comm.ctx, stile_buffer_data(c->one), 1, STILE_COMM_MAX, NULL) != STILE_OK ||
        stile_buffer_download(c->one, 0, &f, sizeof f) != STILE_OK)
        return -1;
    return f;
}

/* Buffers of bytes each on the device, filled with seeded normals (NaN for the outputs). */
static stile_status make_tensors(rank_ctx *c, const stile_problem *p, size_t bytes, uint64_t seed, stile_buffer *b[4], stile_io *io)
{
    void *host = malloc(bytes);
    if (!host) return stile_report_error(STILE_ERR_OUT_OF_MEMORY, "out of memory for a %zu-byte tensor", bytes);
    stile_status st = STILE_OK;
    stile_tensor *t[4] = {&io->q, &io->k, &io->v, &io->o};
    for (int i = 0; i < 4 && st == STILE_OK; i++) {
        if (i < 3) stile_conf_fill_normal(host, p->dtype, (int64_t)(bytes / stile_dtype_size(p->dtype)), seed + (uint64_t)i);
        else memset(host, 0xff, bytes);
        if ((st = stile_buffer_create(c->dev, bytes, &b[i])) == STILE_OK) st = stile_buffer_upload(b[i], 0, host, bytes);
        if (st == STILE_OK) *t[i] = stile_tensor_at(stile_buffer_data(b[i]), bytes, p->dtype);
    }
    free(host);
    return st;
}

typedef stile_status (*exec_fn)(void *plan, const stile_io *io);
static stile_status run_plan(void *plan, const stile_io *io) { return stile_plan_execute(plan, io); }
static stile_status run_dist(void *plan, const stile_io *io) { return stile_dist_execute(plan, io); }

/* Warm-up and timed executions, each after a barrier; every rank takes part (active: this rank
 * executes). The median over the runs of the slowest rank's ms (rank 0's copy is the one printed). */
static double time_runs(rank_ctx *c, exec_fn fn, void *plan, const stile_io *io, int active)
{
    const int runs = c->o->repeat > 0 ? c->o->repeat : 3, warm = c->o->warmup > 0 ? c->o->warmup : 1;
    double *ms = malloc((size_t)runs * sizeof *ms);
    if (!ms) return -1;
    for (int i = 0; i < warm + runs; i++) {
        if (rank_max(c, 0) < 0) break;
        const double t0 = cli_now();
        if (active && fn(plan, io) != STILE_OK) {
            fprintf(stderr, "stile bench: rank %d: %s\n", c->comm.rank, stile_last_error());
            free(ms);
            return -1;
        }
        const double t = rank_max(c, active ? (cli_now() - t0) * 1e3 : 0);
        if (i >= warm) ms[i - warm] = t;
    }
    const double med = cli_median(ms, runs);
    free(ms);
    return med;
}

static json_t *record(const char *name, const char *kind, const stile_problem *p, int ranks, double ms, const stile_dist_info *in,
                      double speedup, double flops)
{
    json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:o,s:i,s:f,s:f}", "workload", name, "implementation", "stile/cuda", "kind", kind, "dtype",
                          stile_dtype_name(p->dtype), "shape", bench_shape_json(p), "ranks", ranks, "ms_median", ms, "tflops",
                          flops / ms * 1e-9);
    if (in) {
        json_object_set_new(r, "axis", json_string((const char[][2]){"t", "h", "w"}[in->axis]));
        json_object_set_new(r, "bytes_sent_per_rank_max", json_integer(in->bytes_sent));
        json_object_set_new(r, "bytes_received_per_rank_max", json_integer(in->bytes_received));
        json_object_set_new(r, "speedup_over_one_device", json_real(speedup));
    }
    return r;
}

static int rank_main(const cli_opts *o, const nccl_fns *nf, const stile_problem *p, const char *name, int rank, int fd_in, int fd_out)
{
    rank_ctx c = {.o = o};
    char dev_name[32];
    snprintf(dev_name, sizeof dev_name, "cuda:%d", rank);
    if (stile_device_open(dev_name, NULL, &c.dev) != STILE_OK) return 1; /* the log said why */
    ncclUniqueId id;
    if (rank == 0) {
        if (nf->get_unique_id(&id) != ncclSuccess) return 1;
        for (int i = 1; i < o->ranks; i++)
            if (write(fd_out, &id, sizeof id) != (ssize_t)sizeof id) return 1;
    } else if (read(fd_in, &id, sizeof id) != (ssize_t)sizeof id) {
        return 1;
    }
    if (nf->comm_init(o->ranks, &id, rank, rank, &c.comm) != STILE_OK || stile_buffer_create(c.dev, sizeof(float), &c.one) != STILE_OK)
        return 1;
    const int64_t B = p->batch ? p->batch : 1, H = p->heads, D = p->head_dim;
    const size_t es = stile_dtype_size(p->dtype);
    json_t *results = json_array();
    int rc = 0;
    /* one device: rank 0 alone, the others waiting at each barrier */
    double one_ms = -1, one_flops = 0;
    {
        stile_plan *plan = NULL;
        stile_buffer *b[4] = {0};
        stile_io io = {.struct_size = sizeof io};
        const size_t bytes = (size_t)(B * (p->canvas[0] * p->canvas[1] * p->canvas[2] + p->text) * H * D) * es;
        stile_status st = rank == 0 ? stile_plan_create(c.dev, p, &plan) : STILE_OK;
        if (st == STILE_OK && rank == 0) st = make_tensors(&c, p, bytes, o->seed, b, &io);
        if (st != STILE_OK) fprintf(stderr, "stile bench: one device: %s\n", stile_last_error());
        one_ms = time_runs(&c, run_plan, plan, &io, rank == 0 && st == STILE_OK);
        if (plan) {
            stile_plan_info pi;
            stile_plan_get_info(plan, &pi);
            one_flops = pi.flops;
            printf("[%s] one device (cuda:0): median %10.3f ms  %7.3f TFLOPS  path %s\n", name, one_ms, pi.flops / one_ms * 1e-9, pi.path);
            json_array_append_new(results, record(name, "dist-one-device", p, 1, one_ms, NULL, 1, pi.flops));
        }
        for (int i = 0; i < 4; i++) stile_buffer_destroy(&b[i]);
        stile_plan_destroy(&plan);
        if (one_ms < 0) rc = 1;
    }
    for (int m = 0; m < 2 && !rc; m++) {
        if (!((o->dist_modes ? o->dist_modes : 3) & (1 << m))) continue;
        stile_dist_params dp = {.struct_size = sizeof dp, .mode = m ? STILE_DIST_HEADS : STILE_DIST_HALO, .axis = (stile_dist_axis)o->dist_axis};
        stile_dist_plan *dplan = NULL;
        stile_buffer *b[4] = {0};
        stile_io io = {.struct_size = sizeof io};
        stile_dist_info in = {0};
        stile_status st = stile_dist_plan_create(c.dev, p, &c.comm, &dp, &dplan);
        if (st == STILE_OK) {
            stile_dist_plan_get_info(dplan, &in);
            st = make_tensors(&c, p, (size_t)(B * in.slab_tokens * H * D) * es, o->seed + 16 * (uint64_t)(rank + 1), b, &io);
        }
        if (st != STILE_OK) { /* every rank fails alike on a bad problem; a failed allocation here stops them all */
            fprintf(stderr, "stile bench: rank %d: %s mode: %s\n", rank, m ? "head" : "halo", stile_last_error());
            rc = cli_exit_status(st);
        }
        const double ms = rc ? -1 : time_runs(&c, run_dist, dplan, &io, 1);
        const double sent = rank_max(&c, (double)in.bytes_sent), recv = rank_max(&c, (double)in.bytes_received);
        const double fl = rank_max(&c, in.flops);
        if (ms < 0) rc = 1;
        else if (rank == 0) {
            in.bytes_sent = (int64_t)sent;
            in.bytes_received = (int64_t)recv;
            printf("[%s] %s over %d ranks (axis %c, rank 0's slab [%lld, %lld) of the tiles): median %10.3f ms, %.3fx one device; "
                   "per rank at most %.1f MB sent, %.1f MB received; busiest rank %.1f TFLOP\n",
                   name, m ? "heads" : "halo ", o->ranks, "thw"[in.axis], (long long)in.slab_tiles[0], (long long)in.slab_tiles[1], ms,
                   one_ms / ms, sent * 1e-6, recv * 1e-6, fl * 1e-12);
            json_array_append_new(results, record(name, m ? "dist-heads" : "dist-halo", p, o->ranks, ms, &in, one_ms / ms, one_flops));
        }
        for (int i = 0; i < 4; i++) stile_buffer_destroy(&b[i]);
        stile_dist_plan_destroy(&dplan);
    }
    if (rank == 0 && !rc && o->json_path) {
        stile_device_info di;
        stile_device_get_info(c.dev, &di);
        rc = bench_write_record(o, &di, results, NULL);
    }
    json_decref(results);
    stile_buffer_destroy(&c.one);
    stile_comm_free(&c.comm);
    stile_device_close(&c.dev);
    fflush(stdout);
    return rc;
}

int cmd_bench_ranks(const cli_opts *o, const stile_problem *p, const char *name)
{
    if (strncmp(o->device, "cuda", 4) != 0 && strcmp(o->device, "auto") != 0) {
        fprintf(stderr, "stile bench: --ranks %d: ranks are CUDA devices cuda:0..%d over NCCL (--device %s)\n", o->ranks, o->ranks - 1,
                o->device);
        return 2;
    }
    nccl_fns nf = {0};
    if (load_nccl(&nf) != 0) return 1;
    fflush(stdout);
    int fds[2];
    if (pipe(fds) != 0) return 1;
    pid_t pids[64];
    for (int r = 0; r < o->ranks; r++) {
        pids[r] = fork(); /* before this process touches a GPU */
        if (pids[r] == 0) _exit(rank_main(o, &nf, p, name, r, fds[0], fds[1]));
    }
    int rc = 0;
    for (int r = 0; r < o->ranks; r++) {
        int status = 0;
        waitpid(pids[r], &status, 0);
        const int e = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        if (e > rc) rc = e;
    }
    return rc;
}
#endif

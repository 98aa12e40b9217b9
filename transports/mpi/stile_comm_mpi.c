/* The MPI transport of distributed plans (include/stile/stile_mpi.h). */
#include <limits.h>
#include <stdlib.h>

#include "stile/stile_mpi.h"

typedef struct mpi_ctx {
    MPI_Comm comm;
} mpi_ctx;

typedef struct mpi_pending {
    int n;
    MPI_Request req[];
} mpi_pending;

enum { CHUNK = 1 << 30 }; /* bytes per MPI message: counts are int */

static stile_status mpi_fail(int rc, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) text[0] = 0;
    return stile_report_error(STILE_ERR_BACKEND, "MPI: %s failed: %s", what, text);
}

static int chunks(size_t bytes) { return (int)((bytes + CHUNK - 1) / CHUNK); }

static stile_status mpi_exchange_start(void *ctx, const stile_comm_msg *sends, int nsends, const stile_comm_msg *recvs, int nrecvs,
                                       void *stream, void **pending)
{
    (void)stream;
    const mpi_ctx *c = ctx;
    int n = 0;
    for (int i = 0; i < nsends; i++) n += chunks(sends[i].bytes);
    for (int i = 0; i < nrecvs; i++) n += chunks(recvs[i].bytes);
    mpi_pending *p = malloc(sizeof *p + (size_t)(n ? n : 1) * sizeof(MPI_Request));
    if (!p) return stile_report_error(STILE_ERR_OUT_OF_MEMORY, "MPI: out of memory for %d requests", n);
    p->n = 0;
    int rc = MPI_SUCCESS;
    for (int i = 0; i < nrecvs && rc == MPI_SUCCESS; i++)
        for (size_t off = 0; off < recvs[i].bytes && rc == MPI_SUCCESS; off += CHUNK) {
            const size_t len = recvs[i].bytes - off < CHUNK ? recvs[i].bytes - off : CHUNK;
            rc = MPI_Irecv((char *)recvs[i].data + off, (int)len, MPI_BYTE, recvs[i].peer, 0, c->comm, &p->req[p->n++]);
        }
    for (int i = 0; i < nsends && rc == MPI_SUCCESS; i++)
        for (size_t off = 0; off < sends[i].bytes && rc == MPI_SUCCESS; off += CHUNK) {
            const size_t len = sends[i].bytes - off < CHUNK ? sends[i].bytes - off : CHUNK;
            rc = MPI_Isend((char *)sends[i].data + off, (int)len, MPI_BYTE, sends[i].peer, 0, c->comm, &p->req[p->n++]);
        }
    if (rc != MPI_SUCCESS) {
        p->n--; /* the failed call left no request */
        for (int i = 0; i < p->n; i++) {
            MPI_Cancel(&p->req[i]);
            MPI_Request_free(&p->req[i]);
        }
        free(p);
        return mpi_fail(rc, "posting an exchange");
    }
    *pending = p;
    return STILE_OK;
}

static stile_status mpi_exchange_wait(void *ctx, void *pending, void *stream)
{
    (void)ctx;
    (void)stream;
    mpi_pending *p = pending;
    if (!p) return STILE_OK;
    const int rc = MPI_Waitall(p->n, p->req, MPI_STATUSES_IGNORE);
    free(p);
    return rc == MPI_SUCCESS ? STILE_OK : mpi_fail(rc, "MPI_Waitall");
}

static stile_status mpi_allreduce(void *ctx, float *data, size_t count, stile_comm_op op, void *stream)
{
    (void)stream;
    const mpi_ctx *c = ctx;
    for (size_t off = 0; off < count; off += CHUNK / sizeof(float)) {
        const size_t n = count - off < CHUNK / sizeof(float) ? count - off : CHUNK / sizeof(float);
        const int rc = MPI_Allreduce(MPI_IN_PLACE, data + off, (int)n, MPI_FLOAT, op == STILE_COMM_MAX ? MPI_MAX : MPI_SUM, c->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce");
    }
    return STILE_OK;
}

static void mpi_release(void *ctx)
{
    mpi_ctx *c = ctx;
    if (!c) return;
    MPI_Comm_free(&c->comm);
    free(c);
}

stile_status stile_comm_mpi(MPI_Comm comm, stile_comm *out)
{
    if (!out) return stile_report_error(STILE_ERR_NULL_ARGUMENT, "stile_comm_mpi: out is NULL");
    *out = (stile_comm){.struct_size = sizeof *out};
    int init = 0;
    MPI_Initialized(&init);
    if (!init) return stile_report_error(STILE_ERR_INVALID_ARGUMENT, "stile_comm_mpi: MPI is not initialized (MPI_Init first)");
    mpi_ctx *c = calloc(1, sizeof *c);
    if (!c) return stile_report_error(STILE_ERR_OUT_OF_MEMORY, "stile_comm_mpi: out of memory");
    int rc = MPI_Comm_dup(comm, &c->comm);
    if (rc != MPI_SUCCESS) {
        free(c);
        return mpi_fail(rc, "MPI_Comm_dup");
    }
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &out->rank);
    MPI_Comm_size(c->comm, &out->size);
    out->ctx = c;
    out->exchange_start = mpi_exchange_start;
    out->exchange_wait = mpi_exchange_wait;
    out->allreduce = mpi_allreduce;
    out->release = mpi_release;
    return STILE_OK;
}

/* The NCCL transport of distributed plans (include/stile/stile_nccl.h). */
#include <stdlib.h>

#include <cuda_runtime_api.h>

#include "stile/stile_nccl.h"

typedef struct nccl_ctx {
    ncclComm_t comm;
    int device;          /* the communicator's CUDA device, made current for every call */
    int owned;           /* made by stile_comm_nccl_init: destroyed on release */
    cudaStream_t stream; /* the exchanges' own stream (non-blocking: no implicit order with stream 0) */
} nccl_ctx;

static stile_status cuda_fail(cudaError_t e, const char *what)
{
    return stile_report_error(STILE_ERR_BACKEND, "NCCL transport: %s: %s", what, cudaGetErrorString(e));
}

static stile_status nccl_fail(ncclResult_t r, const char *what)
{
    return stile_report_error(STILE_ERR_BACKEND, "NCCL: %s failed: %s", what, ncclGetErrorString(r));
}

static stile_status nccl_exchange_start(void *ctx, const stile_comm_msg *sends, int nsends, const stile_comm_msg *recvs, int nrecvs,
                                        void *stream, void **pending)
{
    nccl_ctx *c = ctx;
    cudaEvent_t ready = NULL, done = NULL;
    cudaError_t e = cudaSetDevice(c->device);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&ready, cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
    /* the exchange reads what the caller's stream wrote before it */
    if (e == cudaSuccess) e = cudaEventRecord(ready, (cudaStream_t)stream);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(c->stream, ready, 0);
    if (e != cudaSuccess) {
        if (ready) cudaEventDestroy(ready);
        if (done) cudaEventDestroy(done);
        return cuda_fail(e, "ordering the exchange after the stream");
    }
    cudaEventDestroy(ready);
    ncclResult_t r = ncclGroupStart();
    for (int i = 0; i < nrecvs && r == ncclSuccess; i++) r = ncclRecv(recvs[i].data, recvs[i].bytes, ncclChar, recvs[i].peer, c->comm, c->stream);
    for (int i = 0; i < nsends && r == ncclSuccess; i++) r = ncclSend(sends[i].data, sends[i].bytes, ncclChar, sends[i].peer, c->comm, c->stream);
    const ncclResult_t g = ncclGroupEnd();
    if (r == ncclSuccess) r = g;
    if (r != ncclSuccess) {
        cudaEventDestroy(done);
        return nccl_fail(r, "posting an exchange");
    }
    if ((e = cudaEventRecord(done, c->stream)) != cudaSuccess) {
        cudaEventDestroy(done);
        return cuda_fail(e, "recording the exchange's end");
    }
    *pending = done;
    return STILE_OK;
}

static stile_status nccl_exchange_wait(void *ctx, void *pending, void *stream)
{
    const nccl_ctx *c = ctx;
    cudaEvent_t done = pending;
    if (!done) return STILE_OK;
    cudaError_t e = cudaSetDevice(c->device);
    if (e == cudaSuccess) e = stream ? cudaStreamWaitEvent((cudaStream_t)stream, done, 0) : cudaEventSynchronize(done);
    cudaEventDestroy(done); /* released once the work it marks completes */
    return e == cudaSuccess ? STILE_OK : cuda_fail(e, "waiting for an exchange");
}

static stile_status nccl_allreduce(void *ctx, float *data, size_t count, stile_comm_op op, void *stream)
{
    const nccl_ctx *c = ctx;
    const cudaError_t se = cudaSetDevice(c->device);
    if (se != cudaSuccess) return cuda_fail(se, "selecting the device");
    const ncclResult_t r = ncclAllReduce(data, data, count, ncclFloat, op == STILE_COMM_MAX ? ncclMax : ncclSum, c->comm, (cudaStream_t)stream);
    if (r != ncclSuccess) return nccl_fail(r, "ncclAllReduce");
    if (!stream) {
        const cudaError_t e = cudaStreamSynchronize(0);
        if (e != cudaSuccess) return cuda_fail(e, "waiting for an all-reduce");
    }
    return STILE_OK;
}

static void nccl_release(void *ctx)
{
    nccl_ctx *c = ctx;
    if (!c) return;
    if (c->stream) cudaStreamDestroy(c->stream);
    if (c->owned) ncclCommDestroy(c->comm);
    free(c);
}

static stile_status make(ncclComm_t comm, int owned, stile_comm *out)
{
    nccl_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        if (owned) ncclCommDestroy(comm);
        return stile_report_error(STILE_ERR_OUT_OF_MEMORY, "NCCL transport: out of memory");
    }
    c->comm = comm;
    c->owned = owned;
    ncclResult_t r = ncclCommUserRank(comm, &out->rank);
    if (r == ncclSuccess) r = ncclCommCount(comm, &out->size);
    if (r == ncclSuccess) r = ncclCommCuDevice(comm, &c->device);
    if (r != ncclSuccess) {
        nccl_release(c);
        return nccl_fail(r, "reading the communicator's rank and device");
    }
    cudaError_t e = cudaSetDevice(c->device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        c->stream = NULL;
        nccl_release(c);
        return cuda_fail(e, "creating the exchange stream");
    }
    out->ctx = c;
    out->exchange_start = nccl_exchange_start;
    out->exchange_wait = nccl_exchange_wait;
    out->allreduce = nccl_allreduce;
    out->release = nccl_release;
    return STILE_OK;
}

stile_status stile_comm_nccl(ncclComm_t comm, stile_comm *out)
{
    if (!out) return stile_report_error(STILE_ERR_NULL_ARGUMENT, "stile_comm_nccl: out is NULL");
    *out = (stile_comm){.struct_size = sizeof *out};
    if (!comm) return stile_report_error(STILE_ERR_NULL_ARGUMENT, "stile_comm_nccl: comm is NULL");
    return make(comm, 0, out);
}

stile_status stile_comm_nccl_init(int nranks, const ncclUniqueId *id, int rank, int cuda_device, stile_comm *out)
{
    if (!out) return stile_report_error(STILE_ERR_NULL_ARGUMENT, "stile_comm_nccl_init: out is NULL");
    *out = (stile_comm){.struct_size = sizeof *out};
    if (!id) return stile_report_error(STILE_ERR_NULL_ARGUMENT, "stile_comm_nccl_init: id is NULL");
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return stile_report_error(STILE_ERR_INVALID_ARGUMENT, "stile_comm_nccl_init: rank %d of %d", rank, nranks);
    const cudaError_t e = cudaSetDevice(cuda_device);
    if (e != cudaSuccess) return cuda_fail(e, "selecting the communicator's device");
    ncclComm_t comm = NULL;
    const ncclResult_t r = ncclCommInitRank(&comm, nranks, *id, rank);
    if (r != ncclSuccess) return nccl_fail(r, "ncclCommInitRank");
    return make(comm, 1, out);
}

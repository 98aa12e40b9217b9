/* stile_nccl.h: an NCCL transport for distributed plans (stile_dist.h) of CUDA devices, in
 * libstile_nccl. Halo exchanges run on a stream of the adapter's own, ordered after the caller's stream
 * by events, so the query tiles that need no halo compute meanwhile. */
#ifndef STILE_NCCL_H
#define STILE_NCCL_H

#include <nccl.h>

#include "stile/stile_dist.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Fill *out with a transport over the caller's communicator (e.g. from torch.distributed): its stream
 * and every call on the communicator's CUDA device (ncclCommCuDevice). The communicator stays the
 * caller's (stile_comm_free leaves it). Exchanges are ncclSend/ncclRecv in one group; messages
 * between two ranks match in the order posted. Thread-safety: as NCCL. */
STILE_API stile_status stile_comm_nccl(ncclComm_t comm, stile_comm *out);

/** The same over a communicator stile makes on CUDA device cuda_device (ncclCommInitRank: every rank
 * calls this with the same id, from ncclGetUniqueId on one rank, and its own rank) and destroys in
 * stile_comm_free. */
STILE_API stile_status stile_comm_nccl_init(int nranks, const ncclUniqueId *id, int rank, int cuda_device, stile_comm *out);

#ifdef __cplusplus
}
#endif

#endif /* STILE_NCCL_H */

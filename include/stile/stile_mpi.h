/* stile_mpi.h: an MPI transport for distributed plans (stile_dist.h), in libstile_mpi: ranks whose
 * tensors live in host memory (the CPU device; or GPU memory where the MPI is CUDA-aware). */
#ifndef STILE_MPI_H
#define STILE_MPI_H

#include <mpi.h>

#include "stile/stile_dist.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Fill *out with a transport over comm's ranks: comm is duplicated (MPI_Comm_dup, a collective call:
 * every rank of comm makes it), so stile's messages never match the application's; stile_comm_free
 * frees the duplicate. Exchanges are nonblocking sends and receives (MPI_Isend, MPI_Irecv) completed
 * by exchange_wait (MPI_Waitall); messages between two ranks match in the order posted.
 * Thread-safety: as MPI at the thread level the application initialized. */
STILE_API stile_status stile_comm_mpi(MPI_Comm comm, stile_comm *out);

#ifdef __cplusplus
}
#endif

#endif /* STILE_MPI_H */

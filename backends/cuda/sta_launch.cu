/* The STA launcher behind the extern "C" interface of sta_kernel.h: which kernel can run a problem
 * (eligibility) and the launches, forward and backward, on the caller's stream (dispatch to the kernel objects declared in
 * sta_paths.cuh). Host code only; HIP builds it too (-DSTILE_HIP), where the portable kernel is all
 * there is. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sta_paths.cuh"

extern "C" int stile_gpu_mma_eligible(const sta_params *p, int cc)
{
#ifdef STILE_HIP
    (void)p;
    (void)cc;
    return 0; /* no mma.sync/ldmatrix/cp.async on AMD: the portable path (docs/backends.md) */
#else
    if (cc < 80 || (p->dtype != DT_F16 && p->dtype != DT_BF16) || (p->head_dim != 64 && p->head_dim != 128)) return 0;
    const long long *st[4] = {p->sq, p->sk, p->sv, p->so};
    const void *ptr[4] = {p->q, p->k, p->v, p->o};
    for (int i = 0; i < 4; i++) {
        if (st[i][3] != 1 || st[i][0] % 8 || st[i][1] % 8 || st[i][2] % 8) return 0; /* 16-byte rows */
        if ((uintptr_t)ptr[i] % 16) return 0;
    }
    return 1;
#endif
}

extern "C" int stile_gpu_path_select(const sta_params *p, int cc)
{
    const char *force = getenv("STILE_CUDA_PATH");
    if ((force && strcmp(force, "portable") == 0) || !stile_gpu_mma_eligible(p, cc)) return STA_PATH_SCALAR;
#if !defined(STILE_HIP) && defined(STILE_HAVE_SM90)
    if (!(force && strcmp(force, "mma") == 0) && STA_KERNELS::sm90_eligible(p, cc)) return STA_PATH_HOPPER;
#endif
    return STA_PATH_MMA;
}

extern "C" const char *stile_gpu_path_name(int path)
{
    return path == STA_PATH_HOPPER ? "wgmma+tma (sm_90a)" : path == STA_PATH_MMA ? "mma.sync" : "portable";
}

extern "C" int stile_gpu_sta_launch(const sta_params *p, int *path_io, void *stream, char *err, size_t err_size)
{
    int path = *path_io;
#if !defined(STILE_HIP) && defined(STILE_HAVE_SM90)
    if (path == STA_PATH_HOPPER) {
        const int rc = STA_KERNELS::sm90_launch(p, (gpuStream_t)stream, err, err_size);
        if (rc >= 0) return rc;
        path = STA_PATH_MMA; /* no tensor-map support from this driver: the sm_80 kernel (err says why) */
    }
#endif
    if (path == STA_PATH_HOPPER) path = STA_PATH_MMA;
    *path_io = path;
    const dim3 grid((unsigned)p->nblocks, (unsigned)p->heads, (unsigned)p->batch); /* query blocks x heads x batch */
    const gpuStream_t s = (gpuStream_t)stream;
    gpuError_t e;
    switch (path) {
#ifndef STILE_HIP
    case STA_PATH_MMA:
        e = STA_KERNELS::sm80_launch(p, grid, s);
        break;
#endif
    default:
        e = STA_KERNELS::scalar_launch(p, grid, s);
        break;
    }
    if (e != gpuSuccess) {
        snprintf(err, err_size, "%s", gpuGetErrorString(e));
        return (int)e;
    }
    return 0;
}

extern "C" int stile_gpu_backward_path(const sta_bwd_params *p, int cc, size_t smem_optin)
{
    const char *force = getenv("STILE_CUDA_PATH");
    if ((force && strcmp(force, "portable") == 0) || !stile_gpu_mma_eligible(&p->f, cc)) return STA_PATH_SCALAR;
    const void *grads[4] = {p->d_o, p->d_q, p->d_k, p->d_v};
    for (int i = 0; i < 4; i++)
        if ((uintptr_t)grads[i] % 16) return STA_PATH_SCALAR;
#ifndef STILE_HIP
#ifdef STILE_HAVE_SM90
    if (cc == 90 && !(force && strcmp(force, "mma") == 0) && STA_KERNELS::bwd_sm90_smem(p->f.head_dim) <= smem_optin)
        return STA_PATH_HOPPER;
#endif
    /* 128 KiB at head dim 128: more than the 99 KiB per block of sm_86/89/120, which take the portable kernels */
    if (STA_KERNELS::bwd_sm80_smem(p->f.head_dim) <= smem_optin) return STA_PATH_MMA;
#endif
    (void)smem_optin;
    return STA_PATH_SCALAR;
}

extern "C" int stile_gpu_sta_backward(const sta_bwd_params *p, int path, void *stream, char *err, size_t err_size)
{
    const dim3 grid((unsigned)p->f.nblocks, (unsigned)p->f.heads, (unsigned)p->f.batch); /* query (= key) blocks x heads x batch */
    const gpuStream_t s = (gpuStream_t)stream;
#ifndef STILE_HIP
    gpuError_t e;
#ifdef STILE_HAVE_SM90
    if (path == STA_PATH_HOPPER) e = STA_KERNELS::bwd_sm90_launch(p, grid, s);
    else
#endif
        e = path == STA_PATH_MMA ? STA_KERNELS::bwd_sm80_launch(p, grid, s) : STA_KERNELS::bwd_scalar_launch(p, grid, s);
#else
    (void)path;
    const gpuError_t e = STA_KERNELS::bwd_scalar_launch(p, grid, s);
#endif
    if (e != gpuSuccess) {
        snprintf(err, err_size, "%s", gpuGetErrorString(e));
        return (int)e;
    }
    return 0;
}

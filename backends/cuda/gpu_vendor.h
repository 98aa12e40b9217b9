/* The one vendor header: CUDA and HIP names behind gpu* aliases, so the host code and the kernels
 * are written once and built by nvcc for NVIDIA or by hipcc for AMD (-DSTILE_HIP). */
#ifndef STILE_GPU_VENDOR_H
#define STILE_GPU_VENDOR_H

#ifdef STILE_HIP
#include <hip/hip_runtime_api.h>
#define STILE_GPU_NAME "hip"
typedef hipError_t gpuError_t;
typedef hipStream_t gpuStream_t;
typedef hipDeviceProp_t gpuDeviceProp;
#define gpuSuccess hipSuccess
#define gpuErrorMemoryAllocation hipErrorOutOfMemory
#define gpuErrorNotSupported hipErrorNotSupported
/* errors after which the context is unusable: the device counts as lost */
#define gpuErrorIsFatal(e) ((e) == hipErrorIllegalAddress || (e) == hipErrorLaunchFailure)
#define gpuGetDeviceCount hipGetDeviceCount
#define gpuSetDevice hipSetDevice
#define gpuGetDevice hipGetDevice
#define gpuGetDeviceProperties hipGetDeviceProperties
#define gpuDriverGetVersion hipDriverGetVersion
#define gpuRuntimeGetVersion hipRuntimeGetVersion
#define gpuMalloc hipMalloc
#define gpuFree hipFree
#define gpuMemcpy hipMemcpy
#define gpuMemcpyHostToDevice hipMemcpyHostToDevice
#define gpuMemcpyDeviceToHost hipMemcpyDeviceToHost
#define gpuStreamSynchronize hipStreamSynchronize
#define gpuMallocAsync hipMallocAsync
#define gpuFreeAsync hipFreeAsync
#define gpuMemsetAsync hipMemsetAsync
#define gpuGetLastError hipGetLastError
#define gpuGetErrorString hipGetErrorString
#define gpuFuncSetAttribute hipFuncSetAttribute
#define gpuFuncAttributeMaxDynamicSharedMemorySize hipFuncAttributeMaxDynamicSharedMemorySize
#else
#include <cuda_runtime_api.h>
#define STILE_GPU_NAME "cuda"
typedef cudaError_t gpuError_t;
typedef cudaStream_t gpuStream_t;
typedef struct cudaDeviceProp gpuDeviceProp;
#define gpuSuccess cudaSuccess
#define gpuErrorMemoryAllocation cudaErrorMemoryAllocation
#define gpuErrorNotSupported cudaErrorNotSupported
/* errors after which the context is unusable (sticky): the device counts as lost */
#define gpuErrorIsFatal(e)                                                                                                   \
    ((e) == cudaErrorIllegalAddress || (e) == cudaErrorLaunchFailure || (e) == cudaErrorHardwareStackError ||             \
     (e) == cudaErrorIllegalInstruction || (e) == cudaErrorMisalignedAddress || (e) == cudaErrorInvalidPc ||               \
     (e) == cudaErrorECCUncorrectable || (e) == cudaErrorLaunchTimeout)
#define gpuGetDeviceCount cudaGetDeviceCount
#define gpuSetDevice cudaSetDevice
#define gpuGetDevice cudaGetDevice
#define gpuGetDeviceProperties cudaGetDeviceProperties
#define gpuDriverGetVersion cudaDriverGetVersion
#define gpuRuntimeGetVersion cudaRuntimeGetVersion
#define gpuMalloc cudaMalloc
#define gpuFree cudaFree
#define gpuMemcpy cudaMemcpy
#define gpuMemcpyHostToDevice cudaMemcpyHostToDevice
#define gpuMemcpyDeviceToHost cudaMemcpyDeviceToHost
#define gpuStreamSynchronize cudaStreamSynchronize
#define gpuMallocAsync cudaMallocAsync
#define gpuFreeAsync cudaFreeAsync
#define gpuMemsetAsync cudaMemsetAsync
#define gpuGetLastError cudaGetLastError
#define gpuGetErrorString cudaGetErrorString
#define gpuFuncSetAttribute cudaFuncSetAttribute
#define gpuFuncAttributeMaxDynamicSharedMemorySize cudaFuncAttributeMaxDynamicSharedMemorySize
#endif

#endif

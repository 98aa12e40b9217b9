/* Device code of regions of the forward's queries (sta_params' run and hold boxes; distributed plans),
 * shared by the kernels that walk the schedule table (sta_schedule.cuh) and the Hopper kernel, with
 * internal linkage as the rest. */
#ifndef STILE_STA_REGION_CUH
#define STILE_STA_REGION_CUH

#include "sta_paths.cuh"

namespace {

/* Whether tile `tile` lies in the box [lo, hi). */
__device__ __forceinline__ bool tile_in(const sta_params &p, int tile, const int *lo, const int *hi)
{
    const int c[3] = {tile / (p.grid[1] * p.grid[2]), (tile / p.grid[2]) % p.grid[1], tile % p.grid[2]};
    return c[0] >= lo[0] && c[0] < hi[0] && c[1] >= lo[1] && c[1] < hi[1] && c[2] >= lo[2] && c[2] < hi[2];
}

/* The tiles a text query block attends (the hold box: the whole grid but in a region), and the i-th of them. */
__device__ __forceinline__ int hold_count(const sta_params &p)
{
    return (p.hold_hi[0] - p.hold_lo[0]) * (p.hold_hi[1] - p.hold_lo[1]) * (p.hold_hi[2] - p.hold_lo[2]);
}
__device__ __forceinline__ int hold_tile(const sta_params &p, int i)
{
    const int e1 = p.hold_hi[1] - p.hold_lo[1], e2 = p.hold_hi[2] - p.hold_lo[2];
    return ((p.hold_lo[0] + i / (e1 * e2)) * p.grid[1] + p.hold_lo[1] + (i / e2) % e1) * p.grid[2] + p.hold_lo[2] + i % e2;
}

/* The video query tiles a region computes (the run box: the whole grid but in a region), and the i-th of
 * them in raster order: a persistent kernel walks these alone, so its CTAs share only real work. */
__device__ __host__ __forceinline__ int run_count(const sta_params &p)
{
    return (p.run_hi[0] - p.run_lo[0]) * (p.run_hi[1] - p.run_lo[1]) * (p.run_hi[2] - p.run_lo[2]);
}
__device__ __forceinline__ int run_tile(const sta_params &p, int i)
{
    const int e1 = p.run_hi[1] - p.run_lo[1], e2 = p.run_hi[2] - p.run_lo[2];
    return ((p.run_lo[0] + i / (e1 * e2)) * p.grid[1] + p.run_lo[1] + (i / e2) % e1) * p.grid[2] + p.run_lo[2] + i % e2;
}

} /* namespace */

#endif

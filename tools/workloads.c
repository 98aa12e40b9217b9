/* Named benchmark workloads (see workloads.h). Canvases are the latent token grids of each model at
 * that resolution (after VAE compression and 1x2x2 patching); all use the STA paper's 6x8x8 tile and
 * 3x3x3 window, so canvases that do not divide give partial edge tiles. */
#include <string.h>

#include "workloads.h"

const workload workloads[] = {
    {"hunyuan-720p", "HunyuanVideo 720p, 129 frames: 30x48x80 = 115,200 tokens, 24 heads", {30, 48, 80}, {6, 8, 8}, {3, 3, 3}, 24, 128, 0,
     STILE_DTYPE_BF16},
    {"wan-480p", "Wan 2.1 14B 480p, 81 frames: 21x30x52 = 32,760 tokens, 40 heads", {21, 30, 52}, {6, 8, 8}, {3, 3, 3}, 40, 128, 0,
     STILE_DTYPE_BF16},
    {"wan-720p", "Wan 2.1 14B 720p, 81 frames: 21x45x80 = 75,600 tokens, 40 heads", {21, 45, 80}, {6, 8, 8}, {3, 3, 3}, 40, 128, 0,
     STILE_DTYPE_BF16},
    {"stepvideo", "Step-Video-T2V 544x992, 204 frames: 26x34x62 = 54,808 tokens, 48 heads", {26, 34, 62}, {6, 8, 8}, {3, 3, 3}, 48,
     128, 0, STILE_DTYPE_BF16},
    {"cpu-small", "18x32x48 = 27,648 tokens, 2 heads, f32: sized for a 2-core CPU (62.5% sparse)", {18, 32, 48}, {6, 8, 8}, {3, 3, 3}, 2,
     128, 0, STILE_DTYPE_F32},
};
const int nworkloads = (int)(sizeof workloads / sizeof workloads[0]);

const workload *workload_find(const char *name)
{
    for (int i = 0; i < nworkloads; i++)
        if (strcmp(workloads[i].name, name) == 0) return &workloads[i];
    return NULL;
}

stile_problem workload_problem(const workload *w)
{
    stile_problem p = {.struct_size = sizeof p, .batch = 1, .heads = w->heads, .head_dim = w->head_dim, .text = w->text, .dtype = w->dtype};
    memcpy(p.canvas, w->canvas, sizeof p.canvas);
    memcpy(p.tile, w->tile, sizeof p.tile);
    memcpy(p.window, w->window, sizeof p.window);
    return p;
}

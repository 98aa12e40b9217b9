/* The device schedule table: the block schedule flattened for GPU kernels (core/plan.c builds it, the
 * backends upload it as one buffer per plan). The one description of its layout, read by C (core and
 * the host code), C++ (nvcc, hipcc: #include "schedule_table.h") and GLSL (glslc -I core with
 * GL_GOOGLE_include_directive), so it holds #define constants only, plus C types outside GLSL. */
#ifndef STILE_SCHEDULE_TABLE_H
#define STILE_SCHEDULE_TABLE_H

/* ---- query blocks ----
 * Each tile's query rows (in tiled order) are cut into blocks of at most the plan's block rows, tile
 * after tile, then the text tokens likewise; one thread block or workgroup runs one query block.
 * A block is a record of STILE_BLOCK_INTS ints: */
#define STILE_BLOCK_INTS 4
#define STILE_BLOCK_TILE 0  /* its query tile, or STILE_BLOCK_TEXT for text tokens */
#define STILE_BLOCK_ROW 1   /* its first row inside the tile (0 for text) */
#define STILE_BLOCK_NROWS 2 /* rows: 1 .. the plan's block rows */
#define STILE_BLOCK_TOKEN 3 /* tiled-order token of its first row (text: video + offset) */
#define STILE_BLOCK_TEXT (-1)

/* Block rows each kernel is written for; the host plans with them. */
#define STILE_BLOCK_ROWS_GPU 128         /* CUDA and HIP: the portable kernel's threads, the mma kernel's 4 warps x 32 rows */
#define STILE_BLOCK_ROWS_VK_COOPMAT 64   /* Vulkan tensor-core shader (KHR): 4 subgroups x 16 rows */
#define STILE_BLOCK_ROWS_VK_COOPMAT2 128 /* Vulkan NV cooperative-matrix-2 shader: 128 x 64 workgroup matrices */
#define STILE_BLOCK_ROWS_VK_PORTABLE 16  /* Vulkan portable shader (any size works: a specialization constant) */

/* ---- the arrays, in this order in the buffer (offsets: stile_sched_table below, or the Vulkan header) ----
 *   tile_start  tiles + 1            first tiled-order token of each tile (CUDA/HIP 64-bit, Vulkan 32-bit)
 *   row_start   schedules x (tiles + 1)  each distinct window's CSR rows; values index key_tiles
 *   head_row    heads                per head: its schedule's first row; values index row_start
 *   key_tiles   the key tiles of all rows, ascending within a row
 *   blocks      STILE_BLOCK_INTS per query block
 *   query_start schedules x (tiles + 1)  the transposed schedules' CSR rows; values index query_tiles
 *   query_tiles the query tiles of all transposed rows, ascending within a row
 * Query tile t of head h attends key_tiles[row_start[r] .. row_start[r + 1]) with r = head_row[h] + t,
 * then the valid text tokens; a text block attends every tile, then the valid text tokens. Key tile t
 * of head h is attended by query_tiles[query_start[r] .. query_start[r + 1]) with the same r (each
 * schedule has tiles + 1 rows in both arrays), and by every text query (the backward's dK and dV). */

/* ---- Vulkan: the buffer starts with a header of STILE_TAB_HEADER_INTS ints (the problem, then the
 * arrays' offsets in ints), the shaders' only source of sizes and strides ---- */
#define STILE_TAB_BATCH 0
#define STILE_TAB_HEADS 1
#define STILE_TAB_HEAD_DIM 2
#define STILE_TAB_DTYPE 3
#define STILE_TAB_CANVAS 4  /* 3 ints: t, h, w */
#define STILE_TAB_TILE 7    /* 3 ints */
#define STILE_TAB_GRID 10   /* 3 ints */
#define STILE_TAB_TILES 13
#define STILE_TAB_VIDEO 14
#define STILE_TAB_TOKENS 15
#define STILE_TAB_TEXT_VALID 16
#define STILE_TAB_TILED 17  /* tensors in tiled order */
#define STILE_TAB_SCALE 18  /* the bits of the f32 softmax scale * log2(e) */
#define STILE_TAB_SQ 19     /* 4 ints each: element strides of batch, token, head, dim */
#define STILE_TAB_SK 23
#define STILE_TAB_SV 27
#define STILE_TAB_SO 31
#define STILE_TAB_TILE_START 35 /* offsets of the arrays, in ints from the start of the buffer */
#define STILE_TAB_ROW_START 36
#define STILE_TAB_HEAD_ROW 37
#define STILE_TAB_KEY_TILES 38
#define STILE_TAB_BLOCKS 39
#define STILE_TAB_QUERY_START 40
#define STILE_TAB_QUERY_TILES 41
/* caller-chosen key tiles (key_tiles_k > 0; else KT_K is 0 and the rest unused): a region of the table
 * that each execution first fills from the caller's lists (shaders/sta_key_tiles.comp), then walks:
 * query tile t of (batch b, head h) is row r = (b * heads + h) * tiles + t, its KT_COUNT[r] distinct
 * tiles ascending at KT_ROWS + r * k; key tile t of (b, h) is attended by the query tiles
 * tab[KT_QSTART[s] .. KT_QSTART[s + 1]) with s = (b * heads + h) * (tiles + 1) + t (absolute indices);
 * KT_BAD counts the entries skipped as out of range */
#define STILE_TAB_KT_K 42
#define STILE_TAB_KT_ROWS 43
#define STILE_TAB_KT_COUNT 44
#define STILE_TAB_KT_QSTART 45
#define STILE_TAB_KT_QTILES 46
#define STILE_TAB_KT_BAD 47
/* the most tiles a plan with caller-chosen key tiles may have: sta_key_tiles.comp keeps a row's set as
 * a bitmap of STILE_TAB_KT_MAX_TILES / 32 words (16 KiB) in shared memory */
#define STILE_TAB_KT_MAX_TILES 131072
#define STILE_TAB_HEADER_INTS 48

#ifndef GL_core_profile /* C and C++ */
#include <stddef.h>

/* Where the arrays lie in a packed table (stile_sched_table_pack), in bytes from its start. */
typedef struct stile_sched_table {
    size_t tile_start, row_start, head_row, key_tiles, blocks, query_start, query_tiles, bytes;
    int nblocks;
} stile_sched_table;
#endif

#endif

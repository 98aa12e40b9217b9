// Where a tile's rows are (included by every STA shader after its schedule-table binding tab[]): the
// tile's grid coordinate, the token of its row r (tiled order: consecutive from its first token;
// natural order: row-major inside the tile's extent, clipped at the canvas), and its row count.
// Read from the table header (core/schedule_table.h), as the CUDA kernels read stile_tile_layout.

ivec3 tile_coord(int tile)
{
    int g1 = tab[STILE_TAB_GRID + 1], g2 = tab[STILE_TAB_GRID + 2];
    return ivec3(tile / (g1 * g2), (tile / g2) % g1, tile % g2);
}

int tile_token(int tile, int r)
{
    if (tab[STILE_TAB_TILED] != 0) return tab[tab[STILE_TAB_TILE_START] + tile] + r;
    ivec3 c = tile_coord(tile);
    ivec3 org = c * ivec3(tab[STILE_TAB_TILE], tab[STILE_TAB_TILE + 1], tab[STILE_TAB_TILE + 2]);
    ivec3 ext = min(ivec3(tab[STILE_TAB_TILE], tab[STILE_TAB_TILE + 1], tab[STILE_TAB_TILE + 2]),
                    ivec3(tab[STILE_TAB_CANVAS], tab[STILE_TAB_CANVAS + 1], tab[STILE_TAB_CANVAS + 2]) - org);
    int e12 = ext.y * ext.z, lt = r / e12, rem = r - lt * e12, lh = rem / ext.z, lw = rem - lh * ext.z;
    return ((org.x + lt) * tab[STILE_TAB_CANVAS + 1] + org.y + lh) * tab[STILE_TAB_CANVAS + 2] + org.z + lw;
}

int tile_size(int tile)
{
    ivec3 org = tile_coord(tile) * ivec3(tab[STILE_TAB_TILE], tab[STILE_TAB_TILE + 1], tab[STILE_TAB_TILE + 2]);
    ivec3 ext = min(ivec3(tab[STILE_TAB_TILE], tab[STILE_TAB_TILE + 1], tab[STILE_TAB_TILE + 2]),
                    ivec3(tab[STILE_TAB_CANVAS], tab[STILE_TAB_CANVAS + 1], tab[STILE_TAB_CANVAS + 2]) - org);
    return ext.x * ext.y * ext.z;
}

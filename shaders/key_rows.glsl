// Where a query tile's key tiles (and, for the backward, a key tile's query tiles) are in tab[]: the
// plan's schedule rows, or the rows an execution made from the caller's lists (STILE_TAB_KT_*,
// sta_key_tiles.comp). The tiles are tab[first + i] for i < n. Included after tab[] is declared.

void key_row(const int b, const int h, const int qtile, out int first, out int n)
{
    if (tab[STILE_TAB_KT_K] > 0) {
        const int r = (b * tab[STILE_TAB_HEADS] + h) * tab[STILE_TAB_TILES] + qtile;
        first = tab[STILE_TAB_KT_ROWS] + r * tab[STILE_TAB_KT_K];
        n = tab[tab[STILE_TAB_KT_COUNT] + r];
    } else {
        const int rr = tab[STILE_TAB_ROW_START] + tab[tab[STILE_TAB_HEAD_ROW] + h] + qtile; // this head's row of qtile
        first = tab[STILE_TAB_KEY_TILES] + tab[rr];
        n = tab[rr + 1] - tab[rr];
    }
}

void query_row(const int b, const int h, const int ktile, out int first, out int n)
{
    if (tab[STILE_TAB_KT_K] > 0) {
        const int s = tab[STILE_TAB_KT_QSTART] + (b * tab[STILE_TAB_HEADS] + h) * (tab[STILE_TAB_TILES] + 1) + ktile;
        first = tab[s];
        n = tab[s + 1] - tab[s];
    } else {
        const int rr = tab[STILE_TAB_QUERY_START] + tab[tab[STILE_TAB_HEAD_ROW] + h] + ktile;
        first = tab[STILE_TAB_QUERY_TILES] + tab[rr];
        n = tab[rr + 1] - tab[rr];
    }
}

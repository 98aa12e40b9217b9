#!/usr/bin/env python3
"""Draws docs/window-corner.svg: one t-slice of a tile grid with two query tiles and their windows,
one in the middle and one at the corner, where the window is clamped to stay inside the grid."""

NH, NW, CELL, PAD = 6, 10, 34, 30
WH, WW = 3, 5  # window in tiles (h, w)


def start(q, w, n):
    if w >= n:
        return 0
    return min(max(q - w // 2, 0), n - w)


def window(qh, qw):
    sh, sw = start(qh, WH, NH), start(qw, WW, NW)
    return {(h, w) for h in range(sh, sh + WH) for w in range(sw, sw + WW)}


def main():
    panels = [("query tile in the middle: window centred", (2, 5)),
              ("query tile at the corner: window clamped inside", (0, 0))]
    width = 2 * (NW * CELL + 2 * PAD)
    height = NH * CELL + 2 * PAD + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">',
           '<rect width="100%" height="100%" fill="white"/>']
    for i, (title, (qh, qw)) in enumerate(panels):
        ox, oy = i * (NW * CELL + 2 * PAD) + PAD, PAD + 20
        out.append(f'<text x="{ox}" y="{PAD}">{title}</text>')
        win = window(qh, qw)
        for h in range(NH):
            for w in range(NW):
                fill = "#d62728" if (h, w) == (qh, qw) else "#9ecae1" if (h, w) in win else "#f0f0f0"
                out.append(f'<rect x="{ox + w * CELL}" y="{oy + h * CELL}" width="{CELL - 2}" height="{CELL - 2}" fill="{fill}"/>')
    out.append(f'<text x="{PAD}" y="{PAD + 20 + NH * CELL + 22}">one t-slice of a grid of {NH}x{NW} tiles (h x w), '
               f'window {WH}x{WW} tiles; red: the query tile, blue: the key tiles it attends</text>')
    out.append('</svg>')
    print("\n".join(out))


if __name__ == "__main__":
    main()

"""Power curves as PNG (rasterised with numpy, encoded by :mod:`aslmig.reports.png`) and SVG.

No plotting library: lines are drawn by dense sampling, text with a 5x7 bitmap font.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

from aslmig.reports.png import encode_png

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
_GLYPHS = {
    "0": ".###.#...##..###.#.###..##...#.###.",
    "1": "..#...##....#....#....#....#...###.",
    "2": ".###.#...#....#...#...#...#...#####",
    "3": "#####...#...#.....#.....##...#.###.",
    "4": "...#...##..#.#.#..#.#####...#....#.",
    "5": "######....####.....#....##...#.###.",
    "6": "..##..#...#....####.#...##...#.###.",
    "7": "#####....#...#...#...#....#....#...",
    "8": ".###.#...##...#.###.#...##...#.###.",
    "9": ".###.#...##...#.####....#...#..##..",
    ".": "..........................##...##..",
    ",": ".....................##....#...#...",
    "-": "...............#####...............",
    "+": ".......#....#..#####..#....#.......",
    "%": "##...##..#...#...#...#...#..##...##",
    "=": "..........#####.....#####..........",
    ":": "......##...##........##...##.......",
    "(": "...#...#...#....#....#.....#.....#.",
    ")": ".#.....#.....#....#....#...#...#...",
    "/": ".........#...#...#...#...#.........",
    " ": "...................................",
    "a": "...........###.....#.#####...#.####",
    "b": "#....#....#.##.##..##...##...#####.",
    "c": "...........###.#....#....#...#.###.",
    "d": "....#....#.##.##..###...##...#.####",
    "e": "...........###.#...#######.....###.",
    "f": "..##..#..#.#...###...#....#....#...",
    "g": "...........#####...#.####....#.###.",
    "h": "#....#....#.##.##..##...##...##...#",
    "i": "..#........##....#....#....#...###.",
    "j": "...#........##....#....#.#..#..##..",
    "k": "#....#....#..#.#.#..##...#.#..#..#.",
    "l": ".##....#....#....#....#....#...###.",
    "m": "..........##.#.#.#.##.#.##...##...#",
    "n": "..........#.##.##..##...##...##...#",
    "o": "...........###.#...##...##...#.###.",
    "p": "..........####.#...#####.#....#....",
    "q": "...........#####...#.####....#....#",
    "r": "..........#.##.##..##....#....#....",
    "s": "...........#####.....###.....#####.",
    "t": ".#....#...###...#....#....#..#..##.",
    "u": "..........#...##...##...##..##.##.#",
    "v": "..........#...##...##...#.#.#...#..",
    "w": "..........#...##...##.#.##.#.#.#.#.",
    "x": "..........#...#.#.#...#...#.#.#...#",
    "y": "..........#...##...#.####....#.###.",
    "z": "..........#####...#...#...#...#####",
}


def _glyph(char: str) -> np.ndarray:
    pattern = _GLYPHS.get(char.lower(), _GLYPHS[" "])
    return np.array([c == "#" for c in pattern], bool).reshape(7, 5)


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], np.uint8)


class Canvas:
    """An RGB pixel canvas with lines, rectangles and bitmap text.

    Parameters
    ----------
    width, height : int
        Size in pixels.
    """

    def __init__(self, width: int, height: int) -> None:
        self.pixels = np.full((height, width, 3), 255, np.uint8)

    def rectangle(self, x0: float, y0: float, x1: float, y1: float, colour: str) -> None:
        """Fill the rectangle with corners (x0, y0) and (x1, y1)."""
        h, w, _ = self.pixels.shape
        xa, xb = sorted((int(round(x0)), int(round(x1))))
        ya, yb = sorted((int(round(y0)), int(round(y1))))
        self.pixels[max(ya, 0) : min(yb + 1, h), max(xa, 0) : min(xb + 1, w)] = _rgb(colour)

    def line(
        self, points: Sequence[tuple[float, float]], colour: str, width: int = 1, dash: int = 0
    ) -> None:
        """Draw a polyline ``width`` pixels thick (dashed every ``dash`` pixels if > 0)."""
        h, w, _ = self.pixels.shape
        for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True):
            length = max(abs(x1 - x0), abs(y1 - y0), 1.0)
            t = np.linspace(0.0, 1.0, int(2 * length) + 1)
            if dash:
                t = t[(np.floor(t * length / dash) % 2) == 0]
            xs, ys = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            for dx in range(-(width // 2), width - width // 2):
                for dy in range(-(width // 2), width - width // 2):
                    xi = np.clip(np.round(xs + dx).astype(int), 0, w - 1)
                    yi = np.clip(np.round(ys + dy).astype(int), 0, h - 1)
                    self.pixels[yi, xi] = _rgb(colour)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        colour: str = "#000000",
        scale: int = 2,
        anchor: str = "left",
        vertical: bool = False,
    ) -> None:
        """Write ``text`` with its top-left (or centre/right, by ``anchor``) at (x, y)."""
        if not text:
            return
        glyphs = [np.kron(_glyph(c), np.ones((scale, scale), bool)) for c in text]
        gap = np.zeros((7 * scale, scale), bool)
        bitmap = np.hstack([part for g in glyphs for part in (g, gap)][:-1])
        if vertical:
            bitmap = np.rot90(bitmap)
        height, width = bitmap.shape
        shift = {"left": 0, "centre": width / 2, "right": width}[anchor]
        left, top = int(round(x - shift)), int(round(y - (height / 2 if vertical else 0)))
        h, w, _ = self.pixels.shape
        ys, xs = np.nonzero(bitmap)
        ys, xs = ys + top, xs + left
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        self.pixels[ys[inside], xs[inside]] = _rgb(colour)

    def png(self) -> bytes:
        """Return the canvas as PNG bytes."""
        return encode_png(self.pixels)


def _panel(canvas: Canvas, box, title, x_values, series, x_label) -> None:
    left, top, right, bottom = box
    x_low, x_high = min(x_values), max(x_values)
    span = (x_high - x_low) or 1.0

    def sx(x: float) -> float:
        return left + (x - x_low) / span * (right - left)

    def sy(y: float) -> float:
        return bottom - y * (bottom - top)

    for tick in np.linspace(0.0, 1.0, 6):
        canvas.line([(left, sy(tick)), (right, sy(tick))], "#e0e0e0")
        canvas.text(left - 8, sy(tick) - 7, f"{tick:.1f}", anchor="right")
    canvas.line([(left, sy(0.8)), (right, sy(0.8))], "#808080", dash=6)
    for x in x_values:
        canvas.line([(sx(x), bottom), (sx(x), bottom + 5)], "#000000")
        canvas.text(sx(x), bottom + 10, str(x), anchor="centre")
    canvas.line([(left, top), (left, bottom), (right, bottom)], "#000000", width=2)
    canvas.text((left + right) / 2, top - 30, title, anchor="centre")
    canvas.text((left + right) / 2, bottom + 34, x_label, anchor="centre")
    canvas.text(left - 58, (top + bottom) / 2, "power", vertical=True)
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        points = [(sx(x), sy(v)) for x, v in zip(x_values, values, strict=True)]
        canvas.line(points, colour, width=3)
        for px, py in points:
            canvas.rectangle(px - 3, py - 3, px + 3, py + 3, colour)
        legend_y = top + 8 + 22 * index
        canvas.line([(right + 12, legend_y + 7), (right + 38, legend_y + 7)], colour, width=3)
        canvas.text(right + 44, legend_y, name)


PANEL_WIDTH, PANEL_HEIGHT = 600, 400
MARGIN = {"left": 80, "right": 124, "top": 50, "bottom": 64}


def power_png(
    panels: Mapping[str, tuple[Sequence[int], Mapping[str, Sequence[float]], str]],
) -> bytes:
    """Render one power-vs-n panel per design side by side.

    Parameters
    ----------
    panels : Mapping
        Title -> (sample sizes, {effect label: power per sample size}, x-axis label).

    Returns
    -------
    bytes
        PNG file.
    """
    canvas = Canvas(PANEL_WIDTH * max(len(panels), 1), PANEL_HEIGHT)
    for index, (title, (x_values, series, x_label)) in enumerate(panels.items()):
        offset = index * PANEL_WIDTH
        box = (
            offset + MARGIN["left"],
            MARGIN["top"],
            offset + PANEL_WIDTH - MARGIN["right"],
            PANEL_HEIGHT - MARGIN["bottom"],
        )
        _panel(canvas, box, title, list(x_values), series, x_label)
    return canvas.png()


def power_svg(
    panels: Mapping[str, tuple[Sequence[int], Mapping[str, Sequence[float]], str]],
) -> str:
    """Render the same panels as :func:`power_png` as a standalone SVG document."""
    width = PANEL_WIDTH * max(len(panels), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{PANEL_HEIGHT}" '
        f'viewBox="0 0 {width} {PANEL_HEIGHT}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{PANEL_HEIGHT}" fill="white"/>',
    ]
    for index, (title, (x_values, series, x_label)) in enumerate(panels.items()):
        parts += _svg_panel(index * PANEL_WIDTH, escape(title), list(x_values), series, x_label)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _svg_panel(offset, title, x_values, series, x_label) -> list[str]:
    left, top = offset + MARGIN["left"], MARGIN["top"]
    right, bottom = offset + PANEL_WIDTH - MARGIN["right"], PANEL_HEIGHT - MARGIN["bottom"]
    x_low, x_high = min(x_values), max(x_values)
    span = (x_high - x_low) or 1.0

    def sx(x: float) -> float:
        return left + (x - x_low) / span * (right - left)

    def sy(y: float) -> float:
        return bottom - y * (bottom - top)

    out = []
    for tick in np.linspace(0.0, 1.0, 6):
        out.append(
            f'<line x1="{left}" x2="{right}" y1="{sy(tick):.1f}" y2="{sy(tick):.1f}" '
            'stroke="#e0e0e0"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{sy(tick) + 4:.1f}" text-anchor="end">{tick:.1f}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{right}" y1="{sy(0.8):.1f}" y2="{sy(0.8):.1f}" '
        'stroke="#808080" stroke-dasharray="6 6"/>'
    )
    for x in x_values:
        out.append(f'<text x="{sx(x):.1f}" y="{bottom + 20}" text-anchor="middle">{x}</text>')
    out.append(
        f'<polyline points="{left},{top} {left},{bottom} {right},{bottom}" fill="none" '
        'stroke="black" stroke-width="2"/>'
    )
    centre = (left + right) / 2
    out.append(f'<text x="{centre}" y="{top - 20}" text-anchor="middle">{title}</text>')
    out.append(
        f'<text x="{centre}" y="{bottom + 44}" text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text x="{left - 50}" y="{(top + bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 {left - 50} {(top + bottom) / 2})">power</text>'
    )
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        points = " ".join(f"{sx(x):.1f},{sy(v):.1f}" for x, v in zip(x_values, values, strict=True))
        out.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
        )
        legend_y = top + 14 + 20 * index
        out.append(
            f'<line x1="{right + 12}" x2="{right + 38}" y1="{legend_y}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="3"/>'
        )
        out.append(f'<text x="{right + 44}" y="{legend_y + 4}">{escape(name)}</text>')
    return out

"""A quick look without Jupyter: a PNG of an image, from the best pyramid level for its size."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import ArgumentError
from pipeline.grid import Window, ceil_div
from pipeline.image import open_image
from pipeline.io import open_source
from pipeline.io.base import prepare_file_output
from pipeline.io.location import Remote, as_location
from pipeline.ops import compute_window

if TYPE_CHECKING:
    import os

__all__ = ["Preview", "parse_window", "preview"]

MAX_SIDE = 1024
"""A preview's longer side, in pixels, at most."""


@dataclass(frozen=True)
class Preview:
    """What was rendered."""

    path: Path
    """The PNG written."""
    level: int
    """Pyramid level read."""
    window: Window
    """Window rendered, in full-resolution pixels."""
    shape: tuple[int, int]
    """Rows and columns of the PNG."""
    value_range: tuple[float, float]
    """Values mapped to black and white (2nd and 98th percentiles of the finite values)."""


def parse_window(text: str) -> Window:
    """``"Y0:Y1,X0:X1"`` as a :class:`~pipeline.grid.Window`."""
    try:
        rows, cols = text.split(",")
        y0, y1 = (int(v) for v in rows.split(":"))
        x0, x1 = (int(v) for v in cols.split(":"))
        window = Window(y0, y1, x0, x1)
    except (ValueError, TypeError) as exc:
        msg = f"window {text!r} is not Y0:Y1,X0:X1 (for example 0:512,1024:2048)"
        raise ArgumentError(msg) from exc
    if window.is_empty or min(y0, x0) < 0:
        msg = f"window {text!r} is empty or starts before the image"
        raise ArgumentError(msg)
    return window


def preview(
    path: str | os.PathLike[str] | Remote,
    out: str | os.PathLike[str],
    *,
    level: int | None = None,
    window: Window | None = None,
    max_side: int = MAX_SIDE,
) -> Preview:
    """Render ``window`` (default: all) of the image at ``path`` as a greyscale PNG at ``out``
    (RGB for 3-channel 8-bit images), reading the finest pyramid level that fits in
    ``max_side`` pixels unless ``level`` is given. NaN pixels are transparent."""
    import imagecodecs

    path = as_location(path)
    source = open_source(path)
    # A preview is redrawn at will, so an existing PNG is replaced, but nothing else.
    prepare_file_output(Path(out), source=path, kind="PNG", magic=(b"\x89PNG",), overwrite=True)
    full = Window.from_shape(source.shape)
    window = full if window is None else window.clip(source.shape)
    if window.is_empty:
        msg = f"the window lies outside the {source.shape[0]}x{source.shape[1]} image"
        raise ArgumentError(msg)
    levels = source.levels
    if level is None:
        wanted = max(0, math.ceil(math.log2(max(window.shape) / max_side)))
        level = min(wanted, levels - 1)
    elif not 0 <= level < levels:
        msg = f"level {level} does not exist: {path} has levels 0 to {levels - 1}"
        raise ArgumentError(msg)
    scale = 2**level
    scaled = Window(
        window.y0 // scale,
        ceil_div(window.y1, scale),
        window.x0 // scale,
        ceil_div(window.x1, scale),
    )
    image = open_image(path, level=level)
    pixels = np.asarray(compute_window(image, scaled.clip(image.shape)))
    step = max(1, math.ceil(max(pixels.shape[:2]) / max_side))
    pixels = pixels[::step, ::step]
    rgb = pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8
    if not rgb and pixels.ndim == 3:
        pixels = pixels[..., 0]
    if rgb:
        picture: Any = pixels
        low, high = 0.0, 255.0
    else:
        values = pixels.astype(np.float64)
        finite = np.isfinite(values)
        low, high = (
            (float(np.percentile(values[finite], 2)), float(np.percentile(values[finite], 98)))
            if finite.any()
            else (0.0, 1.0)
        )
        span = high - low if high > low else 1.0
        grey = np.clip((np.where(finite, values, low) - low) / span, 0, 1)
        picture = np.stack([(grey * 255).round().astype(np.uint8), finite * np.uint8(255)], -1)
    Path(out).write_bytes(imagecodecs.png_encode(np.ascontiguousarray(picture)))
    return Preview(Path(out), level, window, picture.shape[:2], (low, high))

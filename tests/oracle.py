"""The whole-image oracle: a function applied once to the whole padded image, with numpy.

Written independently of `pipeline`'s own padding code: numpy.pad does the padding here.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from pipeline.grid import BlockInfo, Boundary, Window

NUMPY_MODE = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "periodic": "wrap"}


def pad_whole(image: np.ndarray, depth: tuple[int, int], boundary: Boundary) -> np.ndarray:
    if boundary.mode == "none":
        return image
    widths = [(depth[0], depth[0]), (depth[1], depth[1])] + [(0, 0)] * (image.ndim - 2)
    if boundary.mode in NUMPY_MODE:
        return np.pad(image, widths, mode=NUMPY_MODE[boundary.mode])
    dtype = boundary.padded_dtype(image.dtype)
    return np.pad(image.astype(dtype), widths, mode="constant", constant_values=boundary.value)


def whole_image(
    func: Any,
    *images: np.ndarray,
    depth: tuple[int, int] = (0, 0),
    boundary: Any = "reflect",
    dtype: Any = None,
    **params: Any,
) -> np.ndarray:
    """``func`` on the whole padded image, trimmed to the image, cast as apply() casts."""
    bound = Boundary.parse(boundary)
    height, width = images[0].shape[:2]
    padded = [pad_whole(np.asarray(im), depth, bound) for im in images]
    core = Window(0, height, 0, width)
    covered = core if bound.mode == "none" else core.pad(depth)
    if "block_info" in inspect.signature(func).parameters:
        params["block_info"] = BlockInfo(core, covered, (height, width), depth, str(bound))
    result = np.asarray(func(*padded, **params))
    if result.shape[:2] == covered.shape and covered != core:
        result = result[core.relative_to(covered)]
    return result.astype(dtype or images[0].dtype)

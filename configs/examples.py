"""Block functions used by the example configs (`function: examples.py:<name>`).

Each takes numpy blocks (with the halo its step declares) and returns the core or the padded
block. A config is code: these run as written.
"""

from __future__ import annotations

import numpy as np


def mean_filter(dem: np.ndarray, radius: int = 2) -> np.ndarray:
    """Mean over a (2r+1)x(2r+1) window: needs ``depth: radius``. Returns the core."""
    h, w = dem.shape[0] - 2 * radius, dem.shape[1] - 2 * radius
    total = np.zeros((h, w))
    for i in range(2 * radius + 1):
        for j in range(2 * radius + 1):
            total += dem[i : i + h, j : j + w]
    return total / (2 * radius + 1) ** 2


def slope_classes(slope: np.ndarray, breaks: tuple[float, ...] = (5.0, 15.0, 30.0)) -> np.ndarray:
    """Slope in degrees to classes 0 (flat) .. len(breaks) (steep): a per-pixel step."""
    return np.digitize(slope, breaks).astype(np.uint8)


def elevation_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Difference of two surveys of the same area (after - before), in metres."""
    return after.astype(np.float32) - before.astype(np.float32)

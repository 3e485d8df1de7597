"""Pure block, window and halo arithmetic: no I/O, no dask. The easiest layer to test."""

from __future__ import annotations

from pipeline.grid.block import BlockInfo
from pipeline.grid.boundary import (
    BOUNDARY_MODES,
    Boundary,
    BoundaryLike,
    DepthLike,
    gather_axis,
    normalize_depth,
    padded_read,
    padded_windows,
    source_indices,
    unsafe_cast_reason,
)
from pipeline.grid.chunks import (
    DEFAULT_CHUNK_BYTES,
    ChunkGrid,
    ChunksLike,
    auto_chunks,
    check_write_alignment,
    normalize_chunks,
)
from pipeline.grid.protocol import WindowSource
from pipeline.grid.sizing import BlockChoice, choose_blocks, divide_for_storage, halo_overhead
from pipeline.grid.window import Window

__all__ = [
    "BOUNDARY_MODES",
    "DEFAULT_CHUNK_BYTES",
    "BlockChoice",
    "BlockInfo",
    "Boundary",
    "BoundaryLike",
    "ChunkGrid",
    "ChunksLike",
    "DepthLike",
    "Window",
    "WindowSource",
    "auto_chunks",
    "check_write_alignment",
    "choose_blocks",
    "divide_for_storage",
    "gather_axis",
    "halo_overhead",
    "normalize_chunks",
    "normalize_depth",
    "padded_read",
    "padded_windows",
    "source_indices",
    "unsafe_cast_reason",
]

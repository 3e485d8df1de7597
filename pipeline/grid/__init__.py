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
from pipeline.grid.georef import Georef
from pipeline.grid.levels import ceil_div, chunk_span, chunks_in, level_shape
from pipeline.grid.sizing import (
    BlockChoice,
    budget_error,
    choose_blocks,
    divide_for_storage,
    halo_overhead,
)
from pipeline.grid.source import WindowSource
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
    "Georef",
    "Window",
    "WindowSource",
    "auto_chunks",
    "budget_error",
    "ceil_div",
    "check_write_alignment",
    "choose_blocks",
    "chunk_span",
    "chunks_in",
    "divide_for_storage",
    "gather_axis",
    "halo_overhead",
    "level_shape",
    "normalize_chunks",
    "normalize_depth",
    "padded_read",
    "padded_windows",
    "source_indices",
    "unsafe_cast_reason",
]

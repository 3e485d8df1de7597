"""Questions asked of a program's tree of nodes: its steps, halo, input files and sizes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.grid import Window
from pipeline.grid.sizing import LARGEST
from pipeline.ops.nodes import StepNode

if TYPE_CHECKING:
    from pipeline.ops.nodes import Node

__all__ = ["input_bytes", "input_paths", "step_labels", "steps", "storage_tile", "total_halo"]


def steps(root: Node | None) -> list[StepNode]:
    """Steps of a program, first to last (depth first over the inputs)."""
    if not isinstance(root, StepNode):
        return []
    found: list[StepNode] = []
    for node in root.inputs:
        found.extend(s for s in steps(node) if s not in found)
    return [*found, root]


def step_labels(root: Node) -> list[str]:
    """Short names of the steps (``read`` for a program that only reads)."""
    return [s.label.rsplit(":", 1)[-1].rsplit(".", 1)[-1] for s in steps(root)] or ["read"]


def total_halo(root: Node) -> tuple[int, int]:
    """The deepest halo any leaf read needs: the sum of the depths along the longest chain."""
    if not isinstance(root, StepNode):
        return (0, 0)
    inner = [total_halo(n) for n in root.inputs]
    return (
        root.depth[0] + max(h[0] for h in inner),
        root.depth[1] + max(h[1] for h in inner),
    )


def input_paths(root: Node) -> list[Path]:
    """Files the program reads, sorted."""
    return sorted({Path(s.path) for s in root.sources() if s.path is not None})


def input_bytes(root: Node) -> int:
    """Bytes of one read of every input, whole."""
    seen: dict[int, int] = {}
    for leaf, _ in root.leaf_reads(Window.from_shape(root.shape)):
        seen[id(leaf)] = leaf.shape[0] * leaf.shape[1] * leaf.pixel_nbytes
    return sum(seen.values())


def storage_tile(root: Node, shape: tuple[int, int]) -> tuple[int, int]:
    """The storage tile of the first file read, the unit blocks are made of; rows of a memory
    map are too thin a unit, and a tile larger than the largest block is cut into equal parts
    (the reader decodes such a tile once and keeps it for the blocks inside it)."""
    for source in root.sources():
        if min(source.tile) >= 16:
            return (
                _part(min(source.tile[0], shape[0])),
                _part(min(source.tile[1], shape[1])),
            )
    return (min(256, shape[0]), min(256, shape[1]))


def _part(side: int) -> int:
    """``side``, if no longer than the largest block; else the largest part of it up to 1024
    that divides it evenly (1024 itself when none of at least 256 does), from which the plan
    makes blocks as it would from tiles."""
    if side <= LARGEST:
        return side
    return next((d for d in range(1024, 255, -1) if side % d == 0), 1024)

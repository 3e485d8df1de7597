"""Questions asked of a program's tree of nodes: its steps, halo, input files and sizes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import AlignmentError
from pipeline.grid import Georef, Window
from pipeline.grid.crs import describe_crs, same_crs
from pipeline.grid.sizing import LARGEST
from pipeline.ops.nodes import StepNode

if TYPE_CHECKING:
    from pipeline.ops.nodes import Node

__all__ = [
    "georef_of",
    "input_bytes",
    "input_paths",
    "step_labels",
    "steps",
    "storage_tile",
    "total_halo",
]


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
    """Local files the program reads, sorted (not those on object stores)."""
    return sorted({s.path for s in root.sources() if isinstance(s.path, Path)})


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


def georef_of(root: Node | None) -> Georef:
    """The georeferencing of a program's result: that of its georeferenced inputs, which
    must agree (the same CRS and the same grid). Two images on different grids must never be
    combined pixel by pixel: refused with both values and the fix."""
    found: Georef | None = None
    first: object = None
    for source in root.sources() if root is not None else []:
        georef = getattr(source, "georef", None)
        if georef is None or (georef.crs is None and georef.transform is None):
            continue
        if found is None:
            found, first = georef, source.path
            continue
        if not same_crs(found.crs, georef.crs):
            msg = (
                f"{source.path} and {first} are in different coordinate reference systems "
                f"({_crs_words(georef.crs)} and {_crs_words(found.crs)}): their pixels are not "
                "the same places; reproject one onto the other's grid first (gdalwarp, "
                "rioxarray's reproject_match)"
            )
            raise AlignmentError(msg)
        if not _same_grid(found.transform, georef.transform):
            msg = (
                f"{source.path} and {first} are on different grids (transforms "
                f"{_grid_words(georef.transform)} and {_grid_words(found.transform)}): pixel "
                "by pixel they would combine different places; resample one onto the other's "
                "grid first (gdalwarp -tr/-te, rioxarray's reproject_match), or, if they are "
                "meant to align, write the same transform into both"
            )
            raise AlignmentError(msg)
    return found if found is not None else Georef()


def _same_grid(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> bool:
    if a is None or b is None:
        return a is b
    size = max(abs(a[0]), abs(a[4]), 1e-300)
    return all(abs(x - y) <= 1e-9 * max(size, abs(x), abs(y)) for x, y in zip(a, b, strict=True))


def _crs_words(crs: str | None) -> str:
    return describe_crs(crs) if crs else "none"


def _grid_words(transform: tuple[float, ...] | None) -> str:
    if transform is None:
        return "none"
    a, _, c, _, e, f = transform
    return f"pixel {a:g} x {-e:g} from ({c:.10g}, {f:.10g})"

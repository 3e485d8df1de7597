"""OME-Zarr (NGFF) metadata: the multiscales entry outputs carry and readers look for.

NGFF orders axes channel first, so a ``(Y, X, C)`` image is stored as ``(C, Y, X)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pipeline.errors import ArgumentError
from pipeline.grid import Georef

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "NGFF_VERSION",
    "NGFF_VERSIONS",
    "add_dataset",
    "axes",
    "check_ngff",
    "group_metadata",
    "level_transform",
    "multiscales",
    "ome_transform",
    "zarr_format_of",
]

NGFF_VERSION = "0.5"
"""The default: OME-Zarr 0.5, on Zarr v3."""
NGFF_VERSIONS = ("0.5", "0.4")
"""OME-Zarr versions an output can be written in."""


def check_ngff(ngff: str) -> None:
    """Refuse an OME-Zarr version outputs are not written in."""
    if ngff not in NGFF_VERSIONS:
        msg = f"ngff={ngff!r}: OME-Zarr versions written are {', '.join(NGFF_VERSIONS)}"
        raise ArgumentError(msg)


def zarr_format_of(ngff: str) -> Literal[2, 3]:
    """The Zarr format of an OME-Zarr version: 2 for 0.4, 3 for 0.5."""
    return 2 if ngff == "0.4" else 3


def multiscales(attrs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first OME-Zarr multiscales entry of a group's attributes (NGFF 0.4 or 0.5)."""
    ome = attrs.get("ome")
    entries = ome.get("multiscales") if isinstance(ome, dict) else attrs.get("multiscales")
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        return entries[0]
    return None


def axes(channels: bool) -> list[dict[str, str]]:
    """The axes of an output: ``c`` (with ``channels``), ``y``, ``x``."""
    found: list[dict[str, str]] = [{"name": "c", "type": "channel"}] if channels else []
    return [*found, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}]


def _dataset(level: int, ndim: int) -> dict[str, Any]:
    """A multiscales dataset entry: level ``k`` is downsampled by 2**k along Y and X. A pixel
    of level ``k`` covers 2**k pixels of level 0 along each axis, so its centre is half of
    that less half a pixel further on: ``(2**k - 1) / 2``."""
    factor = float(2**level)
    lead = [1.0] if ndim == 3 else []
    transforms: list[dict[str, Any]] = [{"type": "scale", "scale": [*lead, factor, factor]}]
    if level:
        shift = (factor - 1) / 2
        transforms.append({"type": "translation", "translation": [0.0] * len(lead) + [shift] * 2})
    return {"path": str(level), "coordinateTransformations": transforms}


def group_metadata(
    name: str, ndim: int, ngff: str, downsampling: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The group attributes of a new output with one level, ``"0"``."""
    check_ngff(ngff)
    entry = {
        "name": name,
        "axes": axes(ndim == 3),
        "datasets": [_dataset(0, ndim)],
        **(downsampling or {}),
    }
    if ngff == "0.4":
        return {"multiscales": [{**entry, "version": "0.4"}]}
    return {"ome": {"version": ngff, "multiscales": [entry]}}


def add_dataset(attrs: dict[str, Any], level: int, ndim: int) -> bool:
    """Add level ``level`` to the multiscales of ``attrs`` (in place); False if it was there."""
    holder: Any = attrs.get("ome", attrs)
    datasets: list[dict[str, Any]] = holder["multiscales"][0]["datasets"]
    if any(d["path"] == str(level) for d in datasets):
        return False
    datasets.append(_dataset(level, ndim))
    return True


def level_transform(attrs: Mapping[str, Any], level: int) -> tuple[list[float], list[float]]:
    """``(scale, translation)`` along Y and X of ``level``, from a group's multiscales
    (identity when it has none, or not that level)."""
    entry = multiscales(attrs) or {}
    names = [a["name"] if isinstance(a, dict) else a for a in entry.get("axes", [])]
    datasets = entry.get("datasets", [])
    if level >= len(datasets):
        return [1.0, 1.0], [0.0, 0.0]
    scale, translation = [1.0] * len(names), [0.0] * len(names)
    for transform in datasets[level].get("coordinateTransformations", []):
        if transform.get("type") == "scale":
            scale = [float(v) for v in transform["scale"]]
        elif transform.get("type") == "translation":
            translation = [float(v) for v in transform["translation"]]
    spatial = [names.index(name) for name in ("y", "x")] if names else [0, 1]
    return [scale[k] for k in spatial], [translation[k] for k in spatial]


def ome_transform(entry: Mapping[str, Any], level: int) -> Georef | None:
    """The pixel size and origin of ``level`` from a multiscales ``entry`` whose spatial axes
    declare a unit (``None`` without one: the coordinates are pixels). NGFF coordinates are
    those of pixel centres; a `Georef` transform starts at a pixel's corner."""
    found = [a for a in entry.get("axes", []) if isinstance(a, dict)]
    units = {a.get("name"): a.get("unit") for a in found}
    unit = units.get("x") or units.get("y")
    if not unit:
        return None
    (sy, sx), (ty, tx) = level_transform({"multiscales": [entry]}, level)
    return Georef(transform=(sx, 0.0, tx - sx / 2, 0.0, sy, ty - sy / 2), unit=str(unit))

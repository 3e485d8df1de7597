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


def axes(channels: bool, unit: str | None = None) -> list[dict[str, str]]:
    """The axes of an output: ``c`` (with ``channels``), ``y``, ``x`` (in ``unit``, if the
    pixels have a physical size)."""
    found: list[dict[str, str]] = [{"name": "c", "type": "channel"}] if channels else []
    space = {"type": "space", **({"unit": unit} if unit else {})}
    return [*found, {"name": "y", **space}, {"name": "x", **space}]


_NGFF_UNITS = {"metre": "meter", "meter": "meter", "micrometer": "micrometer"}
"""Units of pixel sizes as NGFF (UDUNITS-2) names them; others are left out."""


def physical(georef: Georef | None) -> tuple[float, float, float, float, str] | None:
    """``(dy, dx, y0, x0, unit)``: the pixel size and the corner of a north-up or
    microscopy image in a unit NGFF names (meters of a projected CRS, micrometers of a
    microscope), measured down and right from its top-left corner; ``None`` otherwise."""
    if georef is None or georef.transform is None or not georef.is_rectilinear:
        return None
    unit = georef.unit
    if georef.crs is not None:
        from pipeline.grid.crs import is_geographic, linear_unit_metres

        if is_geographic(georef.crs) or linear_unit_metres(georef.crs) != 1.0:
            return None
        unit = "meter"
    name = _NGFF_UNITS.get(unit or "")
    if name is None:
        return None
    a, _, c, _, e, f = georef.transform
    # Viewers draw rows downwards: a north-up raster's y is measured down from its top edge.
    y0 = f if e > 0 else 0.0
    return abs(e), abs(a), y0, c, name


def _dataset(level: int, ndim: int, georef: Georef | None = None) -> dict[str, Any]:
    """A multiscales dataset entry: level ``k`` is downsampled by 2**k along Y and X. A pixel
    of level ``k`` covers 2**k pixels of level 0 along each axis, so its centre is half of
    that less half a pixel further on: ``(2**k - 1) / 2``. With a physical pixel size, scale
    and translation are in its unit (and the centre of level 0's first pixel is half a pixel
    from the corner)."""
    factor = float(2**level)
    lead = [1.0] if ndim == 3 else []
    size = physical(georef)
    dy, dx, y0, x0 = size[:4] if size else (1.0, 1.0, 0.0, 0.0)
    transforms: list[dict[str, Any]] = [
        {"type": "scale", "scale": [*lead, dy * factor, dx * factor]}
    ]
    if level or size:
        shift = (factor - 1) / 2 + (0.5 if size else 0.0)
        offset = [y0 + dy * shift, x0 + dx * shift] if size else [shift, shift]
        transforms.append({"type": "translation", "translation": [0.0] * len(lead) + offset})
    return {"path": str(level), "coordinateTransformations": transforms}


def group_metadata(
    name: str,
    ndim: int,
    ngff: str,
    downsampling: dict[str, Any] | None = None,
    georef: Georef | None = None,
) -> dict[str, Any]:
    """The group attributes of a new output with one level, ``"0"``."""
    check_ngff(ngff)
    size = physical(georef)
    entry = {
        "name": name,
        "axes": axes(ndim == 3, size[4] if size else None),
        "datasets": [_dataset(0, ndim, georef)],
        **(downsampling or {}),
    }
    if ngff == "0.4":
        return {"multiscales": [{**entry, "version": "0.4"}]}
    return {"ome": {"version": ngff, "multiscales": [entry]}}


def add_dataset(attrs: dict[str, Any], level: int, ndim: int, georef: Georef | None = None) -> bool:
    """Add level ``level`` to the multiscales of ``attrs`` (in place); False if it was there."""
    holder: Any = attrs.get("ome", attrs)
    datasets: list[dict[str, Any]] = holder["multiscales"][0]["datasets"]
    if any(d["path"] == str(level) for d in datasets):
        return False
    datasets.append(_dataset(level, ndim, georef))
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

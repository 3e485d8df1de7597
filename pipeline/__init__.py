"""Run a function over every pixel of a huge 2-D image: chunked, parallel, out of core, exact.

>>> import pipeline
>>> dem = pipeline.open_image("dem.tif")                      # lazy, chunked
>>> slope = pipeline.apply(my_slope, dem, depth=1, boundary="nearest", dtype="float32")
>>> report = pipeline.save(slope, "slope.zarr")               # parallel, streamed to Zarr

The public names are imported on first use, so that ``import pipeline`` (and the CLI's
``--help``) does not pay for importing dask, zarr and tifffile.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("pipeline")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from pipeline.errors import PipelineError
    from pipeline.export import export_tiff
    from pipeline.grid import BlockInfo, Window
    from pipeline.image import open_image
    from pipeline.ops import apply, compute_window
    from pipeline.ops.kernels import Kernel, neighbourhood, pointwise
    from pipeline.planning import Plan, RunOptions, plan, save
    from pipeline.render import preview
    from pipeline.report import RunReport
    from pipeline.xarray_ import open_dataarray

__all__ = [
    "BlockInfo",
    "Kernel",
    "PipelineError",
    "Plan",
    "RunOptions",
    "RunReport",
    "Window",
    "__version__",
    "apply",
    "compute_window",
    "export_tiff",
    "neighbourhood",
    "open_dataarray",
    "open_image",
    "plan",
    "pointwise",
    "preview",
    "save",
]

_LAZY = {
    "BlockInfo": "pipeline.grid",
    "Kernel": "pipeline.ops.kernels",
    "neighbourhood": "pipeline.ops.kernels",
    "pointwise": "pipeline.ops.kernels",
    "PipelineError": "pipeline.errors",
    "RunReport": "pipeline.report",
    "Window": "pipeline.grid",
    "apply": "pipeline.ops",
    "compute_window": "pipeline.ops",
    "export_tiff": "pipeline.export",
    "preview": "pipeline.render",
    "open_image": "pipeline.image",
    "open_dataarray": "pipeline.xarray_",
    "Plan": "pipeline.planning",
    "plan": "pipeline.planning",
    "save": "pipeline.planning",
    "RunOptions": "pipeline.planning",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'pipeline' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

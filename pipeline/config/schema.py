"""The typed shape of a run config: what `pipeline run` reads from YAML.

Plain pydantic models, no dask, zarr or I/O: a config is validated before anything opens.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

__all__ = [
    "ComputeSpec",
    "GenerateSpec",
    "InputSpec",
    "OutputSpec",
    "RunConfig",
    "StepSpec",
]

Pair = tuple[PositiveInt, PositiveInt]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerateSpec(_Strict):
    """Write a synthetic input when its file is missing (the demo needs no download)."""

    kind: Literal["synthetic-dem"] = "synthetic-dem"
    """What to generate: a deterministic elevation model."""
    shape: Pair = (4000, 6000)
    """Rows and columns."""
    seed: int = 0
    """Different seeds give different terrains."""
    tile: Pair = (512, 512)
    """TIFF tile shape."""


class InputSpec(_Strict):
    """An input image and how to read it."""

    path: str
    """TIFF, Zarr or NPY; relative to the config file, or an address on an object store or
    web server (``s3://``, ``gs://``, ``az://``, ``https://``)."""
    storage_options: dict[str, Any] | None = None
    """For an address: options of its fsspec filesystem that the environment cannot say
    (``endpoint_url``, ``profile``); never printed or recorded."""
    chunks: PositiveInt | Pair | None = None
    """Block shape; default: the output chunks if given, else storage tiles grown to ~32 MB."""
    level: NonNegativeInt = 0
    """Pyramid level."""
    missing_chunks: Literal["error", "fill"] = "error"
    """A Zarr chunk not in the store: an error, or the fill value (a sparse array)."""
    generate: GenerateSpec | None = None
    """Create the file first if it does not exist."""


class StepSpec(_Strict):
    """One function applied to every block."""

    function: str
    """A built-in name (``slope``), ``package.module:function``, or ``file.py:function``
    relative to the config."""
    name: str | None = None
    """How later steps refer to this step's output; default: the function's name."""
    inputs: list[str] | None = None
    """Names of inputs or earlier steps; default: the previous step, or for the first step
    every input in the order given."""
    depth: NonNegativeInt | Pair | None = None
    """Halo; default: the built-in's, else 0."""
    boundary: str | float | None = None
    """Boundary mode or constant; default: the built-in's, else ``reflect``."""
    dtype: str | None = None
    """Output dtype; default: the built-in's, else the first input's."""
    channels: PositiveInt | Literal["input", "none"] | None = None
    """Output channels: ``input`` (default), ``none`` for 2-D, or a count."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the function."""
    kind: Literal["block", "pointwise", "neighbourhood"] = "block"
    """``block``: the function takes blocks. ``pointwise``: it takes one pixel's values.
    ``neighbourhood``: it takes arrays and a pixel's position ``(i, j)``. Per-pixel kinds are
    compiled with numba."""
    radius: NonNegativeInt | Pair | str | None = None
    """How far a ``neighbourhood`` function reads (pixels), or the name of its parameter that
    says so."""
    coords: bool = False
    """Pass a per-pixel function the pixel's global ``y, x`` too."""
    uncompiled: bool = False
    """Run a per-pixel function that numba cannot compile as plain Python, in processes
    (slow; announced with an estimate)."""


class OutputSpec(_Strict):
    """Where and how the result is written."""

    path: str
    """Zarr store to create; relative to the config file, or an address on an object store
    (``s3://bucket/out.zarr``, ``gs://``, ``az://``)."""
    storage_options: dict[str, Any] | None = None
    """For an address: options of its fsspec filesystem that the environment cannot say
    (``endpoint_url``, ``profile``); never printed or recorded."""
    chunks: PositiveInt | Pair | None = None
    """Stored chunk shape; default: the blocks."""
    overwrite: bool = False
    """Replace an existing output (the CLI's ``--overwrite`` also does)."""
    pyramid: NonNegativeInt = 0
    """Levels to add, each half the size of the one below (built from the stored output)."""
    downsample: Literal["mean", "nearest"] | None = None
    """How a level is made from the one below; default: mean for floats, nearest for
    integers (labels)."""
    ngff: Literal["0.5", "0.4"] = "0.5"
    """OME-Zarr version: 0.5 (Zarr v3) or 0.4 (Zarr v2)."""


class ComputeSpec(_Strict):
    """Where the tasks run."""

    scheduler: str = "threads"
    """``synchronous``, ``threads``, ``processes``, ``distributed`` or ``tcp://host:port``."""
    workers: PositiveInt | None = None
    """Worker threads or processes; default: one per core."""
    threads_per_worker: PositiveInt = 1
    """Threads in each worker of a ``distributed`` cluster started for the run."""
    memory_limit: str | None = Field(
        default=None, pattern=r"^\s*\d+(\.\d+)?\s*([kKmMgGtTpP]i?[bB]?|[bB])?\s*$"
    )
    """Memory per worker, a size such as ``4GB`` or ``512MiB``: the plan's budget, and the
    limit of a ``distributed`` cluster started for the run."""
    retries: NonNegativeInt = 2
    """Attempts more a block gets after a transient I/O error (never after an error raised
    by the function)."""
    block_timeout: PositiveFloat | None = None
    """Seconds one block may take before the run is stopped as stuck, for runs nobody
    watches; default: no limit."""


class RunConfig(_Strict):
    """A whole run: inputs, a chain of steps, the output, and where to compute."""

    input: str | InputSpec | None = None
    """The one input (a path, or a mapping with ``path`` and options)."""
    inputs: dict[str, str | InputSpec] | None = None
    """Several named inputs."""
    steps: list[StepSpec] = Field(min_length=1)
    """Functions applied in order, each to the previous step's output by default."""
    output: OutputSpec
    """The result's store."""
    compute: ComputeSpec = Field(default_factory=ComputeSpec)
    """Scheduler and workers."""

    @model_validator(mode="after")
    def _one_kind_of_input(self) -> RunConfig:
        if (self.input is None) == (self.inputs is None):
            msg = "give either 'input' (one image) or 'inputs' (named images), not both or none"
            raise ValueError(msg)
        if self.inputs is not None and not self.inputs:
            msg = "'inputs' is empty; name at least one image"
            raise ValueError(msg)
        return self

    def input_specs(self) -> dict[str, InputSpec]:
        """Every input by name (the single ``input`` is named ``input``)."""
        raw = {"input": self.input} if self.input is not None else dict(self.inputs or {})
        return {
            name: spec if isinstance(spec, InputSpec) else InputSpec(path=spec)
            for name, spec in raw.items()
            if spec is not None
        }

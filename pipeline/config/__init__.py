"""YAML configs -> typed, validated specs (no dask, zarr or file I/O beyond the YAML)."""

from __future__ import annotations

from pipeline.config.loader import LoadedConfig, apply_overrides, load_config, parse_override
from pipeline.config.schema import (
    ComputeSpec,
    GenerateSpec,
    InputSpec,
    OutputSpec,
    RunConfig,
    StepSpec,
)

__all__ = [
    "ComputeSpec",
    "GenerateSpec",
    "InputSpec",
    "LoadedConfig",
    "OutputSpec",
    "RunConfig",
    "StepSpec",
    "apply_overrides",
    "load_config",
    "parse_override",
]

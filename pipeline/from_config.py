"""From a YAML config to a plan: the same public functions a notebook calls, in order.

`build` opens the inputs with :func:`~pipeline.open_image`, applies each step with
:func:`~pipeline.apply` and checks the run with :func:`~pipeline.plan`. `validate` does the
same without computing and collects every problem, located in the config, instead of
stopping at the first. The CLI is a thin layer over `run`, `validate` and `build`.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipeline.config import LoadedConfig, load_config
from pipeline.errors import (
    AlignmentError,
    ArgumentError,
    ConfigError,
    FunctionLoadError,
    KernelCompileError,
    MemoryBudgetError,
    PipelineError,
    Problem,
    SchedulerError,
)
from pipeline.image import open_image
from pipeline.io.location import as_location, is_remote, redact
from pipeline.ops import apply
from pipeline.ops.kernels import Kernel, neighbourhood, pointwise
from pipeline.ops.registry import resolve_function
from pipeline.planning import Plan, plan
from pipeline.planning.checks import check_output
from pipeline.runtime import blocks_running, can_supervise, supervise

if TYPE_CHECKING:
    from collections.abc import Callable

    import dask.array as da

    from pipeline.config import InputSpec, StepSpec
    from pipeline.report import RunReport

__all__ = [
    "Overrides",
    "blocks_running",
    "build",
    "dry_run",
    "generate_inputs",
    "pending_inputs",
    "run",
    "supervised",
    "validate",
]


@dataclass(frozen=True)
class Overrides:
    """What the command line says on top of the config."""

    scheduler: str | None = None
    """``--scheduler``."""
    workers: int | None = None
    """``--workers``."""
    overwrite: bool = False
    """``--overwrite``."""
    resume: bool = False
    """``--resume``."""


def _location(loaded: LoadedConfig, value: str) -> Path | str:
    """An input of the config: an address on a store as it is, else a path (see `_path`)."""
    return value if is_remote(value) else _path(loaded, value)


def _path(loaded: LoadedConfig, value: str) -> Path:
    """A path of the config, relative to the config file's directory."""
    path = Path(value).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else loaded.base_dir / path))


def pending_inputs(loaded: LoadedConfig) -> list[Path]:
    """Inputs a run will generate first because their files do not exist yet."""
    return [
        path
        for spec in loaded.config.input_specs().values()
        if spec.generate is not None
        and not is_remote(spec.path)  # `generate` writes local files only
        and not (path := _path(loaded, spec.path)).exists()
    ]


def generate_inputs(loaded: LoadedConfig, *, announce: bool = True) -> list[Path]:
    """Write every input that has a ``generate`` section and whose file is missing."""
    from pipeline.demo import write_dem

    written = []
    for spec in loaded.config.input_specs().values():
        if spec.generate is None or is_remote(spec.path):
            continue
        path = _path(loaded, spec.path)
        if path.exists():
            continue
        if announce:
            shape = "x".join(map(str, spec.generate.shape))
            print(f"generating a synthetic {shape} elevation model: {path}", file=sys.stderr)
        write_dem(path, spec.generate.shape, seed=spec.generate.seed, tile=spec.generate.tile)
        written.append(path)
    return written


def _open_inputs(loaded: LoadedConfig, problems: list[Problem]) -> dict[str, da.Array]:
    config = loaded.config
    out_chunks = config.output.chunks
    images: dict[str, da.Array] = {}
    raw = {"input": config.input} if config.input is not None else dict(config.inputs or {})
    for name, spec in config.input_specs().items():
        key: tuple[str | int, ...] = ("input",) if config.input is not None else ("inputs", name)
        where = key if isinstance(raw[name], str) else (*key, "path")
        path = _location(loaded, spec.path)
        if spec.generate is not None and isinstance(path, Path) and not path.exists():
            # Not written yet (`run` generates it first): check the steps on a stand-in of
            # the same shape and dtype, so that nothing is written by a check.
            import dask.array as da

            from pipeline.demo import DEM_DTYPE

            shape = spec.generate.shape
            chunks = _chunks(spec, out_chunks) or spec.generate.tile
            images[name] = da.zeros(shape, dtype=DEM_DTYPE, chunks=chunks)
            continue
        try:
            # Without chunks, the plan chooses the blocks (whole output chunks, if given).
            images[name] = open_image(
                path,
                chunks=spec.chunks,
                level=spec.level,
                missing_chunks=spec.missing_chunks,
                storage_options=spec.storage_options,
            )
        except PipelineError as exc:
            problems.append(loaded.problem(where, str(exc)))
    return images


def _chunks(spec: InputSpec, out_chunks: Any) -> Any:
    """Blocks of a stand-in input: the input's own chunks, else the output's."""
    return spec.chunks if spec.chunks is not None else out_chunks


def _apply_step(loaded: LoadedConfig, step: StepSpec, arrays: list[da.Array]) -> da.Array:
    spec = resolve_function(step.function, loaded.base_dir)
    channels: int | Literal["input"] | None
    if step.channels is None or step.channels == "input":
        channels = "input"
    elif step.channels == "none":
        channels = None
    else:
        channels = step.channels
    func = spec.func
    if step.kind in ("pointwise", "neighbourhood") and not isinstance(func, Kernel):
        plain = inspect.unwrap(func)
        if step.kind == "pointwise":
            func = pointwise(plain, coords=step.coords, uncompiled=step.uncompiled)
        else:
            if step.radius is None:
                msg = "a neighbourhood kernel needs radius: how far it reads (pixels)"
                raise ArgumentError(msg)
            radius = step.radius if not isinstance(step.radius, list) else tuple(step.radius)
            func = neighbourhood(
                plain, radius=radius, coords=step.coords, uncompiled=step.uncompiled
            )
        label = getattr(spec.func, "pipeline_label", None)
        if label:  # name it as the config does (file.py:function)
            func = dataclasses.replace(func, name=label)
    return apply(
        func,
        *arrays,
        depth=step.depth,
        boundary=step.boundary,
        dtype=step.dtype if step.dtype is not None else spec.dtype,
        channels=channels,
        **step.params,
    )


def _apply_steps(
    loaded: LoadedConfig, images: dict[str, da.Array], problems: list[Problem]
) -> da.Array | None:
    """Apply the steps in order; ``None`` (with the problem recorded) at the first failure."""
    config = loaded.config
    results: dict[str, da.Array] = dict(images)
    previous: str | None = None
    for i, step in enumerate(config.steps):
        name = step.name or step.function.rpartition(":")[2].rsplit(".", 1)[-1]
        if name in results and step.name is not None:
            problems.append(loaded.problem(("steps", i, "name"), f"name {name!r} is taken"))
        wanted = step.inputs or ([previous] if previous else list(config.input_specs()))
        unknown = [n for n in wanted if n not in results and n not in config.input_specs()]
        if unknown:
            known = ", ".join(results) or "none yet"
            message = f"unknown input {unknown[0]!r}: inputs and earlier steps are {known}"
            problems.append(loaded.problem(("steps", i, "inputs"), message))
            return None
        if any(n not in results for n in wanted):
            return None  # an input failed to open: already reported
        try:
            results[name] = _apply_step(loaded, step, [results[n] for n in wanted])
        except (FunctionLoadError, KernelCompileError) as exc:
            problems.append(loaded.problem(("steps", i, "function"), str(exc)))
            return None
        except PipelineError as exc:
            problems.append(loaded.problem(("steps", i), str(exc)))
            return None
        previous = name
    return results[previous] if previous is not None else None


def _build(loaded: LoadedConfig, overrides: Overrides, problems: list[Problem]) -> Plan | None:
    config = loaded.config
    result = _apply_steps(loaded, _open_inputs(loaded, problems), problems)
    if result is None or problems:
        return None
    try:
        return plan(
            result,
            _location(loaded, config.output.path),
            chunks=config.output.chunks,
            overwrite=overrides.overwrite or config.output.overwrite,
            scheduler=overrides.scheduler or config.compute.scheduler,
            workers=config.compute.workers if overrides.workers is None else overrides.workers,
            threads_per_worker=config.compute.threads_per_worker,
            memory_limit=config.compute.memory_limit,
            metadata={"config": _redacted(loaded.data), "config_file": str(loaded.path.resolve())},
            resume=overrides.resume,
            retries=config.compute.retries,
            block_timeout=config.compute.block_timeout,
            pyramid=config.output.pyramid,
            downsample=config.output.downsample,
            ngff=config.output.ngff,
            storage_options=config.output.storage_options,
        )
    except SchedulerError as exc:
        problems.append(loaded.problem(("compute", "scheduler"), str(exc)))
    except AlignmentError as exc:
        problems.append(loaded.problem(("output", "chunks"), str(exc)))
    except MemoryBudgetError as exc:
        problems.append(loaded.problem(("compute", "memory_limit"), str(exc)))
    except PipelineError as exc:
        problems.append(loaded.problem(("output", "path"), str(exc)))
    return None


def build(
    config: str | Path | LoadedConfig,
    sets: list[str] | tuple[str, ...] = (),
    overrides: Overrides | None = None,
) -> Plan:
    """The checked :class:`~pipeline.Plan` of a config; raises :class:`ConfigError` listing
    every problem located in the config."""
    loaded = config if isinstance(config, LoadedConfig) else load_config(config, sets)
    problems: list[Problem] = []
    checked = _build(loaded, overrides or Overrides(), problems)
    if problems or checked is None:
        raise ConfigError(problems or [Problem(str(loaded.path), None, "", "nothing to run")])
    return checked


def validate(
    config: str | Path, sets: list[str] | tuple[str, ...] = (), overrides: Overrides | None = None
) -> list[Problem]:
    """Every problem of a config, computing nothing: keys and types, inputs that do not open,
    functions that do not import, shapes, chunks and the output path."""
    try:
        loaded = load_config(config, sets)
    except ConfigError as exc:
        return list(exc.problems)
    problems: list[Problem] = []
    _build(loaded, overrides or Overrides(overwrite=True), problems)
    return problems


def run(
    config: str | Path,
    sets: list[str] | tuple[str, ...] = (),
    overrides: Overrides | None = None,
    *,
    progress: bool = True,
) -> RunReport:
    """Generate missing demo inputs, build the plan of a config and execute it."""
    loaded = load_config(config, sets)
    generate_inputs(loaded, announce=progress)
    return build(loaded, overrides=overrides).execute(progress=progress)


def dry_run(loaded: LoadedConfig, overrides: Overrides) -> tuple[Plan, list[str]]:
    """The plan of a config as a run would make it, and notes on what the run would do
    first or be refused for, computing and writing nothing."""
    checked = build(loaded, overrides=dataclasses.replace(overrides, overwrite=True, resume=False))
    notes = [f"{p} does not exist yet: the run generates it first" for p in pending_inputs(loaded)]
    try:
        check_output(
            checked.target,
            overwrite=overrides.overwrite or loaded.config.output.overwrite,
            resume=overrides.resume,
        )
    except PipelineError as exc:
        notes.append(str(exc))
    return checked, notes


def supervised(loaded: LoadedConfig, work: Callable[[], int]) -> int:
    """Run ``work``, the run of a config, so that a death without an exception (``os._exit``,
    a crash in native code) is still reported with the block it happened on
    (`pipeline.runtime.supervisor`); where a process cannot fork, run it here."""
    if not can_supervise():
        return work()
    output = loaded.config.output
    where = _location(loaded, output.path)
    return supervise(work, as_location(where, output.storage_options))


def _redacted(data: Any) -> Any:
    """The config as the output records it: the values of every ``storage_options`` hidden
    (they may hold credentials)."""
    if isinstance(data, dict):
        return {
            k: redact(v) if k == "storage_options" and isinstance(v, dict) else _redacted(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_redacted(v) for v in data]
    return data

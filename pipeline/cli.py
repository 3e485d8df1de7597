"""The `pipeline` command: a thin layer over the functions a notebook calls.

Only the standard library is imported at the top, so that ``pipeline --help`` answers at
once; each command imports what it needs. User errors print one line per problem and exit
with 2; a failure in the user's function prints the block it failed on and the function's own
traceback; Ctrl-C stops the workers and exits with 130.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

EXIT_OK = 0
EXIT_BUG = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

EPILOG = """\
examples:
  pipeline run configs/demo.yaml
  pipeline run configs/demo.yaml --set output.path=out/x.zarr --set steps.0.params.azimuth=270
  pipeline run configs/demo.yaml --scheduler distributed --workers 2 --overwrite
  pipeline validate configs/chain.yaml
  pipeline info out/demo/hillshade.zarr
  pipeline preview out/demo/hillshade.zarr --out hillshade.png
  pipeline export out/demo/hillshade.zarr --out hillshade.ome.tif

A config names Python functions to import and run: treat a config as code, and run only
configs you trust.
"""


def _parser() -> argparse.ArgumentParser:
    from pipeline import __version__

    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Run a function over every pixel of a huge 2-D image: chunked, parallel, "
        "out of core, exact, into Zarr.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pipeline {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sets = argparse.ArgumentParser(add_help=False)
    sets.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (dotted path, list indexes as numbers; value in YAML)",
    )

    def command(name: str, summary: str, description: str, *parents: Any) -> Any:
        return commands.add_parser(
            name, help=summary, description=description, parents=[*parents, debug]
        )

    run = command("run", "run a config", "Run a YAML config.", sets)
    run.add_argument("config", help="YAML config file")
    run.add_argument(
        "--scheduler",
        metavar="NAME|ADDRESS",
        help="synchronous, threads, processes, distributed, or tcp://host:port",
    )
    run.add_argument("--workers", type=int, metavar="N", help="worker threads or processes")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output")
    run.add_argument(
        "--resume",
        action="store_true",
        help="finish an interrupted run: keep the blocks it wrote, compute the rest",
    )
    run.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true", help="print the run report as JSON")
    run.set_defaults(handler=_run)

    validate = command(
        "validate",
        "check a config without computing",
        "Check a config without computing: keys and types, inputs, functions, shapes and "
        "chunks. Prints each problem as file:line: key.path: message.",
        sets,
    )
    validate.add_argument("config", help="YAML config file")
    validate.set_defaults(handler=_validate)

    preview = command(
        "preview",
        "render a PNG of an image",
        "Render a PNG of an image (or a window of it) from its best pyramid level.",
    )
    preview.add_argument("path", help="image file or Zarr store")
    preview.add_argument("--out", required=True, help="PNG file to write")
    preview.add_argument("--level", type=int, help="pyramid level (default: the best fit)")
    preview.add_argument("--window", metavar="Y0:Y1,X0:X1", help="full-resolution pixels")
    preview.set_defaults(handler=_preview)

    export = command(
        "export",
        "export an output to a COG (georeferenced) or a pyramidal OME-TIFF",
        "Write an image and all its pyramid levels to a TIFF, tile by tile: a Cloud-Optimized "
        "GeoTIFF with its CRS, transform and nodata when it is georeferenced, else a tiled "
        "OME-TIFF.",
    )
    export.add_argument("path", help="Zarr output (or any image)")
    export.add_argument("--out", required=True, help="TIFF file to write")
    export.add_argument("--tile", type=int, default=512, help="tile side (multiple of 16)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    export.set_defaults(handler=_export)

    info = command(
        "info",
        "describe a TIFF, Zarr or NPY file",
        "Format, shape, dtype, chunks or tiles and size of an image; for outputs of pipeline, "
        "also the config and run that produced them.",
    )
    info.add_argument("path", help="image file or Zarr store")
    info.add_argument("--json", action="store_true", help="print as JSON")
    info.set_defaults(handler=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pipeline`` and ``python -m pipeline``; returns the exit code.

    As the program's own entry (``argv`` from the command line), a run is supervised: it runs
    in a forked child, so that a function that kills its process still gets the block it died
    on reported (`pipeline.from_config.supervised`).
    """
    args = _parser().parse_args(argv)
    args.supervised = argv is None
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted: workers stopped; completed chunks are in the output", file=sys.stderr)
        _abandon_stuck_threads()
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output left (`pipeline info x.zarr | head`): stop quietly, as
        # Unix tools do, and keep Python from reporting the pipe again at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        code = _report_error(exc, debug=args.debug)
        _leave_stuck_blocks(code)
    return code


def _abandon_stuck_threads(grace: float = 2.0) -> None:
    """End the process now if worker threads are still busy after Ctrl-C: a function that
    never returns would keep Python from exiting (it waits for its threads), whatever the
    number of Ctrl-C. Everything that must be written (records, lock) was, on the way here."""
    import os
    import threading
    import time

    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)


def _leave_stuck_blocks(code: int, grace: float = 2.0) -> None:
    """End the process now if a block is still being computed after the run stopped with an
    error (a block over its time limit, or stuck while another failed): Python would wait for
    its thread at exit, forever. The error was reported, and the run's records written."""
    import os
    import time

    from_config = sys.modules.get("pipeline.from_config")
    if from_config is None:
        return
    deadline = time.monotonic() + grace
    while from_config.blocks_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    if from_config.blocks_running():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


_PYTHON_FORM = re.compile(r"\w+=True \(CLI: (--[\w-]+)\)")
"""A fix as a message names it for Python callers, with the CLI's flag for it."""


def _as_flags(message: str) -> str:
    """Messages name a fix as Python callers give it (``resume=True (CLI: --resume)``); on
    the command line, name the flag alone."""
    return _PYTHON_FORM.sub(r"\1", message)


def _report_error(exc: Exception, *, debug: bool) -> int:
    from pipeline.errors import BlockFunctionError, PipelineError

    if not isinstance(exc, PipelineError):
        traceback.print_exception(exc)
        print(
            f"internal error: {type(exc).__name__}: {exc}\nThis is a bug in pipeline; please "
            "report it with the traceback above and the command you ran.",
            file=sys.stderr,
        )
        return EXIT_BUG
    if debug:
        traceback.print_exception(exc)
    for line in _as_flags(str(exc)).splitlines():
        print(f"error: {line}", file=sys.stderr)
    if isinstance(exc, BlockFunctionError) and exc.function_traceback and not debug:
        print(exc.function_traceback.rstrip(), file=sys.stderr)
    return EXIT_USER_ERROR


def _overrides(args: argparse.Namespace) -> Any:
    from pipeline.from_config import Overrides

    return Overrides(
        scheduler=args.scheduler,
        workers=args.workers,
        overwrite=args.overwrite,
        resume=args.resume,
    )


def _run(args: argparse.Namespace) -> int:
    from pipeline import from_config
    from pipeline.config import load_config

    loaded = load_config(args.config, args.sets)
    if args.dry_run:
        plan, notes = from_config.dry_run(loaded, _overrides(args))
        notes = [_as_flags(note) for note in notes]
        if args.json:
            print(json.dumps({**dict(plan.describe()), "notes": notes}, indent=2))
        else:
            print(repr(plan))
            for note in notes:
                print(f"note: {note}")
        return EXIT_OK
    if args.supervised:
        return from_config.supervised(loaded, lambda: _execute(args, loaded))
    return _execute(args, loaded)


def _execute(args: argparse.Namespace, loaded: Any) -> int:
    from pipeline import from_config

    from_config.generate_inputs(loaded, announce=not args.quiet)
    plan = from_config.build(loaded, overrides=_overrides(args))
    report = plan.execute(progress=not args.quiet)
    print(report.to_json() if args.json else report.summary())
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from pipeline import from_config

    problems = from_config.validate(args.config, args.sets)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {args.config}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"{args.config}: OK")
    return EXIT_OK


def _preview(args: argparse.Namespace) -> int:
    from pipeline.render import parse_window, preview

    window = parse_window(args.window) if args.window else None
    done = preview(args.path, args.out, level=args.level, window=window)
    low, high = done.value_range
    print(
        f"wrote {done.path} ({done.shape[1]}x{done.shape[0]} px from level {done.level}, "
        f"values {low:g} to {high:g} from black to white)"
    )
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from pipeline.export import export_tiff

    target = export_tiff(args.path, args.out, tile=(args.tile, args.tile), overwrite=args.overwrite)
    print(f"wrote {target}")
    return EXIT_OK


def _info(args: argparse.Namespace) -> int:
    from pipeline.io.info import describe_path
    from pipeline.report import format_bytes

    info = describe_path(args.path)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return EXIT_OK
    produced = info.pop("pipeline", None)
    values = info.pop("values", None)
    for key in ("path", "format", "shape", "dtype", "layout"):
        value = info.pop(key)
        print(f"{key:<14}{'x'.join(map(str, value)) if key == 'shape' else value}")
    size, raw = info.pop("size_on_disk"), info.pop("uncompressed")
    for key, value in info.items():
        print(f"{key.replace('_', ' '):<14}{value}")
    print(f"{'size':<14}{format_bytes(size)} on disk ({format_bytes(raw)} uncompressed)")
    if values:
        print(f"{'values':<14}{_describe_values(values, info.get('levels', 1))}")
    if produced:
        _print_provenance(produced, args.path)
    return EXIT_OK


def _describe_values(values: dict[str, Any], levels: int) -> str:
    if values["level"] is None:
        return f"not summarised: {values['reason']}"
    share = values["nan"] / max(values["pixels"], 1)
    text = (
        "no value (all NaN)"
        if values["min"] is None
        else f"{values['min']:.6g} to {values['max']:.6g}"
    )
    text += f", {values['nan']} NaN ({share:.1%})"
    if values["level"]:
        factor = 2 ** values["level"]
        text += f" [pyramid level {values['level']}: {factor}x{factor} block averages or samples]"
    return text


def _print_provenance(produced: dict[str, Any], path: str) -> None:
    from pipeline.io.info import output_state

    state = output_state(path)
    print(f"{'written by':<14}pipeline {produced.get('version')} on {produced.get('created')}")
    print(f"{'state':<14}{state}")
    report = produced.get("report")
    if isinstance(report, dict):
        print(
            f"{'run':<14}{report.get('tasks')} tasks in {report.get('elapsed', 0):.2f} s "
            f"({report.get('megapixels_per_second', 0):.1f} Mpx/s) on {report.get('scheduler')}"
            f" with {report.get('workers')} workers"
        )
    if produced.get("config_file"):
        print(f"{'config':<14}{produced['config_file']}")
    config = produced.get("config")
    if config:
        import yaml

        text = yaml.safe_dump(config, sort_keys=False, default_flow_style=None).rstrip()
        for line in text.splitlines():
            print(f"{'':<14}{line}")

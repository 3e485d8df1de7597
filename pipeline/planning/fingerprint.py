"""What makes an output the output of one run: the identity of the inputs (path, size,
modification time), every step (function source, settings, halo, boundary, dtype), the output
layout and the package version. A resume must match it."""

from __future__ import annotations

import hashlib
import inspect
from typing import TYPE_CHECKING, Any

from pipeline.io import codec_label
from pipeline.ops import tokenize
from pipeline.ops.tree import steps

if TYPE_CHECKING:
    import dask.array as da

    from pipeline.ops import Node, StepNode

__all__ = ["fingerprint"]


def fingerprint(
    image: da.Array,
    root: Node | None,
    blocks: tuple[int, int],
    chunks: tuple[int, int],
    *,
    pyramid: int,
    downsample: str,
    ngff: str,
) -> dict[str, Any]:
    """The fingerprint of writing ``image`` (computed by ``root``) in these blocks, chunks
    and pyramid."""
    from pipeline import __version__

    return {
        "inputs": sorted(s.token for s in root.sources()) if root else [image.name],
        "steps": [_describe_step(step) for step in steps(root)],
        "layout": {
            "shape": list(image.shape),
            "dtype": str(image.dtype),
            "blocks": list(blocks),
            "chunks": list(chunks),
            "codec": codec_label(image.dtype),
            "pyramid": pyramid,
            "downsample": downsample,
            "ngff": ngff,
        },
        "version": __version__,
    }


def _describe_step(step: StepNode) -> dict[str, Any]:
    func = step.func
    target = getattr(func, "kernel", None)
    code = getattr(target, "func", None) or getattr(func, "func", None) or func
    settings = (
        dict(zip(target.parameter_names(), getattr(func, "params", ()), strict=False))
        if target is not None
        else step.params
    )
    finish = getattr(target, "finish", None)
    return {
        "function": step.label,
        "source": _source_digest(code) + (f"+{_source_digest(finish)}" if finish else ""),
        "params": repr(settings),
        "depth": list(step.depth),
        "boundary": str(step.boundary),
        "dtype": str(step.dtype),
    }


def _source_digest(func: Any) -> str:
    try:
        text = inspect.getsource(inspect.unwrap(func))
    except (OSError, TypeError):
        text = tokenize(func)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

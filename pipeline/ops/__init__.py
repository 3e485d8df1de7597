"""How user functions become block tasks: block programs, `apply`, and their dask graphs."""

from __future__ import annotations

from pipeline.ops.apply import apply
from pipeline.ops.nodes import (
    BLOCK_INFO_KEYWORD,
    ChunkedNode,
    Node,
    SourceNode,
    StepNode,
)
from pipeline.ops.program import (
    Program,
    as_dask,
    as_node,
    block_task,
    compute_window,
    program_for,
    program_of,
    source_array,
    to_dask,
    tokenize,
)
from pipeline.ops.registry import BUILTINS, FunctionSpec, resolve_function

__all__ = [
    "BLOCK_INFO_KEYWORD",
    "BUILTINS",
    "ChunkedNode",
    "FunctionSpec",
    "Node",
    "Program",
    "SourceNode",
    "StepNode",
    "apply",
    "as_dask",
    "as_node",
    "block_task",
    "compute_window",
    "program_for",
    "program_of",
    "resolve_function",
    "source_array",
    "to_dask",
    "tokenize",
]

"""What a refused resume says changed: each part of the fingerprint, in words."""

from __future__ import annotations

import copy
from typing import Any

from pipeline.runtime.resume import differences

BEFORE: dict[str, Any] = {
    "inputs": ["tiff:/data/dem.tif:0:100:1"],
    "steps": [
        {
            "function": "slope",
            "source": "abc",
            "params": "{}",
            "depth": [1, 1],
            "boundary": "nearest",
            "dtype": "float32",
        }
    ],
    "layout": {"shape": [10, 10], "chunks": [5, 5], "codec": "zstd level 1"},
    "version": "1.0",
}


def changed(**parts: Any) -> dict[str, Any]:
    after = copy.deepcopy(BEFORE)
    after.update(parts)
    return after


def test_the_same_fingerprint_has_no_differences() -> None:
    assert differences(BEFORE, copy.deepcopy(BEFORE)) == []


def test_every_changed_part_is_named() -> None:
    step = {**BEFORE["steps"][0], "source": "def", "params": "{'z': 2}"}
    after = changed(
        inputs=["tiff:/data/dem.tif:0:100:2"],
        steps=[step],
        layout={**BEFORE["layout"], "chunks": [10, 10]},
        version="1.1",
    )
    assert differences(BEFORE, after) == [
        "an input file changed (path, size or modification time)",
        "step 0 (slope) changed: its code, z 2 (new)",
        "the output chunks changed ([5, 5] -> [10, 10])",
        "pipeline changed from 1.0 to 1.1",
    ]


def test_a_step_added_is_counted() -> None:
    after = changed(steps=[*BEFORE["steps"], BEFORE["steps"][0]])
    assert differences(BEFORE, after) == ["the steps changed (1 before, 2 now)"]

"""Resuming an output: check that it is this run's, and find the blocks written and intact
(their chunks still match the checksums recorded when they were written)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.errors import ResumeError
from pipeline.io import (
    RunRecord,
    ZarrTarget,
    damaged_chunks,
    done_blocks,
    forget_block,
    open_target,
    read_record,
    sweep_partials,
    write_record,
)

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.io import Remote

__all__ = ["differences", "resume_output"]


def resume_output(
    target: Path | Remote, record: RunRecord
) -> tuple[ZarrTarget, set[tuple[int, int]], RunRecord]:
    """Check that ``target`` is this run's output, sweep interrupted writes, and find the
    blocks that are written and intact."""
    previous = read_record(target)
    if previous is None:
        msg = f"cannot resume {target}: it was not written by a pipeline run that can resume"
        raise ResumeError(msg)
    changes = differences(previous.fingerprint, record.fingerprint)
    if changes:
        msg = (
            f"cannot resume {target}: the run changed since it was started ({'; '.join(changes)}"
            "); run without --resume and with --overwrite to start again"
        )
        raise ResumeError(msg)
    sweep_partials(target)
    skip = set()
    for index, sums in done_blocks(target).items():
        if damaged_chunks(target, sums):
            forget_block(target, index)  # damaged since it was written: compute it again
        else:
            skip.add(index)
    previous.run_id, previous.resumed, previous.complete = record.run_id, record.created, False
    write_record(target, previous)
    return open_target(target, previous.run_id), skip, previous


def _change(field: str, old: Any, new: Any) -> str:
    """One changed field of a step, in words: a setting by its name where both are readable
    mappings of settings (``cell_size 30.0 -> 10.0``)."""
    if field == "source":
        return "its code"
    if field == "params":
        import ast

        try:
            before, after = ast.literal_eval(old), ast.literal_eval(new)
        except (ValueError, SyntaxError, TypeError):
            before = after = None
        if isinstance(before, dict) and isinstance(after, dict):
            changed = [
                f"{k} {before[k]} -> {after[k]}" if k in before else f"{k} {after[k]} (new)"
                for k in after
                if before.get(k, object()) != after[k]
            ]
            changed += [f"{k} {before[k]} (gone)" for k in before if k not in after]
            return ", ".join(changed)
    return f"{field} {old} -> {new}"


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What changed between two fingerprints, in words."""
    changes = []
    if old.get("inputs") != new["inputs"]:
        changes.append("an input file changed (path, size or modification time)")
    old_steps, new_steps = old.get("steps", []), new["steps"]
    if len(old_steps) != len(new_steps):
        changes.append(f"the steps changed ({len(old_steps)} before, {len(new_steps)} now)")
    else:
        for k, (a, b) in enumerate(zip(old_steps, new_steps, strict=True)):
            fields = [f for f in b if a.get(f) != b[f]]
            if fields:
                what = ", ".join(_change(f, a.get(f), b[f]) for f in fields)
                changes.append(f"step {k} ({b['function']}) changed: {what}")
    for key, value in new["layout"].items():
        if old.get("layout", {}).get(key) != value:
            changes.append(f"the output {key} changed ({old['layout'].get(key)} -> {value})")
    if old.get("version") != new["version"]:
        changes.append(f"pipeline changed from {old.get('version')} to {new['version']}")
    return changes

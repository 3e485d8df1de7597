"""Planning a run: every check before computing, the blocks, the memory model, the
fingerprint. `Plan.execute` hands the checked run to `pipeline.runtime`."""

from __future__ import annotations

from pipeline.planning.planner import Plan, RunOptions, plan, save

__all__ = ["Plan", "RunOptions", "plan", "save"]

"""The README's HPC example: the job script dask-jobqueue generates from it is the one the
README shows, line for line (no SLURM is needed to generate it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)
    found = [b for b in blocks if containing in b]
    assert found, f"the README has no {language} block with {containing!r}"
    return "\n".join(line.removeprefix("  ") for line in found[0].splitlines())


def test_the_slurm_job_script_is_what_the_readme_shows() -> None:
    pytest.importorskip("dask_jobqueue")
    example = _block("python", "SLURMCluster(")
    shown = _block("text", "#SBATCH").strip().splitlines()
    # The README's cluster, with its scheduler kept on loopback for the test.
    example = example.replace(
        'job_script_prologue=["source ~/venvs/pipeline/bin/activate"],  # the same pipeline',
        'job_script_prologue=["source ~/venvs/pipeline/bin/activate"],\n'
        '    scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},',
    )
    assert "scheduler_options" in example
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    cluster = namespace["cluster"]
    try:
        script = cluster.job_script().strip().splitlines()  # type: ignore[attr-defined]
    finally:
        cluster.close()  # type: ignore[attr-defined]
    assert script[:-1] == shown[:-1]  # the header, the #SBATCH lines and the prologue
    worker, expected = script[-1].split(), shown[-1].split()
    assert worker[1:3] == expected[1:3] == ["-m", "distributed.cli.dask_worker"]
    assert worker[3].startswith("tcp://127.0.0.1:")  # the scheduler's address
    flags = [w for w in worker[4:] if w not in ("--name", "dummy-name")]
    assert flags == expected[4:]

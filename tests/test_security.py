"""A config is code, but a run listens only on loopback and writes only its output."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.demo import write_dem
from pipeline.runtime import executor

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_cluster_started_for_a_run_listens_on_loopback_only() -> None:
    psutil = pytest.importorskip("psutil")
    with executor("distributed", 1) as ex:
        assert ex.dashboard is not None
        assert ex.dashboard.startswith("http://127.0.0.1:")
        assert ex.client.scheduler.address.startswith("tcp://127.0.0.1:")
        me = psutil.Process()
        listening = [
            conn.laddr
            for proc in [me, *me.children(recursive=True)]
            for conn in proc.net_connections(kind="inet")
            if conn.status == psutil.CONN_LISTEN
        ]
    assert listening, "the scheduler, its dashboard and the worker listen somewhere"
    assert {addr.ip for addr in listening} == {"127.0.0.1"}, listening


def test_a_run_writes_nothing_outside_its_output(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    write_dem(project / "dem.tif", (64, 80), tile=(32, 32))
    (project / "kernels.py").write_text("def double(dem):\n    return dem * 2\n")
    (project / "run.yaml").write_text(
        textwrap.dedent("""\
        input: dem.tif
        steps:
          - function: kernels.py:double
          - function: slope
        output: {path: results/out.zarr}
        """)
    )
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert main(["run", str(project / "run.yaml"), "--quiet"]) == 0
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    output = project / "results"
    changed = {p for p in after if p not in before or after[p] != before[p]}
    changed -= set(output.parents)  # making the output's folder touches its parent folder
    assert all(p == output or output in p.parents for p in changed), sorted(map(str, changed))
    assert not (project / "__pycache__").exists(), "no bytecode beside the config's code"


def test_the_readme_says_a_config_is_code() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "a config is code" in readme.lower()

"""Config loading and ``--set`` overrides: dotted keys, list indexes, YAML values."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.config.loader import apply_overrides, parse_override
from pipeline.errors import ConfigError

CONFIG = """\
input: dem.tif
steps:
  - function: slope
    params: {cell_size: 30}
output:
  path: out/slope.zarr
"""


def test_an_override_is_a_dotted_key_and_a_yaml_value() -> None:
    assert parse_override("steps.0.params.cell_size=10") == (
        ("steps", 0, "params", "cell_size"),
        10,
    )
    assert parse_override("output.chunks=[256, 512]") == (("output", "chunks"), [256, 512])
    assert parse_override("compute.workers=") == (("compute", "workers"), None)


@pytest.mark.parametrize("text", ["no-equals-sign", "=3"])
def test_an_override_without_a_key_is_refused_with_the_form(text: str) -> None:
    with pytest.raises(ConfigError, match=r"write KEY=VALUE, such as --set output.path="):
        parse_override(text)


def test_overrides_set_nested_keys_and_list_entries() -> None:
    data = {"steps": [{"function": "slope", "params": {"cell_size": 30}}], "output": {}}
    keys = apply_overrides(data, ["steps.0.params.cell_size=10", "output.pyramid=2", "a.b=c"])
    assert data["steps"][0]["params"]["cell_size"] == 10
    assert data["output"] == {"pyramid": 2}
    assert data["a"] == {"b": "c"}, "missing mappings are made on the way"
    assert keys == [("steps", 0, "params", "cell_size"), ("output", "pyramid"), ("a", "b")]


def test_an_entry_cannot_be_added_to_a_list_by_index() -> None:
    with pytest.raises(ConfigError, match=r"x.y.0: cannot set 0 here"):
        apply_overrides({}, ["x.y.0=1"])


def test_an_index_past_the_list_is_refused_with_its_length() -> None:
    data = {"steps": [{"function": "slope"}]}
    with pytest.raises(ConfigError, match="index 3 is out of range: there are 1 entries"):
        apply_overrides(data, ["steps.3.function=hillshade"])


def test_a_loaded_config_applies_overrides_and_validates_them(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    loaded = load_config(path, ["steps.0.params.cell_size=5", "output.pyramid=1"])
    assert loaded.config.steps[0].params == {"cell_size": 5}
    assert loaded.config.output.pyramid == 1
    assert loaded.base_dir == tmp_path
    with pytest.raises(ConfigError, match=r"output\.pyramid"):
        load_config(path, ["output.pyramid=many"])

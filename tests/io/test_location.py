"""Addresses on stores, apart from any server: what is remote, and what is never shown."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.io.location import Remote, as_location, is_remote, redact


@pytest.mark.parametrize(
    ("path", "remote"),
    [
        ("s3://bucket/dem.tif", True),
        ("gs://bucket/dem.zarr", True),
        ("az://container/dem.tif", True),
        ("https://example.org/cog.tif", True),
        ("HTTP://example.org/cog.tif", True),
        ("file:///tmp/dem.tif", False),  # a local file, read as one
        ("dem.tif", False),
        ("/data/s3://odd/name.tif", False),
        ("C:\\data\\dem.tif", False),
        (Path("s3:/bucket/x"), False),
    ],
)
def test_what_is_an_address(path: object, remote: bool) -> None:
    assert is_remote(path) is remote
    assert isinstance(as_location(path), Remote) is remote  # type: ignore[arg-type]


@given(secret=st.text(min_size=8, max_size=40).filter(lambda s: s.strip() == s and "'" not in s))
def test_options_travel_but_are_never_shown(secret: str) -> None:
    options = {"key": "AKIA-id", "secret": secret, "client_kwargs": {"region_name": "eu"}}
    address = Remote.of("s3://bucket/dem.tif/", options)
    assert str(address) == "s3://bucket/dem.tif" and secret not in repr(address)
    assert secret not in repr([address, address / "0", address.parent])
    travelled = pickle.loads(pickle.dumps(address))
    assert travelled == address and hash(travelled) == hash(address)
    assert dict(travelled.options)["secret"] == secret  # workers need them
    shown = redact({**options, "endpoint_url": "http://127.0.0.1:9000"})
    assert shown["secret"] == shown["key"] == "***"  # noqa: S105 - the mask, not a secret
    assert shown["endpoint_url"] == "http://127.0.0.1:9000"

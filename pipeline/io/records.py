"""What an output records about its own writing: the block ledger and the run's provenance.

The ledger is one small file per finished block under ``.pipeline/done/<array>/`` with the
CRC32 of each of the block's chunk files, written only after the block's write returned; a
resume trusts a block only if its record exists and its chunks still match. The provenance is
a :class:`RunRecord` in the group attribute ``"pipeline"``.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.io.location import Remote, zarr_store_of

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "DONE_DIR",
    "RECORD_ATTRIBUTE",
    "RunRecord",
    "checksum",
    "damaged_chunks",
    "done_blocks",
    "forget_block",
    "output_progress",
    "read_record",
    "record_block",
    "sweep_partials",
    "write_record",
]

DONE_DIR = ".pipeline/done"
"""Inside an output store: one small file per finished block (Zarr readers ignore it)."""
RECORD_ATTRIBUTE = "pipeline"
"""The group attribute that holds an output's :class:`RunRecord`."""
BlockSums = dict[str, int | None]
"""A block's chunk files (relative to the store) and their CRC32 (``None``: not on disk)."""


@dataclass
class RunRecord:
    """The provenance of an output: which run wrote it, from what, and whether it finished."""

    version: str
    """The version of `pipeline` that wrote it."""
    created: str
    """When the run started (UTC, ISO 8601)."""
    run_id: str
    """This writing of the output (a resume gets a new one)."""
    blocks: int
    """Blocks of the full-resolution level."""
    fingerprint: dict[str, Any]
    """What makes the output this run's (inputs, steps, layout); a resume must match it."""
    inputs: list[str] = field(default_factory=list)
    """Files read."""
    complete: bool = False
    """Every block of every level is written and recorded."""
    resumed: str | None = None
    """When the last resume started."""
    report: dict[str, Any] | None = None
    """The finished run's :class:`~pipeline.RunReport`, as a dict."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """What the caller gave to store with it (a CLI run: ``config`` and ``config_file``)."""

    def to_json(self) -> dict[str, Any]:
        """The attribute's value: the fields, with ``metadata``'s entries at the top level."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data.update(data.pop("metadata"))
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: Any) -> RunRecord | None:
        """The record in an attribute's value, or ``None`` if it is not one."""
        if not isinstance(data, dict) or "fingerprint" not in data:
            return None
        names = {f.name for f in dataclasses.fields(cls)} - {"metadata"}
        known = {k: v for k, v in data.items() if k in names}
        try:
            return cls(**known, metadata={k: v for k, v in data.items() if k not in names})
        except TypeError:  # a field missing: not a record this version can read
            return None


def read_record(path: Path | Remote) -> RunRecord | None:
    """The record of the output at ``path``; ``None`` if it has none (or is not a group)."""
    import zarr

    try:
        attrs = zarr.open_group(store=zarr_store_of(path), mode="r").attrs
    except Exception:
        return None
    return RunRecord.from_json(attrs.get(RECORD_ATTRIBUTE))


def write_record(path: Path | Remote, record: RunRecord) -> None:
    """Store ``record`` as the provenance of the output at ``path``."""
    import zarr

    group = zarr.open_group(store=zarr_store_of(path, read_only=False), mode="r+")
    group.attrs.update({RECORD_ATTRIBUTE: record.to_json()})


def output_progress(path: Path | Remote) -> tuple[int, int] | None:
    """``(blocks written, blocks in all)`` of an incomplete output, else ``None``."""
    record = read_record(path)
    if record is None or record.complete:
        return None
    return len(done_blocks(path)), record.blocks


# --------------------------------------------------------------------------- the ledger


def checksum(path: Path | Remote) -> int | None:
    """CRC32 of a file's bytes; ``None`` when it does not exist."""
    try:
        return zlib.crc32(path.read_bytes())
    except FileNotFoundError:
        return None


def _atomic_text(path: Path | Remote, text: str) -> None:
    if isinstance(path, Remote):
        path.write_text(text)  # one PUT: whole or absent
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    partial.write_text(text)
    partial.replace(path)


def _record_path(path: Path | Remote, array_path: str, index: tuple[int, int]) -> Path | Remote:
    return path / DONE_DIR / array_path / f"{index[0]}.{index[1]}"


def record_block(
    path: Path | Remote, array_path: str, index: tuple[int, int], sums: BlockSums
) -> None:
    """Record block ``index`` of an array as written, with its chunks' checksums."""
    _atomic_text(_record_path(path, array_path, index), json.dumps(sums))


def done_blocks(path: Path | Remote, array_path: str = "0") -> dict[tuple[int, int], BlockSums]:
    """Blocks of one array recorded as written in the output store at ``path``, with their
    checksums."""
    found: dict[tuple[int, int], BlockSums] = {}
    for name, text in _records(path / DONE_DIR / array_path).items():
        i, _, j = name.partition(".")
        try:
            sums = json.loads(text or b"")
            index = (int(i), int(j))
        except ValueError:
            continue  # an unreadable record: the block is done again
        if _well_formed(sums):
            found[index] = sums
    return found


def _records(folder: Path | Remote) -> dict[str, bytes | None]:
    """The block records in ``folder`` by name (``None``: unreadable). On a store they are
    fetched together, concurrently: one request each would take minutes for 10,000 blocks."""
    if isinstance(folder, Remote):
        return {k.rsplit("/", 1)[-1]: v for k, v in folder.read_many(folder.find()).items()}
    found: dict[str, bytes | None] = {}
    for marker in folder.iterdir() if folder.is_dir() else []:
        if not marker.name.endswith(".partial"):
            try:
                found[marker.name] = marker.read_bytes()
            except OSError:
                found[marker.name] = None
    return found


def _well_formed(sums: Any) -> bool:
    """A record maps chunk files to a CRC32 (or ``None``): anything else is damaged, and its
    block is done again."""
    return (
        isinstance(sums, dict)
        and bool(sums)
        and all(
            isinstance(k, str) and (v is None or (isinstance(v, int) and not isinstance(v, bool)))
            for k, v in sums.items()
        )
    )


def damaged_chunks(path: Path | Remote, sums: BlockSums) -> list[str]:
    """Chunk files of a recorded block whose content no longer matches its record (on a
    store: its chunk objects, fetched together)."""
    if isinstance(path, Remote):
        found = path.read_many(list(sums))
        stored = {k: None if v is None else zlib.crc32(v) for k, v in found.items()}
        return [key for key, crc in sums.items() if stored.get(key) != crc]
    return [key for key, crc in sums.items() if checksum(path / key) != crc]


def forget_block(path: Path | Remote, index: tuple[int, int], array_path: str = "0") -> None:
    """Drop the record of a block, so that it is computed again."""
    _record_path(path, array_path, index).unlink(missing_ok=True)


def sweep_partials(path: Path | Remote) -> int:
    """Delete the temporary files an interrupted write left in the store; return how many (on
    an object store, none: every object is written whole by one request)."""
    if isinstance(path, Remote):
        return 0
    swept = 0
    for leftover in path.rglob("*.partial"):
        if len(leftover.suffixes) >= 2 and len(leftover.suffixes[-2]) == 33:
            leftover.unlink(missing_ok=True)
            swept += 1
    return swept

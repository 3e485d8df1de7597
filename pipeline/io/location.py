"""Where an image lives when it is not a local file: an address on an object store or a web
server (``s3://``, ``gs://``, ``az://``, ``https://``), read through fsspec.

Credentials and endpoints come from where their libraries look (the environment, profiles,
``AWS_ENDPOINT_URL`` for S3-compatible servers); ``storage_options`` adds what those cannot
say. A `Remote` travels to workers with its options, but never shows them: messages, reprs,
tokens and records name the address only. Transient failures (5xx, throttling, dropped
connections) are retried with backoff by the store's own client (s3fs, gcsfs, adlfs); what
stays (a missing bucket, denied access) becomes one line naming the address and the fix.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import SourceNotFoundError, StorageAccessError, UnsupportedSourceError

if TYPE_CHECKING:
    import os
    from pathlib import Path

__all__ = [
    "REMOTE_SCHEMES",
    "Remote",
    "as_location",
    "is_remote",
    "is_store_failure",
    "redact",
    "zarr_store_of",
]

REMOTE_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "abfss", "http", "https")
"""Address schemes read through fsspec."""

READ_AHEAD = 256 * 1024
"""Bytes a read fetches at least (a header's small reads share one request); fsspec's
default of several MB would fetch most of a small image to read one tile of it."""

_PACKAGES = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}


def is_remote(path: object) -> bool:
    """Whether ``path`` is an address on a store (``scheme://...``) rather than a local path."""
    if isinstance(path, Remote):
        return True
    if not isinstance(path, str) or "://" not in path:
        return False
    return path.split("://", 1)[0].lower() in REMOTE_SCHEMES


_CLIENT_MODULES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "adlfs", "fsspec")


def is_store_failure(exc: BaseException) -> bool:
    """Whether ``exc`` came from reaching the store (the network, the server, its answer)
    rather than from the data read."""
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    return any(type(e).__module__.startswith(_CLIENT_MODULES) for e in _chain(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 8:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def as_location(
    path: str | os.PathLike[str] | Remote, storage_options: dict[str, Any] | None = None
) -> Path | Remote:
    """A local path (``~`` expanded) or, for an address, a `Remote` (with ``storage_options``
    if given)."""
    from pathlib import Path

    if isinstance(path, Remote):
        return Remote.of(path.url, storage_options) if storage_options else path
    if is_remote(path):
        return Remote.of(str(path), storage_options)
    return Path(path).expanduser()


def zarr_store_of(path: Path | Remote, *, read_only: bool = True) -> Any:
    """What zarr opens for the store at ``path``: a local path as it is, an address as a
    store over its filesystem."""
    return path.zarr_store(read_only=read_only) if isinstance(path, Remote) else str(path)


def redact(options: dict[str, Any] | None) -> dict[str, Any]:
    """``storage_options`` as they may be shown or recorded: every value hidden but those that
    are plainly not secret (an endpoint, a region, a flag)."""
    shown = {"endpoint_url", "region_name", "anon", "use_ssl", "requester_pays", "profile"}
    return {k: (v if k in shown else "***") for k, v in (options or {}).items()}


@dataclass(frozen=True)
class Remote:
    """An address on a store, with the options its filesystem needs (never shown)."""

    url: str
    """``scheme://bucket/key``."""
    options: tuple[tuple[str, Any], ...] = ()
    """``storage_options``, as sorted pairs (hashable; kept out of every message)."""

    @classmethod
    def of(cls, url: str | os.PathLike[str], options: dict[str, Any] | None = None) -> Remote:
        return cls(str(url).rstrip("/"), tuple(sorted((options or {}).items())))

    def __str__(self) -> str:
        return self.url

    def __hash__(self) -> int:  # options may hold dicts (client_kwargs)
        return hash((self.url, json.dumps(dict(self.options), sort_keys=True, default=repr)))

    def __repr__(self) -> str:
        return f"Remote({self.url!r})"

    @property
    def name(self) -> str:
        """The last part of the address."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def parent(self) -> Remote:
        return Remote(self.url.rsplit("/", 1)[0], self.options)

    def __truediv__(self, name: str) -> Remote:
        return Remote(f"{self.url}/{name}", self.options) if name else self

    def filesystem(self) -> Any:
        """The fsspec filesystem of the address (fsspec keeps one instance per options)."""
        import fsspec

        _quiet_abandoned_requests()
        scheme = self.url.split("://", 1)[0].lower()
        try:
            return fsspec.filesystem(scheme, **dict(self.options))
        except (ImportError, ValueError) as exc:
            package = _PACKAGES.get(scheme, "the fsspec filesystem for it")
            msg = (
                f"{self.url}: cannot reach {scheme}:// addresses ({exc}); install {package} "
                f"(pip install 'pipeline[cloud]')"
            )
            raise UnsupportedSourceError(msg) from exc

    def _ask(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``filesystem().method(url, ...)``; a failure, whatever the client raised, becomes
        one line (`failure`)."""
        try:
            return getattr(self._fs(), method)(self.url, *args, **kwargs)
        except Exception as exc:
            raise self.failure(exc) from exc

    def info(self) -> dict[str, Any]:
        """The object's size and version (ETag or modification time), or one clear error."""
        return dict(self._ask("info"))

    def exists(self) -> bool:
        return bool(self._ask("exists"))

    def version(self) -> int:
        """What changes when the object is rewritten (its ETag, else its time), as an int."""
        info = self.info()
        tag = info.get("ETag") or info.get("etag") or info.get("LastModified") or info.get("mtime")
        return int(hashlib.sha256(str(tag).encode()).hexdigest()[:15], 16)

    def open(self) -> Any:
        """The object as a seekable binary file: reads become range requests."""
        return self._ask("open", "rb", block_size=READ_AHEAD, cache_type="readahead")

    def size(self) -> int:
        """Bytes of the object, or of every object under the address."""
        return int(self._ask("du"))

    # The few operations of pathlib's `Path` that an output needs (its lock, ledger and
    # notes), so that that code works on both; they raise what fsspec raises
    # (FileNotFoundError, PermissionError, OSError), as pathlib would.

    @property
    def stem(self) -> str:
        return self.name.rsplit(".", 1)[0] if "." in self.name[1:] else self.name

    def absolute(self) -> Remote:
        return self

    def _fs(self) -> Any:
        """The filesystem, with every listing it cached forgotten: another process may have
        written since, and a stale listing makes fsspec report an object that exists as
        missing (forgetting this address alone keeps the listings of the prefixes under it)."""
        fs = self.filesystem()
        fs.invalidate_cache()
        return fs

    def is_dir(self) -> bool:
        """Whether objects exist under the address (a store has no empty folders)."""
        return bool(self._fs().isdir(self.url))

    def is_file(self) -> bool:
        return bool(self._fs().isfile(self.url))

    def iterdir(self) -> list[Remote]:
        return [self / entry.rstrip("/").rsplit("/", 1)[-1] for entry in self._entries()]

    def _entries(self) -> list[str]:
        try:
            return list(self._fs().ls(self.url, detail=False))
        except FileNotFoundError:
            return []

    def glob(self, pattern: str) -> list[Remote]:
        found = self._fs().glob(f"{self.url}/{pattern}")
        return [self / name.rsplit("/", 1)[-1] for name in found]

    def find(self) -> list[str]:
        """Every object under the address, relative to it."""
        root = self.url.split("://", 1)[-1]
        return [name[len(root) + 1 :] for name in self._fs().find(self.url)]

    def read_bytes(self) -> bytes:
        return bytes(self._fs().cat_file(self.url))

    def read_many(self, keys: list[str]) -> dict[str, bytes | None]:
        """The objects at ``keys`` (relative to the address), fetched concurrently; ``None``
        for one that does not exist."""
        if not keys:
            return {}
        root = self.url.split("://", 1)[-1]
        got = self._fs().cat([f"{self.url}/{k}" for k in keys], on_error="return")
        found: dict[str, bytes] = {}
        for name, value in got.items():
            if isinstance(value, FileNotFoundError):
                continue
            if isinstance(value, BaseException):
                raise value  # the store failing is not an object missing
            found[name.split("://", 1)[-1][len(root) + 1 :]] = bytes(value)
        return {k: found.get(k) for k in keys}

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_bytes(self, data: bytes) -> None:
        """Store ``data`` as the object, whole: a PUT is atomic, readers see the old object or
        the new one, so no temporary object and rename is needed (a store has no rename)."""
        self.filesystem().pipe_file(self.url, data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def create(self, data: bytes) -> bool:
        """Store ``data`` unless the object exists, as one conditional request (S3's
        ``If-None-Match: *``); ``False`` if it existed. Stores without conditional writes
        are checked first, which two runs starting at the same instant could both pass."""
        fs = self._fs()
        try:
            fs.pipe_file(self.url, data, mode="create")
        except FileExistsError:
            return False
        except TypeError:  # this filesystem has no conditional create
            if self.exists():
                return False
            fs.pipe_file(self.url, data)
        return True

    def unlink(self, *, missing_ok: bool = False) -> None:
        try:
            self._fs().rm_file(self.url)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def mkdir(self, *, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: a store has no folders (an object's key makes its prefixes)."""
        del parents, exist_ok

    def rmdir(self) -> None:
        """Nothing to do: a prefix without objects does not exist."""

    def remove_tree(self) -> None:
        """Delete every object under the address."""
        if self.is_dir():
            self._fs().rm(self.url, recursive=True)

    def stat(self) -> Any:
        """The object's size and modification time, as ``os.stat`` gives them."""
        import os

        info = self._fs().info(self.url)
        modified = info.get("LastModified") or info.get("mtime") or info.get("updated")
        when = modified.timestamp() if hasattr(modified, "timestamp") else float(modified or 0)
        size = int(info.get("size") or 0)
        return os.stat_result((0, 0, 0, 1, 0, 0, size, when, when, when))

    def zarr_store(self, *, read_only: bool = True) -> Any:
        """A zarr store over the address."""
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(
            self.url, storage_options=dict(self.options), read_only=read_only
        )

    def failure(self, exc: BaseException, *, writing: bool = False) -> Exception:
        """One line for a failure that retrying did not cure, with the fix (``writing``: it
        happened while writing an output here)."""
        text = f"{type(exc).__name__}: {exc}".lower()
        if isinstance(exc, FileNotFoundError) or "nosuchbucket" in text or "not found" in text:
            msg = f"{self.url}: no such object or bucket; check the address and the bucket"
            return SourceNotFoundError(msg)
        if isinstance(exc, PermissionError) or any(
            word in text
            for word in ("accessdenied", "forbidden", "invalidaccesskeyid", "signature")
        ):
            msg = (
                f"{self.url}: access denied ({_first_line(exc)}); check the credentials "
                "(AWS_ACCESS_KEY_ID / AWS_PROFILE, or storage_options) and that they may "
                f"{'write to' if writing else 'read'} it"
            )
            return StorageAccessError(msg)
        msg = (
            f"{self.url}: the store did not answer ({_first_line(exc)}), after the client's "
            "retries; check the endpoint (AWS_ENDPOINT_URL) and the network, then run again "
            "(a run that had begun: with --resume, which keeps the blocks written)"
        )
        return SourceNotFoundError(msg)


@functools.cache
def _quiet_abandoned_requests() -> None:
    """Keep asyncio from printing "Task exception was never retrieved" with a traceback for a
    request of the store's client that failed after the client had given up on it (the
    connection was closing): beside the one line a failed run prints, it is only noise."""
    import logging

    class Abandoned(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            exc = record.exc_info[1] if record.exc_info else None
            abandoned = str(record.msg).startswith("Task exception was never retrieved")
            return not (abandoned and exc is not None and is_store_failure(exc))

    logging.getLogger("asyncio").addFilter(Abandoned())


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]

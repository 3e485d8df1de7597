"""``python -m pipeline``: the same as the ``pipeline`` command."""

from __future__ import annotations

from pipeline.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

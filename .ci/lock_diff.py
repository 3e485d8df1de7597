"""Print which installed versions (``pip freeze`` on stdin) differ from the lock's lines for this
Python and platform: what .ci/latest tests that CI does not."""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def locked(path: str) -> dict[str, str]:
    pins = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        if requirement.marker is None or Marker(str(requirement.marker)).evaluate():
            pins[canonicalize_name(requirement.name)] = str(requirement.specifier).lstrip("=")
    return pins


def main() -> None:
    pins = locked(sys.argv[1])
    changed = 0
    for line in sys.stdin:
        name, _, version = line.strip().partition("==")
        key = canonicalize_name(name)
        if version and pins.get(key) != version:
            print(f"  {name} {pins.get(key, '(not locked)')} -> {version}")
            changed += 1
    print(f"  {changed} package(s) differ" if changed else "  none: the lock is the newest")


if __name__ == "__main__":
    main()

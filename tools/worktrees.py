"""Commits checked out side by side in temporary git worktrees, for the before/after tools."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def checkouts(refs: Mapping[str, str | None]) -> Iterator[dict[str, Path]]:
    """A directory per side: the ref checked out in a temporary worktree, or this checkout as
    it is where the ref is None; the worktrees are removed on exit."""
    with tempfile.TemporaryDirectory(prefix="tagtrail-ab-") as tmp:
        trees = {side: Path(tmp) / side if ref else ROOT for side, ref in refs.items()}
        added = [side for side, ref in refs.items() if ref]
        try:
            for side in added:
                subprocess.run(
                    ["git", "worktree", "add", "--detach", str(trees[side]), str(refs[side])],
                    cwd=ROOT, check=True, capture_output=True,
                )  # fmt: skip
            yield trees
        finally:
            for side in added:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(trees[side])],
                    cwd=ROOT, check=False, capture_output=True,
                )  # fmt: skip

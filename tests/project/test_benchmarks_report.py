"""The benchmark report's machine section (the benchmarks themselves print numbers, not verdicts)."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

import pytest

bench_main = importlib.import_module("benchmarks.__main__")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def clean_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a\n")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "a")
    monkeypatch.setattr(bench_main, "REPO_ROOT", tmp_path)
    return tmp_path


def test_a_clean_checkout_is_reported_as_not_dirty(clean_repo: Path) -> None:
    # `git status --porcelain` prints nothing on a clean tree: that is "", not a crash.
    commit = bench_main.machine()["git_commit"]
    assert len(commit) >= 7
    assert "uncommitted" not in commit


def test_a_changed_file_is_reported_as_dirty(clean_repo: Path) -> None:
    (clean_repo / "a.txt").write_text("b\n")
    assert bench_main.machine()["git_commit"].endswith(" (with uncommitted changes)")

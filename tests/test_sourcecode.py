"""The code stays typed and linted: mypy --strict and ruff run as part of the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_mypy_strict(repo_root: Path) -> None:
    result = run("mypy", cwd=repo_root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_lint(repo_root: Path) -> None:
    result = run("ruff", "check", "service", "tests", "benchmarks", "loadtest", cwd=repo_root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format(repo_root: Path) -> None:
    result = run("ruff", "format", "--check", "service", "tests", "benchmarks", cwd=repo_root)
    assert result.returncode == 0, result.stdout + result.stderr

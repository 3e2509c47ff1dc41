"""callguard as a wheel or a container installs it: built, installed into a fresh venv with no
view of this checkout, and started on a data dir of its own, so the schema it applies is the
one shipped in the package."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import NUMBER, Cli, free_port, fresh_data_dir

pytestmark = pytest.mark.slow

BUILD_TIMEOUT = 300.0


def _run(*argv: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the sources pip would see (no build files in the
    checkout); built with this environment's setuptools, as nothing is fetched in tests."""
    repo = Path(__file__).resolve().parent.parent
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, source / name)
    shutil.copytree(
        repo / "service", source / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path_factory.mktemp("wheels")
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        wheels,
        source,
    )
    [built] = wheels.glob("callguard-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed. Its dependencies come from this environment's
    site-packages through a .pth file, which adds those directories but runs none of their
    own .pth files: the editable install of this checkout stays invisible."""
    root = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", root)
    python = root / "bin" / "python"
    purelib = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    )
    (purelib / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel)
    return root


def test_the_wheel_holds_the_callguard_package_with_its_schema(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "callguard/schema.sql" in names
    # The pages' templates and files are package data too.
    assert "callguard/web/templates/base.html" in names
    assert "callguard/web/templates/admin/base.html" in names
    assert "callguard/web/static/style.css" in names and "callguard/web/static/app.js" in names
    assert "callguard/__main__.py" in names
    assert not [name for name in names if name.startswith("service/")]


def test_the_installed_package_is_the_wheels_not_the_checkout(venv: Path) -> None:
    where = _run(venv / "bin" / "python", "-c", "import callguard; print(callguard.__file__)")
    assert Path(where.strip()).is_relative_to(venv)
    assert "usage: callguard" in _run(venv / "bin" / "python", "-m", "callguard", "--help")


@pytest.fixture
def installed(venv: Path, tmp_path: Path) -> Iterator[Cli]:
    """The installed `callguard` script on a data dir that does not exist yet."""
    with fresh_data_dir() as data_dir:
        yield Cli([str(venv / "bin" / "callguard")], data_dir, tmp_path)


def test_the_installed_service_applies_its_schema_and_answers(installed: Cli) -> None:
    with installed.serve(free_port()) as server:  # the first serve makes the database
        key = installed.create_key("client")
        status, answer = server.request("GET", f"/v1/numbers/{NUMBER}", key)
        assert (status, answer["verdict"]) == (200, "unknown")
        status, created = server.request(
            "POST",
            "/v1/reports",
            key,
            {"number": NUMBER, "reporter": "r1", "category": "fake_recruitment"},
        )
        assert status == 201, created
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with no_proxy.open(f"{server.url}/so/{NUMBER}", timeout=5) as response:
            page = response.read().decode()
        assert 'data-verdict="suspicious"' in page  # the templates, from the wheel

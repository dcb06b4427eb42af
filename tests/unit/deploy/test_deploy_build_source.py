"""deploy/build_source.py lays out a source Cloud Run functions' Python buildpack accepts."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.unit.deploy import infra

build_source = infra.load_builder()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("build")
    assert build_source.main(["--out", str(out / "src"), "--zip", str(out / "src.zip")]) == 0
    return out / "src", out / "src.zip"


def test_the_source_has_main_py_packages_and_requirements(built: tuple[Path, Path]) -> None:
    source, _ = built
    assert (source / "main.py").is_file() and (source / "requirements.txt").is_file()
    assert (source / "functions" / "main.py").is_file() and (source / "shared" / "config.py").is_file()
    assert not list(source.rglob("__pycache__")) and not list(source.rglob("*.pyc"))
    assert not (source / "tests").exists() and not (source / "deploy").exists()


def test_main_py_exposes_every_entry_point_from_the_copied_packages(built: tuple[Path, Path]) -> None:
    source, _ = built
    script = (
        "import main, functions.main, shared\n"
        "print(sorted(main.__all__))\n"
        "print(all(callable(getattr(main, n)) for n in main.__all__))\n"
        "print(shared.__file__)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=source, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    names, callable_, shared_file = result.stdout.splitlines()
    assert names == str(sorted(infra.code_entry_points()))
    assert callable_ == "True"
    assert Path(shared_file).resolve().is_relative_to(source.resolve())  # the copy, not the checkout


def test_requirements_pin_every_runtime_dependency(built: tuple[Path, Path]) -> None:
    source, _ = built
    lines = [line for line in (source / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert all("==" in line for line in lines), lines
    with (infra.ROOT / "pyproject.toml").open("rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    pinned = {build_source.normalize(line.split("==")[0]) for line in lines}
    for spec in dependencies:
        assert build_source.normalize(build_source.parse_requirement(spec).name) in pinned, spec
    assert "pytest" not in pinned and "checkov" not in pinned  # dev tools stay out
    assert "grpcio" in pinned  # a dependency of a dependency is pinned too


def test_the_zip_is_reproducible_and_complete(built: tuple[Path, Path], tmp_path: Path) -> None:
    source, archive = built
    again = tmp_path / "again.zip"
    build_source.write_zip(source, again)
    assert archive.read_bytes() == again.read_bytes()
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
    assert {"main.py", "requirements.txt", "functions/main.py", "shared/config.py"} <= names


def test_a_main_py_without_entry_points_is_refused(tmp_path: Path) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "main.py").write_text("def helper() -> None:\n    pass\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = []\n')
    with pytest.raises(build_source.BuildError, match="no functions_framework entry point"):
        build_source.assemble(tmp_path, tmp_path / "out")


def test_a_dependency_missing_from_the_environment_is_refused() -> None:
    with pytest.raises(build_source.BuildError, match="not installed"):
        build_source.pin([build_source.parse_requirement("surely-not-installed-package-xyz>=1")])

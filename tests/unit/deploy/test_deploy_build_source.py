"""deploy/build_source.py lays out a source Cloud Run functions' Python buildpack accepts."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.unit.deploy.terraform.functions import code_entry_points, load_builder
from tests.unit.deploy.terraform.paths import ROOT

build_source = load_builder()


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
    assert names == str(sorted(code_entry_points()))
    assert callable_ == "True"
    assert Path(shared_file).resolve().is_relative_to(source.resolve())  # the copy, not the checkout


def requirement_entries(text: str) -> list[str]:
    """pip's logical lines of a requirements file: continuation lines joined, comment lines dropped."""
    joined = text.replace("\\\n", " ")
    return [
        " ".join(line.split()) for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def key(spec: str) -> str:
    return str(build_source.normalize(build_source.parse_requirement(spec).name))


def pins_of(lock_text: str) -> dict[str, str]:
    """Normalized name -> the whole entry (requirement and hashes)."""
    return {str(build_source.normalize(entry.split("==")[0])): entry for entry in requirement_entries(lock_text)}


def test_requirements_pin_every_runtime_dependency_with_hashes(built: tuple[Path, Path]) -> None:
    source, _ = built
    entries = requirement_entries((source / "requirements.txt").read_text())
    # pip's hash-checking mode is all or nothing: every requirement pinned with == and hashed.
    assert entries and all("==" in e and " --hash=sha256:" in e for e in entries), entries
    with (ROOT / "pyproject.toml").open("rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    pinned = pins_of((source / "requirements.txt").read_text())
    assert [spec for spec in dependencies if key(spec) not in pinned] == []
    assert "pytest" not in pinned and "checkov" not in pinned  # dev tools stay out
    assert "grpcio" in pinned  # a dependency of a dependency is pinned too


def test_the_functions_get_the_versions_make_install_installs(built: tuple[Path, Path]) -> None:
    source, _ = built
    shipped = pins_of((source / "requirements.txt").read_text())
    installed = pins_of((ROOT / "requirements-dev.lock").read_text())
    assert shipped == pins_of((ROOT / "requirements.lock").read_text())
    assert {name: entry for name, entry in shipped.items() if installed.get(name) != entry} == {}


def test_the_locks_cover_pyproject() -> None:
    """A dependency added to pyproject.toml without `make lock` fails here (and `make install` skips it)."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        pyproject = tomllib.load(handle)
    wanted = list(pyproject["project"]["dependencies"])
    for extra in pyproject["project"].get("optional-dependencies", {}).values():
        wanted += extra
    locked = pins_of((ROOT / "requirements-dev.lock").read_text())
    assert [spec for spec in wanted if key(spec) not in locked] == [], "run `make lock`"
    backend = pins_of((ROOT / "requirements-build.lock").read_text())
    assert [spec for spec in pyproject["build-system"]["requires"] if key(spec) not in backend] == []


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


def write_project(root: Path, dependencies: list[str], lock: str) -> None:
    (root / "functions").mkdir()
    (root / "functions" / "main.py").write_text(
        "import functions_framework\n\n\n@functions_framework.http\ndef on_call(request):\n    return ''\n"
    )
    (root / "pyproject.toml").write_text(f'[project]\nname = "x"\ndependencies = {dependencies!r}\n')
    (root / "requirements.lock").write_text(lock)


LOCKED_SIX = "# a comment\nsix==1.17.0 \\\n    --hash=sha256:aaaa \\\n    --hash=sha256:bbbb\n    # via x\n"


def test_the_lock_is_copied_with_its_hashes(tmp_path: Path) -> None:
    write_project(tmp_path, ["six>=1", "tomli>=2; python_version < '3.11'"], LOCKED_SIX)
    assert build_source.assemble(tmp_path, tmp_path / "out") == ["on_call"]
    text = (tmp_path / "out" / "requirements.txt").read_text()
    assert requirement_entries(text) == ["six==1.17.0 --hash=sha256:aaaa --hash=sha256:bbbb"]


def test_a_dependency_missing_from_the_lock_is_refused(tmp_path: Path) -> None:
    write_project(tmp_path, ["six>=1", "surely-not-locked-xyz>=1"], LOCKED_SIX)
    with pytest.raises(build_source.BuildError, match=r"does not pin surely-not-locked-xyz; run `make lock`"):
        build_source.assemble(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("lock", ["six==1.17.0\n", "six>=1.17 --hash=sha256:aaaa\n", "--index-url https://x\n", None])
def test_a_lock_without_pins_and_hashes_is_refused(tmp_path: Path, lock: str | None) -> None:
    write_project(tmp_path, ["six>=1"], lock or "")
    if lock is None:
        (tmp_path / "requirements.lock").unlink()
    with pytest.raises(build_source.BuildError, match="make lock"):
        build_source.assemble(tmp_path, tmp_path / "out")

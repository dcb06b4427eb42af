#!/usr/bin/env python3
"""Assemble the source Cloud Run functions build: build/function-source/ and its zip.

Cloud Run functions' Python buildpack wants `main.py` at the root of the source and a
`requirements.txt` next to it. This repository keeps the entry points in `functions/main.py` and the
code in `shared/`, with its runtime dependencies in pyproject.toml, locked with hashes in
requirements.lock (`make lock`). This script lays out:

    build/function-source/
        main.py            re-exports the entry points of functions/main.py (generated)
        functions/         copied from the repository
        shared/            copied from the repository (package data included)
        requirements.txt   requirements.lock: pyproject.toml [project].dependencies and everything they
                           pull in, each pinned with the hashes of its files (pip checks them all)
    build/function-source.zip   the same, zipped reproducibly (same input, same bytes)

requirements.lock holds the versions of requirements-dev.lock, which `make install` installs: production
runs the versions the tests ran against, whatever environment runs this script:

    .venv/bin/python deploy/build_source.py

Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("functions", "shared")
SKIPPED_DIRS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold: the archive does not depend on mtimes
FUNCTION_DECORATOR_MODULE = "functions_framework"
RUNTIME_LOCK = "requirements.lock"

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_COMMENT = re.compile(r"(^|\s)#.*$")  # pip's rule: a comment starts a line or follows whitespace
_HASH_OPTION = "--hash="


class BuildError(Exception):
    """The source cannot be assembled; the message says why."""


def normalize(name: str) -> str:
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Requirement:
    name: str
    extras: frozenset[str] = frozenset()
    marker: str = ""


def parse_requirement(spec: str) -> Requirement:
    body, _, marker = spec.partition(";")
    match = _REQUIREMENT.match(body)
    if match is None:
        raise BuildError(f"cannot read the requirement {spec!r}")
    extras = frozenset(normalize(e) for e in (match.group(2) or "").split(",") if e.strip())
    return Requirement(match.group(1), extras, marker.strip())


def runtime_dependencies(pyproject: Path) -> list[Requirement]:
    """The [project].dependencies of pyproject.toml (not the optional extras)."""
    with pyproject.open("rb") as handle:
        project = tomllib.load(handle).get("project", {})
    return [parse_requirement(spec) for spec in project.get("dependencies", [])]


@dataclass(frozen=True)
class LockedRequirement:
    """One entry of a lock file: `name==version` (with any marker) and the hashes of its files."""

    requirement: str
    hashes: tuple[str, ...]

    @property
    def key(self) -> str:
        return normalize(parse_requirement(self.requirement).name)

    def render(self) -> str:
        """The entry as pip reads it, one hash per continuation line."""
        return " \\\n    ".join([self.requirement, *(f"{_HASH_OPTION}{digest}" for digest in self.hashes)])


def _entries(text: str) -> Iterator[str]:
    """The logical lines of a requirements file: comments dropped, continuation lines joined."""
    parts: list[str] = []
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw).strip()
        parts.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            entry = " ".join(part for part in parts if part)
            parts = []
            if entry:
                yield entry
    if any(parts):
        yield " ".join(part for part in parts if part)


def read_lock(lock: Path) -> dict[str, LockedRequirement]:
    """The entries of a hashed lock file by normalized name; every entry must be pinned and hashed."""
    if not lock.is_file():
        raise BuildError(f"{lock.name} is missing; run `make lock`")
    locked: dict[str, LockedRequirement] = {}
    for entry in _entries(lock.read_text()):
        requirement, *hashes = (part.strip() for part in entry.split(_HASH_OPTION))
        if requirement.startswith("-") or "==" not in requirement or not hashes:
            raise BuildError(f"{lock.name}: {entry!r} is not a pinned requirement with hashes; run `make lock`")
        found = LockedRequirement(requirement, tuple(hashes))
        locked[found.key] = found
    return locked


def locked_runtime(
    requirements: Iterable[Requirement], lock: Path
) -> tuple[list[LockedRequirement], list[LockedRequirement]]:
    """The lock's entries split into (the requirements themselves, what they pull in), each sorted.

    A requirement with an environment marker may be absent (its marker does not hold on the functions'
    Python 3.11 Linux); any other requirement the lock lacks means the lock is older than pyproject.toml.
    """
    locked = read_lock(lock)
    direct: set[str] = set()
    for requirement in requirements:
        key = normalize(requirement.name)
        if key in locked:
            direct.add(key)
        elif not requirement.marker:
            raise BuildError(f"{lock.name} does not pin {requirement.name}; run `make lock`")
    ordered = sorted(locked)
    return [locked[k] for k in ordered if k in direct], [locked[k] for k in ordered if k not in direct]


def requirements_txt(direct: Sequence[LockedRequirement], pulled_in: Sequence[LockedRequirement]) -> str:
    return (
        f"# Generated by deploy/build_source.py from {RUNTIME_LOCK} (`make lock`): pyproject.toml\n"
        "# [project].dependencies (first block) and their dependencies (second block), each with the hashes\n"
        "# of its files, so pip installs exactly what the tests ran against.\n"
        + "".join(f"{entry.render()}\n" for entry in direct)
        + "\n"
        + "".join(f"{entry.render()}\n" for entry in pulled_in)
    )


def entry_points(main_py: Path) -> list[str]:
    """Module-level functions of functions/main.py decorated by functions_framework."""
    tree = ast.parse(main_py.read_text(), filename=str(main_py))
    names: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == FUNCTION_DECORATOR_MODULE
            ):
                names.append(node.name)
    return sorted(names)


def shim(names: Sequence[str]) -> str:
    listed = ", ".join(names)
    quoted = ", ".join(f'"{name}"' for name in names)
    return (
        '"""Entry points for Cloud Run functions, which loads main.py at the source root.\n\n'
        "Generated by deploy/build_source.py from functions/main.py; do not edit.\n"
        '"""\n\n'
        f"from functions.main import {listed}\n\n"
        f"__all__ = [{quoted}]\n"
    )


def _files(directory: Path) -> list[Path]:
    found: list[Path] = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part in SKIPPED_DIRS for part in relative.parts) or path.suffix in SKIPPED_SUFFIXES:
            continue
        if path.is_file():
            found.append(path)
    return found


def assemble(root: Path, out_dir: Path) -> list[str]:
    """Write the source tree into out_dir (replacing it); returns the entry points."""
    names = entry_points(root / "functions" / "main.py")
    if not names:
        raise BuildError("functions/main.py defines no functions_framework entry point")
    direct, pulled_in = locked_runtime(runtime_dependencies(root / "pyproject.toml"), root / RUNTIME_LOCK)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for package in PACKAGES:
        source = root / package
        for path in _files(source):
            target = out_dir / package / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    (out_dir / "main.py").write_text(shim(names))
    (out_dir / "requirements.txt").write_text(requirements_txt(direct, pulled_in))
    return names


def write_zip(source_dir: Path, archive: Path) -> None:
    """Zip source_dir with sorted entries, fixed dates and modes: identical input, identical bytes."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in _files(source_dir):
            info = zipfile.ZipInfo(path.relative_to(source_dir).as_posix(), date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, path.read_bytes())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    parser.add_argument("--out", type=Path, help="source directory (default: ROOT/build/function-source)")
    parser.add_argument("--zip", type=Path, dest="archive", help="archive (default: ROOT/build/function-source.zip)")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    out_dir: Path = args.out or root / "build" / "function-source"
    archive: Path = args.archive or root / "build" / "function-source.zip"
    try:
        names = assemble(root, out_dir)
    except BuildError as exc:
        print(f"build_source: {exc}", file=sys.stderr)
        return 1
    write_zip(out_dir, archive)
    print(f"{archive} ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

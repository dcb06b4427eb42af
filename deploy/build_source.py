#!/usr/bin/env python3
"""Assemble the source Cloud Run functions build: build/function-source/ and its zip.

Cloud Run functions' Python buildpack wants `main.py` at the root of the source and a
`requirements.txt` next to it. This repository keeps the entry points in `functions/main.py` and the
code in `shared/`, with its runtime dependencies in pyproject.toml. This script lays out:

    build/function-source/
        main.py            re-exports the entry points of functions/main.py (generated)
        functions/         copied from the repository
        shared/            copied from the repository (package data included)
        requirements.txt   pyproject.toml [project].dependencies and everything they pull in,
                           pinned to the versions installed in the environment running this script
    build/function-source.zip   the same, zipped reproducibly (same input, same bytes)

Run it with the project's virtualenv, so that production runs the versions the tests ran against:

    .venv/bin/python deploy/build_source.py

Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import re
import shutil
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("functions", "shared")
SKIPPED_DIRS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold: the archive does not depend on mtimes
FUNCTION_DECORATOR_MODULE = "functions_framework"

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


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


@dataclass
class Pins:
    top_level: dict[str, str] = field(default_factory=dict)  # normalized name -> "Name==version"
    everything: dict[str, str] = field(default_factory=dict)  # the top level and all it pulls in

    @property
    def transitive(self) -> dict[str, str]:
        return {key: line for key, line in self.everything.items() if key not in self.top_level}


def pin(requirements: Iterable[Requirement]) -> Pins:
    """Pin the requirements and their dependency closure to the installed versions.

    A dependency behind an extra is followed only when that extra was asked for. A dependency with
    another environment marker is followed when it is installed here (its marker held here) and
    skipped otherwise; a plain dependency that is not installed is an error.
    """
    pins = Pins()
    expanded: dict[str, frozenset[str]] = {}  # normalized name -> extras whose dependencies were followed
    pending: list[tuple[Requirement, bool]] = [(r, True) for r in requirements]
    while pending:
        requirement, top = pending.pop()
        key = normalize(requirement.name)
        try:
            dist = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            if requirement.marker:
                continue  # its marker does not hold in this environment
            raise BuildError(
                f"{requirement.name} is not installed in this environment; run `make install` and build with "
                ".venv/bin/python."
            ) from None
        line = f"{dist.metadata['Name']}=={dist.version}"
        pins.everything[key] = line
        if top:
            pins.top_level[key] = line
        done = expanded.get(key)
        if done is not None and requirement.extras <= done:
            continue
        extras = (done or frozenset()) | requirement.extras
        expanded[key] = extras
        for spec in dist.requires or []:
            child = parse_requirement(spec)
            wanted = {normalize(e) for e in _EXTRA_MARKER.findall(child.marker)}
            if wanted and not wanted & extras:
                continue
            pending.append((child, False))
    return pins


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
    pins = pin(runtime_dependencies(root / "pyproject.toml"))
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
    (out_dir / "requirements.txt").write_text(
        "# Generated by deploy/build_source.py: pyproject.toml [project].dependencies (first block) and\n"
        "# their dependencies (second block), pinned to the versions of the environment that built this.\n"
        + "\n".join(pins.top_level[k] for k in sorted(pins.top_level))
        + "\n\n"
        + "\n".join(line for _, line in sorted(pins.transitive.items()))
        + "\n"
    )
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

"""An offline `terraform validate` of references (the real one needs the providers, which cannot be
downloaded offline): var.X, local.X, resources, data sources, module outputs and module arguments.

Comments are not code: the checks read the parsed configuration, not the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.unit.deploy.terraform.paths import TERRAFORM
from tests.unit.deploy.terraform.tfmodel import (
    META_ARGUMENTS,
    Module,
    blocks,
    is_hcl2_key,
    load_module,
    module_dirs,
    parse_tf,
)

_VAR = re.compile(r"\bvar\.(\w+)")
_LOCAL = re.compile(r"\blocal\.(\w+)")
_RESOURCE = re.compile(r"(?<![\w.])(google(?:_[a-z0-9]+)+)\.([a-z_][a-z0-9_]*)")
_DATA = re.compile(r"\bdata\.(google(?:_[a-z0-9]+)+)\.(\w+)")
_MODULE_OUTPUT = re.compile(r"\bmodule\.(\w+)(?:\[[^\]]*\])?\.(\w+)")


@dataclass(frozen=True)
class Scope:
    """One module directory: what it declares, and its configuration as text to find references in."""

    where: Path  # relative to the Terraform root, for the messages
    module: Module
    data: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    code: str  # every block but the variable declarations (whose validations may name var.X freely)

    @classmethod
    def load(cls, directory: Path, root: Path) -> Scope:
        parsed = [parse_tf(p) for p in sorted(directory.glob("*.tf"))]
        code = json.dumps([{kind: body for kind, body in p.items() if kind != "variable"} for p in parsed])
        return cls(
            directory.relative_to(root),
            load_module(directory),
            blocks(directory, "data"),
            blocks(directory, "output"),
            code,
        )

    def referenced(self, pattern: re.Pattern[str]) -> list[Any]:
        """The distinct matches of a reference pattern, sorted."""
        return sorted(set(pattern.findall(self.code)))


def _undeclared_variables(scope: Scope) -> list[str]:
    declared = scope.module.variables
    return [f"{scope.where}: var.{name} is not declared" for name in scope.referenced(_VAR) if name not in declared]


def _undefined_locals(scope: Scope) -> list[str]:
    defined = scope.module.locals
    return [f"{scope.where}: local.{name} is not defined" for name in scope.referenced(_LOCAL) if name not in defined]


def _missing_resources(scope: Scope) -> list[str]:
    return [
        f"{scope.where}: {kind}.{name} is not a resource of this module"
        for kind, name in scope.referenced(_RESOURCE)
        if name not in scope.module.resources.get(kind, {})
    ]


def _missing_data_sources(scope: Scope) -> list[str]:
    return [
        f"{scope.where}: data.{kind}.{name} is not declared"
        for kind, name in scope.referenced(_DATA)
        if name not in scope.data.get(kind, {})
    ]


def _missing_module_outputs(scope: Scope) -> list[str]:
    problems: list[str] = []
    for call, output in scope.referenced(_MODULE_OUTPUT):
        if call not in scope.module.modules:
            problems.append(f"{scope.where}: module.{call} is not called here")
            continue
        target = _called(scope, call)
        if output not in blocks(target, "output"):
            problems.append(f"{scope.where}: module.{call} has no output {output}")
    return problems


def _module_argument_problems(scope: Scope) -> list[str]:
    """Each module call passes only variables the called module declares, and all it requires."""
    problems: list[str] = []
    for call, block in scope.module.modules.items():
        target = _called(scope, call)
        variables = load_module(target).variables
        arguments = {k for k in block if not is_hcl2_key(k)} - META_ARGUMENTS
        problems += [
            f"{scope.where}: module.{call} passes {name}, which {target.name} does not declare"
            for name in sorted(arguments - set(variables))
        ]
        problems += [
            f"{scope.where}: module.{call} does not pass the required variable {name}"
            for name in sorted(set(variables) - arguments)
            if "default" not in variables[name]
        ]
    return problems


def _outputs_without_value(scope: Scope) -> list[str]:
    return [f"{scope.where}: output {name} has no value" for name, body in scope.outputs.items() if "value" not in body]


def _called(scope: Scope, call: str) -> Path:
    target = scope.module.called_module(call)
    assert target is not None, f"{scope.where}: module.{call} has no source path"
    return target


CHECKS: tuple[Callable[[Scope], list[str]], ...] = (
    _undeclared_variables,
    _undefined_locals,
    _missing_resources,
    _missing_data_sources,
    _missing_module_outputs,
    _module_argument_problems,
    _outputs_without_value,
)


def reference_problems(root: Path = TERRAFORM) -> list[str]:
    """References that would not resolve, module by module."""
    problems: list[str] = []
    for directory in module_dirs(root):
        scope = Scope.load(directory, root)
        for check in CHECKS:
            problems += check(scope)
    return problems

"""The Terraform, read rather than planned (no providers offline).

hcl2 parses each file; a small evaluator resolves the few expression shapes the modules use (local.X,
var.X bound by the calling module, each.key / each.value[.X] of a for_each over a local map or a
variable, ${...} references inside a template). A module call's for_each and arguments are evaluated in
each instance of the calling module, and a root module's variables take their defaults unless a check
supplies values (an example `teams`). What it cannot resolve stays as written, or raises Unresolved
where a check needs the value, so the modules stay checkable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hcl2.api import load as load_hcl

from tests.unit.deploy.terraform.paths import TERRAFORM

_WHOLE_EXPRESSION = re.compile(r"^\$\{(.*)\}$", re.DOTALL)
_NAME = re.compile(r"\w+")
# Arguments of a module block that are Terraform's own, not the called module's variables.
META_ARGUMENTS = frozenset({"source", "for_each", "depends_on", "providers", "count"})


def tf_files(root: Path = TERRAFORM) -> list[Path]:
    return sorted(p for p in root.rglob("*.tf") if ".terraform" not in p.parts)


def module_dirs(root: Path = TERRAFORM) -> list[Path]:
    return sorted({p.parent for p in tf_files(root)})


def parse_tf(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        parsed: dict[str, Any] = load_hcl(handle)
    return parsed


def one(value: Any) -> Any:
    """hcl2 wraps every attribute of a block in a one-element list; unwrap it."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def is_hcl2_key(key: object) -> bool:
    """hcl2 adds keys such as __start_line__ to blocks; they are not Terraform's."""
    return str(key).startswith("__")


def blocks(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """The top-level blocks of one kind (module, data, output...) of a module, by name."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for group in parse_tf(path).get(kind, []):
            found.update(group)
    return found


@dataclass
class Module:
    path: Path
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # type -> name -> body
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, parsed: Mapping[str, Any]) -> None:
        """Take in the blocks of one parsed file."""
        for group in parsed.get("resource", []):
            for resource_type, named in group.items():
                self.resources.setdefault(resource_type, {}).update(named)
        for group in parsed.get("module", []):
            self.modules.update(group)
        for group in parsed.get("locals", []):
            self.locals.update({k: one(v) for k, v in group.items() if not is_hcl2_key(k)})
        for group in parsed.get("variable", []):
            self.variables.update(group)

    def called_module(self, call: str) -> Path | None:
        """The directory of the module a module block calls (None when its source is not a path)."""
        source = one(self.modules[call].get("source"))
        return (self.path / source).resolve() if isinstance(source, str) else None


def load_module(directory: Path) -> Module:
    module = Module(directory)
    for path in sorted(directory.glob("*.tf")):
        module.add(parse_tf(path))
    return module


def load_modules(root: Path = TERRAFORM) -> dict[Path, Module]:
    return {directory: load_module(directory) for directory in module_dirs(root)}


# ---------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Binding:
    """What an expression may refer to: the caller's arguments (var.X) and for_each's each."""

    variables: Mapping[str, Any] = field(default_factory=dict)
    each_key: str | None = None
    each_value: Any = None


class Unresolved(Exception):
    """An expression the evaluator does not understand."""


def evaluate(value: Any, module: Module, binding: Binding = Binding()) -> Any:
    """Resolve local.X, var.X (from the binding), each.key and each.value[.X]; leave other strings."""
    if isinstance(value, dict):
        return {k: evaluate(v, module, binding) for k, v in value.items() if not is_hcl2_key(k)}
    if isinstance(value, list):
        return [evaluate(v, module, binding) for v in value]
    expression = _whole_expression(value)
    if expression is None:
        return value
    return _resolve(expression, value, module, binding)


def _whole_expression(value: Any) -> str | None:
    """The inside of a string that is exactly one ${...} (nothing interpolated around or within it)."""
    match = _WHOLE_EXPRESSION.match(value) if isinstance(value, str) else None
    if match is None or "${" in match.group(1):
        return None
    return match.group(1).strip()


def _resolve(expression: str, written: str, module: Module, binding: Binding) -> Any:
    """The value of one reference; what the evaluator does not know stays as written."""
    kind, _, path = expression.partition(".")
    if kind == "local" and _NAME.fullmatch(path):
        if path not in module.locals:
            raise Unresolved(f"{module.path}: local.{path} is not defined")
        return evaluate(module.locals[path], module, binding)
    if kind == "var" and _NAME.fullmatch(path):
        return binding.variables.get(path, written)
    if kind == "each" and binding.each_key is not None:
        return _each(path, written, module, binding)
    return written


def _each(path: str, written: str, module: Module, binding: Binding) -> Any:
    """each.key, each.value or each.value.X of the for_each item the binding holds."""
    if path == "key":
        return binding.each_key
    if path == "value":
        return binding.each_value
    attribute = re.fullmatch(r"value\.(\w+)", path)
    if attribute is None:
        return written
    item = binding.each_value
    if not isinstance(item, Mapping) or attribute.group(1) not in item:
        raise Unresolved(f"{module.path}: each.{path} is not in the for_each item {item!r}")
    return item[attribute.group(1)]


def render(template: str, binding: Binding) -> str:
    """Substitute each.key / each.value.X inside a template string (e.g. a member address)."""
    if binding.each_key is None:
        return template

    def value_of(match: re.Match[str]) -> str:
        if match.group(0) == "each.key":
            return json.dumps(binding.each_key)
        if match.group(0) == "each.value":
            return json.dumps(binding.each_value) if isinstance(binding.each_value, str) else match.group(0)
        key = match.group(1)
        if isinstance(binding.each_value, Mapping) and key in binding.each_value:
            return json.dumps(binding.each_value[key])
        return match.group(0)

    return re.sub(r"each\.value\.(\w+)|each\.value|each\.key", value_of, template)


# ---------------------------------------------------------------------------- instances


def for_each_items(body: Mapping[str, Any], module: Module, binding: Binding = Binding()) -> list[Binding]:
    """One binding per instance of a block (one without each when there is no for_each)."""
    if "for_each" not in body:
        return [binding]
    items = evaluate(one(body["for_each"]), module, binding)
    if isinstance(items, list):
        items = {str(i): i for i in items}
    if not isinstance(items, Mapping):
        raise Unresolved(f"{module.path}: cannot enumerate for_each {one(body['for_each'])!r}")
    return [Binding(binding.variables, str(k), v) for k, v in items.items()]


def _defaults(module: Module | None) -> dict[str, Any]:
    """A module's variables that declare a default, with it."""
    if module is None:
        return {}
    return {name: one(body["default"]) for name, body in module.variables.items() if "default" in body}


def root_binding(module: Module, overrides: Mapping[str, Any] | None = None) -> Binding:
    """A root module's variables: their declared defaults, then the values a check supplies (a tfvars)."""
    return Binding({**_defaults(module), **(overrides or {})})


def callers(
    target: Path, modules: Mapping[Path, Module], root_variables: Mapping[str, Any] | None = None
) -> Iterator[tuple[str, Binding]]:
    """Each instantiation of the module in `target`: (address, arguments). A module call's for_each and
    arguments are evaluated in each instance of the calling module, so a for_each over a variable the
    root passes down (var.teams) has its items."""
    called = next((m for m in modules.values() if m.path.resolve() == target.resolve()), None)
    for module in modules.values():
        for name, block in module.modules.items():
            if module.called_module(name) != target.resolve():
                continue
            for _, outer in instances(module.path, modules, root_variables):
                for each in for_each_items(block, module, outer):
                    arguments = {
                        k: evaluate(one(v), module, each)
                        for k, v in block.items()
                        if k not in META_ARGUMENTS and not is_hcl2_key(k)
                    }
                    address = f"{name}[{each.each_key}]" if each.each_key is not None else name
                    # Like Terraform: a variable the call does not set has its declared default.
                    yield address, Binding({**_defaults(called), **arguments})


def instances(
    directory: Path, modules: Mapping[Path, Module], root_variables: Mapping[str, Any] | None = None
) -> list[tuple[str, Binding]]:
    """How a module is used: each call with its arguments (none for a call whose for_each is empty), or
    once as a root when nothing calls it."""
    called = any(m.called_module(name) == directory.resolve() for m in modules.values() for name in m.modules)
    if called:
        return list(callers(directory, modules, root_variables))
    return [(directory.name, root_binding(modules[directory], root_variables))]


@dataclass(frozen=True)
class ResourceInstance:
    """One instance of a resource block: in one instance of its module, for one item of its for_each."""

    module_address: str
    resource_type: str
    name: str
    body: Mapping[str, Any]
    module: Module
    each: Binding

    def value(self, attribute: Any) -> Any:
        """An attribute of the block (hcl2's list unwrapped), evaluated for this instance."""
        return evaluate(one(attribute), self.module, self.each)


def resource_instances(
    root: Path, wanted: Callable[[str], bool], root_variables: Mapping[str, Any] | None = None
) -> Iterator[ResourceInstance]:
    """Every instance of the resources whose type is wanted, across the modules under root; the root
    modules' variables take their defaults, overridden by root_variables."""
    modules = load_modules(root)
    for directory, module in modules.items():
        for resource_type, named in module.resources.items():
            if not wanted(resource_type):
                continue
            for name, body in named.items():
                for module_address, binding in instances(directory, modules, root_variables):
                    for each in for_each_items(body, module, binding):
                        yield ResourceInstance(module_address, resource_type, name, body, module, each)


_REFERENCE = re.compile(r"\$\{\s*((?:var|local)\.\w+|each\.key|each\.value(?:\.\w+)?)\s*\}")


def interpolate(template: Any, module: Module, binding: Binding) -> Any:
    """A template string with its ${var.X}, ${local.X} and ${each...} references replaced by their values
    (recursively, for locals that are templates themselves); other interpolations stay as written."""
    if not isinstance(template, str):
        return template

    def value_of(match: re.Match[str]) -> str:
        value = evaluate("${" + match.group(1) + "}", module, binding)
        return str(interpolate(value, module, binding)) if isinstance(value, str) else json.dumps(value)

    return _REFERENCE.sub(value_of, template)

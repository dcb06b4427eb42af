"""Offline checks of the deployment against the code: Terraform (parsed with hcl2), functions/main.py,
shared/ (parsed with ast) and the Firestore index catalog.

Every checker takes the paths it reads, so the tests can run it on a temporary copy with a deliberate
mismatch and see it complain. The Terraform is read, not planned (no providers offline): a small
evaluator resolves the few expression shapes the modules use (local.X, var.X bound by the calling
module, each.key / each.value.X of a for_each over a local map). An expression it cannot resolve is
reported, so the modules stay checkable.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import hcl2

from shared.adapters.firestore_store import QUERIES, QuerySpec
from shared.config import CommonSettings, Settings, settings_table

ROOT = Path(__file__).resolve().parents[3]
TERRAFORM = ROOT / "deploy" / "terraform"
INDEXES = TERRAFORM / "firestore_indexes.json"
FUNCTIONS_MAIN = ROOT / "functions" / "main.py"
STORE = ROOT / "shared" / "adapters" / "firestore_store.py"
CONFIG = ROOT / "shared" / "config.py"
CODE_DIRS = (ROOT / "shared", ROOT / "functions")

_EXPR = re.compile(r"^\$\{(.*)\}$", re.DOTALL)
_ROLE = re.compile(r"roles/[A-Za-z0-9_.]+")


# ============================================================================ Terraform reading


def tf_files(root: Path = TERRAFORM) -> list[Path]:
    return sorted(p for p in root.rglob("*.tf") if ".terraform" not in p.parts)


def parse_tf(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        parsed: dict[str, Any] = hcl2.load(handle)
    return parsed


def one(value: Any) -> Any:
    """hcl2 wraps every attribute of a block in a one-element list; unwrap it."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


@dataclass
class Module:
    path: Path
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # type -> name -> body
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: str = ""


def load_module(directory: Path) -> Module:
    module = Module(directory)
    for path in sorted(directory.glob("*.tf")):
        parsed = parse_tf(path)
        module.text += path.read_text()
        for group in parsed.get("resource", []):
            for rtype, named in group.items():
                for name, body in named.items():
                    module.resources.setdefault(rtype, {})[name] = body
        for group in parsed.get("module", []):
            module.modules.update(group)
        for group in parsed.get("locals", []):
            module.locals.update({k: one(v) for k, v in group.items() if not k.startswith("__")})
        for group in parsed.get("variable", []):
            module.variables.update(group)
    return module


def module_dirs(root: Path = TERRAFORM) -> list[Path]:
    return sorted({p.parent for p in tf_files(root)})


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
        return {k: evaluate(v, module, binding) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [evaluate(v, module, binding) for v in value]
    if not isinstance(value, str):
        return value
    match = _EXPR.match(value)
    if match is None or "${" in match.group(1):
        return value
    expr = match.group(1).strip()
    if expr.startswith("local.") and re.fullmatch(r"local\.\w+", expr):
        name = expr.split(".", 1)[1]
        if name not in module.locals:
            raise Unresolved(f"{module.path}: local.{name} is not defined")
        return evaluate(module.locals[name], module, binding)
    if re.fullmatch(r"var\.\w+", expr):
        name = expr.split(".", 1)[1]
        return binding.variables.get(name, value)
    if expr == "each.key" and binding.each_key is not None:
        return binding.each_key
    if expr == "each.value" and binding.each_key is not None:
        return binding.each_value
    found = re.fullmatch(r"each\.value\.(\w+)", expr)
    if found and binding.each_key is not None:
        if not isinstance(binding.each_value, Mapping) or found.group(1) not in binding.each_value:
            raise Unresolved(f"{module.path}: {expr} is not in the for_each item {binding.each_value!r}")
        return binding.each_value[found.group(1)]
    return value


def render(template: str, binding: Binding) -> str:
    """Substitute each.key / each.value.X inside a template string (e.g. a member address)."""
    if binding.each_key is None:
        return template

    def value_of(match: re.Match[str]) -> str:
        if match.group(0) == "each.key":
            return json.dumps(binding.each_key)
        key = match.group(1)
        if isinstance(binding.each_value, Mapping) and key in binding.each_value:
            return json.dumps(binding.each_value[key])
        return match.group(0)

    return re.sub(r"each\.value\.(\w+)|each\.key", value_of, template)


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


def callers(target: Path, modules: Mapping[Path, Module]) -> Iterator[tuple[str, Binding]]:
    """Each instantiation of the module in `target`: (address, arguments)."""
    for directory, module in modules.items():
        for name, block in module.modules.items():
            source = one(block.get("source"))
            if not isinstance(source, str) or (directory / source).resolve() != target.resolve():
                continue
            for each in for_each_items(block, module):
                arguments = {
                    k: evaluate(one(v), module, each)
                    for k, v in block.items()
                    if k not in ("source", "for_each", "depends_on", "providers") and not k.startswith("__")
                }
                address = f"{name}[{each.each_key}]" if each.each_key is not None else name
                yield address, Binding(arguments)


def instances(directory: Path, modules: Mapping[Path, Module]) -> list[tuple[str, Binding]]:
    """How a module is used: each call with its arguments, or once as a root."""
    found = list(callers(directory, modules))
    return found or [(directory.name, Binding())]


# ============================================================================ functions


@dataclass(frozen=True)
class DeployedFunction:
    address: str
    entry_point: Any
    environment: Any
    ingress: Any
    runtime: Any


def deployed_functions(root: Path = TERRAFORM) -> list[DeployedFunction]:
    modules = {d: load_module(d) for d in module_dirs(root)}
    found: list[DeployedFunction] = []
    for directory, module in modules.items():
        for name, body in module.resources.get("google_cloudfunctions2_function", {}).items():
            build = one(body.get("build_config", [{}]))
            service = one(body.get("service_config", [{}]))
            for address, binding in instances(directory, modules):
                for each in for_each_items(body, module, binding):
                    found.append(
                        DeployedFunction(
                            address=f"{address}.google_cloudfunctions2_function.{name}",
                            entry_point=evaluate(one(build.get("entry_point")), module, each),
                            environment=evaluate(one(service.get("environment_variables", [{}])), module, each),
                            ingress=evaluate(one(service.get("ingress_settings", ["ALLOW_ALL"])), module, each),
                            runtime=evaluate(one(build.get("runtime")), module, each),
                        )
                    )
    return found


def load_builder() -> ModuleType:
    """deploy/build_source.py, a script rather than a package module, loaded by path."""
    spec = importlib.util.spec_from_file_location("build_source", ROOT / "deploy" / "build_source.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_source"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def code_entry_points(main_py: Path = FUNCTIONS_MAIN) -> set[str]:
    """Module-level functions registered with a functions_framework decorator (the builder's own finder)."""
    return set(load_builder().entry_points(main_py))


def entry_point_mismatches(main_py: Path = FUNCTIONS_MAIN, root: Path = TERRAFORM) -> list[str]:
    deployed = deployed_functions(root)
    problems = [
        f"{f.address}: entry point {f.entry_point!r} is not a literal" for f in deployed if "${" in str(f.entry_point)
    ]
    deployed_names = {str(f.entry_point) for f in deployed}
    code = code_entry_points(main_py)
    problems += [
        f"{name} is deployed by Terraform but not defined in {main_py.name}" for name in sorted(deployed_names - code)
    ]
    problems += [
        f"{name} is defined in {main_py.name} but not deployed by Terraform" for name in sorted(code - deployed_names)
    ]
    return problems


# ============================================================================ environment variables

# Variables only the local stack and the emulators use; production never sets them.
LOCAL_ONLY_VARIABLES = frozenset(
    {
        "TUNEDROP_VERTEX_EMULATOR_HOST",  # the local Vertex AI emulator (deploy/local/vertex_emulator/)
        "TUNEDROP_STATE_DIR",  # where `tunedrop local up` keeps pids and logs
    }
)
LOCAL_ONLY_PATTERNS = (
    re.compile(
        r"^[A-Z0-9_]+_EMULATOR_HOST$"
    ),  # PUBSUB_/FIRESTORE_/STORAGE_EMULATOR_HOST: client libraries' emulator switch
    re.compile(r"^TUNEDROP_EMULATOR_[A-Z0-9_]+$"),  # knobs of the Vertex AI emulator
)
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_ENV_CONTAINERS = frozenset({"env", "environ", "environment"})


def local_only(name: str) -> bool:
    return name in LOCAL_ONLY_VARIABLES or any(p.match(name) for p in LOCAL_ONLY_PATTERNS)


def _is_environ(node: ast.expr) -> bool:
    """os.environ, environ, or a name conventionally bound to it (env, environ, environment)."""
    if isinstance(node, ast.Attribute) and node.attr == "environ":
        return True
    return isinstance(node, ast.Name) and node.id in _ENV_CONTAINERS


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ENV_NAME.match(node.value):
        return node.value
    return None


def _env_name(node: ast.AST) -> str | None:
    """The variable name when the node reads the environment with a literal name."""
    if isinstance(node, ast.Subscript) and _is_environ(node.value):
        return _literal(node.slice)
    if not (isinstance(node, ast.Call) and node.args):
        return None
    func, first = node.func, node.args[0]
    if isinstance(func, ast.Attribute):
        if func.attr in ("get", "setdefault", "pop") and _is_environ(func.value):
            return _literal(first)
        return _literal(first) if func.attr == "getenv" else None
    # getenv("X") and helpers named get...("X", ...).
    if isinstance(func, ast.Name) and (func.id == "getenv" or func.id.startswith("get")):
        return _literal(first)
    return None


def _settings_field_name(node: ast.AST) -> str | None:
    """The variable a settings field of shared/config.py reads: Field(..., validation_alias="X")."""
    if isinstance(node, ast.keyword) and node.arg == "validation_alias":
        return _literal(node.value)
    return None


def env_reads(paths: Iterable[Path]) -> dict[str, list[str]]:
    """Environment variables read by the code: name -> ["file:line", ...].

    Recognized: os.environ["X"], os.environ.get/setdefault/pop("X"), os.getenv("X"), the same on a
    name bound to the environment (env, environ), helpers named get...("X"), and the settings
    fields of shared/config.py (Field(..., validation_alias="X")).
    """
    found: dict[str, list[str]] = {}
    for path in paths:
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            tree = ast.parse(file.read_text(), filename=str(file))
            for node in ast.walk(tree):
                name = _env_name(node) or _settings_field_name(node)
                if name:
                    where = f"{file.relative_to(file.parents[1])}:{getattr(node, 'lineno', 0)}"
                    found.setdefault(name, []).append(where)
    return found


def settings_declared(model: type[CommonSettings] = Settings) -> dict[str, str | None]:
    """The fields of a settings model of shared/config.py: variable name -> default (None when required)."""
    return {setting.name: setting.default for setting in settings_table(model)}


def terraform_environment(root: Path = TERRAFORM) -> dict[str, set[str]]:
    """The environment variable names each deployed function gets."""
    result: dict[str, set[str]] = {}
    for function in deployed_functions(root):
        if not isinstance(function.environment, Mapping):
            raise Unresolved(f"{function.address}: cannot read its environment_variables {function.environment!r}")
        result[function.address] = set(function.environment)
    return result


def undeclared_environment(
    code_dirs: Iterable[Path] = CODE_DIRS, model: type[CommonSettings] = Settings, root: Path = TERRAFORM
) -> list[str]:
    """Variables the code reads (the settings model's fields among them) that a deployed function would
    not have, nor default."""
    settings = settings_declared(model)
    reads = {name: [f"{model.__name__} in shared/config.py"] for name in settings} | env_reads(code_dirs)
    problems: list[str] = []
    for address, names in sorted(terraform_environment(root).items()):
        for variable, where in sorted(reads.items()):
            if variable in names or local_only(variable):
                continue
            if settings.get(variable) is not None:
                continue  # not set, but the code has a default
            problems.append(f"{variable} (read at {', '.join(where)}) is not set for {address} and has no default")
        for variable in sorted(names - set(settings)):
            problems.append(f"{address} sets {variable}, which is not in shared/config.py SETTINGS (a typo?)")
    return problems


def unpassed_settings(model: type[CommonSettings] = Settings, root: Path = TERRAFORM) -> list[str]:
    """Settings of SETTINGS (other than local-only ones) that Terraform does not pass to a function.

    Stricter than undeclared_environment: a default is not enough, so that every knob of the code is a
    knob of the deployment (and a topic or bucket name never falls back to a resource that does not exist).
    """
    settings = settings_declared(model)
    return [
        f"{address} does not set {variable} (shared/config.py SETTINGS); pass it in modules/tunedrop/functions.tf"
        for address, names in sorted(terraform_environment(root).items())
        for variable in sorted(settings)
        if variable not in names and not local_only(variable)
    ]


# ============================================================================ Firestore indexes

_EQUALITY = frozenset({"==", "in", "array_contains", "array-contains", "array_contains_any", "array-contains-any"})


@dataclass(frozen=True)
class Query:
    where: str  # "FirestoreJobStore.<the QuerySpec's name>"
    collection: str
    filters: tuple[tuple[str, str], ...]  # (field, operator)
    orders: tuple[tuple[str, str], ...]  # (field, ASCENDING|DESCENDING)

    def composite_index(self) -> tuple[tuple[str, str], ...] | None:
        """The composite index the query needs, or None when single-field indexes serve it."""
        fields = {f for f, _ in self.filters} | {f for f, _ in self.orders}
        inequalities = [f for f, op in self.filters if op not in _EQUALITY]
        if len(fields) < 2 or not (self.orders or inequalities):
            return None
        index: list[tuple[str, str]] = []
        for path, direction in (
            [(f, "ASCENDING") for f, op in self.filters if op in _EQUALITY]
            + [(f, "ASCENDING") for f in inequalities if f not in {o for o, _ in self.orders}]
            + list(self.orders)
        ):
            if path not in {p for p, _ in index}:
                index.append((path, direction))
        return tuple(index)


def store_queries(specs: Iterable[QuerySpec] = QUERIES) -> list[Query]:
    """Every Firestore query of the store, from the table the store builds its queries from."""
    return [
        Query(f"FirestoreJobStore.{spec.name}", spec.collection, spec.filters, spec.orders)
        for spec in specs
        if spec.filters or spec.orders
    ]


def load_index_catalog(path: Path = INDEXES) -> dict[str, Any]:
    catalog: dict[str, Any] = json.loads(path.read_text())
    return catalog


def catalog_indexes(path: Path = INDEXES) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (index["collection"], tuple((f["field_path"], f["order"]) for f in index["fields"]))
        for index in load_index_catalog(path)["indexes"]
    }


def index_mismatches(specs: Iterable[QuerySpec] = QUERIES, catalog: Path = INDEXES) -> list[str]:
    needed: dict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = {}
    for query in store_queries(specs):
        index = query.composite_index()
        if index is not None:
            needed.setdefault((query.collection, index), []).append(query.where)
    declared = catalog_indexes(catalog)
    problems = [
        f"{', '.join(where)} needs the composite index {collection}: {list(fields)}, missing from {catalog.name}"
        for (collection, fields), where in sorted(needed.items())
        if (collection, fields) not in declared
    ]
    problems += [
        f"{catalog.name} declares {collection}: {list(fields)}, which no query of {STORE.name} needs"
        for collection, fields in sorted(declared - set(needed))
    ]
    return problems


# ============================================================================ IAM

PRIMITIVE_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
PROJECT_IAM_TYPES = frozenset({"google_project_iam_member", "google_project_iam_binding", "google_project_iam_policy"})


@dataclass(frozen=True)
class Grant:
    address: str
    resource_type: str
    role: str
    member: str


def grants(root: Path = TERRAFORM) -> list[Grant]:
    """Every IAM grant (resources named *_iam_member / *_iam_binding) with its role resolved."""
    modules = {d: load_module(d) for d in module_dirs(root)}
    found: list[Grant] = []
    for directory, module in modules.items():
        for rtype, named in module.resources.items():
            if not (rtype.endswith("_iam_member") or rtype.endswith("_iam_binding")):
                continue
            for name, body in named.items():
                for address, binding in instances(directory, modules):
                    for each in for_each_items(body, module, binding):
                        role = evaluate(one(body.get("role")), module, each)
                        members = one(body.get("member", body.get("members", [""])))
                        member = " ".join(members) if isinstance(members, list) else str(members)
                        found.append(
                            Grant(
                                f"{address}.{rtype}.{name}[{each.each_key}]",
                                rtype,
                                str(role),
                                render(member, each),
                            )
                        )
    return found


_CUSTOM_ROLE_REF = re.compile(r"\$\{google_project_iam_custom_role\.(\w+)(?:\[[^\]]*\])?\.(?:name|id)\}")
# Permissions that let a holder change access or act as another identity.
_RISKY_PERMISSIONS = (".setIamPolicy", ".actAs", ".getAccessToken", ".signBlob", ".signJwt", ".create_key")


def custom_role_permissions(root: Path = TERRAFORM) -> dict[str, list[str]]:
    """google_project_iam_custom_role resources by name: their permissions."""
    found: dict[str, list[str]] = {}
    for directory in module_dirs(root):
        module = load_module(directory)
        for name, body in module.resources.get("google_project_iam_custom_role", {}).items():
            found[name] = [str(p) for p in one(body["permissions"])]
    return found


def role_problems(root: Path = TERRAFORM) -> list[str]:
    problems: list[str] = []
    for path in tf_files(root):
        text = path.read_text()
        for role in sorted(set(_ROLE.findall(text)) & PRIMITIVE_ROLES):
            problems.append(f"{path.relative_to(root)} names the primitive role {role}")
        for public in ("allUsers", "allAuthenticatedUsers"):
            if f'"{public}"' in text or f":{public}" in text:
                problems.append(f"{path.relative_to(root)} grants something to {public}")
        for rtype in ("google_project_iam_binding", "google_project_iam_policy"):
            if f'"{rtype}"' in text:
                problems.append(f"{path.relative_to(root)} uses the authoritative {rtype}")
    custom = custom_role_permissions(root)
    for grant in grants(root):
        named = _CUSTOM_ROLE_REF.fullmatch(grant.role)
        if named and named.group(1) in custom:
            risky = [p for p in custom[named.group(1)] if p.endswith(_RISKY_PERMISSIONS)]
            if risky:
                problems.append(f"{grant.address} grants the custom role {named.group(1)} with {risky}")
        elif not grant.role.startswith("roles/") or "${" in grant.role:
            problems.append(f"{grant.address}: cannot tell which role {grant.role!r} is")
        elif grant.role in PRIMITIVE_ROLES:
            problems.append(f"{grant.address} grants the primitive role {grant.role}")
        elif grant.resource_type in PROJECT_IAM_TYPES and "admin" in grant.role.lower():
            problems.append(f"{grant.address} grants the admin role {grant.role} on the whole project")
    return problems


# ============================================================================ log messages


def log_messages(code_dirs: Iterable[Path] = CODE_DIRS) -> list[re.Pattern[str]]:
    """The messages of logs.info/warning/error(...) calls, as patterns (an f-string's fields match anything)."""
    patterns: list[re.Pattern[str]] = []
    for directory in code_dirs:
        for file in sorted(directory.rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                    continue
                if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "logs"):
                    continue
                if node.func.attr not in ("info", "warning", "error", "log"):
                    continue
                message = node.args[1] if node.func.attr == "log" and len(node.args) > 1 else node.args[0]
                if isinstance(message, ast.Constant) and isinstance(message.value, str):
                    patterns.append(re.compile(re.escape(message.value)))
                elif isinstance(message, ast.JoinedStr):
                    parts = [re.escape(str(v.value)) if isinstance(v, ast.Constant) else ".+" for v in message.values]
                    patterns.append(re.compile("".join(parts)))
    return patterns


def filter_messages(text: str) -> list[str]:
    """The jsonPayload.message values a logging filter compares with."""
    return re.findall(r'jsonPayload\.message\s*=\s*\\?"([^"\\]+)\\?"', text)


def unknown_log_messages(terraform_text: str, code_dirs: Iterable[Path] = CODE_DIRS) -> list[str]:
    patterns = log_messages(code_dirs)
    return [m for m in filter_messages(terraform_text) if not any(p.fullmatch(m) for p in patterns)]


# ============================================================================ references (offline validate)


def _blocks(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for group in parse_tf(path).get(kind, []):
            found.update(group)
    return found


def reference_problems(root: Path = TERRAFORM) -> list[str]:
    """References that would not resolve: var.X, local.X, module.M.OUTPUT, resources, module arguments.

    Comments are not code: the check reads the parsed configuration, not the text.
    """
    problems: list[str] = []
    for directory in module_dirs(root):
        module = load_module(directory)
        where = directory.relative_to(root)
        data = _blocks(directory, "data")
        outputs = _blocks(directory, "output")
        parsed = [parse_tf(p) for p in sorted(directory.glob("*.tf"))]
        blob = json.dumps([{k: v for k, v in p.items() if k not in ("variable",)} for p in parsed])
        for name in sorted(set(re.findall(r"\bvar\.(\w+)", blob)) - set(module.variables)):
            problems.append(f"{where}: var.{name} is not declared")
        for name in sorted(set(re.findall(r"\blocal\.(\w+)", blob)) - set(module.locals)):
            problems.append(f"{where}: local.{name} is not defined")
        for rtype, name in sorted(set(re.findall(r"(?<![\w.])(google(?:_[a-z0-9]+)+)\.([a-z_][a-z0-9_]*)", blob))):
            if name not in module.resources.get(rtype, {}):
                problems.append(f"{where}: {rtype}.{name} is not a resource of this module")
        for dtype, name in sorted(set(re.findall(r"\bdata\.(google(?:_[a-z0-9]+)+)\.(\w+)", blob))):
            if name not in data.get(dtype, {}):
                problems.append(f"{where}: data.{dtype}.{name} is not declared")
        for call, output in sorted(set(re.findall(r"\bmodule\.(\w+)(?:\[[^\]]*\])?\.(\w+)", blob))):
            if call not in module.modules:
                problems.append(f"{where}: module.{call} is not called here")
                continue
            target = (directory / one(module.modules[call]["source"])).resolve()
            if output not in _blocks(target, "output"):
                problems.append(f"{where}: module.{call} has no output {output}")
        for call, block in module.modules.items():
            target = (directory / one(block["source"])).resolve()
            variables = load_module(target).variables
            arguments = {k for k in block if not k.startswith("__")} - {
                "source",
                "for_each",
                "depends_on",
                "providers",
                "count",
            }
            for name in sorted(arguments - set(variables)):
                problems.append(f"{where}: module.{call} passes {name}, which {target.name} does not declare")
            for name in sorted(set(variables) - arguments):
                if "default" not in variables[name]:
                    problems.append(f"{where}: module.{call} does not pass the required variable {name}")
        for name, body in outputs.items():
            if "value" not in body:
                problems.append(f"{where}: output {name} has no value")
    return problems

"""Every environment variable the code reads is set by Terraform for each function, defaulted, or
local-stack-only; and Terraform sets only variables the settings model declares."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from shared.config import CommonSettings, Settings, settings_table
from tests.unit.deploy.terraform.functions import deployed_functions
from tests.unit.deploy.terraform.paths import CODE_DIRS, TERRAFORM
from tests.unit.deploy.terraform.tfmodel import Unresolved

# Variables only the local stack and the emulators use; production never sets them.
LOCAL_ONLY_VARIABLES = frozenset(
    {
        "TUNEDROP_VERTEX_EMULATOR_HOST",  # the local Vertex AI emulator (deploy/local/vertex_emulator/)
        "TUNEDROP_STATE_DIR",  # where `tunedrop local up` keeps pids and logs
        "TUNEDROP_OPERATOR",  # who runs the `tunedrop` command, where Google credentials name nobody
    }
)
LOCAL_ONLY_PATTERNS = (
    re.compile(r"^[A-Z0-9_]+_EMULATOR_HOST$"),  # PUBSUB_/FIRESTORE_/STORAGE_EMULATOR_HOST: the client libraries' switch
    re.compile(r"^TUNEDROP_EMULATOR_[A-Z0-9_]+$"),  # knobs of the Vertex AI emulator
)
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_ENV_CONTAINERS = frozenset({"env", "environ", "environment"})
_ENVIRON_READERS = frozenset({"get", "setdefault", "pop"})


def local_only(name: str) -> bool:
    return name in LOCAL_ONLY_VARIABLES or any(p.match(name) for p in LOCAL_ONLY_PATTERNS)


# ---------------------------------------------------------------------------- what the code reads


def _is_environ(node: ast.expr) -> bool:
    """os.environ, environ, or a name conventionally bound to it (env, environ, environment)."""
    if isinstance(node, ast.Attribute) and node.attr == "environ":
        return True
    return isinstance(node, ast.Name) and node.id in _ENV_CONTAINERS


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ENV_NAME.match(node.value):
        return node.value
    return None


def _reads_by_call(func: ast.expr) -> bool:
    """Whether a call to func with a literal first argument reads that variable."""
    if isinstance(func, ast.Attribute):  # os.environ.get("X"), env.pop("X"), os.getenv("X")
        return (func.attr in _ENVIRON_READERS and _is_environ(func.value)) or func.attr == "getenv"
    # getenv("X") and helpers named get...("X", ...).
    return isinstance(func, ast.Name) and func.id.startswith("get")


def _env_name(node: ast.AST) -> str | None:
    """The variable name when the node reads the environment with a literal name."""
    if isinstance(node, ast.Subscript) and _is_environ(node.value):
        return _literal(node.slice)
    if isinstance(node, ast.Call) and node.args and _reads_by_call(node.func):
        return _literal(node.args[0])
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
            for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
                name = _env_name(node) or _settings_field_name(node)
                if name:
                    where = f"{file.relative_to(file.parents[1])}:{getattr(node, 'lineno', 0)}"
                    found.setdefault(name, []).append(where)
    return found


def settings_declared(model: type[CommonSettings] = Settings) -> dict[str, str | None]:
    """The fields of a settings model of shared/config.py: variable name -> default (None when required)."""
    return {setting.name: setting.default for setting in settings_table(model)}


# ---------------------------------------------------------------------------- what Terraform sets


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
    not have, nor default; and variables a function is given that the settings model does not declare."""
    settings = settings_declared(model)
    reads = {name: [f"{model.__name__} in shared/config.py"] for name in settings} | env_reads(code_dirs)
    needed = {name: where for name, where in reads.items() if not local_only(name) and settings.get(name) is None}
    problems: list[str] = []
    for address, names in sorted(terraform_environment(root).items()):
        problems += [
            f"{variable} (read at {', '.join(where)}) is not set for {address} and has no default"
            for variable, where in sorted(needed.items())
            if variable not in names
        ]
        problems += [
            f"{address} sets {variable}, which is not in shared/config.py SETTINGS (a typo?)"
            for variable in sorted(names - set(settings))
        ]
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

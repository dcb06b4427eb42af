"""The functions Terraform deploys against functions/main.py's entry points."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.unit.deploy.terraform.paths import FUNCTIONS_MAIN, ROOT, TERRAFORM
from tests.unit.deploy.terraform.tfmodel import one, resource_instances

FUNCTION_TYPE = "google_cloudfunctions2_function"


@dataclass(frozen=True)
class DeployedFunction:
    address: str
    entry_point: Any
    environment: Any
    ingress: Any
    runtime: Any


def deployed_functions(root: Path = TERRAFORM) -> list[DeployedFunction]:
    found: list[DeployedFunction] = []
    for function in resource_instances(root, lambda resource_type: resource_type == FUNCTION_TYPE):
        build = one(function.body.get("build_config", [{}]))
        service = one(function.body.get("service_config", [{}]))
        found.append(
            DeployedFunction(
                address=f"{function.module_address}.{FUNCTION_TYPE}.{function.name}",
                entry_point=function.value(build.get("entry_point")),
                environment=function.value(service.get("environment_variables", [{}])),
                ingress=function.value(service.get("ingress_settings", ["ALLOW_ALL"])),
                runtime=function.value(build.get("runtime")),
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

"""The messages the logging filters of the monitoring compare with are messages the code logs."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from tests.unit.deploy.terraform.paths import CODE_DIRS

_LOG_LEVELS = frozenset({"info", "warning", "error", "log"})


def _logged_message(node: ast.AST) -> ast.expr | None:
    """The message argument of a logs.info/warning/error(message) or logs.log(level, message) call."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
        return None
    func = node.func
    if not (isinstance(func.value, ast.Name) and func.value.id == "logs" and func.attr in _LOG_LEVELS):
        return None
    return node.args[1] if func.attr == "log" and len(node.args) > 1 else node.args[0]


def _message_pattern(message: ast.expr) -> re.Pattern[str] | None:
    """A literal matches itself; an f-string's fields match anything."""
    if isinstance(message, ast.Constant) and isinstance(message.value, str):
        return re.compile(re.escape(message.value))
    if isinstance(message, ast.JoinedStr):
        parts = [re.escape(str(v.value)) if isinstance(v, ast.Constant) else ".+" for v in message.values]
        return re.compile("".join(parts))
    return None


def _python_nodes(code_dirs: Iterable[Path]) -> Iterator[ast.AST]:
    for directory in code_dirs:
        for file in sorted(directory.rglob("*.py")):
            yield from ast.walk(ast.parse(file.read_text(), filename=str(file)))


def log_messages(code_dirs: Iterable[Path] = CODE_DIRS) -> list[re.Pattern[str]]:
    """The messages of the code's logs calls, as patterns."""
    patterns = []
    for node in _python_nodes(code_dirs):
        message = _logged_message(node)
        pattern = _message_pattern(message) if message is not None else None
        if pattern is not None:
            patterns.append(pattern)
    return patterns


def filter_messages(text: str) -> list[str]:
    """The jsonPayload.message values a logging filter compares with."""
    return re.findall(r'jsonPayload\.message\s*=\s*\\?"([^"\\]+)\\?"', text)


def unknown_log_messages(terraform_text: str, code_dirs: Iterable[Path] = CODE_DIRS) -> list[str]:
    patterns = log_messages(code_dirs)
    return [m for m in filter_messages(terraform_text) if not any(p.fullmatch(m) for p in patterns)]

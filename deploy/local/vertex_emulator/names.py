"""Resource names as the real service writes them, and the project number it puts in them."""

from __future__ import annotations

import hashlib
import re
from typing import Final

from .errors import invalid_argument

_PARENT_RE: Final = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)$")
_NAME_RE: Final = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/tuningJobs/(?P<job>[^/]+)$")

# (project number, location, job id): a job's identity, whether it was named by project id or number.
JobKey = tuple[str, str, str]


def project_number(project: str) -> str:
    """The stable 12-digit project number the emulator uses for ``project`` (an id or a number).

    Real project ids must start with a letter, so an all-digit value is already a number.
    """
    if project.isdigit():
        return project
    digest = hashlib.sha256(project.encode("utf-8")).digest()
    return str(10**11 + int.from_bytes(digest[:8], "big") % (9 * 10**11))


def parse_parent(parent: str) -> tuple[str, str]:
    """(project number, location) of ``projects/{project}/locations/{location}``."""
    match = _PARENT_RE.match(parent)
    if match is None:
        raise invalid_argument(f"Invalid parent {parent!r}: expected projects/{{project}}/locations/{{location}}.")
    return project_number(match["project"]), match["location"]


def parse_job_name(name: str) -> JobKey:
    match = _NAME_RE.match(name)
    if match is None:
        raise invalid_argument(
            f"Invalid TuningJob name {name!r}: expected "
            "projects/{project}/locations/{location}/tuningJobs/{tuning_job}."
        )
    return project_number(match["project"]), match["location"], match["job"]

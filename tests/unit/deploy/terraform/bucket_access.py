"""Who may do what in the datasets bucket, from the IAM members' roles and conditions, for a given value
of the root's variables (e.g. an example `teams`).

A condition is read as the disjunction Tunedrop writes: resource.name.startsWith(<object prefix>) for
object requests, and api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith(<prefix>)
for a list request (listing is checked on the bucket, so an object-name clause never allows it). A
clause of any other shape raises, so an unexpected condition cannot pass as narrower than it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.unit.deploy.terraform.paths import TERRAFORM
from tests.unit.deploy.terraform.tfmodel import Unresolved, interpolate, one, resource_instances

DATASETS_BUCKET = "${google_storage_bucket.datasets.name}"
# The permissions of the object roles, reduced to the operations this check asks about.
ROLE_OPERATIONS = {
    "roles/storage.objectCreator": frozenset({"create"}),
    "roles/storage.objectViewer": frozenset({"get", "list"}),
    "roles/storage.objectUser": frozenset({"create", "delete", "get", "list"}),
    "roles/storage.objectAdmin": frozenset({"create", "delete", "get", "list"}),
}
_OBJECT_CLAUSE = re.compile(r'resource\.name\.startsWith\("projects/_/buckets/([^"]+)/objects/([^"]*)"\)')
_LIST_CLAUSE = re.compile(
    r'api\.getAttribute\("storage\.googleapis\.com/objectListPrefix", ""\)\.startsWith\("([^"]*)"\)'
)
_BUCKET_GUARD = 'resource.type == "storage.googleapis.com/Bucket"'
_CONNECTIVES = re.compile(r"^[\s()|&]*$")


@dataclass(frozen=True)
class BucketGrant:
    member: str
    role: str
    object_prefixes: tuple[str, ...] | None  # None: no condition, every object
    list_prefixes: tuple[str, ...] | None

    def allows(self, operation: str, name: str) -> bool:
        """Whether this grant lets its member do `operation` on the object `name` (for "list": list the
        bucket with the prefix `name`)."""
        if operation not in ROLE_OPERATIONS[self.role]:
            return False
        prefixes = self.list_prefixes if operation == "list" else self.object_prefixes
        return prefixes is None or any(name.startswith(prefix) for prefix in prefixes)


def read_condition(expression: str, bucket: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(object prefixes, list prefixes) of a condition written as Tunedrop writes them."""
    objects = _OBJECT_CLAUSE.findall(expression)
    if any(named != bucket for named, _ in objects):
        raise Unresolved(f"condition names another bucket: {expression}")
    lists = _LIST_CLAUSE.findall(expression)
    rest = _LIST_CLAUSE.sub("", _OBJECT_CLAUSE.sub("", expression)).replace(_BUCKET_GUARD, "")
    if not _CONNECTIVES.match(rest):
        raise Unresolved(f"condition has clauses this check does not read: {rest.strip()!r} in {expression}")
    return tuple(prefix for _, prefix in objects), tuple(lists)


def bucket_grants(root_variables: Mapping[str, Any], root: Path = TERRAFORM) -> list[BucketGrant]:
    """Every google_storage_bucket_iam_member on the datasets bucket, with its member and condition resolved."""
    found: list[BucketGrant] = []
    for grant in resource_instances(root, lambda kind: kind == "google_storage_bucket_iam_member", root_variables):
        if grant.value(grant.body["bucket"]) != DATASETS_BUCKET:
            continue
        member = grant.value(grant.body["member"])
        if "${" in str(member):
            member = interpolate(str(one(grant.body["member"])), grant.module, grant.each)
        role = str(grant.value(grant.body["role"]))
        if role not in ROLE_OPERATIONS:
            raise Unresolved(f"{grant.name}: unknown object role {role}")
        condition = one(grant.body.get("condition", [None]))
        if condition is None:
            found.append(BucketGrant(str(member), role, None, None))
            continue
        expression = interpolate(one(condition["expression"]), grant.module, grant.each)
        # hcl2 keeps a quoted string's escapes: \" is the " IAM reads.
        objects, lists = read_condition(str(expression).replace('\\"', '"'), DATASETS_BUCKET)
        found.append(BucketGrant(str(member), role, objects, lists))
    return found


def allowed(grants: list[BucketGrant], member: str, operation: str, name: str) -> bool:
    return any(g.member == member and g.allows(operation, name) for g in grants)

"""The composite indexes of deploy/terraform/firestore_indexes.json are exactly those the store's
queries need (the store builds its queries from shared.adapters.firestore_store.QUERIES)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.adapters.firestore_store import QUERIES, QuerySpec
from tests.unit.deploy.terraform.paths import INDEXES, STORE

_EQUALITY = frozenset({"==", "in", "array_contains", "array-contains", "array_contains_any", "array-contains-any"})

IndexFields = tuple[tuple[str, str], ...]  # (field path, ASCENDING|DESCENDING)


@dataclass(frozen=True)
class Query:
    where: str  # "FirestoreJobStore.<the QuerySpec's name>"
    collection: str
    filters: tuple[tuple[str, str], ...]  # (field, operator)
    orders: IndexFields

    def composite_index(self) -> IndexFields | None:
        """The composite index the query needs, or None when single-field indexes serve it."""
        fields = {f for f, _ in self.filters} | {f for f, _ in self.orders}
        if len(fields) < 2 or not (self.orders or self._inequalities()):
            return None
        index: dict[str, str] = {}  # insertion-ordered; the first direction given for a field wins
        for path, direction in self._index_order():
            index.setdefault(path, direction)
        return tuple(index.items())

    def _inequalities(self) -> list[str]:
        return [f for f, op in self.filters if op not in _EQUALITY]

    def _index_order(self) -> list[tuple[str, str]]:
        """Equality fields first, then inequality fields the query does not order by, then the orders."""
        ordered = {f for f, _ in self.orders}
        equalities = [(f, "ASCENDING") for f, op in self.filters if op in _EQUALITY]
        inequalities = [(f, "ASCENDING") for f in self._inequalities() if f not in ordered]
        return equalities + inequalities + list(self.orders)


def store_queries(specs: Iterable[QuerySpec] = QUERIES) -> list[Query]:
    """Every Firestore query of the store that filters or orders (the others need no index)."""
    return [
        Query(f"FirestoreJobStore.{spec.name}", spec.collection, spec.filters, spec.orders)
        for spec in specs
        if spec.filters or spec.orders
    ]


def load_index_catalog(path: Path = INDEXES) -> dict[str, Any]:
    catalog: dict[str, Any] = json.loads(path.read_text())
    return catalog


def catalog_indexes(path: Path = INDEXES) -> set[tuple[str, IndexFields]]:
    return {
        (index["collection"], tuple((f["field_path"], f["order"]) for f in index["fields"]))
        for index in load_index_catalog(path)["indexes"]
    }


def index_mismatches(specs: Iterable[QuerySpec] = QUERIES, catalog: Path = INDEXES) -> list[str]:
    needed: dict[tuple[str, IndexFields], list[str]] = {}
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

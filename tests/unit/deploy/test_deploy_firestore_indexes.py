"""The composite indexes in deploy/terraform/firestore_indexes.json are exactly those the store's queries need."""

from __future__ import annotations

import json
from pathlib import Path

from shared.adapters.firestore_store import JOBS, QUERIES, QuerySpec
from tests.unit.deploy.terraform.indexes import index_mismatches, load_index_catalog, store_queries
from tests.unit.deploy.terraform.paths import INDEXES, TERRAFORM
from tests.unit.deploy.terraform.tfmodel import load_module, one

FIRESTORE_TF = TERRAFORM / "modules" / "tunedrop" / "firestore.tf"


def test_the_store_queries_are_found() -> None:
    queries = {q.where for q in store_queries()}
    assert {
        "FirestoreJobStore.queued",
        "FirestoreJobStore.in_states",
        "FirestoreJobStore.completion_pending",
        "FirestoreJobStore.on_models",
    } <= queries
    # An unfiltered, unordered query needs no index and is not listed.
    assert "FirestoreJobStore.list_jobs_of_any_state" not in queries


def test_the_queued_query_needs_its_composite_index() -> None:
    (queued,) = [q for q in store_queries() if q.where == "FirestoreJobStore.queued"]
    assert queued.collection == "jobs"
    assert queued.composite_index() == (
        ("state", "ASCENDING"),
        ("priority", "DESCENDING"),
        ("enqueued_at", "ASCENDING"),
    )


def test_declared_indexes_match_the_queries() -> None:
    assert index_mismatches() == []


def test_a_query_without_its_index_is_reported() -> None:
    oldest_rejected = QuerySpec("oldest_rejected", JOBS, (("state", "=="),), (("created_at", "ASCENDING"),))
    problems = index_mismatches((*QUERIES, oldest_rejected))
    assert len(problems) == 1
    assert "oldest_rejected" in problems[0] and "[('state', 'ASCENDING'), ('created_at', 'ASCENDING')]" in problems[0]


def test_an_index_no_query_needs_is_reported(tmp_path: Path) -> None:
    catalog = json.loads(INDEXES.read_text())
    catalog["indexes"].append(
        {
            "collection": "jobs",
            "fields": [{"field_path": "state", "order": "ASCENDING"}, {"field_path": "x", "order": "ASCENDING"}],
        }
    )
    path = tmp_path / "firestore_indexes.json"
    path.write_text(json.dumps(catalog))
    problems = index_mismatches(catalog=path)
    unused = [("state", "ASCENDING"), ("x", "ASCENDING")]
    assert problems == [f"firestore_indexes.json declares jobs: {unused}, which no query of firestore_store.py needs"]


def test_terraform_reads_the_catalog_and_declares_the_ttl() -> None:
    text = FIRESTORE_TF.read_text()
    assert 'jsondecode(file("${path.module}/../../firestore_indexes.json"))' in text
    module = load_module(FIRESTORE_TF.parent)
    assert "google_firestore_index" in module.resources and "google_firestore_field" in module.resources
    ttl = module.resources["google_firestore_field"]["ttl"]
    assert "ttl_config" in ttl
    assert load_index_catalog()["ttl_fields"] == [{"collection": "jobs", "field_path": "expire_at"}]
    database = module.resources["google_firestore_database"]["this"]
    assert one(database["type"]) == "FIRESTORE_NATIVE"

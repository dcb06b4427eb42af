"""Where the checks look by default."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
TERRAFORM = ROOT / "deploy" / "terraform"
INDEXES = TERRAFORM / "firestore_indexes.json"
FUNCTIONS_MAIN = ROOT / "functions" / "main.py"
STORE = ROOT / "shared" / "adapters" / "firestore_store.py"
CODE_DIRS = (ROOT / "shared", ROOT / "functions")

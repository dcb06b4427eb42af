"""`tunedrop models check`: compare the model registry with Google's documentation pages.

The registry (shared/models.json) is written by hand from Google's pages; this check reads the pages'
Markdown copies (`.md.txt`) and names every difference, so the registry never goes stale silently:

- the supervised-tuning page: the models that support supervised fine-tuning, and one limits table per
  model (a `###` heading with the model's name, further names on the next lines when models share a
  table, then `| Specification | Value |` rows);
- the tuning API reference: the same list of supported models;
- the model-versions page: `| Model ID | Release date | Retirement date | Replacement model |` tables.

A page is recognised by what it holds, not by its address, so a saved copy works as well as the live page.
Exit status: 0 no difference, 1 differences, 2 a source could not be read.
"""

from __future__ import annotations

import re
import sys
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from shared.validation.registry import ModelSpec, ModelStatus, Registry, registry

DOCS = "https://docs.cloud.google.com/gemini-enterprise-agent-platform"
DEFAULT_SOURCES = (
    f"{DOCS}/models/tuning/supervised-tuning.md.txt",
    f"{DOCS}/reference/models/tuning.md.txt",
    f"{DOCS}/models/model-versions.md.txt",
)
FETCH_TIMEOUT_SECONDS = 30
MAX_PAGE_BYTES = 8 * 1024 * 1024

_LINK_ITEM = re.compile(r"^\s*[-*]\s+\[(?P<name>Gemini[^\]]*)\]\([^)]*\)?")
_PLAIN_ITEM = re.compile(r"^\s*[-*]\s+(?P<name>Gemini [0-9][^(\[]*?)\s*$")
_HEADING = re.compile(r"^(?P<level>#{2,6})\s+(?P<text>.+?)\s*$")
_MODEL_NAME = re.compile(r"^Gemini [0-9][0-9.]*( [A-Za-z]+(-[A-Za-z]+)?)*$")
_DATE = re.compile(r"(?P<month>[A-Z][a-z]+) (?P<day>\d{1,2}), (?P<year>\d{4})")
_INT = re.compile(r"\d[\d,]*")
_BACKTICKED = re.compile(r"`([^`]+)`")
_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]B)", re.IGNORECASE)
_COUNT = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KM]?)\s+(?P<kind>text-only|multimodal)", re.IGNORECASE)
_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ),
        start=1,
    )
}


class SourceUnreadable(Exception):
    """A page could not be read (exit status 2)."""


@dataclass(frozen=True)
class Difference:
    model: str
    field: str
    registry: Any
    docs: Any
    source: str

    def describe(self) -> str:
        return f"{self.model}: {self.field} is {self.registry!r} in the registry, {self.docs!r} in {self.source}"


@dataclass
class DocsFacts:
    """What the pages say, per model id."""

    listed: dict[str, str] = field(default_factory=dict)  # model -> the page that lists it for tuning
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    limit_sources: dict[str, str] = field(default_factory=dict)
    lifecycle: dict[str, dict[str, Any]] = field(default_factory=dict)
    lifecycle_sources: dict[str, str] = field(default_factory=dict)
    lists_read: int = 0


def model_id(display: str) -> str:
    """'Gemini 3.5 Flash-Lite' -> 'gemini-3.5-flash-lite'; backticks and footnote marks are dropped."""
    text = re.sub(r"\\?\*", "", display).replace("`", "").strip()
    return re.sub(r"\s+", "-", text.lower())


def _parse_date(cell: str) -> date | str | None:
    """A firm date, None when the page announces none yet, or "" when the cell names no exact day."""
    found = _DATE.search(cell)
    if found is None:
        return None if re.search(r"no .*date|not announced|to be announced", cell, re.IGNORECASE) else ""
    if re.search(r"or later|not before|no sooner|earliest", cell, re.IGNORECASE):
        return None  # a floor, not a retirement date
    month = _MONTHS.get(found["month"])
    if month is None:
        return ""
    return date(int(found["year"]), month, int(found["day"]))


def _cells(line: str) -> list[str]:
    return [cell.strip().replace("\u00a0", " ").strip() for cell in line.strip().strip("|").split("|")]


def _first_model(cell: str) -> str | None:
    """The first model a replacement cell names ('Gemini 3.5 Flash-Lite or Gemini 3.1 Flash-Lite')."""
    ticked = _BACKTICKED.findall(cell)
    if ticked:
        return model_id(ticked[0])
    option = re.split(r"\s+or\s+|,", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cell))[0].strip()
    return model_id(option) if option.lower().startswith("gemini") else None


def _bytes(value: str) -> int | None:
    found = _SIZE.search(value)
    if found is None:
        return None
    power = {"KB": 1, "MB": 2, "GB": 3, "TB": 4}[found["unit"].upper()]
    return int(float(found["number"]) * 1024**power)


def _limit_row(label: str, value: str) -> dict[str, Any]:
    """The registry fields one `| Specification | Value |` row gives."""
    key = label.lower()
    numbers = [int(n.replace(",", "")) for n in _INT.findall(value)]
    if "training example" in key or key == "maximum input and output training tokens":
        return {"max_tokens_per_example": numbers[0]} if numbers else {}
    if "validation" in key:
        out: dict[str, Any] = {"max_validation_examples": numbers[0]} if numbers else {}
        share = re.search(r"(\d+)%", value)
        above = re.search(r"more than ([\d,]+)", value)
        if share and above:
            out["max_validation_share"] = int(share.group(1)) / 100
            out["validation_share_above"] = int(above.group(1).replace(",", ""))
        return out
    if "file size" in key:
        size = _bytes(value)
        return {"max_file_bytes": size} if size else {}
    if "training dataset size" in key:
        out = {}
        for found in _COUNT.finditer(value):
            scale = {"": 1, "K": 1_000, "M": 1_000_000}[found["unit"].upper()]
            name = "max_examples_text" if found["kind"].lower() == "text-only" else "max_examples_multimodal"
            out[name] = int(float(found["number"]) * scale)
        return out
    if key.startswith("adapter size"):
        return {"adapter_sizes": numbers} if numbers else {}
    if "endpoint" in key and "tuning" in key and "serving" not in key:
        return {"regions": sorted(_BACKTICKED.findall(value))}
    if "cmek" in key:
        return {"cmek": not value.lower().startswith("not")}
    return {}


def parse_page(text: str, source: str, facts: DocsFacts) -> None:
    """Add what one page says to ``facts``; any page may hold lists, limits tables and version tables."""
    reader = _PageReader(source, facts)
    lines = text.splitlines()
    row = 0
    while row < len(lines):
        row = reader.read(lines, row)


@dataclass
class _PageReader:
    """Reads one page line by line; what a line means depends on the heading and table it is under."""

    source: str
    facts: DocsFacts
    in_models_list: bool = False
    pending_names: list[str] = field(default_factory=list)  # the models the next limits table is for
    header: list[str] = field(default_factory=list)  # the current table's header cells, lowercased

    def read(self, lines: Sequence[str], row: int) -> int:
        """Takes in the line at ``row`` (and any lines it owns); the index of the next line to read."""
        line = lines[row]
        heading = _HEADING.match(line)
        if heading:
            return self._heading(heading["text"].strip(), lines, row + 1)
        stripped = line.strip()
        if self.in_models_list:
            self._list_line(line, stripped)
        if stripped.startswith("|"):
            self._table_row(_cells(stripped))
        elif stripped:
            self.header = []  # text between tables ends the table
        return row + 1

    def _heading(self, title: str, lines: Sequence[str], row: int) -> int:
        lowered = title.lower()
        self.in_models_list = "supported models" in lowered or (self.in_models_list and "click to expand" in lowered)
        self.pending_names = [title] if _MODEL_NAME.match(title) else []
        self.header = []
        # Models sharing one limits table: further names on the lines right under the heading.
        while self.pending_names and row < len(lines) and _MODEL_NAME.match(lines[row].strip()):
            self.pending_names.append(lines[row].strip())
            row += 1
        if self.in_models_list:
            self.facts.lists_read += 1
        return row

    def _list_line(self, line: str, stripped: str) -> None:
        item = _LINK_ITEM.match(line) or _PLAIN_ITEM.match(line)
        if item:
            self.facts.listed.setdefault(model_id(item["name"]), self.source)
        elif stripped.startswith("#") and self.facts.listed:
            self.in_models_list = False

    def _table_row(self, cells: list[str]) -> None:
        if all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c):
            return
        if not self.header:
            self.header = [c.lower() for c in cells]
            return
        header = self.header
        if header[:2] == ["specification", "value"] and self.pending_names and len(cells) >= 2:
            for name in self.pending_names:
                self.facts.limits.setdefault(model_id(name), {}).update(_limit_row(cells[0], cells[1]))
                self.facts.limit_sources[model_id(name)] = self.source
        elif header[0] == "model id" and any("retirement" in h or "discontinuation" in h for h in header):
            _version_row(header, cells, self.source, self.facts)


def _version_row(header: Sequence[str], cells: Sequence[str], source: str, facts: DocsFacts) -> None:
    if len(cells) < 3:
        return
    ident = model_id(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cells[0]))
    if not ident.startswith("gemini"):
        return
    entry: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=False):
        if "release" in name:
            entry["released"] = _parse_date(cell)
        elif "retirement" in name or "discontinuation" in name:
            entry["retires"] = _parse_date(cell)
        elif "replacement" in name or "upgrade" in name:
            entry["replacement"] = _first_model(cell) if cell.strip() else None
    facts.lifecycle.setdefault(ident, {}).update(entry)
    facts.lifecycle_sources[ident] = source


_LIMIT_FIELDS = (
    "max_tokens_per_example",
    "max_validation_examples",
    "validation_share_above",
    "max_validation_share",
    "max_file_bytes",
    "max_examples_text",
    "max_examples_multimodal",
    "adapter_sizes",
    "regions",
    "cmek",
)


def _registry_limit(spec: ModelSpec, name: str) -> Any:
    value = getattr(spec, name)
    if name == "adapter_sizes":
        return list(value)
    if name == "regions":
        return sorted(value)
    return value


def compare(facts: DocsFacts, reg: Registry, on: date) -> tuple[list[Difference], list[str]]:
    """(differences, notes): a note is something the pages contradict among themselves, not drift."""
    differences, notes = _listing_differences(facts, reg, on)
    differences += _limit_differences(facts, reg, on)
    differences += _lifecycle_differences(facts, reg)
    return differences, notes


def _listing_differences(facts: DocsFacts, reg: Registry, on: date) -> tuple[list[Difference], list[str]]:
    """Models the tuning lists name that the registry lacks, and tunable ones they do not name."""
    differences: list[Difference] = []
    notes: list[str] = []
    for ident, source in sorted(facts.listed.items()):
        spec = reg.resolve(ident)
        if spec is None:
            differences.append(Difference(ident, "supervised tuning", "not in the registry", "listed", source))
        elif spec.status(on) is not ModelStatus.AVAILABLE:
            notes.append(
                f"{spec.name} is listed for supervised tuning in {source}, but its retirement date "
                f"({spec.lifecycle.retires}) has passed; the registry follows the model-versions page"
            )
    if facts.lists_read:
        for name in reg.tunable(on):
            if not any(reg.resolve(ident) is reg.models[name] for ident in facts.listed):
                differences.append(Difference(name, "supervised tuning", "available", "not listed", "the tuning lists"))
    return differences, notes


def _limit_differences(facts: DocsFacts, reg: Registry, on: date) -> list[Difference]:
    differences: list[Difference] = []
    for ident, limits in sorted(facts.limits.items()):
        spec = reg.resolve(ident)
        source = facts.limit_sources[ident]
        if spec is None:
            differences.append(Difference(ident, "limits table", "not in the registry", "has one", source))
            continue
        if spec.status(on) is not ModelStatus.AVAILABLE:
            continue  # a retired model's limits no longer decide anything
        for name in _LIMIT_FIELDS:
            if name in limits and limits[name] != _registry_limit(spec, name):
                differences.append(Difference(spec.name, name, _registry_limit(spec, name), limits[name], source))
    return differences


def _lifecycle_differences(facts: DocsFacts, reg: Registry) -> list[Difference]:
    differences: list[Difference] = []
    for ident, entry in sorted(facts.lifecycle.items()):
        spec = reg.resolve(ident)
        source = facts.lifecycle_sources[ident]
        if spec is None:
            continue  # the page lists every Gemini model, tunable or not
        life = spec.lifecycle
        for name, ours in (("released", life.released), ("retires", life.retires)):
            theirs = entry.get(name, "")
            if theirs != "" and theirs != ours:
                differences.append(Difference(spec.name, name, _show(ours), _show(theirs), source))
        if "replacement" in entry and not _same_model(reg, life.replacement, entry["replacement"]):
            differences.append(Difference(spec.name, "replacement", life.replacement, entry["replacement"], source))
    return differences


def _same_model(reg: Registry, ours: str | None, theirs: str | None) -> bool:
    """Whether two replacement names (either may be None) are the same model, alias or not."""
    ours_spec = reg.resolve(ours) if ours else None
    theirs_spec = reg.resolve(theirs) if theirs else None
    return (ours_spec is not None and ours_spec is theirs_spec) or ours == theirs


def _show(value: date | None) -> str | None:
    return value.isoformat() if value else None


def read_source(location: str) -> str:
    """A page's text from an http(s) URL or a local file."""
    try:
        if location.startswith(("https://", "http://")):
            request = urllib.request.Request(location, headers={"User-Agent": "tunedrop-models-check"})
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
                data: bytes = response.read(MAX_PAGE_BYTES + 1)
        else:
            data = Path(location).read_bytes()[: MAX_PAGE_BYTES + 1]
    except (OSError, ValueError) as exc:
        raise SourceUnreadable(f"cannot read {location}: {exc}") from exc
    if len(data) > MAX_PAGE_BYTES:
        raise SourceUnreadable(f"{location} is larger than {MAX_PAGE_BYTES:,} bytes: not a documentation page")
    return data.decode("utf-8", errors="replace")


def check(sources: Iterable[str], on: date, reg: Registry | None = None) -> tuple[list[Difference], list[str]]:
    facts = DocsFacts()
    for source in sources:
        parse_page(read_source(source), source, facts)
    if not (facts.listed or facts.limits or facts.lifecycle):
        raise SourceUnreadable("none of the sources holds a supported-models list, a limits table or a version table")
    return compare(facts, reg or registry(), on)


def run_check(sources: Sequence[str] | None, *, on: date | None = None, out: Any = None) -> int:
    """The command: print each difference and note; 0 none, 1 some, 2 a source could not be read."""
    stream = out or sys.stdout
    today = on or datetime.now(UTC).date()
    try:
        differences, notes = check(sources or DEFAULT_SOURCES, today)
    except SourceUnreadable as exc:
        print(f"tunedrop models check: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=stream)
    for difference in differences:
        print(f"DIFFERENCE {difference.describe()}", file=stream)
    checked = registry().checked
    if differences:
        print(
            f"{len(differences)} difference(s) from the registry (last checked {checked}): update shared/models.json "
            "with each figure's source and the date read.",
            file=stream,
        )
        return 1
    print(f"The registry (last checked {checked}) agrees with every page read.", file=stream)
    return 0


def facts_of(pages: Mapping[str, str]) -> DocsFacts:
    """Parse pages given as {source: text} (for tests and callers that fetched them already)."""
    facts = DocsFacts()
    for source, text in pages.items():
        parse_page(text, source, facts)
    return facts

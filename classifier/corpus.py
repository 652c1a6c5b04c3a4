"""Read the project's own training text: data/corpus/*.yaml, seeds and reviewed items.

Each corpus file names its category and holds literal ``examples`` plus ``templates`` whose
``{slot}`` placeholders are filled from ``slots``. Expansion is seeded by file and template,
so the same files always give the same training set (and the same model hash).
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from classifier.knowledge import CATEGORY_IDS, Knowledge, KnowledgeError
from classifier.resources import resource_path

#: How many distinct fills each template contributes.
VARIANTS_PER_TEMPLATE = 8


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    source: str


def corpus_dir() -> Path:
    return resource_path("data/corpus")


CHALLENGE = "data/challenge/challenge.jsonl"

#: The held-out sets `fanzha evaluate` scores, by title (never used for training).
HELD_OUT_SETS = {
    "challenge set (hand-written, never trained on)": CHALLENGE,
    "realistic set (hand-written later, harder; never trained on)": "data/challenge/realistic.jsonl",
    "fresh set (written later by a session that saw only the domain facts; never trained on)": (
        "data/challenge/fresh.jsonl"
    ),
    "holdout set (written after the fresh set's tuning; its errors were read; never trained on)": (
        "data/challenge/holdout.jsonl"
    ),
    "holdout2 set (written before the last corpus change, scored once after it; never trained on)": (
        "data/challenge/holdout2.jsonl"
    ),
}


def challenge_path() -> Path:
    return resource_path(CHALLENGE)


def _expand(template: str, slots: dict[str, list], rng: random.Random, n: int) -> list[str]:
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    if not fields:
        return [template]
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(n * 4):
        # Fields in template order (a set's order changes with the hash seed, and so would the corpus).
        text = template.format(**{f: str(rng.choice(slots[f])) for f in dict.fromkeys(fields)})
        if text not in seen:
            seen.add(text)
            out.append(text)
        if len(out) == n:
            break
    return out


def load_corpus_file(path: Path) -> list[Example]:
    """Examples of one corpus file; raises KnowledgeError naming the file and key."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise KnowledgeError(f"{path}: must be a mapping with category/examples/templates")
    label = data.get("category")
    if label not in CATEGORY_IDS:
        raise KnowledgeError(f"{path}: category: {label!r} is not one of {', '.join(CATEGORY_IDS)}")
    slots = data.get("slots") or {}
    examples = [Example(str(t).strip(), label, path.stem) for t in data.get("examples") or [] if str(t).strip()]
    for n, template in enumerate(data.get("templates") or []):
        template = str(template)
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        except ValueError as exc:
            raise KnowledgeError(f"{path}: templates[{n}]: {exc}") from None
        missing = fields - set(slots)
        if missing:
            raise KnowledgeError(
                f"{path}: templates[{n}]: slot(s) {', '.join(sorted(missing))} not defined under slots"
            )
        seed = int(hashlib.sha256(f"{path.name}:{n}".encode()).hexdigest()[:8], 16)
        for text in _expand(template, slots, random.Random(seed), VARIANTS_PER_TEMPLATE):
            examples.append(Example(text.strip(), label, f"{path.stem}:t{n}"))
    return examples


def corpus_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or corpus_dir()).glob("*.yaml"))


def load_corpus(knowledge: Knowledge, extra: Iterable[Path] = ()) -> list[Example]:
    """The whole training set: corpus files, intents.yaml seeds, and extra JSONL/CSV files."""
    examples: list[Example] = []
    for path in corpus_files():
        examples.extend(load_corpus_file(path))
    for category in knowledge.categories.values():
        examples.extend(Example(seed, category.id, "seeds") for seed in category.seeds)
    for path in extra:
        examples.extend(Example(t, label, path.stem) for t, label in read_labelled(path))
    unique: dict[str, Example] = {}
    for example in examples:
        unique.setdefault(example.text, example)
    return list(unique.values())


def read_labelled(path: Path, label_map: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(text, label) pairs from a CSV (``text``/``content`` and ``label`` columns) or JSONL."""
    import csv

    rows: list[tuple[str, str]] = []
    label_map = label_map or {}
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise KnowledgeError(f"{path}:{line_no}: not valid JSON: {exc.msg}") from None
                text = item.get("text", item.get("content"))
                label = item.get("label")
                if text is None or label is None:
                    raise KnowledgeError(f"{path}:{line_no}: needs 'text' (or 'content') and 'label'")
                rows.append((str(text), label_map.get(str(label), str(label))))
        return rows
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        text_col = "text" if "text" in fields else "content" if "content" in fields else None
        if text_col is None or "label" not in fields:
            raise KnowledgeError(f"{path}: CSV needs a 'text' (or 'content') and a 'label' column; found {fields}")
        for row in reader:
            label = str(row["label"]).strip()
            rows.append((row[text_col] or "", label_map.get(label, label)))
    return rows


def inputs_digest(knowledge: Knowledge, extra: Iterable[Path] = ()) -> str:
    """Hash of everything the model is built from, to tell a stale cache.

    Only the parts of intents.yaml that training reads count (category ids, seeds and the
    tokenizer's domain words), so editing reply wording never forces a retrain.
    """
    used = {
        "seeds": {c.id: list(c.seeds) for c in knowledge.categories.values()},
        "domain_words": knowledge.domain_words(),
    }
    digest = hashlib.sha256(json.dumps(used, ensure_ascii=False, sort_keys=True).encode())
    for path in [*corpus_files(), *extra]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()

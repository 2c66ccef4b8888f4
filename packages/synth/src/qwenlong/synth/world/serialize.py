"""A world as one JSON file in a run directory, and back.

The file holds the config, the ground truth and the documents, so a run can reload exactly the
corpus it synthesised from (and score against its truth) without rebuilding. A `format` key
versions the layout; files of another version are refused with a clear message.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from qwenlong.core.errors import DatasetError, typed_first_line
from qwenlong.core.records import Document
from qwenlong.synth.interfaces import Triple
from qwenlong.synth.world.config import WorldConfig
from qwenlong.synth.world.model import (
    Dialogue,
    DocTruth,
    Entity,
    Fact,
    FinancialRow,
    Turn,
    World,
)

FORMAT = "qwenlong-world/1"
"""Layout version written into every file."""


def world_to_dict(world: World) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "config": world.config.model_dump(mode="json"),
        "entities": [asdict(e) for e in world.entities],
        "facts": [asdict(f) for f in world.facts],
        "financials": [asdict(r) for r in world.financials],
        "documents": [asdict(d) for d in world.documents],
        "dialogues": [asdict(d) for d in world.dialogues],
        "truth": {doc_id: asdict(t) for doc_id, t in world.truth.items()},
    }


def world_from_dict(data: dict[str, Any]) -> World:
    """Inverse of `world_to_dict`; raises KeyError/TypeError/ValidationError on a bad layout."""
    truth = {
        doc_id: DocTruth(
            **{part: [Triple(**t) for t in triples] for part, triples in parts.items()}
        )
        for doc_id, parts in data["truth"].items()
    }
    dialogues = [
        Dialogue(**{**d, "turns": [Turn(**t) for t in d["turns"]]}) for d in data["dialogues"]
    ]
    return World(
        config=WorldConfig.model_validate(data["config"]),
        entities=[Entity(**e) for e in data["entities"]],
        facts=[Fact(**f) for f in data["facts"]],
        financials=[FinancialRow(**r) for r in data["financials"]],
        documents=[Document(**d) for d in data["documents"]],
        dialogues=dialogues,
        truth=truth,
    )


def write_world(world: World, path: str | Path) -> None:
    """Write the whole world (config, truth, documents) to one JSON file.

    Atomically (temp file, then rename), so a killed run never leaves half a world.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(world_to_dict(world), ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def read_world(path: str | Path) -> World:
    """Read a world written by `write_world`; raises DatasetError naming the file on bad input."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such world file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: not a JSON world file ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise DatasetError(f"{path}: world format {found!r}, expected {FORMAT!r}")
    try:
        return world_from_dict(data)
    except (KeyError, TypeError, ValidationError) as err:
        raise DatasetError(f"{path}: malformed world file ({typed_first_line(err)})") from None

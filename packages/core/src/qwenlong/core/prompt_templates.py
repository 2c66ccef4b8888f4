"""Prompt templates: plain-text files with named `$placeholders`, checked when they are loaded.

Every prompt the project sends (the single-pass reading prompt, the memory agent's update and
final prompts, the judge's question) is a template file. The project ships its own wording as
package data; an experiment may point any prompt at another file (`qwenlong.core.prompt_set`),
for instance to reproduce another paper's exact prompts.

Syntax, chosen so that prompts can hold what prompts hold:

- `$name` or `${name}` (letters, digits, underscore; not starting with a digit) is a placeholder;
  `${name}` is for a name followed by letters ("${question}s").
- `$$` is a literal `$`; so is a `$` not followed by a name ("costs $5" stays as written).
- Braces are plain text. `str.format` fields would clash with the braces of JSON examples, code
  and LaTeX inside a prompt; a dollar followed by a letter is rare in prose.
- The file's last newline is not part of the prompt (editors add one), and the file is read with
  universal newlines, so a template edited on Windows renders the same.
- A paragraph (text between blank lines) that is nothing but one optional placeholder disappears,
  with its blank line, when that placeholder's value is empty: "Question: $question", blank line,
  "$instruction", blank line, "Answer:" renders without a gap when a sample has no instruction.

Each prompt has a `PromptSpec`: the placeholders the caller fills in, of which some must appear
(a prompt without `$context` would never show the document). Loading checks the file against it:
an unknown placeholder, or a required one missing, is one `ConfigError` line naming the file and
the placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from qwenlong.core.errors import ConfigError

PLACEHOLDER = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
"""`$$` (group 1), `${name}` (group 2) or `$name` (group 3). Any other `$` is literal text."""

PARAGRAPH_BREAK = "\n\n"
"""What separates paragraphs, for the empty-optional-paragraph rule."""


@dataclass(frozen=True)
class PromptSpec:
    """What one prompt may and must contain, and where its shipped default lives."""

    name: str
    """The prompt's name in a config's `prompts:` mapping, e.g. "judge"."""
    package: str
    """Python package that ships the default template, e.g. "qwenlong.evals"."""
    resource: str
    """The default template's path inside `package`, e.g. "templates/judge.txt"."""
    required: frozenset[str]
    """Placeholders every template of this prompt must use."""
    optional: frozenset[str] = field(default_factory=frozenset)
    """Placeholders a template may use or leave out. Only these may empty a paragraph."""

    @property
    def placeholders(self) -> frozenset[str]:
        return self.required | self.optional

    def describe(self) -> str:
        """The placeholders for error messages: "$a, $b (required); $c (optional)"."""
        parts = []
        for names, kind in ((self.required, "required"), (self.optional, "optional")):
            if names:
                parts.append(f"{', '.join(f'${n}' for n in sorted(names))} ({kind})")
        return "; ".join(parts) or "none"


@dataclass(frozen=True)
class PromptTemplate:
    """A checked template, ready to render."""

    spec: PromptSpec
    source: str
    """Where the text came from (a file path, or package/resource for a shipped default)."""
    text: str

    def render(self, values: Mapping[str, str]) -> str:
        """The prompt with every placeholder replaced by `values[name]`.

        `values` must hold every placeholder of the spec (callers fill in all they know; a
        template uses what it wants). Values are inserted as they are: a `$` inside a document
        is never read as a placeholder.
        """
        absent = self.spec.placeholders - values.keys()
        if absent:
            raise KeyError(f"{self.spec.name} prompt rendered without {sorted(absent)}")
        kept = [p for p in self.text.split(PARAGRAPH_BREAK) if not self._vanishes(p, values)]
        return PLACEHOLDER.sub(
            lambda m: "$" if m.group(1) else values[m.group(2) or m.group(3)],
            PARAGRAPH_BREAK.join(kept),
        )

    def _vanishes(self, paragraph: str, values: Mapping[str, str]) -> bool:
        """Whether `paragraph` is one optional placeholder alone, with an empty value."""
        match = PLACEHOLDER.fullmatch(paragraph.strip())
        if match is None or match.group(1):
            return False
        name = match.group(2) or match.group(3)
        return name in self.spec.optional and values[name] == ""


def parse_template(text: str, spec: PromptSpec, source: str) -> PromptTemplate:
    """Check `text` against `spec`; `source` names it in the error line."""
    used: dict[str, int] = {}
    for match in PLACEHOLDER.finditer(text):
        name = match.group(2) or match.group(3)
        if name is not None and name not in used:
            used[name] = text.count("\n", 0, match.start()) + 1
    unknown = [name for name in used if name not in spec.placeholders]
    if unknown:
        name = unknown[0]
        raise ConfigError(
            f"{source}:{used[name]}: unknown placeholder ${name} in the {spec.name!r} prompt "
            f"(its placeholders: {spec.describe()}; write $$ for a literal $)"
        )
    missing = sorted(spec.required - used.keys())
    if missing:
        raise ConfigError(
            f"{source}: the {spec.name!r} prompt must use placeholder ${missing[0]} "
            f"(its placeholders: {spec.describe()})"
        )
    return PromptTemplate(spec, source, text)


def _file_text(raw: str) -> str:
    """A template file's text without its last newline."""
    return raw[:-1] if raw.endswith("\n") else raw


def load_template(path: str | Path, spec: PromptSpec) -> PromptTemplate:
    """Read and check the template file at `path` (cached while the file is unchanged)."""
    path = Path(path)
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such prompt template (for the {spec.name!r} prompt)"
        ) from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the prompt template ({err.strerror})") from None
    return _load(str(path), stamp, spec)


@lru_cache(maxsize=256)
def _load(path: str, stamp: int, spec: PromptSpec) -> PromptTemplate:
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the prompt template ({err})") from None
    return parse_template(_file_text(raw), spec, path)


@lru_cache(maxsize=64)
def default_template(spec: PromptSpec) -> PromptTemplate:
    """The template the project ships for `spec` (package data, checked like any file)."""
    raw = resources.files(spec.package).joinpath(spec.resource).read_text(encoding="utf-8")
    return parse_template(_file_text(raw), spec, f"{spec.package}/{spec.resource}")

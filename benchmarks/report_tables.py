"""Table reading on annual-report shapes: precision and recall of (row, column, value) facts.

    uv run python benchmarks/report_tables.py [--fixtures DIR] [--misses]

Reads every table of the fixture set (packages/synth/tests/fixtures/report_tables/: HTML
tables in the shapes of US 10-K and IFRS statements, written by the team, each with the facts a
careful reader takes from it) the way synthesis reads a corpus: the HTML reader renders each
table as a markdown grid, the rule extractor's table reader finds header rows, periods, units
and figures. Prints one row per table shape, then ONE JSON line: precision, recall, tables,
facts (gold), predicted.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from qwenlong.synth.extract.fact_score import TableScore, score_folder, totals

FIXTURES = Path(__file__).resolve().parents[1] / "packages/synth/tests/fixtures/report_tables"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--misses", action="store_true", help="list missed and spurious facts")
    args = parser.parse_args()
    scores = score_folder(args.fixtures)
    by_shape: dict[str, list[TableScore]] = defaultdict(list)
    for score in scores:
        by_shape[score.shape].append(score)
    print(f"{'shape':<26} {'tables':>6} {'facts':>6} {'precision':>9} {'recall':>7}")
    for shape in sorted(by_shape):
        t = totals(by_shape[shape])
        print(f"{shape:<26} {t.tables:>6} {t.expected:>6} {t.precision:>9.3f} {t.recall:>7.3f}")
    if args.misses:
        for score in scores:
            for line in score.missed:
                print(f"  missed   {score.name}: {line}")
            for line in score.spurious:
                print(f"  spurious {score.name}: {line}")
    t = totals(scores)
    figures = {
        "precision": round(t.precision, 4),
        "recall": round(t.recall, 4),
        "tables": t.tables,
        "facts": t.expected,
        "predicted": t.predicted,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

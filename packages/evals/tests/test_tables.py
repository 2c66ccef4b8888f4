"""Paper tables: packaged data, the paper's own averages, and runs placed as rows."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from qwenlong.core.errors import ConfigError, DatasetError
from qwenlong.evals.tables import (
    AVERAGED_COLUMNS,
    AVG,
    COLUMN_SOURCES,
    build_view,
    check_paper_averages,
    load_paper_tables,
    load_run,
    resolve_table,
    to_dict,
    to_markdown,
)


@pytest.fixture(scope="module")
def tables():
    return load_paper_tables()


def _entry(score: float, **extra) -> dict:
    entry = {"metric": "cover_em", "metric_kind": "paper", "score": score}
    entry.update(ci=[score - 2, score + 2], n=100, n_pending=0, breakdown={}, subset=None)
    return {**entry, **extra}


def write_run(
    root: Path, name: str, benchmarks: dict, model: str = "ours", solver: str = "single_pass"
) -> Path:
    run = root / name
    run.mkdir(parents=True)
    scores = {"model": model, "solver": solver, "created": "2025-12-20T10:00:00"}
    scores["benchmarks"] = benchmarks
    (run / "scores.json").write_text(json.dumps(scores))
    return run


FULL_RUN = {
    "docmath": _entry(60.0),
    "longbench_v2": _entry(
        50.0,
        metric="choice",
        breakdown={
            "difficulty": {"easy": 58.0, "hard": 45.0},
            "length": {"short": 55.0, "medium": 49.0, "long": 44.0},
        },
    ),
    "frames": _entry(70.0, subset="all"),  # the loaders' name for the whole benchmark
    "mrcr": _entry(80.0, metric="mrcr_ratio"),
    "corpusqa@128K": _entry(40.0, subset="128K"),
    "longbench_v1_qa": _entry(
        66.0,
        breakdown={
            "dataset": {
                "2wikimqa": 90.0,
                "hotpotqa": 80.0,
                "musique": 60.0,
                "narrativeqa": 55.0,
                "qasper": 45.0,
            }
        },
    ),
    "mrcr@128K-512K": _entry(30.0, subset="128K-512K", metric="mrcr_ratio"),
}


def test_paper_tables_ship_as_package_data(tables):
    resource = resources.files("qwenlong.evals").joinpath("paper_tables.json")
    assert resource.is_file()
    assert "arXiv 2512.12967" in json.loads(resource.read_text("utf-8"))["source"]
    assert len(tables) == 9
    assert tables["table7_main"].rows["QwenLong-L1.5-30B-A3B"][4] == 82.99


def test_tables_resolve_by_number_short_or_full_name(tables):
    for name in ("7", "table7", "table7_main", "Table7"):
        assert resolve_table(name, tables).name == "table7_main"
    with pytest.raises(ConfigError, match="unknown table '99'; known: table2_task_balancing"):
        resolve_table("99", tables)


def test_every_column_has_a_source_and_every_avg_a_rule(tables):
    for table in tables.values():
        assert all(c in COLUMN_SOURCES for c in table.columns if c != AVG), table.name
        assert (AVG in table.columns) == (table.name in AVERAGED_COLUMNS)


def test_table7_averages_agree_with_their_columns_except_gpt5(tables):
    checks = {c.row: c for c in check_paper_averages(tables["table7_main"])}
    assert len(checks) == 11
    off_by_more_than_a_cent = {
        row for row, c in checks.items() if abs(c.printed - c.computed) > 0.01
    }
    # GPT-5-Nano is 0.015 off only because its LBV1-QA is printed with one decimal (67.1).
    assert off_by_more_than_a_cent == {"GPT-5", "GPT-5-Nano"}
    assert checks["GPT-5-Nano"].consistent
    assert checks["GPT-5"].computed == pytest.approx(74.5967, abs=1e-4)
    assert not checks["GPT-5"].consistent
    assert checks["QwenLong-L1.5-30B-A3B"].computed == pytest.approx(71.8217, abs=1e-4)


def test_table12_misprint_is_flagged_and_its_note_shown(tables):
    table = tables["table12_longbench_v1"]
    checks = {c.row: c for c in check_paper_averages(table)}
    misprint = checks["QwenLong-L1.5-30B-A3B"]
    assert (misprint.printed, round(misprint.computed, 2)) == (70.40, 71.28)
    assert [row for row, c in checks.items() if not c.consistent] == ["QwenLong-L1.5-30B-A3B"]
    footnotes = build_view(table).footnotes
    assert any("misprint" in note for note in footnotes)
    assert any("printed Avg 70.40, but its columns average 71.28" in note for note in footnotes)
    assert not any("misprint" in note for note in build_view(tables["table7_main"]).footnotes)


def test_only_two_paper_averages_are_inconsistent_across_all_tables(tables):
    bad = {
        (t.name, c.row)
        for t in tables.values()
        for c in check_paper_averages(t)
        if not c.consistent
    }
    assert bad == {("table7_main", "GPT-5"), ("table12_longbench_v1", "QwenLong-L1.5-30B-A3B")}


def test_a_run_becomes_a_row_with_the_papers_averages(tmp_path, tables):
    run = load_run(write_run(tmp_path, "run1", FULL_RUN))
    main = build_view(tables["table7_main"], [run]).rows[-1]
    assert main.label == "ours" and main.source == "run (single_pass, paper metric)"
    # Avg = (60 + 50 + 70 + 80 + 40 + 66) / 6 = 61.0
    assert main.values == (61.0, 60.0, 50.0, 70.0, 80.0, 40.0, 66.0)
    assert main.ci[1] == (58.0, 62.0)

    lbv2 = build_view(tables["table11_longbench_v2"], [run]).rows[-1]
    assert lbv2.values == (50.0, 58.0, 45.0, 55.0, 49.0, 44.0)

    lbv1 = build_view(tables["table12_longbench_v1"], [run]).rows[-1]
    # Avg = (90 + 80 + 60 + 55 + 45) / 5 = 66.0
    assert lbv1.values == (66.0, 90.0, 80.0, 60.0, 55.0, 45.0)

    ultra = build_view(tables["table9_ultra_long"], [run]).rows[-1]
    assert ultra.values == (30.0, None, None, None)


def test_a_missing_column_blanks_the_average_and_says_why(tmp_path, tables):
    partial = {k: v for k, v in FULL_RUN.items() if k != "frames"}
    run = load_run(write_run(tmp_path, "partial", partial, model=""))
    view = build_view(tables["table7_main"], [run])
    row = view.rows[-1]
    assert row.label == "partial"
    assert row.values[0] is None and row.values[3] is None and row.values[1] == 60.0
    assert any("never taken over fewer columns" in note for note in view.footnotes)
    markdown = to_markdown(view)
    expected = "| partial | - | 60.00 | 50.00 | - | 80.00 | 40.00 | 66.00 | run (single_pass, paper metric) |"
    assert expected in markdown


def test_memory_agent_column_takes_only_memagent_runs(tmp_path, tables):
    ultra = {"mrcr@512K-1M": _entry(21.0, subset="512K-1M")}
    agent = load_run(write_run(tmp_path, "agent", ultra, model="L1.5", solver="memagent"))
    single = load_run(write_run(tmp_path, "single", ultra, model="L1.5"))
    view = build_view(tables["table10_stages"], [agent, single])
    agent_row, single_row = view.rows[-2:]
    assert (agent_row.label, single_row.label) == ("L1.5 (agent)", "L1.5 (single)")
    assert agent_row.values[-1] == 21.0 and single_row.values[-1] is None


def test_mixed_metric_kinds_and_pending_items_are_footnoted(tmp_path, tables):
    mixed = dict(FULL_RUN, docmath=_entry(55.0, metric_kind="official", n=90, n_pending=10))
    view = build_view(tables["table7_main"], [load_run(write_run(tmp_path, "mixed", mixed))])
    assert view.rows[-1].source == "run (single_pass, mixed metrics)"
    assert any("DocMath=official" in note and "Frames=paper" in note for note in view.footnotes)
    assert any(
        "DocMath leaves out 10 of 100 items still pending" in note for note in view.footnotes
    )


def test_json_form_lists_values_by_column(tmp_path, tables):
    run = load_run(write_run(tmp_path, "run1", FULL_RUN))
    data = to_dict(build_view(tables["table7_main"], [run]))
    ours = data["rows"][-1]
    assert ours["values"]["Avg"] == 61.0 and ours["ci"]["MRCR"] == [78.0, 82.0]
    assert data["rows"][0]["values"]["DocMath"] == 62.38


def test_bad_run_directories_name_file_and_key(tmp_path):
    with pytest.raises(DatasetError, match=r"scores\.json: no such file"):
        load_run(tmp_path)
    broken = dict(FULL_RUN, docmath={k: v for k, v in _entry(1.0).items() if k != "score"})
    with pytest.raises(
        DatasetError, match=r"bad/scores.json: benchmarks\.docmath\.score: Field required"
    ):
        load_run(write_run(tmp_path, "bad", broken))
    clash = {"mrcr@128K-512K": _entry(3.0, subset="512K-1M")}
    with pytest.raises(DatasetError, match="disagrees with the key"):
        load_run(write_run(tmp_path, "clash", clash))

"""The one table form every reader writes: span-expanded grids rendered as markdown."""

from __future__ import annotations

from qwenlong.synth.corpus import html_tables, html_text, render_table
from qwenlong.synth.corpus.table_grid import split_pipe_row


def test_render_table_pads_escapes_and_captions() -> None:
    block = render_table([["", "2021", None], ["Net | sales", "$ 4,781\n"]], "Results\n(in m)")
    assert block.splitlines() == [
        "Results (in m)",
        "|  | 2021 |  |",
        "| --- | --- | --- |",
        "| Net \\| sales | $ 4,781 |  |",
    ]
    assert split_pipe_row(block.splitlines()[3]) == ["Net | sales", "$ 4,781", ""]
    assert render_table([], "Only a caption") == "Only a caption"


def test_html_spans_are_expanded_by_repeating_the_cell() -> None:
    markup = """<table><caption>Key figures</caption>
    <thead><tr><th rowspan="2">Item</th><th colspan="2">Year ended December 31,</th></tr>
    <tr><th>2021</th><th>2020</th></tr></thead>
    <tbody><tr><td>Revenue<sup>(1)</sup></td><td>5</td><td>4</td></tr>
    <tr><td>Note<table><tr><td>inner</td></tr></table></td><td colspan="2">—</td></tr></tbody>
    </table>"""
    (table,) = html_tables(markup)
    assert table.caption == "Key figures"
    assert table.rows == [
        ["Item", "Year ended December 31,", "Year ended December 31,"],
        ["Item", "2021", "2020"],
        ["Revenue", "5", "4"],
        ["Note inner", "—", "—"],
    ]


def test_html_text_writes_tables_in_place_as_markdown_grids() -> None:
    page = "<p>Before.</p><table><tr><td>A</td><td>1</td></tr></table><p>After.</p>"
    text, _ = html_text(page)
    assert text.splitlines() == ["Before.", "| A | 1 |", "| --- | --- |", "After."]


def test_unclosed_table_and_silly_spans_still_give_a_grid() -> None:
    (table,) = html_tables("<table><tr><td colspan='x'>a<td rowspan='99'>b<tr><td>c")
    assert table.rows == [["a", "b"], ["c", "b"]]

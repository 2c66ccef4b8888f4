"""Table extraction: numeric cells, markdown and HTML tables, captions, headings, the filter."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qwenlong.core.records import Document
from qwenlong.synth.numerical.tables import (
    extract_html_tables,
    extract_markdown_tables,
    extract_tables,
    is_statistical,
    parse_number,
    parse_year,
    split_pipe_row,
)


@pytest.mark.parametrize(
    ("cell", "value", "percent", "currency", "scale"),
    [
        ("1234", "1234", False, None, None),
        ("1,234.5", "1234.5", False, None, None),
        ("1 234 567", "1234567", False, None, None),
        ("1\u202f234", "1234", False, None, None),
        ("(1,234)", "-1234", False, None, None),
        ("-5", "-5", False, None, None),
        ("−5.25", "-5.25", False, None, None),
        ("12.5%", "12.5", True, None, None),
        ("-3 %", "-3", True, None, None),
        ("$1,234", "1234", False, "USD", None),
        ("US$ 7", "7", False, "USD", None),
        ("USD 1,234", "1234", False, "USD", None),
        ("1,234 EUR", "1234", False, "EUR", None),
        ("€ 3.1", "3.1", False, "EUR", None),
        ("(£2.5)", "-2.5", False, "GBP", None),
        ("1.2bn", "1.2", False, None, Decimal(10**9)),
        ("3 million", "3", False, None, Decimal(10**6)),
        ("1,234*", "1234", False, None, None),
        (".5", ".5", False, None, None),
    ],
)
def test_parse_number_reads_printed_forms(
    cell: str, value: str, percent: bool, currency: str | None, scale: Decimal | None
) -> None:
    parsed = parse_number(cell)
    assert parsed is not None
    assert parsed.value == Decimal(value)
    assert (parsed.percent, parsed.currency, parsed.scale) == (percent, currency, scale)


@pytest.mark.parametrize(
    "cell", ["", "-", "—", "n/a", "N/A", "Revenue", "1,2", "12,34", "ABC Corp", "1.2.3", "x5"]
)
def test_parse_number_rejects_text_and_missing_marks(cell: str) -> None:
    assert parse_number(cell) is None


def test_parse_number_keeps_decimal_exactness() -> None:
    parsed = parse_number("0.1")
    assert parsed is not None and parsed.value * 3 == Decimal("0.3")


@pytest.mark.parametrize(
    ("text", "year"),
    [("2021", 2021), ("FY2022", 2022), ("FY 2019", 2019), ("2020*", 2020), ("1999", 1999)],
)
def test_parse_year(text: str, year: int) -> None:
    assert parse_year(text) == year


@pytest.mark.parametrize("text", ["21", "2021/22", "Revenue", "3021", "20210"])
def test_parse_year_rejects(text: str) -> None:
    assert parse_year(text) is None


def test_split_pipe_row_handles_outer_pipes_and_escapes() -> None:
    assert split_pipe_row("| a | b \\| c |  d |") == ["a", "b | c", "d"]
    assert split_pipe_row("a|b") == ["a", "b"]


MARKDOWN = """# Acme Corp annual report

Intro paragraph that is not a table | even with a pipe.

## Key figures

Table 1: Results (USD million)

| Metric | 2021 | 2022 |
|:-------|-----:|-----:|
| Revenue | 1,200.5 | 1,310.0 |
| Net income | (12.0) | 30 |
| Short row |

Some text.

| Year | Employees |
| --- | --- |
| 2021 | 950 |
"""


def test_markdown_tables_with_caption_heading_and_padding() -> None:
    found = extract_markdown_tables("d1", MARKDOWN)
    assert [line for line, _ in found] == [9, 17]
    first = found[0][1]
    assert first.header == ("Metric", "2021", "2022")
    assert first.rows == (
        ("Revenue", "1,200.5", "1,310.0"),
        ("Net income", "(12.0)", "30"),
        ("Short row", "", ""),
    )
    assert first.caption == "Table 1: Results (USD million)"
    assert first.heading == "Key figures"
    assert first.numeric_cells == 4
    second = found[1][1]
    assert second.caption == "Some text."
    assert second.rows == (("2021", "950"),)


def test_markdown_caption_is_empty_after_a_heading_or_long_prose() -> None:
    text = (
        "## Figures\n| a | b |\n|---|---|\n| 1 | 2 |\n\n" + "x" * 200 + "\n| c | d |\n|---|---|\n"
    )
    tables = [t for _, t in extract_markdown_tables("d", text)]
    assert [t.caption for t in tables] == ["", ""]
    assert tables[0].heading == "Figures"


HTML = """<h1>Borealis Ltd</h1>
<p>Table 3: Segment results</p>
<table>
  <caption>Revenue by segment (EUR thousand)</caption>
  <thead>
    <tr><th></th><th colspan="2">EUR thousand</th></tr>
    <tr><th>Segment</th><th>2021</th><th>2022</th></tr>
  </thead>
  <tbody>
    <tr><th>North</th><td>1,000</td><td>1,100</td></tr>
    <tr><th>South</th><td>(50)</td><td>n/a</td></tr>
  </tbody>
</table>
<h2>Workforce</h2>
Table 4: People
<table>
<tr><td>Metric</td><td>2021</td><td>2022
<tr><td>Employees<td>900<td>950
</table>
"""


def test_html_tables_merge_header_rows_and_expand_colspan() -> None:
    found = extract_html_tables("d2", HTML)
    assert len(found) == 2
    first = found[0][1]
    assert first.header == ("Segment", "EUR thousand 2021", "EUR thousand 2022")
    assert first.rows == (("North", "1,000", "1,100"), ("South", "(50)", "n/a"))
    assert first.caption == "Revenue by segment (EUR thousand)"
    assert first.heading == "Borealis Ltd"
    assert first.kind == "html"


def test_html_header_detected_without_th_and_unclosed_cells() -> None:
    second = extract_html_tables("d2", HTML)[1][1]
    assert second.header == ("Metric", "2021", "2022")
    assert second.rows == (("Employees", "900", "950"),)
    assert second.caption == "Table 4: People"
    assert second.heading == "Workforce"


def test_html_first_row_with_values_is_not_a_header() -> None:
    text = "<table><tr><td>Revenue</td><td>12.5</td></tr><tr><td>Cost</td><td>3</td></tr></table>"
    assert extract_html_tables("d", text) == []


def test_nested_html_table_reads_as_text_of_the_outer_cell() -> None:
    text = (
        "<table><tr><th>Metric</th><th>2021</th></tr>"
        "<tr><td>Revenue<table><tr><td>inner</td></tr></table></td><td>5</td></tr></table>"
    )
    ((_, table),) = extract_html_tables("d", text)
    assert table.rows == (("Revenue inner", "5"),)


def test_extract_tables_orders_mixed_kinds_by_position() -> None:
    text = (
        "# Title\n<table><tr><th>A</th><th>2021</th></tr><tr><td>x</td><td>1</td></tr></table>\n"
        "| B | 2021 |\n|---|---|\n| y | 2 |\n"
        "<table><tr><th>C</th><th>2021</th></tr><tr><td>z</td><td>3</td></tr></table>\n"
    )
    tables = extract_tables(Document(id="d", text=text))
    assert [(t.index, t.header[0], t.kind) for t in tables] == [
        (0, "A", "html"),
        (1, "B", "markdown"),
        (2, "C", "html"),
    ]
    assert all(t.heading == "Title" for t in tables)


def test_is_statistical_counts_numeric_cells_across_tables() -> None:
    tables = extract_tables(Document(id="d", text=MARKDOWN))
    assert sum(t.numeric_cells for t in tables) == 6
    assert is_statistical(tables, 6)
    assert not is_statistical(tables, 7)
    assert not is_statistical([], 1)

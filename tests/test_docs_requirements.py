"""docs/real-benchmarks.md's requirements table is generated from the committed smoke reports in
docs/requirements/ (benchmarks/requirements.py): regenerate it here and compare with the page, and
check each row against its report by hand (the table must not drift from the evidence)."""

from __future__ import annotations

import json

from benchmarks.requirements import END, ROOT, START, load, table

PAGE = ROOT / "docs" / "real-benchmarks.md"
REPORTS = ROOT / "docs" / "requirements"


def _block() -> str:
    page = PAGE.read_text()
    return page.split(START, 1)[1].split(END, 1)[0].strip()


def test_the_page_holds_the_table_generated_from_the_committed_reports():
    assert _block() == table(load(REPORTS)).strip(), (
        "docs/real-benchmarks.md is stale: "
        "run python benchmarks/requirements.py --write docs/real-benchmarks.md"
    )


def test_each_row_says_what_its_report_measured():
    rows = {line.split("|")[1].strip().strip("`"): line for line in _block().splitlines()[2:]}
    reports = [json.loads(p.read_text()) for p in sorted(REPORTS.glob("*.json"))]
    assert reports and len(rows) == len(reports)
    for report in reports:
        cells = [c.strip() for c in rows[report["table"]].split("|")[1:-1]]
        pixel_bytes = report["columns"].get("pixels", {}).get("file_bytes", 0)
        assert cells[1] == report["method"] and cells[2] == f"{report['rows']:,}"
        assert float(cells[3]) == round(pixel_bytes / 2**30, 1)
        assert float(cells[5]) == round(report["peak_rss_gib"], 1) and cells[7] == str(report["file_batch"])
        assert (ROOT / "experiments" / report["table"]).is_file()

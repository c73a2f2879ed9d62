"""Reading a run's results.csv (a row per evaluation x budget x repeat), for sslrun-report and the compare report."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

RESULTS = "results.csv"
NEEDED = ("eval", "budget", "repeat", "test_accuracy")


class ReportError(Exception):
    """A problem with the user's input; printed as `sslrun-report: error: ...`, exit code 2."""


def read_results(run: Path) -> list[dict[str, Any]]:
    path = run / RESULTS
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in NEEDED if c not in (reader.fieldnames or [])]
        if missing:
            raise ReportError(
                f"{path} lacks the column(s) {', '.join(missing)} "
                f"(has: {', '.join(reader.fieldnames or []) or 'nothing'})"
            )
        try:
            return [
                {
                    **row,
                    "repeat": int(row["repeat"]),
                    "labeled": int(row.get("labeled") or 0),
                    "test_accuracy": float(row["test_accuracy"]),
                }
                for row in reader
            ]
        except ValueError as err:
            raise ReportError(f"{path} line {reader.line_num}: {err}") from err


def csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as CSV with these columns (None as an empty cell)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return buf.getvalue()

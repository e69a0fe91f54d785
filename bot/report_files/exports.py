"""Stream exports to temp files: one CSV per table (UTF-8 with BOM) and one XLSX workbook."""

from __future__ import annotations

import csv
import tempfile
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook

from bot.services.reports import EXPORTS, export_columns, iter_export
from storage.db import Database

# The files of an export that name people: the members table, and the workbook holding every table.
PERSONAL_FILES = frozenset({"members.csv", "linli.xlsx"})


async def write_exports(db: Database, *, community_id: int | None, start: datetime, end: datetime,
                        with_phone: bool, directory: Path | None = None, named: set[int] | None = None) -> list[Path]:
    """The files of an export; ``named`` (if given) gets the ids of the members whose names (and
    phones) the members file and the workbook hold (PERSONAL_FILES)."""
    out = Path(directory or tempfile.mkdtemp(prefix="linli-export-"))
    wb = Workbook(write_only=True)
    paths: list[Path] = []
    for table in EXPORTS:
        cols = export_columns(table, with_phone=with_phone)
        ws = wb.create_sheet(table)
        ws.append(cols)
        path = out / f"{table}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            async for row in iter_export(db, table, community_id=community_id, start=start, end=end,
                                         with_phone=with_phone):
                w.writerow(row)
                ws.append(list(row))
                if table == "members" and named is not None:
                    named.add(int(row[0]))
        paths.append(path)
    xlsx = out / "linli.xlsx"
    wb.save(xlsx)
    paths.append(xlsx)
    return paths

"""Whether two warehouses hold the same rows in a layer's tables, read without Spark (delta-rs):
per table the row counts and whether the rows are identical, ignoring run ids and wall-clock times
(two runs of the same date differ only in those). Exit 1 when any table differs or is missing.

    .venv/bin/python scripts/compare_tables.py WAREHOUSE_A WAREHOUSE_B [--layer gold]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deltalake import DeltaTable

from jobs import tables as t
from jobs.cli.common import render_table

# What differs between two runs of the same date and nothing else.
VOLATILE = {"run_id", "applied_run", "applied_at", "published_at", "publication_id", "validated_at"}


def rows(warehouse: Path, table: t.Table) -> list[tuple] | None:
    path = Path(table.path(warehouse))
    if not (path / "_delta_log").is_dir():
        return None
    data = DeltaTable(str(path)).to_pyarrow_table()
    data = data.drop_columns([c for c in data.column_names if c in VOLATILE])
    return sorted((tuple(r.values()) for r in data.to_pylist()), key=repr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--layer", default="gold")
    args = parser.parse_args()
    report, same = [], True
    for table in (x for x in t.ALL_TABLES if x.layer == args.layer):
        a, b = rows(args.a, table), rows(args.b, table)
        identical = a is not None and a == b
        same &= identical
        report.append(
            {
                "table": table.qualified,
                "rows_a": "missing" if a is None else len(a),
                "rows_b": "missing" if b is None else len(b),
                "identical": "yes" if identical else "NO",
            }
        )
    print(render_table(report, ["table", "rows_a", "rows_b", "identical"]))
    print(f"{args.layer} tables {'identical' if same else 'DIFFER'}: {args.a} vs {args.b}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

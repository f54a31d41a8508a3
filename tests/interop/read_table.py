"""Reads a Strata tenant table with other engines and prints what they see.

The Delta Lake reader (the `deltalake` package) resolves the live files
from the transaction log; DuckDB then reads exactly those Parquet files.
Prints one JSON object: row counts, value sums, series and the first rows
as each engine sees them, plus the table's version and history.
"""
import json
import sys

import duckdb
import pyarrow.compute as pc
from deltalake import DeltaTable


def main(path: str) -> None:
    dt = DeltaTable(path)
    table = dt.to_pyarrow_table()
    files = dt.file_uris()
    con = duckdb.connect()
    rel = con.execute(
        "SELECT count(*), sum(value), count(DISTINCT series_id), "
        "min(timestamp), max(timestamp), "
        "count(*) FILTER (WHERE labels['job'] = 'api') "
        "FROM read_parquet(?)",
        [files],
    ).fetchone()
    job_api = pc.sum(
        pc.equal(pc.list_element(pc.map_lookup(table["labels"], "job", "all"), 0), "api")
    ).as_py()
    out = {
        "version": dt.version(),
        "history": [h.get("operation") for h in dt.history()],
        "partition_columns": dt.metadata().partition_columns,
        "delta": {
            "rows": table.num_rows,
            "sum": pc.sum(table["value"]).as_py(),
            "series": len(pc.unique(table["series_id"])),
            "job_api": job_api,
            "columns": table.column_names,
            "timestamp_type": str(table.schema.field("timestamp").type),
        },
        "duckdb": {
            "rows": rel[0],
            "sum": rel[1],
            "series": rel[2],
            "min_ts": str(rel[3]),
            "max_ts": str(rel[4]),
            "job_api": rel[5],
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])

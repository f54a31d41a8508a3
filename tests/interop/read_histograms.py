"""Reads a Strata tenant's native-histogram table with other engines.

The Delta Lake reader (`deltalake`) resolves the live files from the
transaction log; DuckDB reads those Parquet files and unnests each row's
positive bucket indexes and counts into a bucket table. Prints one JSON
object with what each sees.
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
    rows, count, schema = con.execute(
        "SELECT count(*), sum(count), min(schema) FROM read_parquet(?)", [files]
    ).fetchone()
    buckets = con.execute(
        "SELECT b, sum(c) FROM (SELECT unnest(positive_buckets) AS b, "
        "unnest(positive_counts) AS c FROM read_parquet(?)) GROUP BY b ORDER BY b",
        [files],
    ).fetchall()
    out = {
        "partition_columns": dt.metadata().partition_columns,
        "delta": {
            "rows": table.num_rows,
            "count": pc.sum(table["count"]).as_py(),
            "columns": table.column_names,
            "buckets_type": str(table.schema.field("positive_buckets").type),
        },
        "duckdb": {
            "rows": rows,
            "count": count,
            "schema": schema,
            "buckets": [[b, c] for b, c in buckets],
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])

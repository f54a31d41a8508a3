"""The ADBC Flight SQL driver against Strata: statements, prepared
statements with a bound parameter, catalog metadata, server info.
Prints one JSON object."""
import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql

uri, tenant = sys.argv[1], sys.argv[2]
token = sys.argv[3] if len(sys.argv) > 3 else None
db_kwargs = {"adbc.flight.sql.rpc.call_header.x-scope-orgid": tenant}
if token:
    # HTTP Basic handshake with the token as password; the server answers
    # with the bearer token the driver then sends.
    db_kwargs["username"] = "grafana"
    db_kwargs["password"] = token
out = {}
with flight_sql.connect(uri, db_kwargs=db_kwargs) as conn:
    with conn.cursor() as cur:
        cur.execute("SELECT job, count(*) AS n, max(value) AS top FROM http_requests_total "
                    "GROUP BY job ORDER BY job")
        table = cur.fetch_arrow_table()
        out["columns"] = table.column_names
        out["rows"] = table.to_pylist()
        cur.execute("SELECT count(*) AS n FROM http_requests_total WHERE job = $1", ("db",))
        out["bound"] = cur.fetchone()[0]
        cur.execute("SELECT timestamp FROM http_requests_total ORDER BY timestamp LIMIT 1")
        out["timestamp_type"] = str(cur.fetch_arrow_table().schema.field("timestamp").type)
        # What clients ask first; the stream's schema must be the one
        # announced (a folded constant is not nullable, the plan's is).
        cur.execute("SELECT current_database() AS db, version() AS v")
        out["bearings"] = list(cur.fetchone())
        try:
            cur.execute("SELECT * FROM no_such_metric")
            cur.fetchall()
        except Exception as e:  # the driver's ProgrammingError
            out["error"] = type(e).__name__ + ": " + str(e).splitlines()[0]
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    out["tables"] = sorted(
        f"{s['db_schema_name']}.{t['table_name']}"
        for c in objects for s in c["catalog_db_schemas"] or [] for t in s["db_schema_tables"] or []
        if s["db_schema_name"] in ("public", "metrics")
    )
    out["schema"] = conn.adbc_get_table_schema("http_requests_total", db_schema_filter="public").names
    info = conn.adbc_get_info()
    out["vendor"] = info.get("vendor_name")
print(json.dumps(out))

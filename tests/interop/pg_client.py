"""psycopg 3 against Strata's Postgres listener: the extended protocol with
server-side parameters, prepared statements, binary results, and a
transaction the driver opens by itself. Prints one JSON object."""
import json
import sys

import psycopg

host, port, dbname = sys.argv[1], int(sys.argv[2]), sys.argv[3]
password = sys.argv[4] if len(sys.argv) > 4 else None
out = {}
with psycopg.connect(host=host, port=port, dbname=dbname, user="grafana",
                     password=password, autocommit=False) as conn:
    # Not autocommit: psycopg sends BEGIN before the first statement.
    with conn.cursor() as cur:
        cur.execute("SELECT job, count(*) AS n, max(value) AS top FROM http_requests_total "
                    "WHERE code = %s GROUP BY job ORDER BY job", ("200",))
        out["by_job"] = [[r[0], r[1], r[2]] for r in cur.fetchall()]
        out["columns"] = [d.name for d in cur.description]
        # Prepared explicitly, run twice with different parameters.
        q = "SELECT count(*) FROM http_requests_total WHERE job = %s AND value >= %s"
        out["prepared"] = [cur.execute(q, (job, 5.0), prepare=True).fetchone()[0]
                           for job in ("api", "db")]
        # Binary results: types come back as Python types.
        cur.execute("SELECT timestamp, value FROM http_requests_total ORDER BY timestamp LIMIT 1",
                    binary=True)
        ts, value = cur.fetchone()
        out["binary"] = [ts.isoformat(), value]
        try:
            cur.execute("SELECT * FROM no_such_metric")
        except psycopg.Error as e:
            out["error"] = [e.sqlstate, str(e).splitlines()[0]]
    conn.rollback()
print(json.dumps(out))

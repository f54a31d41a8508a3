"""Real log clients pushing to Strata, for tests/logs.rs.

usage: log_clients.py otel|loki <base url> <tenant>

otel: the OpenTelemetry Python SDK's OTLP/HTTP log exporter (protobuf),
      through the standard logging bridge, three records.
loki: python-logging-loki's LokiHandler (Loki push API v1, JSON), three
      records.

Prints {"exported": n} on success; exits non-zero if an export failed.
"""

import json
import logging
import sys


def otel(base, tenant):
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    exporter = OTLPLogExporter(endpoint=f"{base}/v1/logs", headers={"X-Scope-OrgID": tenant})
    results = []
    export = exporter.export

    def recording(batch):
        r = export(batch)
        results.append(r)
        return r

    exporter.export = recording
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "odoo", "deployment.environment": "prod"})
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    set_logger_provider(provider)
    log = logging.getLogger("stock.picking")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
    log.info("picking 1001 validated", extra={"business.process": "picking"})
    log.warning("picking 1002 waiting for stock", extra={"business.process": "picking"})
    log.error("invoice 77 posting failed", extra={"business.process": "invoicing"})
    provider.force_flush()
    provider.shutdown()
    ok = [r for r in results if r.name == "SUCCESS"]
    if len(ok) != len(results) or not results:
        sys.exit(f"export failed: {results}")
    print(json.dumps({"exported": len(results)}))


def loki(base, tenant):
    import logging_loki

    handler = logging_loki.LokiHandler(
        url=f"{base}/loki/api/v1/push", tags={"application": "wms"}, version="1"
    )
    handler.emitter.session.headers.update({"X-Scope-OrgID": tenant})
    failures = []

    def on_error(record):
        failures.append(sys.exc_info()[1])

    handler.handleError = on_error
    log = logging.getLogger("dispatch")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    log.info("dispatch 500 loaded", extra={"tags": {"dock": "d1"}})
    log.warning("dispatch 501 late", extra={"tags": {"dock": "d2"}})
    log.error("dispatch 502 cancelled", extra={"tags": {"dock": "d1"}})
    if failures:
        sys.exit(f"push failed: {failures}")
    print(json.dumps({"exported": 3}))


if __name__ == "__main__":
    mode, base, tenant = sys.argv[1:4]
    {"otel": otel, "loki": loki}[mode](base, tenant)

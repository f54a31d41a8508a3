"""The OpenTelemetry Python SDK's OTLP/HTTP metric exporter (protobuf)
pushing to Strata, for tests/otlp_metrics.rs.

usage: otel_metrics.py <base url> <tenant>

Records, under resource service.name=odoo, service.namespace=erp,
service.instance.id=web-1, k8s.namespace.name=prod:
  odoo.orders.picked     counter [{order}]  3 (stage=picking) then +2
  odoo.queue.depth       gauge   [{job}]    7 (queue=dispatch)
  http.server.duration   histogram [ms]     5, 20, 300 (route=/api/picking)
  pick.latency           exponential histogram [s]  0.25, 0.5, 3 (zone=a)
exports twice (cumulative; the first 20 ms after the measurements, so each
cumulative point's start time is a whole millisecond before it), and prints
{"exported": n}; exits non-zero if an export failed.
"""

import json
import sys
import time


def main(base, tenant):
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.metrics import Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
    from opentelemetry.sdk.metrics.view import (
        ExplicitBucketHistogramAggregation,
        ExponentialBucketHistogramAggregation,
        View,
    )
    from opentelemetry.sdk.resources import Resource

    exporter = OTLPMetricExporter(
        endpoint=f"{base}/v1/metrics", headers={"X-Scope-OrgID": tenant}
    )
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=Resource.create(
            {
                "service.name": "odoo",
                "service.namespace": "erp",
                "service.instance.id": "web-1",
                "k8s.namespace.name": "prod",
            }
        ),
        metric_readers=[reader],
        views=[
            View(
                instrument_name="http.server.duration",
                aggregation=ExplicitBucketHistogramAggregation([10, 100, 1000]),
            ),
            View(
                instrument_name="pick.latency",
                aggregation=ExponentialBucketHistogramAggregation(),
            ),
        ],
    )
    meter = provider.get_meter("stock")
    picked = meter.create_counter("odoo.orders.picked", unit="{order}")
    meter.create_observable_gauge(
        "odoo.queue.depth",
        callbacks=[lambda _: [Observation(7, {"queue": "dispatch"})]],
        unit="{job}",
    )
    duration = meter.create_histogram("http.server.duration", unit="ms")
    latency = meter.create_histogram("pick.latency", unit="s")

    results = []
    picked.add(3, {"stage": "picking"})
    for ms in (5, 20, 300):
        duration.record(ms, {"route": "/api/picking"})
    for s in (0.25, 0.5, 3):
        latency.record(s, {"zone": "a"})
    time.sleep(0.02)
    results.append(exporter.export(reader.get_metrics_data()))
    picked.add(2, {"stage": "picking"})
    results.append(exporter.export(reader.get_metrics_data()))
    exporter.shutdown()
    if any(r != MetricExportResult.SUCCESS for r in results):
        sys.exit(f"export failed: {results}")
    print(json.dumps({"exported": len(results)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

# Generates deploy/grafana/strata-*.json: run `python3 deploy/grafana/generate.py` from the repository root.
import json
def ds(name="datasource"):
    return {"type": "prometheus", "uid": "${%s}" % name}
def target(expr, legend="", ref="A", instant=False, name="datasource"):
    t = {"datasource": ds(name), "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t["instant"] = True; t["range"] = False; t["format"] = "table"
    return t
def panel(pid, title, kind, targets, x, y, w, h, unit=None, desc="", extra=None, name="datasource"):
    p = {"id": pid, "title": title, "type": kind, "description": desc,
         "datasource": ds(name), "gridPos": {"x": x, "y": y, "w": w, "h": h},
         "targets": targets, "fieldConfig": {"defaults": {}, "overrides": []}, "options": {}}
    if unit: p["fieldConfig"]["defaults"]["unit"] = unit
    if extra: p.update(extra)
    return p
def var_ds(name="datasource", label="Strata (tenant)"):
    return {"name": name, "label": label, "type": "datasource", "query": "prometheus", "current": {}, "hide": 0}
def var_q(name, expr, label, dsname="datasource"):
    return {"name": name, "label": label, "type": "query", "datasource": ds(dsname),
            "query": {"query": expr, "refId": "v"}, "definition": expr, "includeAll": True, "multi": True,
            "current": {"text": "All", "value": "$__all"}, "refresh": 2, "allValue": ".*"}
def dash(uid, title, desc, variables, panels):
    return {"uid": uid, "title": title, "description": desc, "tags": ["strata"], "schemaVersion": 39,
            "version": 1, "editable": True, "time": {"from": "now-7d", "to": "now"}, "refresh": "1m",
            "templating": {"list": variables}, "panels": panels, "annotations": {"list": []}}
slo = dash("strata-slo", "Strata — SLOs and error budgets",
  "Recorded by Strata's SLO evaluation (docs/SLO.md): SLI, error budget left, burn rates and burn-rate alerts, by business process.",
  [var_ds(), var_q("process", 'label_values(strata_slo_objective, business_process)', "Business process"),
   var_q("slo", 'label_values(strata_slo_objective{business_process=~"$process"}, slo)', "SLO")],
  [panel(1, "Error budget left by business process", "bargauge",
         [target('min by (business_process) (strata_slo_error_budget_remaining{business_process=~"$process"})', "{{business_process}}")],
         0, 0, 12, 8, "percentunit", "The worst SLO of each process: 100% untouched, 0 spent, below 0 overspent."),
   panel(2, "SLI", "stat", [target('strata_slo_sli{slo=~"$slo", business_process=~"$process"}', "{{slo}} {{route}}")],
         12, 0, 6, 8, "percentunit"),
   panel(3, "Firing burn-rate alerts", "table",
         [target('strata_slo_alert_firing{slo=~"$slo", business_process=~"$process"} == 1', "", instant=True)],
         18, 0, 6, 8, None, "Google SRE workbook pairs: page 1h/5m and 6h/30m, ticket 1d/2h and 3d/6h."),
   panel(4, "Error budget left (history)", "timeseries",
         [target('strata_slo_error_budget_remaining{slo=~"$slo", business_process=~"$process"}', "{{slo}} {{route}}")],
         0, 8, 12, 9, "percentunit"),
   panel(5, "Burn rate by window", "timeseries",
         [target('strata_slo_burn_rate{slo=~"$slo", business_process=~"$process", window=~"5m|1h|6h|1d"}', "{{slo}} {{route}} {{window}}")],
         12, 8, 12, 9, None, "1 spends the budget exactly over the compliance window."),
  ])
cap = dash("strata-capacity", "Strata — capacity and time to exhaustion",
  "Recorded by Strata's capacity forecasts (docs/CAPACITY.md): days until each resource reaches its limit, with the 95% band, most urgent first.",
  [var_ds(), var_q("capacity", 'label_values(strata_capacity_rank, capacity)', "Capacity spec")],
  [panel(1, "Most urgent first", "table",
         [target('sort(strata_capacity_seconds_left{capacity=~"$capacity", bound="estimate"} / 86400)', "", "A", True),
          target('strata_capacity_utilisation{capacity=~"$capacity"}', "", "B", True)],
         0, 0, 24, 9, None, "Days left (estimate) and utilisation per resource.",
         {"transformations": [{"id": "merge", "options": {}}]}),
   panel(2, "Days left, with the 95% band", "timeseries",
         [target('strata_capacity_seconds_left{capacity=~"$capacity"} / 86400', "{{capacity}} {{instance}} {{bound}}")],
         0, 9, 12, 9, "d"),
   panel(3, "Utilisation", "timeseries",
         [target('strata_capacity_utilisation{capacity=~"$capacity"}', "{{capacity}} {{instance}}")],
         12, 9, 12, 9, "percentunit"),
   panel(4, "Trend per day", "timeseries",
         [target('strata_capacity_trend_per_day{capacity=~"$capacity"}', "{{capacity}} {{instance}}")],
         0, 18, 24, 8, None, "The fitted slope of each usage series, in its own unit per day."),
  ])
nb = dash("strata-neighbours", "Strata — noisy neighbours",
  "Recorded by Strata's noisy-neighbour analysis (docs/CAPACITY.md): each workload's share of a shared resource, against its own baseline, and who drives contention; plus which tenant loads Strata itself.",
  [var_ds(), var_ds("strata_self", "Strata's own usage (tenant _strata)"),
   var_q("neighbours", 'label_values(strata_neighbour_rank, neighbours)', "Resource")],
  [panel(1, "Share of the resource", "timeseries",
         [target('strata_neighbour_share{neighbours=~"$neighbours"}', "{{neighbours}} {{workload}}")],
         0, 0, 12, 9, "percentunit", "", {"fieldConfig": {"defaults": {"unit": "percentunit", "custom": {"stacking": {"mode": "normal"}, "fillOpacity": 40}}, "overrides": []}}),
   panel(2, "Blame for contention", "bargauge",
         [target('sort_desc(strata_neighbour_blame{neighbours=~"$neighbours"})', "{{neighbours}} {{workload}}", instant=True)],
         12, 0, 12, 9, "percentunit", "Each workload's share of the load added over its own baseline while the resource saturated."),
   panel(3, "Load against its own baseline", "timeseries",
         [target('strata_neighbour_ratio{neighbours=~"$neighbours"}', "{{neighbours}} {{workload}}")],
         0, 9, 12, 8, None, "1 = its usual load."),
   panel(4, "Contention", "state-timeline",
         [target('strata_neighbour_contention{neighbours=~"$neighbours"}', "{{neighbours}}")],
         12, 9, 12, 8),
   panel(5, "Strata: query time by tenant", "timeseries",
         [target('sum by (tenant) (rate(strata_tenant_query_seconds_total[5m]))', "{{tenant}}", name="strata_self")],
         0, 17, 8, 8, "s", "Seconds of query work per second, per tenant.", name="strata_self"),
   panel(6, "Strata: samples ingested by tenant", "timeseries",
         [target('sum by (tenant) (rate(strata_tenant_samples_ingested_total[5m]))', "{{tenant}}", name="strata_self")],
         8, 17, 8, 8, "short", "", name="strata_self"),
   panel(7, "Strata: active series by tenant", "timeseries",
         [target('sum by (tenant) (strata_tenant_active_series)', "{{tenant}}", name="strata_self")],
         16, 17, 8, 8, "short", "", name="strata_self"),
  ])
for name, d in [("slo", slo), ("capacity", cap), ("neighbours", nb)]:
    with open(f"deploy/grafana/strata-{name}.json", "w") as f:
        json.dump(d, f, indent=2, ensure_ascii=False); f.write("\n")

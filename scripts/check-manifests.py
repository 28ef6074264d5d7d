#!/usr/bin/python3
"""Checks that the deployment files describe the suite, and agree.

Reads docker-compose.yml as `docker-compose config` resolved it (a file
argument), deploy/kubernetes/*.yaml and deploy/prometheus/*.yml, and checks
what a typo or a half-done copy would break: every service has its compose
block, its Kubernetes file and its scrape job; ports, probes, database names
and timeouts agree across them. Prints one line per problem, exits 1 if any.

Usage: scripts/check-manifests.py COMPOSE_CONFIG_OUTPUT SERVICE...
Needs python3-yaml (scripts/deps.sh installs it).
"""
import glob
import os
import re
import sys

import yaml

INFRA = {"postgres", "rabbitmq", "prometheus", "alertmanager", "jaeger"}
K8S_KINDS = {"ConfigMap", "Secret", "Deployment", "Service",
             "PodDisruptionBudget", "HorizontalPodAutoscaler"}
problems = []


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML
    keeps the last one silently; Kubernetes and compose would too)."""


def _no_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


_loaded = {}


def load_all(path):
    """The documents of a YAML file (empty ones dropped); a parse error or
    a duplicate key is a problem, reported once, and yields nothing."""
    if path not in _loaded:
        try:
            with open(path) as f:
                _loaded[path] = [d for d in yaml.load_all(
                    f, Loader=StrictLoader) if d is not None]
        except (OSError, yaml.YAMLError) as e:
            fail(path, " ".join(str(e).split()))
            _loaded[path] = []
    return _loaded[path]


def fail(where, msg):
    problems.append(f"{where}: {msg}")


def seconds(duration):
    """'10s', '250ms', '5m', '1h' or a bare number of seconds -> seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", str(duration).strip())
    if not m:
        return None
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
    return float(m.group(1)) * scale


def compose_duration(value):
    """Compose durations: '30s', '1m30s', '500ms'."""
    total, rest = 0.0, str(value)
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|s|m|h)", rest):
        total += float(num) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60,
                               "h": 3600}[unit]
    return total


def env_dict(env):
    if isinstance(env, list):
        return dict(e.split("=", 1) for e in env)
    return dict(env or {})


def check_compose(path, services):
    load_all("docker-compose.yml")  # duplicates, which config would hide
    cfg = (load_all(path) or [{}])[0]
    blocks = cfg.get("services", {})
    names = set(blocks)
    if names != INFRA | set(services):
        fail("docker-compose.yml", f"services are {sorted(names)}, "
             f"expected {sorted(INFRA | set(services))}")
    pg_env = env_dict(blocks.get("postgres", {}).get("environment"))
    dbs = pg_env.get("MICROSHOP_DATABASES", "").split()
    for s in services:
        where = f"docker-compose.yml: {s}"
        b = blocks.get(s)
        if b is None:
            continue
        if b.get("build", {}).get("args", {}).get("SERVICE") != s:
            fail(where, f"build.args.SERVICE is not {s}")
        env = env_dict(b.get("environment"))
        port = env.get("SERVICE_PORT")
        test = " ".join(b.get("healthcheck", {}).get("test", []))
        if f"127.0.0.1:{port}/health/ready" not in test:
            fail(where, f"health check does not probe /health/ready on "
                 f"SERVICE_PORT {port}: {test!r}")
        if s not in dbs:
            fail(where, f"not in postgres MICROSHOP_DATABASES {dbs}")
        if f"@postgres:5432/{s}_db" not in env.get("DATABASE_URL", ""):
            fail(where, f"DATABASE_URL does not name {s}_db on postgres")
        for key in ("RABBITMQ_URL", "JWT_SECRET",
                    "OTEL_EXPORTER_OTLP_ENDPOINT"):
            if not env.get(key):
                fail(where, f"{key} is not set")
        if len(env.get("JWT_SECRET", "")) < 32:
            fail(where, "JWT_SECRET is shorter than 32 bytes")
        deps = b.get("depends_on", {})
        for d in ("postgres", "rabbitmq"):
            if not isinstance(deps, dict) or \
                    deps.get(d, {}).get("condition") != "service_healthy":
                fail(where, f"does not wait for {d} to be healthy")
        drain = seconds(env.get("DRAIN_TIMEOUT", "10s"))
        grace = compose_duration(b.get("stop_grace_period", "10s"))
        if drain is None or grace <= drain:
            fail(where, f"stop_grace_period {grace:g}s is not above "
                 f"DRAIN_TIMEOUT {env.get('DRAIN_TIMEOUT', '10s')}")
        if not b.get("read_only"):
            fail(where, "root file system is not read-only")
    orders = blocks.get("orders", {})
    for d in ("products", "inventory"):
        if d in services and "orders" in services and \
                orders.get("depends_on", {}).get(d, {}).get("condition") \
                != "service_healthy":
            fail("docker-compose.yml: orders",
                 f"does not wait for {d} to be healthy")
    return blocks


def scrape_jobs(path):
    cfg = (load_all(path) or [{}])[0]
    return {j["job_name"]: [t for sc in j.get("static_configs", [])
                            for t in sc.get("targets", [])]
            for j in cfg.get("scrape_configs", [])}


def check_prometheus(blocks, services):
    local = scrape_jobs("deploy/prometheus/prometheus.yml")
    compose = scrape_jobs("deploy/prometheus/prometheus.compose.yml")
    if set(local) != set(compose):
        fail("deploy/prometheus/prometheus.compose.yml",
             f"jobs {sorted(compose)} differ from prometheus.yml's "
             f"{sorted(local)}")
    for s in services:
        port = env_dict(blocks.get(s, {}).get("environment")) \
            .get("SERVICE_PORT")
        if compose.get(s) != [f"{s}:{port}"]:
            fail("deploy/prometheus/prometheus.compose.yml",
                 f"job {s} does not scrape {s}:{port}: {compose.get(s)}")
        if s not in local:
            fail("deploy/prometheus/prometheus.yml", f"no job {s}")


def check_kubernetes(services):
    files = sorted(glob.glob("deploy/kubernetes/*.yaml"))
    for path in files:
        for d in load_all(path):
            if not d.get("apiVersion") or not d.get("kind") or \
                    not d.get("metadata", {}).get("name"):
                fail(path, "a document without apiVersion, kind or name")
            elif d["kind"] != "Namespace" and \
                    d["metadata"].get("namespace") != "microshop":
                fail(path, f"{d['kind']} {d['metadata']['name']} is not "
                     "in namespace microshop")
    for s in services:
        path = f"deploy/kubernetes/{s}.yaml"
        if path not in files:
            fail(path, "missing")
            continue
        docs = load_all(path)
        if not docs:
            continue
        by_kind = {d.get("kind"): d for d in docs}
        if set(by_kind) != K8S_KINDS:
            fail(path, f"kinds {sorted(by_kind)}, expected "
                 f"{sorted(K8S_KINDS)}")
            continue
        for kind, d in by_kind.items():
            if d["metadata"]["name"] != s:
                fail(path, f"{kind} is named {d['metadata']['name']}")
        conf = by_kind["ConfigMap"].get("data", {})
        dep = by_kind["Deployment"]["spec"]
        labels = dep["template"]["metadata"]["labels"]
        sel = dep["selector"]["matchLabels"]
        if not sel.items() <= labels.items():
            fail(path, "Deployment selector does not match its pods")
        for kind in ("Service", "PodDisruptionBudget"):
            d = by_kind[kind]["spec"]
            ksel = d["selector"] if kind == "Service" \
                else d["selector"]["matchLabels"]
            if ksel != sel:
                fail(path, f"{kind} selector {ksel} is not the "
                     f"Deployment's {sel}")
        target = by_kind["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
        if target.get("kind") != "Deployment" or target.get("name") != s:
            fail(path, "HorizontalPodAutoscaler does not scale the "
                 "Deployment")
        pod = dep["template"]["spec"]
        c = next((c for c in pod["containers"] if c["name"] == s), None)
        if c is None:
            fail(path, f"no container named {s}")
            continue
        ports = {p.get("name"): p["containerPort"] for p in c["ports"]}
        if str(ports.get("http")) != str(conf.get("SERVICE_PORT")):
            fail(path, f"container port http {ports.get('http')} is not "
                 f"SERVICE_PORT {conf.get('SERVICE_PORT')}")
        probes = {
            "livenessProbe": "/health/live",
            "readinessProbe": "/health/ready",
        }
        for probe, want in probes.items():
            got = c.get(probe, {}).get("httpGet", {})
            if got.get("path") != want or got.get("port") not in \
                    ("http", ports.get("http")):
                fail(path, f"{probe} is not GET {want} on the http port")
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            if not res.get(part, {}).get("memory") or \
                    not res.get(part, {}).get("cpu"):
                fail(path, f"resources.{part} lacks cpu or memory")
        envs = {e["name"]: e for e in c.get("env", [])}
        ref = envs.get("JWT_SECRET", {}).get("valueFrom", {}) \
            .get("secretKeyRef", {})
        if ref.get("name") != "microshop-jwt":
            fail(path, "JWT_SECRET does not come from Secret microshop-jwt")
        sources = {next(iter(v))[:-3]: v[next(iter(v))]["name"]
                   for v in c.get("envFrom", [])}
        if sources != {"configMap": s, "secret": s}:
            fail(path, f"envFrom is {sources}, expected its ConfigMap and "
                 "Secret")
        secret = by_kind["Secret"].get("stringData", {})
        for key in ("DATABASE_URL", "RABBITMQ_URL"):
            if key not in secret:
                fail(path, f"Secret lacks {key}")
        if f"/{s}_db" not in secret.get("DATABASE_URL", ""):
            fail(path, f"DATABASE_URL does not name {s}_db")
        drain = seconds(conf.get("DRAIN_TIMEOUT", "10s"))
        pre = 0.0
        cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}) \
            .get("command", [])
        if cmd[:1] == ["sleep"]:
            pre = float(cmd[1])
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if drain is None or grace <= pre + drain:
            fail(path, f"terminationGracePeriodSeconds {grace} is not above "
                 f"preStop {pre:g}s + DRAIN_TIMEOUT "
                 f"{conf.get('DRAIN_TIMEOUT', '10s')}")
        psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
        if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
            fail(path, "not runAsNonRoot")
        if not csc.get("readOnlyRootFilesystem"):
            fail(path, "root file system is not read-only")
        if csc.get("allowPrivilegeEscalation") is not False:
            fail(path, "allowPrivilegeEscalation is not false")
    extra = {os.path.basename(p)[:-5] for p in files} - set(services) - \
        {"common"}
    for e in sorted(extra):
        fail(f"deploy/kubernetes/{e}.yaml", "no such service")


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    services = sys.argv[2:]
    blocks = check_compose(sys.argv[1], services)
    check_prometheus(blocks, services)
    check_kubernetes(services)
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"check-manifests: compose, Prometheus and Kubernetes files agree "
          f"for {', '.join(services)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""test_deploy_files.py — cheap checks of the production deployment files in
deploy/ (systemd, container, Kubernetes, Grafana): they parse, they agree with
each other and with the worker (metric names, labels, exit codes, config keys,
probe paths), and the pod's config passes llmq-worker --check-config.

Nothing here builds an image or talks to a cluster. systemd-analyze verifies
the unit and a pinned kustomize renders deploy/k8s; deploy/local/deps.sh
installs both, and a test whose tool is missing fails saying so."""
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from llmq_harness import ROOT

DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "llmq-worker@.service"
CONTAINERFILE = DEPLOY / "container" / "Containerfile"
K8S = DEPLOY / "kubernetes"
DASHBOARD = DEPLOY / "grafana" / "llmq-dashboard.json"

# Labels Prometheus adds to every scraped series.
SCRAPE_LABELS = {"job", "instance"}
# Shutdown work after the drain that the worker bounds itself (worker.c,
# kafka.c, supervisor.c): reply flush 5 s, producer flush 5 s, llama-server
# SIGTERM grace 5 s.
SHUTDOWN_TAIL_S = 15


# ---- helpers ----

def yaml_files():
    return sorted(p for d in (K8S,) for p in d.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_k8s():
    """Every Kubernetes object in deploy/kubernetes, by kind."""
    objects = {}
    for path in yaml_files():
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                objects.setdefault(doc["kind"], []).append(doc)
    return objects


def only(objects, kind):
    assert len(objects.get(kind, [])) == 1, f"expected one {kind} in {K8S}"
    return objects[kind][0]


def kustomization():
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def pod_config_files():
    """The files kustomization.yaml turns into the worker's ConfigMap."""
    gens = kustomization().get("configMapGenerator", [])
    assert gens, "kustomization.yaml has no configMapGenerator for the worker config"
    return {g["name"]: [K8S / f.split("=")[-1] for f in g["files"]] for g in gens}


def check_config(build_dir, cfg, env):
    """llmq-worker --check-config under a clean environment plus `env`."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    out = subprocess.run([str(build_dir / "llmq-worker"), "-c", str(cfg), "--check-config"],
                         capture_output=True, text=True, timeout=30, env=full)
    assert out.returncode == 0, f"{cfg}: {out.stderr}"
    return out.stdout


def dumped(dump, key):
    """A scalar `key = value;` from config_dump's output (first match)."""
    m = re.search(rf"^\s*{re.escape(key)} = (.+);$", dump, re.M)
    assert m, f"{key} missing from --check-config output"
    return m.group(1).strip('"')


def unit_entries():
    entries = []
    section = None
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key, value))
    return entries


def unit_values(key, section="Service"):
    return [v for s, k, v in unit_entries() if s == section and k == key]


def worker_metric_families():
    """Metric names and histogram families the worker's metrics.c renders."""
    src = (ROOT / "worker" / "metrics.c").read_text()
    names = set(re.findall(r'"(llmq_[a-z0-9_]+)"', src))
    block = src[src.index("histogram_families["):]
    block = block[:block.index("};")]
    histograms = set(re.findall(r'"(llmq_[a-z0-9_]+)"', block))
    assert histograms and histograms <= names
    return names, histograms


def worker_labels():
    src = (ROOT / "worker" / "metrics.c").read_text()
    labels = set(re.findall(r'series_label\(t, "([a-z_]+)"', src))
    base = re.search(r'const char \*keys\[\] = \{([^}]*)\}', src)
    assert base, "base labels (worker, model, gpu) not found in metrics.c"
    labels |= set(re.findall(r'"([a-z_]+)"', base.group(1)))
    return labels


def dashboard_exprs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                yield v
            else:
                yield from dashboard_exprs(v)
    elif isinstance(node, list):
        for v in node:
            yield from dashboard_exprs(v)


def worker_exit_codes():
    src = (ROOT / "worker" / "main.c").read_text()
    return {k: int(v) for k, v in re.findall(r"EXIT_([A-Z]+) = (\d+)", src)}


# ---- YAML and the Kubernetes objects ----

def test_every_yaml_file_parses():
    files = yaml_files()
    assert files, f"no YAML under {K8S}"
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs, f"{path} is empty"
        for doc in docs:
            assert isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc, path


def test_kustomization_lists_existing_files():
    k = kustomization()
    for res in k["resources"]:
        assert (K8S / res).is_file(), f"kustomization.yaml names missing {res}"
    for files in pod_config_files().values():
        for f in files:
            assert f.is_file(), f"configMapGenerator names missing {f}"


def test_pod_config_passes_check_config(build_dir):
    """The ConfigMap's worker.cfg, with the env the Deployment sets; the model
    path does not exist here, which --check-config does not mind."""
    dep = only(load_k8s(), "Deployment")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value", "llmq-worker-5d8f7c9b4-x2x7q") for e in container["env"]}
    assert "valueFrom" in next(e for e in container["env"] if e["name"] == "LLMQ_WORKER_ID")
    assert env["LLMQ_LLAMA_GPU"] == "0"
    for files in pod_config_files().values():
        for cfg in files:
            dump = check_config(build_dir, cfg, env)
            assert not os.path.exists(dumped(dump, "model"))
            assert dumped(dump, "id") == "llmq-worker-5d8f7c9b4-x2x7q"
            assert dumped(dump, "gpu") == "0"
            host, _, port = dumped(dump, "listen").rpartition(":")
            assert host == "0.0.0.0", "probes and Prometheus need the pod's address"


def test_deployment_probes_and_shutdown(build_dir):
    objects = load_k8s()
    dep = only(objects, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    (cfg,) = [f for files in pod_config_files().values() for f in files]
    dump = check_config(build_dir, cfg, {})
    metrics_port = int(dumped(dump, "listen").rpartition(":")[2])

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == metrics_port

    def probe(name):
        get = container[name]["httpGet"]
        port = get["port"]
        return get["path"], ports.get(port, port)

    assert probe("livenessProbe") == ("/healthz", metrics_port)
    assert probe("readinessProbe") == ("/readyz", metrics_port)
    path, port = probe("startupProbe")
    assert path in ("/healthz", "/readyz") and port == metrics_port
    start = container["startupProbe"]
    startup_timeout = int(dumped(dump, "startup_timeout_s"))
    assert start["periodSeconds"] * start["failureThreshold"] > startup_timeout, \
        "the startup probe must outlast a model load"

    drain = int(dumped(dump, "drain_timeout_s"))
    assert pod["terminationGracePeriodSeconds"] >= drain + SHUTDOWN_TAIL_S
    assert container["resources"]["limits"]["amd.com/gpu"] == 1
    assert "replicas" not in dep["spec"], "KEDA owns the replica count"

    # The ConfigMap lands where the image's ENTRYPOINT reads it.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_volume = next(n for n, v in volumes.items() if "configMap" in v)
    assert volumes[config_volume]["configMap"]["name"] in pod_config_files()
    entry = containerfile_instructions("ENTRYPOINT")[-1]
    assert json.loads(entry)[-1] == f"{mounts[config_volume]}/{cfg.name}"
    assert os.path.dirname(dumped(dump, "model")) == mounts["models"]


def test_kafka_secrets_come_from_a_mounted_secret(build_dir):
    """Issue 11 point 3: no secret in the ConfigMap; the pod mounts the Secret llmq-kafka
    (optional) where worker.cfg's "@/path" values point."""
    dep = only(load_k8s(), "Deployment")
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    secret = next(v for v in pod["volumes"] if "secret" in v)
    assert secret["secret"].get("optional") is True, "a broker without SASL needs no Secret"
    mount = next(m for m in container["volumeMounts"] if m["name"] == secret["name"])
    (cfg,) = [f for files in pod_config_files().values() for f in files]
    text = cfg.read_text()
    assert f'sasl_password = "@{mount["mountPath"]}/' in text
    assert not re.search(r'^\s*sasl_password\s*=\s*"[^@]', text, re.M), "a password in the ConfigMap"
    unit = UNIT.read_text()
    assert "LLMQ_KAFKA_PROP_SASL_PASSWORD=@%d/" in unit and "LoadCredential=sasl.password:" in unit


def test_service_and_podmonitor_scrape_the_metrics_port():
    objects = load_k8s()
    dep = only(objects, "Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    svc = only(objects, "Service")
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
    mon = only(objects, "PodMonitor")
    assert mon["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert mon["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert mon["spec"]["podMetricsEndpoints"][0]["path"] == "/metrics"


def test_keda_scaler_matches_the_worker_config(build_dir):
    objects = load_k8s()
    so = only(objects, "ScaledObject")
    dep = only(objects, "Deployment")
    assert so["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert 0 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    (cfg,) = [f for files in pod_config_files().values() for f in files]
    dump = check_config(build_dir, cfg, {})
    assert meta["bootstrapServers"] == dumped(dump, "brokers")
    assert meta["consumerGroup"] == dumped(dump, "group_id")
    jobs_topics = re.search(r"jobs_topics = \[ (.*) \];", dump).group(1)
    assert f'"{meta["topic"]}"' in jobs_topics
    assert int(meta["lagThreshold"]) == int(dumped(dump, "slots"))
    # KEDA must count a new group's lag the way the worker starts it.
    kafka_src = "".join(p.read_text() for p in sorted((ROOT / "worker").glob("kafka*.c")))
    reset = re.search(r'"auto\.offset\.reset", "([a-z]+)"', kafka_src).group(1)
    assert meta["offsetResetPolicy"] == reset


def test_kustomize_renders():
    """deploy/k8s renders with the pinned kustomize (deps.sh builds it)."""
    built = subprocess.run(["bash", str(ROOT / "deploy/local/deps.sh"), "kustomize"],
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, f"deploy/local/deps.sh kustomize failed: {built.stderr}"
    out = subprocess.run([built.stdout.strip(), "build", str(K8S)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    dep = next(d for d in docs if d["kind"] == "Deployment")
    names = [v["configMap"]["name"] for v in dep["spec"]["template"]["spec"]["volumes"]
             if "configMap" in v]
    assert names == [cm["metadata"]["name"]], "the Deployment must mount the hashed ConfigMap"


# ---- systemd ----

def test_systemd_unit_has_the_required_keys(build_dir, tmp_path):
    def one(key):
        values = unit_values(key)
        assert values, f"{UNIT.name}: {key}= missing"
        return values[-1]

    assert one("Type") == "simple"
    assert one("Restart") == "on-failure"
    assert one("KillSignal") == "SIGTERM"
    assert one("KillMode") == "mixed", "SIGTERM must reach llmq-worker only, not llama-server"
    assert one("NoNewPrivileges") == "yes"
    assert one("ProtectSystem") == "strict"
    assert one("ProtectHome") in ("yes", "read-only", "tmpfs")
    assert one("PrivateTmp") == "yes"
    assert one("DynamicUser") == "yes" or unit_values("User")
    assert {"render", "video"} <= set(one("SupplementaryGroups").split())
    allowed = [v.split()[0] for v in unit_values("DeviceAllow")]
    assert "/dev/kfd" in allowed and "char-drm" in allowed
    assert "LLMQ_LLAMA_GPU=%i" in unit_values("Environment")
    assert "%i" in one("LoadCredential") and "%i" in one("EnvironmentFile")

    codes = worker_exit_codes()
    prevent = set(one("RestartPreventExitStatus").split())
    assert {str(codes["USAGE"]), str(codes["CONFIG"])} <= prevent
    assert str(codes["RUNTIME"]) not in prevent

    # The stop timeout covers the drain of the example config and the tail.
    dump = check_config(build_dir, DEPLOY / "worker.example.cfg", {"LLMQ_LLAMA_GPU": "1"})
    assert dumped(dump, "gpu") == "1"
    m = re.fullmatch(r"(\d+)s?", one("TimeoutStopSec"))
    assert m and int(m.group(1)) >= int(dumped(dump, "drain_timeout_s")) + SHUTDOWN_TAIL_S


def test_systemd_analyze_verify(build_dir, tmp_path):
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.fail("systemd-analyze not installed: deploy/local/deps.sh installs it "
                    "(Debian package systemd)", pytrace=False)
    text = UNIT.read_text().replace("/usr/local/bin/llmq-worker", str(build_dir / "llmq-worker"))
    (tmp_path / UNIT.name).write_text(text)
    out = subprocess.run([tool, "verify", "--man=no", str(tmp_path / "llmq-worker@0.service")],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    # systemd < 254 does not know the exponential-backoff keys; nothing else
    # may be reported.
    problems = [line for line in (out.stdout + out.stderr).splitlines()
                if line and not re.search(r"Unknown key '(RestartSteps|RestartMaxDelaySec)'", line)]
    assert out.returncode == 0 and not problems, "\n".join(problems)


# ---- Containerfile ----

def containerfile_instructions(name=None):
    """(instruction, arguments) pairs, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    items = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        items.append((word.upper(), rest.strip()))
    return [rest for word, rest in items if word == name] if name else items


def test_containerfile_runtime_contract():
    items = containerfile_instructions()
    known = {"FROM", "ARG", "RUN", "COPY", "WORKDIR", "ENV", "USER", "EXPOSE", "STOPSIGNAL",
             "ENTRYPOINT", "LABEL"}
    assert {word for word, _ in items} <= known
    assert len(containerfile_instructions("FROM")) >= 3, "multi-stage: llama, llmq, runtime"
    assert json.loads(containerfile_instructions("ENTRYPOINT")[-1]) == \
        ["llmq-worker", "-c", "/etc/llmq/worker.cfg"]
    assert containerfile_instructions("STOPSIGNAL") == ["SIGTERM"]
    assert containerfile_instructions("EXPOSE") == ["9464"]
    assert not containerfile_instructions("HEALTHCHECK")
    user = containerfile_instructions("USER")[-1].split(":")[0]
    assert user not in ("root", "0")
    # The build context is the repository root: every plain COPY source exists.
    for args in containerfile_instructions("COPY"):
        if args.startswith("--from"):
            continue
        for src in args.split()[:-1]:
            assert (ROOT / src).exists(), f"Containerfile copies missing {src}"


# ---- Grafana ----

def test_dashboard_uses_only_worker_metrics_and_labels():
    dash = json.loads(DASHBOARD.read_text())
    names, histograms = worker_metric_families()
    labels = worker_labels() | SCRAPE_LABELS | {"le"}
    exprs = list(dashboard_exprs(dash))
    assert len(exprs) >= 15
    used = set()
    for expr in exprs:
        for metric in re.findall(r"\bllmq_[a-z0-9_]+", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            if base != metric:
                assert base in histograms, f"{metric}: {base} is not a worker histogram"
            else:
                assert metric in names, f"{metric} is not a worker metric ({expr})"
            used.add(base)
        for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            for label in filter(None, (s.strip() for s in group.split(","))):
                assert label in labels, f"{label} is not a label of the worker's series ({expr})"
        for sel in re.findall(r"\{([^}]*)\}", expr):
            for label in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)\s*\"", sel):
                assert label in labels, f"{label} is not a label of the worker's series ({expr})"
    for family in ("llmq_jobs_total", "llmq_jobs_in_flight", "llmq_tokens_generated_total",
                   "llmq_kafka_consumer_lag", "llmq_llama_up", "llmq_llama_restarts_total",
                   "llmq_gpu_vram_used_bytes", "llmq_gpu_vram_total_bytes",
                   "llmq_gpu_temperature_celsius", "llmq_gpu_power_watts",
                   "llmq_gpu_busy_ratio", "llmq_admission_paused", *histograms):
        assert family in used, f"the dashboard shows no {family}"
    for h in histograms:
        assert any(f"histogram_quantile(0.95, sum by (le) (rate({h}_bucket" in e for e in exprs)


def test_dashboard_is_templated_on_worker_and_model():
    dash = json.loads(DASHBOARD.read_text())
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"worker", "model"} <= variables
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for expr in dashboard_exprs(dash):
        if "llmq_" in expr and "{" in expr:
            assert 'worker=~"$worker"' in expr and 'model=~"$model"' in expr, expr

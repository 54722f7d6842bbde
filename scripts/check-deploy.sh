#!/usr/bin/env bash
# Offline checks for the Kubernetes manifests under deploy/ (no cluster needed).
#
#   scripts/check-deploy.sh
#
# 1. Renders every kustomization (deploy/base, deploy/overlays/*):
#    - with scripts/kustomize_lite.py, a small documented renderer limited to the
#      kustomize features deploy/ uses (kustomize binaries come from GitHub,
#      which CI machines cannot reach);
#    - and, where `kustomize` or `kubectl kustomize` is installed, with it too:
#      the two renderings must be identical, and the real one is validated.
# 2. Validates every rendered object against the Kubernetes JSON schemas of the
#    PyPI package kubernetes-validate (it ships them; strict: unknown fields are
#    errors), for the oldest and newest Kubernetes versions we target.
# 3. Checks the deployment policy: non-root uid 10001 as in the Dockerfile,
#    read-only root file system with /tmp on an emptyDir, no capabilities,
#    seccomp RuntimeDefault, probes, resources, secrets only by reference,
#    CARREL_* names that the server knows, port and bind address as in the image.
# 4. Runs `carrel config check` (production rules included) on the settings each
#    rendering gives the server, when a built binary is found (CARREL_BIN, else
#    $CARGO_TARGET_DIR/debug/carrel; .ci/run builds it before this step).
# 5. Negative checks: deliberately broken copies must fail steps 2 to 4, so a
#    validator that silently accepts everything fails this script.
#
# Installs kubernetes-validate (pinned) into a venv under /var/tmp on first use.
# Prints each check and exits non-zero if any fails.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

VENV="${CARREL_DEPLOY_VENV:-/var/tmp/carrel-deploy-venv}"
KUBERNETES_VALIDATE_VERSION="1.37.0"
PY="$VENV/bin/python"

if ! "$PY" -c "import kubernetes_validate, yaml, sys; sys.exit(0 if kubernetes_validate.__version__ == '$KUBERNETES_VALIDATE_VERSION' else 1)" >/dev/null 2>&1; then
    echo "..   installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "pyyaml>=6" >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A real kustomize, if this machine has one (optional; CARREL_DEPLOY_NO_KUSTOMIZE=1
# skips it, to exercise the renderer-only path).
real_kustomize=()
if [[ -n "${CARREL_DEPLOY_NO_KUSTOMIZE:-}" ]]; then
    :
elif command -v kustomize >/dev/null 2>&1 && kustomize version >/dev/null 2>&1; then
    real_kustomize=(kustomize build)
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    real_kustomize=(kubectl kustomize)
fi

status=0
targets=(deploy/base)
for overlay in deploy/overlays/*/; do
    targets+=("${overlay%/}")
done
for target in "${targets[@]}"; do
    name="$(echo "$target" | tr '/' '_')"
    if "$PY" scripts/kustomize_lite.py "$target" >"$work/$name.lite.yaml"; then
        echo "ok   kustomize_lite renders $target"
    else
        echo "FAIL kustomize_lite cannot render $target"
        status=1
        continue
    fi
    cp "$work/$name.lite.yaml" "$work/$name.yaml"
    if (( ${#real_kustomize[@]} )); then
        if "${real_kustomize[@]}" "$target" >"$work/$name.real.yaml" 2>"$work/$name.real.err"; then
            if "$PY" - "$work/$name.real.yaml" "$work/$name.lite.yaml" <<'PY'
import sys, yaml
real, lite = (list(yaml.safe_load_all(open(p))) for p in sys.argv[1:3])
sys.exit(0 if real == lite else 1)
PY
            then
                echo "ok   ${real_kustomize[*]} $target matches kustomize_lite"
                cp "$work/$name.real.yaml" "$work/$name.yaml"
            else
                echo "FAIL ${real_kustomize[*]} $target differs from kustomize_lite:"
                diff "$work/$name.real.yaml" "$work/$name.lite.yaml" | head -40 || true
                status=1
            fi
        else
            echo "FAIL ${real_kustomize[*]} $target: $(head -c 400 "$work/$name.real.err")"
            status=1
        fi
    fi
done
if (( ! ${#real_kustomize[@]} )); then
    echo "--   no kustomize binary here; rendered with scripts/kustomize_lite.py only"
fi
if (( status != 0 )); then
    exit 1
fi

"$PY" - "$work" "${targets[@]}" <<'PY'
import copy
import json
import os
import re
import sys

import kubernetes_validate
import yaml

work, targets = sys.argv[1], sys.argv[2:]
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]
failures = []


def ok(msg):
    print(f"ok   {msg}")


def fail(msg):
    print(f"FAIL {msg}")
    failures.append(msg)


def check(cond, msg):
    (ok if cond else fail)(msg)
    return cond


# ---------------------------------------------------------------------------
# Facts the manifests must agree with
# ---------------------------------------------------------------------------
dockerfile = open("Dockerfile").read()
user = re.findall(r"^USER\s+(\d+)(?::(\d+))?", dockerfile, re.M)
IMAGE_UID = int(user[-1][0])
IMAGE_GID = int(user[-1][1] or user[-1][0])
IMAGE_PORT = int(re.findall(r"^EXPOSE\s+(\d+)", dockerfile, re.M)[-1])
IMAGE_DATA_DIR = re.search(r"CARREL_DATA_DIR=(\S+)", dockerfile).group(1)
config_source = ""
for root, _, files in os.walk("crates/carrel-server/src/config"):
    for f in files:
        if f.endswith(".rs"):
            config_source += open(os.path.join(root, f)).read()
KNOWN_VARS = set(re.findall(r'"(CARREL_[A-Z0-9_]+)"', config_source))
# CARREL_RATE_LIMIT_<NAME> is built from the limit's name at run time.
VAR_PREFIXES = ("CARREL_RATE_LIMIT_",)
SECRET_VARS = {"CARREL_DATABASE_URL", "CARREL_SMTP_URL", "CARREL_REDIS_URL",
               "CARREL_BOOTSTRAP_ADMIN_PASSWORD"}


def known_var(name):
    return name in KNOWN_VARS or name.startswith(VAR_PREFIXES)


# ---------------------------------------------------------------------------
# Schema validation
# ---------------------------------------------------------------------------
def schema_errors(obj):
    """Problems kubernetes-validate finds in one object (empty when valid)."""
    errors = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            errors.append(f"k8s {version}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"k8s {version}: no schema for {obj.get('apiVersion')} {obj.get('kind')}")
    return errors


# ---------------------------------------------------------------------------
# Policy
# ---------------------------------------------------------------------------
def pod_spec(obj):
    spec = obj.get("spec") or {}
    if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return (spec.get("template") or {}).get("spec") or {}
    return None


def policy_errors(objects, production):
    errors = []
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)

    def need(cond, msg):
        if not cond:
            errors.append(msg)

    for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
                 "Job", "ConfigMap", "ServiceAccount"):
        need(len(by_kind.get(kind, [])) == 1, f"exactly one {kind}")
    need("Secret" not in by_kind, "no Secret objects: secrets are referenced by name, never inlined")
    if errors:
        return errors
    deployment = by_kind["Deployment"][0]
    job = by_kind["Job"][0]
    configmap = by_kind["ConfigMap"][0]
    service = by_kind["Service"][0]
    pdb = by_kind["PodDisruptionBudget"][0]
    hpa = by_kind["HorizontalPodAutoscaler"][0]
    data = configmap.get("data") or {}

    for obj in (deployment, job):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        spec = pod_spec(obj)
        psc = spec.get("securityContext") or {}
        need(psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot")
        need(psc.get("runAsUser") == IMAGE_UID, f"{where}: pod runAsUser {IMAGE_UID} (Dockerfile USER)")
        need(psc.get("runAsGroup") == IMAGE_GID, f"{where}: pod runAsGroup {IMAGE_GID}")
        need(psc.get("fsGroup") == IMAGE_GID, f"{where}: pod fsGroup {IMAGE_GID}")
        need((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
             f"{where}: pod seccompProfile RuntimeDefault")
        need(spec.get("automountServiceAccountToken") is False, f"{where}: no service account token")
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for container in spec.get("containers") or []:
            cwhere = f"{where} container {container['name']}"
            sc = container.get("securityContext") or {}
            need(sc.get("readOnlyRootFilesystem") is True, f"{cwhere}: readOnlyRootFilesystem")
            need(sc.get("allowPrivilegeEscalation") is False, f"{cwhere}: allowPrivilegeEscalation false")
            need((sc.get("capabilities") or {}).get("drop") == ["ALL"], f"{cwhere}: drops ALL capabilities")
            need(not (sc.get("capabilities") or {}).get("add"), f"{cwhere}: adds no capabilities")
            need(sc.get("runAsUser", IMAGE_UID) == IMAGE_UID and sc.get("runAsNonRoot", True) is True,
                 f"{cwhere}: runs as uid {IMAGE_UID}")
            need((sc.get("seccompProfile") or {"type": "RuntimeDefault"}).get("type") == "RuntimeDefault",
                 f"{cwhere}: seccomp RuntimeDefault")
            res = container.get("resources") or {}
            for part in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    need(what in (res.get(part) or {}), f"{cwhere}: resources.{part}.{what}")
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
            tmp = mounts.get("/tmp")
            need(tmp is not None and "emptyDir" in volumes.get(tmp["name"], {}),
                 f"{cwhere}: /tmp is an emptyDir")
            for m in mounts.values():
                vol = volumes.get(m["name"], {})
                need(m["name"] in volumes, f"{cwhere}: volume {m['name']} exists")
                if "secret" in vol:
                    need(m.get("readOnly") is True, f"{cwhere}: secret volume {m['name']} mounted read-only")
            need(IMAGE_DATA_DIR in mounts, f"{cwhere}: {IMAGE_DATA_DIR} (CARREL_DATA_DIR) is writable (a volume)")
            env = container.get("env") or []
            for e in env:
                need(known_var(e["name"]) or not e["name"].startswith("CARREL_"),
                     f"{cwhere}: {e['name']} is a known CARREL_ variable")
                if e["name"] in SECRET_VARS:
                    need("secretKeyRef" in (e.get("valueFrom") or {}),
                         f"{cwhere}: {e['name']} comes from a Secret")
                if e["name"].endswith("_KEY_FILE"):
                    path = e.get("value", "")
                    need(any(path.startswith(mp.rstrip("/") + "/") and "secret" in volumes.get(m["name"], {})
                             for mp, m in mounts.items()),
                         f"{cwhere}: {e['name']} points into a mounted Secret")
            need([r.get("configMapRef", {}).get("name") for r in container.get("envFrom") or []]
                 == [configmap["metadata"]["name"]], f"{cwhere}: settings from the ConfigMap")

    # The server.
    container = pod_spec(deployment)["containers"][0]
    need(container.get("args", ["serve"]) == ["serve"], "Deployment runs `carrel serve`")
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
    need(ports.get("http") == IMAGE_PORT, f"Deployment: port http is {IMAGE_PORT} (Dockerfile EXPOSE)")
    for probe, path in (("readinessProbe", "/readiness"), ("livenessProbe", "/health"),
                        ("startupProbe", "/health")):
        get = (container.get(probe) or {}).get("httpGet") or {}
        need(get.get("path") == path and get.get("port") in ("http", IMAGE_PORT),
             f"Deployment: {probe} GET {path} on the http port")
    need(isinstance(deployment["spec"].get("replicas"), int) and deployment["spec"]["replicas"] >= 3,
         "Deployment: at least 3 replicas")
    selector = deployment["spec"]["selector"]["matchLabels"]
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    need(all(template_labels.get(k) == v for k, v in selector.items()), "Deployment: selector matches its pods")
    need(service["spec"].get("selector") == selector, "Service selects the server pods")
    need(all(p.get("targetPort") in ("http", IMAGE_PORT) for p in service["spec"]["ports"]),
         "Service targets the http port")
    need(pdb["spec"].get("selector", {}).get("matchLabels") == selector, "PodDisruptionBudget selects the server pods")
    need(hpa["apiVersion"] == "autoscaling/v2", "HPA is autoscaling/v2")
    target = hpa["spec"]["scaleTargetRef"]
    need(target.get("kind") == "Deployment" and target.get("name") == deployment["metadata"]["name"],
         "HPA scales the Deployment")
    need(any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"]),
         "HPA scales on CPU")
    need(hpa["spec"].get("minReplicas", 1) <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"],
         "Deployment replicas within the HPA's range")
    need(pod_spec(job)["containers"][0].get("args") == ["migrate"], "Job runs `carrel migrate`")
    need(pod_spec(job).get("restartPolicy") in ("Never", "OnFailure"), "Job restartPolicy Never/OnFailure")

    # Settings.
    for name, value in data.items():
        need(known_var(name), f"ConfigMap: {name} is a known CARREL_ variable")
        need(name not in SECRET_VARS, f"ConfigMap: {name} belongs in a Secret")
        need(not re.search(r"://[^/@\s]*:[^/@\s]*@", str(value)), f"ConfigMap: {name} holds no credentials")
    need(data.get("CARREL_BIND") == f"0.0.0.0:{IMAGE_PORT}", f"ConfigMap: CARREL_BIND=0.0.0.0:{IMAGE_PORT}")
    need(data.get("CARREL_DATA_DIR") == IMAGE_DATA_DIR, f"ConfigMap: CARREL_DATA_DIR={IMAGE_DATA_DIR}")
    need(data.get("CARREL_AUTO_MIGRATE") == "false", "ConfigMap: CARREL_AUTO_MIGRATE=false (the Job migrates)")
    if production:
        need(data.get("CARREL_ENV") == "production", "production: CARREL_ENV=production")
        need(str(data.get("CARREL_PUBLIC_URL", "")).startswith("https://"), "production: https CARREL_PUBLIC_URL")
        for obj in (deployment, job):
            image = pod_spec(obj)["containers"][0]["image"]
            tag = image.rsplit("/", 1)[-1]
            need((":" in tag and not tag.endswith(":latest")) or "@sha256:" in image,
                 f"production: {obj['kind']} image {image} is pinned")
        names = {e["name"] for e in container.get("env") or []}
        need("CARREL_REDIS_URL" in names, "production: CARREL_REDIS_URL set (shared rate limits)")
    return errors


# ---------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------
rendered = {}
for target in targets:
    name = target.replace("/", "_")
    objects = list(yaml.safe_load_all(open(os.path.join(work, name + ".yaml"))))
    rendered[target] = objects
    for obj in objects:
        errs = schema_errors(obj)
        label = f"{target}: {obj['kind']}/{obj['metadata']['name']}"
        if check(not errs, f"{label} is valid (k8s {', '.join(KUBERNETES_VERSIONS)}, strict)"):
            continue
        for e in errs[:5]:
            print(f"       {e}")
    production = "/overlays/production" in f"/{target}"
    errs = policy_errors(objects, production)
    check(not errs, f"{target}: deployment policy ({'production' if production else 'base'})")
    for e in errs:
        print(f"       {e}")

# The settings each rendering gives the server pass `carrel config check` (which
# applies the production rules), when a built binary is at hand.
carrel_bin = os.environ.get("CARREL_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "carrel")
DUMMY_SECRETS = {
    "CARREL_DATABASE_URL": "postgres://carrel:dummy@db.internal:5432/carrel",
    "CARREL_SMTP_URL": "smtps://mailer:dummy@smtp.example.org:465",
    "CARREL_REDIS_URL": "redis://redis.internal:6379",
    "CARREL_BOOTSTRAP_ADMIN_PASSWORD": "dummy",
}


def server_env(objects):
    cm = next(o for o in objects if o["kind"] == "ConfigMap")
    dep = next(o for o in objects if o["kind"] == "Deployment")
    env = {k: str(v) for k, v in (cm.get("data") or {}).items()}
    for e in pod_spec(dep)["containers"][0].get("env") or []:
        env[e["name"]] = e["value"] if "value" in e else DUMMY_SECRETS.get(e["name"], "dummy")
    return env


def config_check(env):
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as cwd:
        run = subprocess.run([carrel_bin, "config", "check"], cwd=cwd, capture_output=True, text=True,
                             env={"PATH": os.environ.get("PATH", ""), **env})
    return run.returncode, (run.stderr or run.stdout).strip().splitlines()[-1:] or [""]


if os.access(carrel_bin, os.X_OK):
    for target in targets:
        code, last = config_check(server_env(rendered[target]))
        check(code == 0, f"{target}: the server's settings pass `carrel config check` ({last[0][:120]})")
    prod = next((t for t in targets if t.endswith("/production")), None)
    if prod:
        env = server_env(rendered[prod])
        env["CARREL_PUBLIC_URL"] = "http://library.example.org"
        code, last = config_check(env)
        check(code != 0, f"negative: `carrel config check` refuses production with an http public URL ({last[0][:120]})")
else:
    print(f"--   no carrel binary at {carrel_bin} (set CARREL_BIN); skipped `carrel config check` of the settings")

# Negative checks: each broken copy must be caught, or the checks prove nothing.
base = rendered[targets[0]]
deployment = next(o for o in base if o["kind"] == "Deployment")


def broken(mutate):
    objects = copy.deepcopy(base)
    mutate(objects, next(o for o in objects if o["kind"] == "Deployment"))
    return objects


def set_path(obj, path, value):
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


container_path = ["spec", "template", "spec", "containers", 0]
schema_cases = {
    "replicas as a string": lambda objs, d: set_path(d, ["spec", "replicas"], "three"),
    "a misspelt container field": lambda objs, d: set_path(d, container_path + ["imagePullPolicyy"], "Always"),
    "a probe without a handler port": lambda objs, d: set_path(d, container_path + ["readinessProbe", "httpGet"], {"path": "/readiness"}),
    "a container without a name": lambda objs, d: d["spec"]["template"]["spec"]["containers"][0].pop("name"),
}
for label, mutate in schema_cases.items():
    objs = broken(mutate)
    bad = next(o for o in objs if o["kind"] == "Deployment")
    check(bool(schema_errors(bad)), f"negative: schema validation rejects {label}")
policy_cases = {
    "running as root": lambda objs, d: set_path(d, ["spec", "template", "spec", "securityContext", "runAsUser"], 0),
    "a writable root file system": lambda objs, d: set_path(d, container_path + ["securityContext", "readOnlyRootFilesystem"], False),
    "an inlined database URL": lambda objs, d: set_path(next(o for o in objs if o["kind"] == "ConfigMap")["data"], ["CARREL_DATABASE_URL"], "postgres://u:p@db/carrel"),
    "a misspelt CARREL_ variable": lambda objs, d: set_path(next(o for o in objs if o["kind"] == "ConfigMap")["data"], ["CARREL_BIDN"], "0.0.0.0:8080"),
    "a liveness probe on /readiness": lambda objs, d: set_path(d, container_path + ["livenessProbe", "httpGet", "path"], "/readiness"),
    "a Secret object": lambda objs, d: objs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringData": {"url": "x"}}),
}
for label, mutate in policy_cases.items():
    check(bool(policy_errors(broken(mutate), False)), f"negative: policy check rejects {label}")
# And the unmodified copy passes, so the negatives failed for their own reason.
check(not schema_errors(copy.deepcopy(deployment)) and not policy_errors(copy.deepcopy(base), False),
      "negative: the unmodified base still passes")

print()
if failures:
    print(f"{len(failures)} deploy check(s) failed")
    sys.exit(1)
print("all deploy checks passed")
PY

# The renderer refuses what it does not implement rather than ignoring it.
mkdir -p "$work/unsupported"
printf 'resources: []\nconfigMapGenerator:\n  - name: x\n' >"$work/unsupported/kustomization.yaml"
if "$PY" scripts/kustomize_lite.py "$work/unsupported" >/dev/null 2>&1; then
    echo "FAIL negative: kustomize_lite accepted an unsupported kustomization field"
    exit 1
fi
echo "ok   negative: kustomize_lite refuses unsupported kustomization fields"

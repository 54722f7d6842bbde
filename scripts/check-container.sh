#!/usr/bin/env bash
# Static checks for the container files (Dockerfile, .dockerignore,
# docker-compose.yml). Needs no Docker engine: it parses the files and checks
# them against the repository. If the `docker compose` plugin is installed it
# also runs `docker compose config -q` (client-side only).
#
#   scripts/check-container.sh
#
# Prints each check and exits non-zero if any fails.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

for f in Dockerfile .dockerignore docker-compose.yml Cargo.toml Cargo.lock; do
    if [[ ! -f "$f" ]]; then
        echo "FAIL missing $f" >&2
        exit 1
    fi
done

if ! command -v python3 >/dev/null 2>&1; then
    echo "FAIL python3 is required for these checks" >&2
    exit 1
fi

if ! python3 -c 'import yaml' >/dev/null 2>&1; then
    echo "..   PyYAML not importable; installing it (pip --user, quiet)"
    python3 -m pip install --quiet --user pyyaml >/dev/null 2>&1 \
        || python3 -m pip install --quiet pyyaml >/dev/null
fi

compose_status=0
if docker compose version >/dev/null 2>&1; then
    if docker compose -f docker-compose.yml config -q; then
        echo "ok   docker compose config -q accepts docker-compose.yml"
    else
        echo "FAIL docker compose config -q rejected docker-compose.yml"
        compose_status=1
    fi
else
    echo "--   docker compose plugin not available; relying on the YAML checks below"
fi

python_status=0
python3 - <<'PY' || python_status=$?
import fnmatch
import json
import os
import re
import shlex
import sys

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    tomllib = None

failures = []


def ok(msg):
    print(f"ok   {msg}")


def fail(msg):
    print(f"FAIL {msg}")
    failures.append(msg)


def check(cond, msg):
    (ok if cond else fail)(msg)
    return cond


# --------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------
try:
    with open("docker-compose.yml") as fh:
        compose = yaml.safe_load(fh)
    ok("docker-compose.yml parses as YAML")
except yaml.YAMLError as exc:
    fail(f"docker-compose.yml is not valid YAML: {exc}")
    compose = None

if isinstance(compose, dict):
    check("version" not in compose, "compose: no obsolete top-level `version:` key")
    services = compose.get("services") or {}
    for name in ("postgres", "redis", "carrel"):
        svc = services.get(name)
        if not check(isinstance(svc, dict), f"compose: service `{name}` exists"):
            continue
        hc = svc.get("healthcheck") or {}
        check(bool(hc.get("test")) and not hc.get("disable"),
              f"compose: service `{name}` has a healthcheck")
        check(svc.get("restart") == "unless-stopped",
              f"compose: service `{name}` has restart: unless-stopped")

    pg = services.get("postgres") or {}
    check(str(pg.get("image", "")).startswith("postgres:16"), "compose: postgres uses postgres:16")
    check("pg_isready" in json.dumps((pg.get("healthcheck") or {}).get("test")),
          "compose: postgres healthcheck uses pg_isready")
    redis = services.get("redis") or {}
    check(str(redis.get("image", "")).startswith("redis:7"), "compose: redis uses redis:7")
    check("ping" in json.dumps((redis.get("healthcheck") or {}).get("test")),
          "compose: redis healthcheck uses redis-cli ping")

    carrel = services.get("carrel") or {}
    build = carrel.get("build")
    build_ctx = build if isinstance(build, str) else (build or {}).get("context")
    check(build_ctx in (".", "./"), "compose: carrel builds from the repository root")
    deps = carrel.get("depends_on") or {}
    for dep in ("postgres", "redis"):
        cond = deps.get(dep, {}).get("condition") if isinstance(deps, dict) else None
        check(cond == "service_healthy",
              f"compose: carrel depends_on {dep} with condition: service_healthy")
    carrel_hc = json.dumps((carrel.get("healthcheck") or {}).get("test"))
    check("/health" in carrel_hc, "compose: carrel healthcheck hits /health")

    env = carrel.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    check(str(env.get("CARREL_DATABASE_URL", "")).startswith("postgres://")
          and "@postgres:5432/" in str(env.get("CARREL_DATABASE_URL", "")),
          "compose: CARREL_DATABASE_URL points at the postgres service")
    check(env.get("CARREL_REDIS_URL") == "redis://redis:6379",
          "compose: CARREL_REDIS_URL points at the redis service")
    check(env.get("CARREL_ENV") in ("development", "test", "production"),
          "compose: CARREL_ENV is set to a valid value")

    ports = [str(p) for p in (carrel.get("ports") or [])]
    check(bool(ports) and all(p.startswith("127.0.0.1:") for p in ports),
          "compose: carrel's published ports are bound to loopback only")

    declared_volumes = set((compose.get("volumes") or {}).keys())
    for name, svc in services.items():
        for vol in (svc or {}).get("volumes") or []:
            src = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source")
            if src and not src.startswith((".", "/", "~")):
                check(src in declared_volumes,
                      f"compose: named volume `{src}` ({name}) is declared at top level")
    check(any(str(v).endswith(":/data") for v in carrel.get("volumes") or []),
          "compose: carrel mounts a volume at /data")

# --------------------------------------------------------------------------
# Dockerfile: parse into instructions
# --------------------------------------------------------------------------
with open("Dockerfile") as fh:
    raw_lines = fh.read().splitlines()

instructions = []  # (keyword, argument text, first line number)
buf, start = "", None
for lineno, line in enumerate(raw_lines, 1):
    stripped = line.strip()
    if not buf and (not stripped or stripped.startswith("#")):
        continue
    if buf and stripped.startswith("#"):
        continue  # comment lines inside a continuation are dropped by Docker
    if start is None:
        start = lineno
    if stripped.endswith("\\"):
        buf += stripped[:-1] + " "
        continue
    buf += stripped
    keyword, _, rest = buf.partition(" ")
    instructions.append((keyword.upper(), rest.strip(), start))
    buf, start = "", None
if buf:
    fail("Dockerfile ends inside a line continuation")

ARGS = {}
stages = []  # list of dicts: name, base, instructions
for kw, rest, lineno in instructions:
    if kw == "ARG" and not stages:
        name, _, default = rest.partition("=")
        ARGS[name.strip()] = default.strip().strip('"')
    if kw == "FROM":
        words = rest.split()
        words = [w for w in words if not w.startswith("--")]
        base = re.sub(r"\$\{?(\w+)\}?", lambda m: ARGS.get(m.group(1), m.group(0)), words[0])
        name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
        stages.append({"name": name, "base": base, "ins": []})
    elif stages:
        stages[-1]["ins"].append((kw, rest, lineno))

check(len(stages) >= 2, f"Dockerfile: multi-stage build ({len(stages)} FROM stages)")
stage_names = {s["name"] for s in stages if s["name"]}

if stages:
    builder = stages[0]
    final = stages[-1]
    check(builder["base"].startswith("rust:") and "slim" in builder["base"],
          f"Dockerfile: builder stage uses an official slim Rust image ({builder['base']})")
    check(final["base"].startswith(("debian:", "gcr.io/distroless/")),
          f"Dockerfile: runtime stage base is {final['base']}")

    def last(stage, kw):
        found = [rest for k, rest, _ in stage["ins"] if k == kw]
        return found[-1] if found else None

    user = last(final, "USER")
    user_name = (user or "").split(":")[0].strip()
    check(user is not None and user_name not in ("", "root", "0"),
          f"Dockerfile: final stage runs as a non-root USER ({user})")
    hc = last(final, "HEALTHCHECK")
    check(hc is not None and hc.split()[0].upper() != "NONE",
          "Dockerfile: final stage has a HEALTHCHECK")
    check(hc is not None and "http://127.0.0.1:8080/health" in hc,
          "Dockerfile: HEALTHCHECK hits http://127.0.0.1:8080/health")
    if hc and "curl" in hc and final["base"].startswith("debian:"):
        installs_curl = any(k == "RUN" and "apt-get install" in r and re.search(r"\bcurl\b", r)
                            for k, r, _ in final["ins"])
        check(installs_curl, "Dockerfile: curl (used by HEALTHCHECK) is installed in the runtime stage")
    entry = last(final, "ENTRYPOINT")
    check(entry is not None and json.loads(entry) == ["/usr/local/bin/carrel"],
          'Dockerfile: ENTRYPOINT ["/usr/local/bin/carrel"] (exec form)')
    cmd = last(final, "CMD")
    check(cmd is not None and json.loads(cmd) == ["serve"], 'Dockerfile: CMD ["serve"]')
    exposes = " ".join(r for k, r, _ in final["ins"] if k == "EXPOSE").split()
    check("8080" in exposes or "8080/tcp" in exposes, "Dockerfile: EXPOSE 8080")
    env_text = " ".join(r for k, r, _ in final["ins"] if k == "ENV")
    for pair in ("CARREL_BIND=0.0.0.0:8080", "CARREL_DATA_DIR=/data", "CARREL_LOG_FORMAT=json"):
        check(pair in env_text, f"Dockerfile: ENV {pair}")
    check(any(k == "VOLUME" and "/data" in r for k, r, _ in final["ins"]),
          "Dockerfile: /data is a VOLUME")
    check(any(k == "LABEL" and "org.opencontainers.image." in r for k, r, _ in final["ins"]),
          "Dockerfile: OCI labels present")

# --------------------------------------------------------------------------
# Dockerfile: every COPY/ADD source exists and is not excluded by .dockerignore
# --------------------------------------------------------------------------
ignore_rules = []  # (regex, negated)
with open(".dockerignore") as fh:
    for line in fh:
        pat = line.strip()
        if not pat or pat.startswith("#"):
            continue
        neg = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        pat = os.path.normpath(pat)
        rx, i = "", 0
        while i < len(pat):
            if pat.startswith("**/", i):
                rx += "(?:.*/)?"
                i += 3
            elif pat.startswith("**", i):
                rx += ".*"
                i += 2
            elif pat[i] == "*":
                rx += "[^/]*"
                i += 1
            elif pat[i] == "?":
                rx += "[^/]"
                i += 1
            else:
                rx += re.escape(pat[i])
                i += 1
        ignore_rules.append((re.compile(rx + r"\Z"), neg))


def ignored(path):
    """Docker semantics: last matching rule wins; a match on a parent excludes the child."""
    parts = path.split("/")
    result = False
    for rx, neg in ignore_rules:
        if any(rx.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            result = not neg
    return result


def copy_sources(rest):
    rest = rest.strip()
    flags = []
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.strip()
    if rest.startswith("["):
        args = json.loads(rest)
    else:
        args = shlex.split(rest)
    from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
    return from_stage, args[:-1]


copied_before_build = []  # context paths copied before the first `cargo build`
stub_text = ""            # RUN text before the first `cargo build` (inclusive)
seen_build = False
for stage in stages:
    for kw, rest, lineno in stage["ins"]:
        if kw in ("COPY", "ADD"):
            from_stage, sources = copy_sources(rest)
            if from_stage is not None:
                check(from_stage in stage_names or ":" in from_stage,
                      f"Dockerfile:{lineno}: COPY --from={from_stage} names a stage")
                continue
            for src in sources:
                norm = os.path.normpath(src)
                if any(ch in norm for ch in "*?["):
                    matches = __import__("glob").glob(norm)
                    check(bool(matches), f"Dockerfile:{lineno}: COPY source {src} matches files")
                    continue
                exists = os.path.exists(norm)
                check(exists, f"Dockerfile:{lineno}: COPY source {src} exists")
                if exists and norm != ".":
                    check(not ignored(norm),
                          f"Dockerfile:{lineno}: COPY source {src} is not excluded by .dockerignore")
                if not seen_build:
                    copied_before_build.append(norm)
        elif kw == "RUN" and not seen_build:
            stub_text += rest + "\n"
            if "cargo build" in rest:
                seen_build = True
                check("--locked" in rest, f"Dockerfile:{lineno}: dependency build uses --locked")

check(seen_build, "Dockerfile: has a `cargo build` step")

# Must-stay-in-the-context paths, whatever .dockerignore says.
for path in ("Cargo.toml", "Cargo.lock", "crates/carrel-store/build.rs",
             "crates/carrel-store/migrations/sqlite", "crates/carrel-store/migrations/postgres"):
    check(os.path.exists(path) and not ignored(path),
          f".dockerignore keeps {path} in the build context")

# --------------------------------------------------------------------------
# Dependency-caching stage matches the workspace
# --------------------------------------------------------------------------
def covered(path):
    return any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied_before_build)


if tomllib is None:
    print("--   tomllib unavailable (Python < 3.11); skipping workspace/stub checks")
else:
    with open("Cargo.toml", "rb") as fh:
        workspace = tomllib.load(fh)
    import glob
    # Members may be globs (`crates/*`): expand them to the crates that exist.
    members = []
    for pattern in workspace.get("workspace", {}).get("members", []):
        matches = sorted(d for d in glob.glob(pattern) if os.path.isdir(d))
        members.extend(matches or [pattern])
    for rel in ("Cargo.toml", "Cargo.lock"):
        check(covered(rel), f"Dockerfile: {rel} is copied before the dependency build")
    for member in members:
        manifest_path = f"{member}/Cargo.toml"
        if not check(os.path.exists(manifest_path), f"workspace member {member} has a Cargo.toml"):
            continue
        check(covered(manifest_path),
              f"Dockerfile: {manifest_path} is copied before the dependency build")
        with open(manifest_path, "rb") as fh:
            manifest = tomllib.load(fh)
        package = manifest.get("package", {})
        build_script = package.get("build")
        if build_script is None and os.path.exists(f"{member}/build.rs"):
            build_script = "build.rs"
        if build_script:
            check(covered(f"{member}/{build_script}"),
                  f"Dockerfile: {member}/{build_script} is copied before the dependency build")
        # Targets cargo needs to exist when it loads the manifest.
        roots = []
        if "lib" in manifest or os.path.exists(f"{member}/src/lib.rs"):
            roots.append(manifest.get("lib", {}).get("path", "src/lib.rs"))
        if os.path.exists(f"{member}/src/main.rs"):
            roots.append("src/main.rs")
        # Without a path, cargo looks for <dir>/<name>.rs or <dir>/<name>/main.rs.
        default_dirs = {"bin": "src/bin", "test": "tests", "bench": "benches", "example": "examples"}
        for kind in ("bin", "test", "bench", "example"):
            for target in manifest.get(kind, []):
                if "path" in target:
                    roots.append(target["path"])
                elif os.path.exists(f"{member}/{default_dirs[kind]}/{target['name']}/main.rs"):
                    roots.append(f"{default_dirs[kind]}/{target['name']}/main.rs")
                else:
                    roots.append(f"{default_dirs[kind]}/{target['name']}.rs")
        for root in sorted(set(roots)):
            full = f"{member}/{root}"
            check(full in stub_text or covered(full),
                  f"Dockerfile: stub stage provides {full}")
    check(covered("crates/carrel-store/migrations"),
          "Dockerfile: carrel-store migrations are copied before the dependency build")

print()
if failures:
    print(f"{len(failures)} container check(s) failed")
    sys.exit(1)
print("all container checks passed")
PY

if (( compose_status != 0 || python_status != 0 )); then
    exit 1
fi

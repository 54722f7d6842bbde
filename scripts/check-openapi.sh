#!/usr/bin/env bash
# Validates the OpenAPI document that `carrel openapi` prints (and the server
# serves at /api/v1/openapi.json) with openapi-spec-validator, a real OpenAPI
# 3.1 validator from PyPI, pinned and installed into a venv under /var/tmp.
# Checks the document of the default mode and the one of test mode (which adds
# the test clock), and that every `$ref` resolves.
#
#   scripts/check-openapi.sh
#
# Env: CARGO_TARGET_DIR (where the debug binary is built), CARREL_TOOLS_VENV
# (default /var/tmp/carrel-openapi-venv). Exits non-zero on any problem.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# shellcheck source=lib/python-venv.sh
source scripts/lib/python-venv.sh

venv="${CARREL_TOOLS_VENV:-/var/tmp/carrel-openapi-venv}"
ensure_venv "$venv" "openapi-spec-validator==0.9.0"
carrel="$(carrel_debug_binary)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

status=0
for env in development test; do
    doc="$work/openapi-$env.json"
    # A throwaway data dir: printing the document touches no database, but the
    # configuration is validated first.
    CARREL_ENV="$env" CARREL_DATA_DIR="$work/data" "$carrel" openapi >"$doc"
    if "$venv/bin/python" - "$doc" <<'PY'; then
import json
import sys

from openapi_spec_validator import OpenAPIV31SpecValidator
from openapi_spec_validator.readers import read_from_filename

path = sys.argv[1]
doc = json.load(open(path))

# Every `$ref`, wherever it is, must resolve (the validator would stop with a
# traceback at the first dangling one it happens to walk).
dangling = []

def resolve(ref):
    if not ref.startswith("#/"):
        return False
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True

def walk(node, where):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not resolve(ref):
            dangling.append(f"{where}: {ref}")
        for key, value in node.items():
            walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk(value, f"{where}/{i}")

walk(doc, "#")
if dangling:
    print("dangling $ref:\n  " + "\n  ".join(dangling))
    sys.exit(1)

if not str(doc.get("openapi", "")).startswith("3.1"):
    print(f"expected an OpenAPI 3.1 document, got {doc.get('openapi')!r}")
    sys.exit(1)
spec, base_uri = read_from_filename(path)
try:
    errors = list(OpenAPIV31SpecValidator(spec, base_uri=base_uri).iter_errors())
except Exception as error:  # a reference the validator cannot follow
    print(f"  the validator stopped: {type(error).__name__}: {str(error)[:500]}")
    sys.exit(1)
for error in errors[:50]:
    where = "/".join(str(p) for p in error.absolute_path) or "(document)"
    print(f"  {where}: {error.message[:500]}")
if errors:
    print(f"{len(errors)} validation errors")
    sys.exit(1)
operations = sum(
    1 for item in doc["paths"].values() for method in item
    if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
)
print(f"     {len(doc['paths'])} paths, {operations} operations, "
      f"{len(doc.get('components', {}).get('schemas', {}))} schemas")
PY
        echo "ok   OpenAPI document ($env mode) is valid OpenAPI 3.1"
    else
        echo "FAIL OpenAPI document ($env mode) is not valid"
        status=1
    fi
done
exit "$status"

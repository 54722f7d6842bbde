"""Helpers of scripts/fuzz-api.sh (standard library only).

    fuzz_api.py seed BASE_URL OUT_DIR      logs the fuzz users in, seeds catalog and
                                           circulation data, writes tokens and the
                                           schemathesis configs into OUT_DIR
    fuzz_api.py metrics BASE_URL FILE      saves the server's request counters
    fuzz_api.py summary DOC BEFORE AFTER   prints what a run reached, from the counters
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request

PASSWORD = "Fuzz-Carrel-Passw0rd!"


class Api:
    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body=None, expect=(200, 201, 204), headers=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        if status not in expect:
            raise SystemExit(f"seed: {method} {path} -> {status}: {raw[:300]!r}")
        return json.loads(raw) if raw else None


def login(base: str, username: str) -> tuple[str, str]:
    body = Api(base).call("POST", "/api/v1/auth/login", {"username": username, "password": PASSWORD})
    return body["access_token"], body["session_id"]


def seed(base: str, out: str) -> None:
    staff_token, staff_session = login(base, "fuzzstaff")
    patron_token, patron_session = login(base, "fuzzpatron")
    # Spare sessions: ids that DELETE /auth/sessions/{id} may revoke without
    # ending the session the fuzzer itself uses.
    spare_staff = login(base, "fuzzstaff")[1]
    spare_patron = login(base, "fuzzpatron")[1]
    staff, patron = Api(base, staff_token), Api(base, patron_token)

    me_staff = staff.call("GET", "/api/v1/users/me")["id"]
    me_patron = patron.call("GET", "/api/v1/users/me")["id"]
    other = staff.call("GET", "/api/v1/users?q=fuzzother")["data"][0]["id"]

    items, copies, barcodes = [], [], []
    titles = ["Fuzzing the Catalog", "Property Based Testing", "The Art of Computer Programming"]
    for n, title in enumerate(titles):
        item = staff.call("POST", "/api/v1/items", {
            "title": title, "authors": ["Ada Lovelace", "Alan Turing"], "item_type": "book",
            "publication_year": 1990 + n, "subjects": ["Testing"], "language": "en",
        })
        items.append(item["id"])
        for c in range(3):
            barcode = f"FUZZ-{n}{c:03d}"
            copy = staff.call("POST", f"/api/v1/items/{item['id']}/copies",
                              {"barcode": barcode, "location": "Stacks"})
            copies.append(copy["id"])
            barcodes.append(barcode)

    loans = []
    for barcode, user in [(barcodes[0], me_patron), (barcodes[3], me_patron), (barcodes[6], other),
                          (barcodes[1], other)]:
        loans.append(staff.call("POST", "/api/v1/loans", {"copy_barcode": barcode, "user_id": user})["id"])
    staff.call("POST", "/api/v1/loans/return", {"copy_barcode": barcodes[1]})

    fines = []
    for user, amount in [(me_patron, 250), (me_patron, 400), (other, 300)]:
        fine = staff.call("POST", "/api/v1/fines", {
            "user_id": user, "amount_cents": amount, "reason": "manual", "note": "fuzz seed"})
        fines.append(fine["id"])

    holds = [
        patron.call("POST", "/api/v1/holds", {"item_id": items[2]})["id"],
        staff.call("POST", "/api/v1/holds", {"item_id": items[0], "user_id": other})["id"],
    ]

    ids = {
        "item_ids": items, "copy_ids": copies, "barcodes": barcodes, "loan_ids": loans,
        "fine_ids": fines, "hold_ids": holds,
    }
    with open(f"{out}/seed.json", "w") as f:
        json.dump(ids | {"staff": me_staff, "patron": me_patron, "other": other}, f, indent=1)
    # What the hooks keep the fuzzer from deleting, deactivating or revoking.
    for name, own in [("staff.own", [me_staff, staff_session]), ("patron.own", [me_patron, patron_session])]:
        with open(f"{out}/{name}", "w") as f:
            f.write(",".join(own))
    # Each caller may act on everyone but itself: a fuzzed PATCH or DELETE of
    # its own account, or of its own session, would end the run's login.
    write_config(f"{out}/staff.toml", ids | {"user_ids": [me_patron, other], "session_ids": [spare_staff]})
    write_config(f"{out}/patron.toml", ids | {"user_ids": [me_staff, other], "session_ids": [spare_patron]})
    for name, value in [("staff.token", staff_token), ("patron.token", patron_token)]:
        with open(f"{out}/{name}", "w") as f:
            f.write(value)
    print(f"seeded {len(items)} items, {len(copies)} copies, {len(loans)} loans, "
          f"{len(fines)} fines, {len(holds)} holds")


# (path pattern, path parameter, dictionary): the real ids each `{id}` takes
# about half of the time, so operations reach their handlers' success paths
# as well as their 404s.
PATH_IDS = [
    (r"^/api/v1/items/\{id\}", "item_ids"),
    (r"^/api/v1/copies/\{id\}", "copy_ids"),
    (r"^/api/v1/loans/\{id\}", "loan_ids"),
    (r"^/api/v1/holds/\{id\}", "hold_ids"),
    (r"^/api/v1/fines/\{id\}", "fine_ids"),
    (r"^/api/v1/users/\{id\}", "user_ids"),
    (r"^/api/v1/auth/sessions/\{id\}", "session_ids"),
]
BODY_IDS = [("body.user_id", "user_ids"), ("body.item_id", "item_ids"), ("body.copy_barcode", "barcodes")]


def toml_list(values) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def write_config(path: str, ids: dict) -> None:
    # No state kept between runs (and nothing written into the checkout).
    lines = ["[cache]", "enabled = false", ""]
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {toml_list(values)}", ""]
    lines += ["[parameters]"]
    lines += [f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}' for key, name in BODY_IDS]
    lines.append("")
    for pattern, name in PATH_IDS:
        lines += [
            "[[operations]]",
            f"include-path-regex = {json.dumps(pattern)}",
            f'parameters = {{ "path.id" = {{ dictionary = "{name}", probability = 0.6 }} }}',
            "",
        ]
    with open(path, "w") as f:
        f.write("\n".join(lines))


LINE = re.compile(r'^http_requests_total\{(?P<labels>.*)\}\s+(?P<value>\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def save_metrics(base: str, path: str) -> None:
    with urllib.request.urlopen(base.rstrip("/") + "/metrics", timeout=30) as response:
        text = response.read().decode()
    counts = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            labels = dict(LABEL.findall(m["labels"]))
            key = f"{labels.get('method')} {labels.get('route')} {labels.get('status')}"
            counts[key] = counts.get(key, 0) + int(float(m["value"]))
    with open(path, "w") as f:
        json.dump(counts, f)


def summary(doc_path: str, before_path: str, after_path: str, label: str) -> None:
    doc = json.load(open(doc_path))
    documented = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch", "head", "options"}
    }
    before, after = json.load(open(before_path)), json.load(open(after_path))
    requests = errors = 0
    reached, succeeded = set(), set()
    by_status: dict[str, int] = {}
    for key, count in after.items():
        count -= before.get(key, 0)
        if count <= 0:
            continue
        method, route, status = key.split(" ")
        requests += count
        by_status[status] = by_status.get(status, 0) + count
        if status.startswith("5"):
            errors += count
            print(f"  5xx: {count} x {method} {route} -> {status}")
        if (method, route) in documented:
            reached.add((method, route))
            if status.startswith("2") or status == "304":
                succeeded.add((method, route))
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(by_status.items()))
    print(f"  {label}: {len(reached)}/{len(documented)} operations reached "
          f"({len(succeeded)} with a 2xx), {requests} requests, {errors} 5xx  [{statuses}]")
    print(f"FUZZ {label} operations={len(reached)} documented={len(documented)} "
          f"ok={len(succeeded)} requests={requests} server_errors={errors}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "seed":
        seed(*args)
    elif command == "metrics":
        save_metrics(*args)
    elif command == "summary":
        summary(*args)
    else:
        raise SystemExit(f"unknown command {command}")

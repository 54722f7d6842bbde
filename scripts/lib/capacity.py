"""Driver of bench/capacity.sh: checks the capacity model of docs/capacity.md
at one point (standard library only).

    capacity.py CARREL PG_SERVER_URL REDIS_URL WORK_DIR FIRST_PORT LAST_PORT

Starts 3 `carrel serve` processes on one fresh PostgreSQL database and Redis,
with the default Argon2id costs. Then:

1. calibration: each request kind alone on instance A (`me`: GET /users/me,
   `search`: GET /items?q=…, `login`: POST /auth/login, `cycle`: a checkout
   and its return); the CPU time of the carrel process and of the PostgreSQL
   backends of the database, divided by the requests, is the kind's cost in
   core-ms (the model's input);
2. the measured point: a fixed mix of the kinds spread over all 3 instances
   for CAPACITY_SECONDS; the model predicts the CPU it needs from the counts
   and the calibrated costs; the script prints prediction, measurement and
   the difference, with the load average.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import must, request  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
# One "round" of the mixed load: 10 × /users/me, 5 searches, 2 checkout+return
# cycles and 1 login (about 22 requests).
MIX = ["me"] * 10 + ["search"] * 5 + ["cycle"] * 2 + ["login"]


def proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except OSError:
        return 0.0


class Meter:
    """CPU seconds of the given carrel processes and of every PostgreSQL
    backend serving the database (re-listed at each reading)."""

    def __init__(self, db: cluster.Db, db_name: str, pids: list[int]) -> None:
        self.db, self.db_name, self.pids = db, db_name, pids

    def backends(self) -> dict[int, float]:
        rows = self.db.rows(f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.db_name}' "
                            "AND pid <> pg_backend_pid()")
        return {int(r[0]): proc_cpu(int(r[0])) for r in rows}

    def read(self) -> tuple[float, dict[int, float]]:
        return sum(proc_cpu(p) for p in self.pids), self.backends()

    @staticmethod
    def delta(before, after) -> tuple[float, float]:
        app = after[0] - before[0]
        db = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in after[1].items())
        return app, db


def run_load(servers, kinds: list[str], seconds: float, workers: int, ctx: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(n: int) -> None:
        k = n
        mine = ctx["barcodes"][n::workers]
        while time.monotonic() < stop:
            server = servers[k % len(servers)]
            kind = kinds[k % len(kinds)]
            k += 1
            if kind == "me":
                replies = [request(server.base, "GET", "/api/v1/users/me", token=ctx["tokens"][k % len(ctx["tokens"])])]
            elif kind == "search":
                replies = [request(server.base, "GET", f"/api/v1/items?q={ctx['words'][k % len(ctx['words'])]}")]
            elif kind == "login":
                replies = [request(server.base, "POST", "/api/v1/auth/login",
                                   {"username": f"kpatron{k % ctx['patrons']}", "password": cluster.PASSWORD},
                                   headers={"X-Forwarded-For": cluster.random_ip()})]
            else:
                barcode = mine[k % len(mine)]
                replies = [request(server.base, "POST", "/api/v1/loans",
                                   {"copy_barcode": barcode, "user_id": ctx["ids"][k % len(ctx["ids"])]},
                                   token=ctx["staff"]),
                           request(server.base, "POST", "/api/v1/loans/return", {"copy_barcode": barcode},
                                   token=ctx["staff"])]
            with lock:
                counts[kind] = counts.get(kind, 0) + 1
                for r in replies:
                    if not r.ok:
                        errors.append(f"{kind} {r.status} {str(r.body)[:120]}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"  {len(errors)} failed requests, e.g. {errors[:3]}")
    counts["errors"] = len(errors)
    return counts


def storage(db: cluster.Db) -> tuple[int, int, int]:
    row = db.rows("SELECT (SELECT count(*) FROM loans), pg_total_relation_size('loans') + "
                  "pg_total_relation_size('item_events') + pg_total_relation_size('audit_events'), "
                  "pg_database_size(current_database())")[0]
    return int(row[0]), int(row[1]), int(row[2])


def main() -> int:
    carrel, pg_server, redis_url, work, first_port, last_port = sys.argv[1:7]
    seconds = float(os.environ.get("CAPACITY_SECONDS", "20"))
    calib_seconds = float(os.environ.get("CAPACITY_CALIBRATION_SECONDS", "8"))
    workers = int(os.environ.get("CAPACITY_WORKERS", "8"))
    db_name = f"carrel_capacity_{os.getpid()}_{int(time.time())}"
    subprocess.run(["psql", "-w", "-q", f"{pg_server}/postgres", "-c", f'CREATE DATABASE "{db_name}"'], check=True)
    db = cluster.Db(f"{pg_server}/{db_name}")
    keys = os.path.join(work, "keys")
    os.makedirs(keys, exist_ok=True)
    servers = []
    try:
        port = int(first_port)
        for name in ("A", "B", "C"):
            port = cluster.free_port_in(port, int(last_port))
            env = cluster.base_env(f"{pg_server}/{db_name}", os.path.join(work, f"data-{name}"), keys)
            if os.environ.get("CAPACITY_CHEAP_ARGON2") != "1":
                for var in ("CARREL_ARGON2_MEMORY_KIB", "CARREL_ARGON2_ITERATIONS", "CARREL_ARGON2_PARALLELISM"):
                    env.pop(var)  # the default (production) costs
            env.update({"CARREL_REDIS_URL": redis_url, "CARREL_JOBS_INTERVAL": "1h", "RUST_LOG": "warn",
                        "CARREL_MAIL_OUTBOX": os.path.join(work, f"outbox-{name}")})
            servers.append(cluster.Server(name, carrel, port, env, os.path.join(work, f"server-{name}.log")))
            port += 1
        cluster.run_cli(carrel, servers[0].env, ["migrate"])
        for server in servers:
            server.start()
        for server in servers:
            cluster.wait_ready(server.base, 60, server.proc)
        return measure(carrel, servers, db, db_name, seconds, calib_seconds, workers)
    finally:
        for server in servers:
            server.stop()
        subprocess.run(["psql", "-w", "-q", f"{pg_server}/postgres", "-c",
                        f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'], check=False)


def measure(carrel, servers, db, db_name, seconds, calib_seconds, workers) -> int:
    a = servers[0]
    env = a.env
    cluster.create_user(carrel, env, "kstaff", "librarian")
    patrons = 8
    for n in range(patrons):
        cluster.create_user(carrel, env, f"kpatron{n}", "patron")
    staff = cluster.login(a.base, "kstaff")["access_token"]
    tokens = [cluster.login(a.base, f"kpatron{n}")["access_token"] for n in range(patrons)]
    ids = [cluster.user_id(a.base, t) for t in tokens]
    items = int(os.environ.get("CAPACITY_ITEMS", "400"))
    catalog = cluster.seed_catalog(a.base, staff, "CAP", items, 1)
    words = [f"volume+{n}" for n in range(0, items, 7)] + ["harness", "testing", "author"]
    ctx = {"staff": staff, "tokens": tokens, "ids": ids, "barcodes": catalog.barcodes, "words": words,
           "patrons": patrons}

    # Warm-up on every instance (pool connections opened, caches filled).
    run_load(servers, MIX, 3, workers, ctx)

    print(f"==> calibration on one instance ({calib_seconds:.0f} s per kind, {workers} clients); "
          f"load average {cluster.load_average()}")
    costs = {}
    meter_a = Meter(db, db_name, [a.proc.pid])
    for kind in ("me", "search", "cycle", "login"):
        before = meter_a.read()
        t = time.monotonic()
        counts = run_load([a], [kind], calib_seconds, workers, ctx)
        wall = time.monotonic() - t
        app, dbcpu = Meter.delta(before, meter_a.read())
        n = counts.get(kind, 0)
        costs[kind] = (app / n * 1000, dbcpu / n * 1000)
        print(f"CALIBRATION kind={kind} ops={n} ops_per_s={n / wall:.1f} app_core_ms={costs[kind][0]:.3f} "
              f"db_core_ms={costs[kind][1]:.3f} errors={counts['errors']} load={cluster.load_average().replace(' ', ',')}")

    print(f"==> measured point: the mix {json.dumps({k: MIX.count(k) for k in set(MIX)})} over 3 instances, "
          f"{seconds:.0f} s, {workers} clients")
    meter = Meter(db, db_name, [s.proc.pid for s in servers])
    load_before = cluster.load_average()
    size_before = storage(db)
    before = meter.read()
    t = time.monotonic()
    counts = run_load(servers, MIX, seconds, workers, ctx)
    wall = time.monotonic() - t
    app, dbcpu = Meter.delta(before, meter.read())
    load_after = cluster.load_average()
    predicted_app = sum(counts.get(k, 0) * costs[k][0] for k in costs) / 1000
    predicted_db = sum(counts.get(k, 0) * costs[k][1] for k in costs) / 1000
    predicted, measured = predicted_app + predicted_db, app + dbcpu
    diff = (measured - predicted) / predicted * 100 if predicted else float("inf")
    ops = sum(counts.get(k, 0) for k in costs)
    requests = ops + counts.get("cycle", 0)
    print(f"POINT ops={json.dumps({k: counts.get(k, 0) for k in costs})} requests={requests} seconds={wall:.1f} "
          f"requests_per_s={requests / wall:.1f} errors={counts['errors']}")
    print(f"POINT cpu carrel={app:.2f}s postgres={dbcpu:.2f}s total={measured:.2f}s "
          f"({measured / wall:.2f} cores busy)")
    print(f"POINT model carrel={predicted_app:.2f}s postgres={predicted_db:.2f}s total={predicted:.2f}s "
          f"→ difference {diff:+.1f} % (target within ±30 %)")
    print(f"POINT load_average before={load_before} after={load_after}")
    # Storage per loan: what the loans, item history and audit tables (with
    # their indexes) grew by during the mixed load, per loan made in it.
    grown = storage(db)
    loans = grown[0] - size_before[0]
    per_loan = (grown[1] - size_before[1]) / max(loans, 1)
    print(f"STORAGE loans_made={loans} bytes_per_loan(loans+item_events+audit_events, indexes)={per_loan:.0f} "
          f"database_bytes={grown[2]}")
    return 0 if counts["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

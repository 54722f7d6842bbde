"""Driver of scripts/crash-tests.sh (standard library only): crash and outage
tests against live `carrel serve` processes.

    crash_tests.py CARREL PG_URL REDIS_URL WORK_DIR FIRST_PORT LAST_PORT [TEST...]

PG_URL and REDIS_URL are the PRIVATE PostgreSQL cluster and Redis that
crash-tests.sh started for this run: the outage tests stop and start them
through the commands in CARREL_CRASH_PG_STOP, _PG_START, _REDIS_STOP and
_REDIS_START. Tests (default: all): kill-postgres, kill-sqlite, pg-outage,
redis-outage, disk-full.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import must, request  # noqa: E402

failures: list[str] = []
figures: list[str] = []
STARTED: list[cluster.Server] = []


def check(ok: bool, what: str) -> bool:
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)
    return ok


def sh(command: str) -> None:
    subprocess.run(["bash", "-c", command], check=True, timeout=120)


# -------------------------------------------------------------------- a deployment


class Setup:
    """One database with a librarian, patrons, copies and fines, and a server."""

    def __init__(self, carrel: str, work: str, name: str, database_url: str, port: int,
                 extra_env: dict | None = None, data_dir: str | None = None) -> None:
        self.carrel = carrel
        self.name = name
        data = data_dir or os.path.join(work, f"data-{name}")
        keys = os.path.join(work, f"keys-{name}")
        os.makedirs(keys, exist_ok=True)
        env = cluster.base_env(database_url, data, keys)
        env.update({"CARREL_JOBS_INTERVAL": "1h", "CARREL_DATABASE_ACQUIRE_TIMEOUT": "2s",
                    "CARREL_MAIL_OUTBOX": os.path.join(work, f"outbox-{name}")})
        env.update(extra_env or {})
        self.env = env
        self.db = cluster.Db(database_url)
        self.server = cluster.Server(name, carrel, port, env, os.path.join(work, f"server-{name}.log"))
        STARTED.append(self.server)  # stopped at the end whatever happens

    def prepare(self, copies: int = 48, fines: int = 24) -> None:
        os.makedirs(self.env["CARREL_DATA_DIR"], exist_ok=True)
        cluster.run_cli(self.carrel, self.env, ["migrate"])
        cluster.create_user(self.carrel, self.env, "cstaff", "librarian")
        for n in range(4):
            cluster.create_user(self.carrel, self.env, f"cpatron{n}", "patron")
        self.server.start()
        cluster.wait_ready(self.server.base, 60, self.server.proc)
        base = self.server.base
        self.staff = cluster.login(base, "cstaff")["access_token"]
        self.patrons = []
        for n in range(4):
            token = cluster.login(base, f"cpatron{n}")["access_token"]
            self.patrons.append((token, cluster.user_id(base, token)))
        self.catalog = cluster.seed_catalog(base, self.staff, f"C{self.name.upper()[:6]}", copies // 4, 4)
        self.fines = []
        for n in range(fines):
            fine = must(request(base, "POST", "/api/v1/fines", {
                "user_id": self.patrons[n % 4][1], "amount_cents": 100000, "reason": "manual",
                "note": "crash test"}, token=self.staff), "fine", (201,))
            self.fines.append(fine["id"])


# -------------------------------------------------------------------- load


class Unanswered(Exception):
    pass


class Load:
    """Worker threads looping over reads and writes, recording every status and
    every acknowledged (2xx) write. Each worker owns some copies, so its view
    of whether a copy is out is exact except after an unanswered write."""

    def __init__(self, setup: Setup, workers: int, kinds: tuple[str, ...],
                 stop_when_unanswered: bool = False) -> None:
        self.setup = setup
        # After a kill: a worker whose request went unanswered stops, so the
        # unanswered requests are the ones in flight at the kill.
        self.stop_when_unanswered = stop_when_unanswered
        self.workers = workers
        self.kinds = kinds
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: list[tuple[float, str, int]] = []  # (time, op, status)
        self.acked_loans: set[str] = set()
        self.acked_returns: set[str] = set()
        self.acked_payments: dict[str, tuple[str, int]] = {}
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.threads = [threading.Thread(target=self.worker, args=(n,), daemon=True) for n in range(self.workers)]
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def record(self, op: str, status: int) -> None:
        with self.lock:
            self.statuses.append((time.monotonic(), op, status))
        if status == 0 and self.stop_when_unanswered:
            raise Unanswered()

    def worker(self, n: int) -> None:
        try:
            self.work(n)
        except Unanswered:
            pass

    def work(self, n: int) -> None:
        s = self.setup
        base = s.server.base
        rng = random.Random(n)
        mine = s.catalog.barcodes[n::self.workers]
        state = {b: "in" for b in mine}  # in, out, unknown
        token, patron = s.patrons[n % len(s.patrons)]
        while not self.stop.is_set():
            kind = rng.choice(self.kinds)
            if kind == "me":
                self.record("me", request(base, "GET", "/api/v1/users/me", token=token, timeout=20).status)
            elif kind == "search":
                self.record("search", request(base, "GET", f"/api/v1/items?q=volume+{rng.randrange(12)}",
                                              timeout=20).status)
            elif kind == "circ" and mine:
                barcode = rng.choice(mine)
                if state[barcode] == "in":
                    r = request(base, "POST", "/api/v1/loans",
                                {"copy_barcode": barcode, "user_id": s.patrons[rng.randrange(4)][1]},
                                token=s.staff, timeout=20)
                    self.record("checkout", r.status)
                    if r.status == 201:
                        with self.lock:
                            self.acked_loans.add(r.body["id"])
                        state[barcode] = "out"
                    elif r.status == 409:
                        state[barcode] = "out"
                    else:
                        state[barcode] = "unknown"
                else:
                    r = request(base, "POST", "/api/v1/loans/return", {"copy_barcode": barcode},
                                token=s.staff, timeout=20)
                    self.record("return", r.status)
                    if r.status == 200:
                        with self.lock:
                            self.acked_returns.add(r.body["loan"]["id"])
                        state[barcode] = "in"
                    elif r.status == 409:
                        state[barcode] = "in"
                    else:
                        state[barcode] = "unknown"
            elif kind == "pay":
                fine = rng.choice(s.fines)
                r = request(base, "POST", f"/api/v1/fines/{fine}/payments",
                            {"amount_cents": 100, "method": "cash"}, token=s.staff,
                            headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=20)
                self.record("payment", r.status)
                if r.status == 201:
                    with self.lock:
                        self.acked_payments[r.body["payment"]["id"]] = (fine, 100)
            if self.stop.is_set():
                break

    def count(self, since: float = 0.0, until: float = float("inf")) -> dict[int, int]:
        out: dict[int, int] = {}
        with self.lock:
            for t, _, status in self.statuses:
                if since <= t < until:
                    out[status] = out.get(status, 0) + 1
        return out

    def acked(self) -> int:
        return len(self.acked_loans) + len(self.acked_returns) + len(self.acked_payments)


def verify_acked(setup: Setup, load: Load, label: str) -> tuple[int, int]:
    """Every acknowledged write is in the database; returns (acked, found)."""
    db = setup.db
    u = db.uuid_text
    loans = cluster.ids(db, f"SELECT {u('id')} FROM loans")
    returned = cluster.ids(db, f"SELECT {u('id')} FROM loans WHERE returned_at IS NOT NULL")
    payments = cluster.ids(db, f"SELECT {u('id')} FROM payments")
    found = (len(load.acked_loans & loans) + len(load.acked_returns & returned)
             + len(load.acked_payments.keys() & payments))
    acked = load.acked()
    check(found == acked, f"{label}: every acknowledged write is there ({found} of {acked}: "
                          f"{len(load.acked_loans)} checkouts, {len(load.acked_returns)} returns, "
                          f"{len(load.acked_payments)} payments)")
    violations = cluster.invariant_violations(db)
    check(all(v == 0 for v in violations.values()), f"{label}: invariants hold {violations}")
    # A payment's fine.paid audit entry is written after the payment commits:
    # counted here (a crash between the two leaves a payment without its entry).
    audited = {r[0] for r in db.rows(
        f"SELECT {db.json_text('details', 'payment_id')} FROM audit_events WHERE event_type = 'fine.paid'")}
    unaudited = len(payments - audited)
    figure(f"{label}: payments without a fine.paid audit entry: {unaudited}")
    return acked, found


def figure(line: str) -> None:
    figures.append(line)
    print(f"     {line}", flush=True)


def fivexx(counts: dict[int, int], allowed: tuple[int, ...] = ()) -> int:
    return sum(n for s, n in counts.items() if s >= 500 and s not in allowed)


# -------------------------------------------------------------------- kill -9


def kill_test(args, backend: str) -> None:
    label = f"kill -9 ({backend})"
    print(f"\n==> {label}", flush=True)
    work = args.work
    port = cluster.free_port_in(args.first_port, args.last_port)
    if backend == "postgres":
        db_name = f"carrel_crash_{os.getpid()}_kill"
        sh(f"psql -w -q '{args.pg}/postgres' -c 'CREATE DATABASE {db_name}'")
        url = f"{args.pg}/{db_name}"
    else:
        url = f"sqlite://{work}/data-kill-sqlite/carrel.db"
    setup = Setup(args.carrel, work, f"kill-{backend}", url, port)
    setup.prepare()
    rounds = int(os.environ.get("CARREL_CRASH_KILLS", "2"))
    total_acked = total_found = 0
    for k in range(rounds):
        load = Load(setup, 8, ("circ", "circ", "pay", "me"), stop_when_unanswered=True)
        load.start()
        time.sleep(2.5 + random.random())
        t_kill = time.monotonic()
        setup.server.kill9()
        time.sleep(0.3)
        load.finish()
        in_flight = load.count(since=t_kill).get(0, 0)
        t = time.monotonic()
        setup.server.start()
        cluster.wait_ready(setup.server.base, 60, setup.server.proc)
        restart = time.monotonic() - t
        cluster.reset_connections()
        acked, found = verify_acked(setup, load, f"{label} #{k + 1}")
        total_acked += acked
        total_found += found
        figure(f"{label} #{k + 1}: acknowledged {acked}, found {found}; {in_flight} requests in flight at the kill (no answer); "
               f"ready {restart:.1f} s after restart")
        # Tokens survive the restart (sessions are in the database).
        check(request(setup.server.base, "GET", "/api/v1/users/me", token=setup.staff).status == 200,
              f"{label} #{k + 1}: sessions survive the crash")
    setup.server.stop()
    if backend == "sqlite":
        path = url.removeprefix("sqlite://")
        result = sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0]
        check(result == "ok", f"{label}: PRAGMA integrity_check → {result}")
    summary.append(f"kill -9 {backend}: writes acknowledged {total_acked}, found {total_found}")


# -------------------------------------------------------------------- PostgreSQL outage


def pg_outage(args) -> None:
    label = "PostgreSQL outage"
    print(f"\n==> {label} (private cluster)", flush=True)
    db_name = f"carrel_crash_{os.getpid()}_outage"
    sh(f"psql -w -q '{args.pg}/postgres' -c 'CREATE DATABASE {db_name}'")
    port = cluster.free_port_in(args.first_port, args.last_port)
    setup = Setup(args.carrel, args.work, "pg-outage", f"{args.pg}/{db_name}", port)
    setup.prepare()
    load = Load(setup, 6, ("circ", "pay", "me", "search"))
    ready_log: list[tuple[float, float, int]] = []
    stop_poll = threading.Event()

    def poll():
        while not stop_poll.is_set():
            # (when the request was sent, when it was answered, its status)
            sent = time.monotonic()
            status = request(setup.server.base, "GET", "/readiness", timeout=10).status
            ready_log.append((sent, time.monotonic(), status))
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    load.start()
    poller.start()
    time.sleep(2)
    sh(os.environ["CARREL_CRASH_PG_STOP"])  # returns once PostgreSQL has stopped
    t_down = time.monotonic()
    time.sleep(float(os.environ.get("CARREL_CRASH_OUTAGE_SECONDS", "4")))
    t_start = time.monotonic()
    starting = subprocess.Popen(["bash", "-c", os.environ["CARREL_CRASH_PG_START"]])
    # The moment PostgreSQL accepts connections again, polled every 50 ms.
    port = args.pg.rsplit(":", 1)[1]
    while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", port]).returncode != 0:
        time.sleep(0.05)
    t_up = time.monotonic()
    starting.wait(timeout=120)
    deadline = t_up + 30
    t_ready = None
    while time.monotonic() < deadline:
        after = [answered for sent, answered, s in ready_log if sent > t_up and s == 200]
        if after:
            t_ready = after[0]
            break
        time.sleep(0.05)
    time.sleep(2)
    load.finish()
    stop_poll.set()
    poller.join()
    recovery = (t_ready - t_up) if t_ready else float("inf")
    during = load.count(since=t_down, until=t_start)
    after_ready = load.count(since=t_ready or t_up)
    allcounts = load.count()
    ready_down = {s for sent, answered, s in ready_log if t_down < sent and answered < t_start}
    check(fivexx(allcounts, (503,)) == 0 and allcounts.get(0, 0) == 0,
          f"{label}: only 503 as 5xx, no unanswered request (all statuses {allcounts})")
    check(ready_down <= {503}, f"{label}: /readiness says 503 while PostgreSQL is down ({ready_down})")
    check(recovery <= 5.0, f"{label}: /readiness back to 200 {recovery:.2f} s after PostgreSQL accepts connections")
    check(fivexx(after_ready) == 0, f"{label}: no 5xx once ready again ({after_ready})")
    acked, found = verify_acked(setup, load, label)
    setup.server.stop()
    figure(f"{label}: {sum(during.values())} requests answered during the {t_start - t_down:.1f} s outage → {during}; "
           f"recovery {recovery:.2f} s; 500s seen {allcounts.get(500, 0)}")
    summary.append(f"PostgreSQL restart: recovered {recovery:.2f} s after PG was back; writes acknowledged "
                   f"{acked}, found {found}; 5xx seen: {fivexx(allcounts)} (all 503: "
                   f"{fivexx(allcounts, (503,)) == 0}), 500s: {allcounts.get(500, 0)}")


# -------------------------------------------------------------------- Redis outage


def redis_outage(args) -> None:
    label = "Redis outage"
    print(f"\n==> {label} (private Redis, CARREL_RATE_LIMIT_REDIS_FAILURE=fallback)", flush=True)
    db_name = f"carrel_crash_{os.getpid()}_redis"
    sh(f"psql -w -q '{args.pg}/postgres' -c 'CREATE DATABASE {db_name}'")
    port = cluster.free_port_in(args.first_port, args.last_port)
    setup = Setup(args.carrel, args.work, "redis-outage", f"{args.pg}/{db_name}", port, {
        "CARREL_REDIS_URL": args.redis, "CARREL_RATE_LIMIT_REDIS_FAILURE": "fallback",
        "CARREL_RATE_LIMIT_PASSWORD_FORGOT": "5/min"})
    setup.prepare(copies=24, fines=8)
    base = setup.server.base

    def budget(ip: str) -> list[int]:
        """8 password-forgot requests from one address: a 5/min budget lets 5 through."""
        return [request(base, "POST", "/api/v1/auth/password/forgot", {"email": "nobody@example.org"},
                        headers={"X-Forwarded-For": ip}).status for _ in range(8)]

    load = Load(setup, 6, ("me", "search", "circ", "pay"))
    load.start()
    time.sleep(1.5)
    before = budget("10.251.0.1")
    t_down = time.monotonic()
    sh(os.environ["CARREL_CRASH_REDIS_STOP"])
    time.sleep(1)
    during_budget = budget("10.251.0.2")
    time.sleep(2)
    t_up = time.monotonic()
    sh(os.environ["CARREL_CRASH_REDIS_START"])
    time.sleep(2.5)
    after_budget = budget("10.251.0.3")
    load.finish()
    counts = load.count()
    during = load.count(t_down, t_up)
    check(fivexx(counts) == 0 and counts.get(0, 0) == 0,
          f"{label}: no 5xx and no unanswered request ({counts})")
    for name, statuses in (("before", before), ("during", during_budget), ("after", after_budget)):
        check(statuses.count(202) == 5 and statuses.count(429) == 3,
              f"{label}: a 5/min budget {name} the outage lets 5 through ({statuses})")
    keys = subprocess.run(["redis-cli", "-u", args.redis, "--scan"], capture_output=True, text=True).stdout
    check(bool(keys.strip()), f"{label}: budgets are kept in Redis again after the restart")
    acked, found = verify_acked(setup, load, label)
    setup.server.stop()
    summary.append(f"Redis lost: {sum(during.values())} requests during the outage, 5xx seen {fivexx(counts)}; "
                   f"fallback limiter enforced 5/min ({during_budget.count(429)} × 429 of 8)")


# -------------------------------------------------------------------- full disk


def tiny_fs(path: str, size_mb: int) -> str | None:
    """Mounts a size-limited file system at `path`; returns how, or None."""
    os.makedirs(path, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", path],
                      capture_output=True).returncode == 0:
        return "tmpfs"
    image = path + ".img"
    try:
        sh(f"fallocate -l {size_mb}M {image} && mkfs.ext4 -q -F {image} && mount -o loop {image} {path}")
        return "ext4 loop"
    except subprocess.CalledProcessError:
        return None


def fill(path: str) -> str:
    """Fills the file system under `path`; returns the filler's path."""
    filler = os.path.join(path, "filler")
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 65536, 4096, 1):  # the last writes take the last partial block
            chunk = b"\0" * size
            try:
                while True:
                    f.write(chunk)
            except OSError:
                pass
    return filler


def png_bytes(width: int = 64, height: int = 64) -> bytes:
    import struct
    import zlib
    raw = b"".join(b"\0" + b"".join(bytes((x * 4 % 256, y * 4 % 256, 128)) for x in range(width))
                   for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def disk_full(args) -> None:
    label = "full disk"
    print(f"\n==> {label} (SQLite database, then the upload store)", flush=True)
    db_mount = os.path.join(args.work, "full-db")
    up_mount = os.path.join(args.work, "full-uploads")
    how = tiny_fs(db_mount, 24)
    how_up = tiny_fs(up_mount, 2) if how else None
    if not how or not how_up:
        print("SKIP full disk: cannot mount a small file system here (needs root: tmpfs or a loop device)")
        summary.append("full disk: SKIPPED (no mount)")
        return
    args.mounts.extend([db_mount, up_mount])
    port = cluster.free_port_in(args.first_port, args.last_port)
    setup = Setup(args.carrel, args.work, "disk-full", f"sqlite://{db_mount}/data/carrel.db", port,
                  {"CARREL_STORAGE_URL": f"file://{up_mount}"}, data_dir=os.path.join(db_mount, "data"))
    setup.prepare(copies=24, fines=8)
    base = setup.server.base
    staff = setup.staff
    item = setup.catalog.item_ids[0]
    body, ctype = multipart(png_bytes())
    check(request(base, "PUT", f"/api/v1/items/{item}/cover", raw=body, content_type=ctype, token=staff).status
          == 200, f"{label}: a cover upload works before the disk fills")

    # The database's file system.
    filler = fill(db_mount)
    statuses: dict[int, int] = {}
    n = 0
    for n in range(400):
        r = request(base, "POST", "/api/v1/items", {"title": f"Full disk {n} " + "x" * 400,
                                                    "description": "y" * 4900, "item_type": "book"},
                    token=staff)
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if r.status not in (201,) and statuses.get(r.status, 0) >= 20:
            break
    # Circulation writes too: a checkout and a payment on the full disk.
    token, patron = setup.patrons[0]
    for r in (request(base, "POST", "/api/v1/loans", {"copy_barcode": setup.catalog.barcodes[0], "user_id": patron},
                      token=staff),
              request(base, "POST", f"/api/v1/fines/{setup.fines[0]}/payments", {"amount_cents": 100, "method": "cash"},
                      token=staff, headers={"Idempotency-Key": str(uuid.uuid4())})):
        statuses[r.status] = statuses.get(r.status, 0) + 1
    reads = [request(base, "GET", "/api/v1/items?q=volume", token=staff).status,
             request(base, "GET", "/api/v1/users/me", token=staff).status]
    check(statuses.get(500, 0) == 0 and any(s in (503, 507) for s in statuses),
          f"{label}: writes to a full SQLite disk → {statuses} (503/507 expected, no 500)")
    check(all(s in (200, 503) for s in reads), f"{label}: reads while full → {reads}")
    os.unlink(filler)
    time.sleep(0.5)
    again = request(base, "POST", "/api/v1/items", {"title": "After the disk was freed", "item_type": "book"},
                    token=staff).status
    check(again == 201, f"{label}: writes work again once space is freed ({again})")
    db_statuses = dict(statuses)

    # The upload store's file system.
    filler = fill(up_mount)
    cover = request(base, "PUT", f"/api/v1/items/{item}/cover", raw=body, content_type=ctype, token=staff).status
    check(cover in (503, 507), f"{label}: a cover upload to a full store → {cover} (503/507 expected)")
    still = request(base, "GET", f"/api/v1/items/{item}/cover").status
    check(still == 200, f"{label}: the previous cover is still served ({still})")
    os.unlink(filler)
    cover_again = request(base, "PUT", f"/api/v1/items/{item}/cover", raw=body, content_type=ctype,
                          token=staff).status
    check(cover_again == 200, f"{label}: uploads work again once space is freed ({cover_again})")
    setup.server.stop()
    conn = sqlite3.connect(os.path.join(db_mount, "data", "carrel.db"))
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    check(integrity == "ok", f"{label}: PRAGMA integrity_check → {integrity}")
    violations = cluster.invariant_violations(setup.db)
    check(all(v == 0 for v in violations.values()), f"{label}: invariants hold {violations}")
    summary.append(f"full disk ({how}): SQLite writes → {db_statuses}, cover upload → {cover}, "
                   f"integrity_check {integrity}")


# -------------------------------------------------------------------- main


summary: list[str] = []


class Args:
    pass


def main() -> int:
    args = Args()
    args.carrel, args.pg, args.redis, args.work = sys.argv[1:5]
    args.first_port, args.last_port = int(sys.argv[5]), int(sys.argv[6])
    args.mounts = []
    tests = sys.argv[7:] or ["kill-postgres", "kill-sqlite", "pg-outage", "redis-outage", "disk-full"]
    print(f"==> crash and outage tests: {' '.join(tests)}; load average {cluster.load_average()}", flush=True)
    t0 = time.monotonic()
    try:
        for test in tests:
            try:
                {"kill-postgres": lambda: kill_test(args, "postgres"),
                 "kill-sqlite": lambda: kill_test(args, "sqlite"),
                 "pg-outage": lambda: pg_outage(args),
                 "redis-outage": lambda: redis_outage(args),
                 "disk-full": lambda: disk_full(args)}[test]()
            except Exception as error:  # a broken step fails the run, the others still run
                check(False, f"{test}: {type(error).__name__}: {error}")
    finally:
        for server in STARTED:
            server.stop()
        for mount in args.mounts:
            subprocess.run(["umount", "-l", mount], capture_output=True)
    # Any 500 logged by any server counts, whatever the client saw.
    logged = 0
    for log in sorted(os.listdir(args.work)):
        if log.startswith("server-") and log.endswith(".log"):
            with open(os.path.join(args.work, log), errors="replace") as f:
                logged += sum(1 for line in f if '"status":500' in line.replace(" ", ""))
    check(logged == 0, f"no request logged with status 500 by any server ({logged})")
    print(f"\n==> crash and outage figures ({time.monotonic() - t0:.0f} s, load average {cluster.load_average()})")
    for line in summary:
        print(f"  {line}")
    if failures:
        print(f"\n{len(failures)} check(s) FAILED")
        return 1
    print("\nall crash and outage checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

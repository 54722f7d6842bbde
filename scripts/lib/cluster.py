"""Shared helpers of scripts/multi-instance.sh and scripts/crash-tests.sh
(standard library only): an HTTP client that keeps one connection per thread
and server, `carrel serve` processes, users made with `carrel users create`,
and read-only SQL against the server's database (psql or sqlite3).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field

PASSWORD = "Harness-Carrel-Passw0rd!"


# --------------------------------------------------------------------------- HTTP


@dataclass
class Reply:
    status: int  # 0: no answer (connection refused, reset, timeout)
    body: object
    headers: dict
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


_local = threading.local()


def request(base: str, method: str, path: str, body=None, token: str | None = None,
            headers: dict | None = None, timeout: float = 30.0, raw: bytes | None = None,
            content_type: str = "application/json") -> Reply:
    """One request on this thread's keep-alive connection to `base`. Never raises:
    a transport failure is status 0 with the error text."""
    host, port = base.removeprefix("http://").split(":")
    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    key = (host, int(port), timeout)
    hdrs = {"Accept": "application/json"}
    payload = raw
    if body is not None:
        payload = json.dumps(body).encode()
    if payload is not None:
        hdrs["Content-Type"] = content_type
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    hdrs.update(headers or {})
    for attempt in (1, 2):
        conn, last_used = conns.get(key, (None, 0.0))
        if conn is not None and time.monotonic() - last_used > 1.0:
            # The server may close idle connections: a write sent on one it is
            # closing would get no answer, so idle connections are not reused.
            conn.close()
            conn = None
        fresh = conn is None
        if conn is None:
            conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        conns[key] = (conn, time.monotonic())
        try:
            conn.request(method, path, body=payload, headers=hdrs)
            response = conn.getresponse()
            data = response.read()
            reply_headers = {k.lower(): v for k, v in response.getheaders()}
            conns[key] = (conn, time.monotonic())
            try:
                parsed = json.loads(data) if data else None
            except ValueError:
                parsed = data.decode(errors="replace")
            return Reply(response.status, parsed, reply_headers)
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            conns.pop(key, None)
            # A kept-alive connection the server had closed (it closes one after
            # answering without reading the whole body, e.g. a 429): retry once on a
            # fresh connection. The server never read this request, so it cannot
            # have acted on it; a server that died mid-request is not reachable for
            # the retry either (a fresh connection that fails is the answer: 0).
            if fresh or attempt == 2 or not isinstance(
                    error, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
                return Reply(0, None, {}, f"{type(error).__name__}: {error}")
    return Reply(0, None, {}, "unreachable")


def reset_connections() -> None:
    for conn, _ in getattr(_local, "conns", {}).values():
        conn.close()
    _local.conns = {}


def wait_ready(base: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> float:
    """Polls /readiness until 200; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server on {base} exited with {proc.returncode}")
        if request(base, "GET", "/readiness", timeout=2).status == 200:
            return time.monotonic() - start
        time.sleep(0.05)
    raise RuntimeError(f"{base} not ready after {timeout}s")


def free_port_in(first: int, last: int) -> int:
    for port in range(first, last + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{last}")


# --------------------------------------------------------------------------- servers


def base_env(database_url: str, data_dir: str, keys_dir: str) -> dict:
    """The environment every harness server shares: test mode, cheap Argon2, keys
    shared by all instances (as a deployment shares them through its secrets)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARREL_")}
    env.update({
        "CARREL_ENV": "test",
        "CARREL_LOG_FORMAT": "json",
        "RUST_LOG": os.environ.get("CARREL_HARNESS_RUST_LOG", "info"),
        "CARREL_DATABASE_URL": database_url,
        "CARREL_DATA_DIR": data_dir,
        "CARREL_JWT_PRIVATE_KEY_FILE": os.path.join(keys_dir, "jwt.pem"),
        "CARREL_SECRETS_KEY_FILE": os.path.join(keys_dir, "secrets.key"),
        "CARREL_ARGON2_MEMORY_KIB": "256",
        "CARREL_ARGON2_ITERATIONS": "1",
        "CARREL_ARGON2_PARALLELISM": "1",
        "CARREL_LOCKOUT_THRESHOLD": "1000",
        "CARREL_PAYMENT_PROVIDER": "test",
        "CARREL_MAX_ACTIVE_LOANS": "10000",
        "CARREL_FINE_BLOCK_THRESHOLD_CENTS": "0",
        # Clients are told apart by X-Forwarded-For from the harness itself.
        "CARREL_TRUSTED_PROXIES": "127.0.0.1/32",
        "CARREL_CLIENT_IP_HEADER": "x-forwarded-for",
    })
    for name in ("REGISTER", "PASSWORD_FORGOT", "MFA_VERIFY", "REFRESH", "PROFILE_UPDATE",
                 "COVER_UPLOAD", "PAYMENTS", "ACCOUNT_DELETION", "GLOBAL", "LOGIN"):
        env[f"CARREL_RATE_LIMIT_{name}"] = "1000000/min"
    return env


@dataclass
class Server:
    name: str
    carrel: str
    port: int
    env: dict
    log_path: str
    proc: subprocess.Popen | None = None
    log: object = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = dict(self.env, CARREL_BIND=f"127.0.0.1:{self.port}")
        os.makedirs(env["CARREL_DATA_DIR"], exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.starts += 1
        self.log.write(f"\n=== start {self.starts} at {time.time():.3f}\n".encode())
        self.log.flush()
        self.proc = subprocess.Popen([self.carrel, "serve"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()
        if self.log:
            self.log.close()
            self.log = None

    def log_text(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def run_cli(carrel: str, env: dict, args: list[str], stdin: str | None = None) -> str:
    done = subprocess.run([carrel, *args], env=env, input=stdin, capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"carrel {' '.join(args)} exited {done.returncode}: {done.stderr[-800:]}")
    return done.stdout


def create_user(carrel: str, env: dict, username: str, role: str) -> None:
    run_cli(carrel, env, ["users", "create", "--email", f"{username}@example.org", "--username",
                          username, "--role", role, "--full-name", username.title(),
                          "--password-stdin"], stdin=PASSWORD)


def login(base: str, username: str, ip: str | None = None) -> dict:
    reply = request(base, "POST", "/api/v1/auth/login", {"username": username, "password": PASSWORD},
                    headers={"X-Forwarded-For": ip or random_ip()})
    if reply.status != 200:
        raise RuntimeError(f"login {username} on {base}: {reply.status} {reply.body}")
    return reply.body


def random_ip() -> str:
    """A client address of its own for each call (rate limits are per IP, and
    their budgets outlive a run in a shared Redis)."""
    n = uuid.uuid4().int
    return f"10.{n & 255}.{(n >> 8) & 255}.{(n >> 16) & 255}"


def must(reply: Reply, what: str, statuses=(200, 201, 204)) -> object:
    if reply.status not in statuses:
        raise RuntimeError(f"{what}: {reply.status} {reply.body or reply.error}")
    return reply.body


# --------------------------------------------------------------------------- SQL


class Db:
    """Read-only checks against the server's database, outside the server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite:")

    def rows(self, sql: str) -> list[tuple]:
        if self.sqlite:
            path = self.url.removeprefix("sqlite://").split("?")[0]
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                return [tuple(_norm(v) for v in row) for row in conn.execute(sql).fetchall()]
            finally:
                conn.close()
        done = subprocess.run(["psql", "-w", "-X", "-q", "-A", "-t", "-F", "\t", self.url, "-c", sql],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr.strip()}")
        return [tuple(line.split("\t")) for line in done.stdout.splitlines() if line]

    def value(self, sql: str):
        rows = self.rows(sql)
        return rows[0][0] if rows else None

    def uuid_text(self, column: str) -> str:
        """An expression giving a uuid column as lower-case hyphenated text."""
        if self.sqlite:
            return column  # converted in _norm
        return f"{column}::text"

    def json_text(self, column: str, key: str) -> str:
        if self.sqlite:
            return f"json_extract({column}, '$.{key}')"
        return f"{column}->>'{key}'"


def _norm(value):
    if isinstance(value, bytes) and len(value) == 16:
        return str(uuid.UUID(bytes=value))
    return value if value is None else str(value)


def invariant_violations(db: Db) -> dict[str, int]:
    """Counts of broken circulation invariants (all must be 0)."""
    u = db.uuid_text
    checks = {
        "copies with two open loans":
            "SELECT count(*) FROM (SELECT copy_id FROM loans WHERE status IN ('active','overdue') "
            "GROUP BY copy_id HAVING count(*) > 1) t",
        "copies on loan without an open loan":
            "SELECT count(*) FROM copies c WHERE c.status = 'on_loan' AND NOT EXISTS "
            "(SELECT 1 FROM loans l WHERE l.copy_id = c.id AND l.status IN ('active','overdue'))",
        "open loans of a copy not on loan":
            "SELECT count(*) FROM loans l JOIN copies c ON c.id = l.copy_id "
            "WHERE l.status IN ('active','overdue') AND c.status <> 'on_loan'",
        "fines whose paid_cents is not the sum of their payments":
            "SELECT count(*) FROM fines f WHERE f.paid_cents <> "
            "(SELECT coalesce(sum(p.amount_cents), 0) FROM payments p WHERE p.fine_id = f.id)",
        "loans without their loan.checked_out audit entry":
            f"SELECT count(*) FROM loans l WHERE NOT EXISTS (SELECT 1 FROM audit_events a "
            f"WHERE a.event_type = 'loan.checked_out' AND {db.json_text('a.details', 'loan_id')} = {u('l.id')})",
        "returned loans without their loan.returned audit entry":
            f"SELECT count(*) FROM loans l WHERE l.returned_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audit_events a "
            f"WHERE a.event_type = 'loan.returned' AND {db.json_text('a.details', 'loan_id')} = {u('l.id')})",
    }
    if db.sqlite:
        # Ids are BLOBs there: compare through Python instead of SQL.
        return _sqlite_invariants(db, checks)
    return {name: int(db.value(sql)) for name, sql in checks.items()}


def _sqlite_invariants(db: Db, checks: dict[str, str]) -> dict[str, int]:
    out = {}
    for name, sql in checks.items():
        if "audit" in name:
            continue
        out[name] = int(db.value(sql))
    checked_out = {r[0] for r in db.rows(
        "SELECT json_extract(details, '$.loan_id') FROM audit_events WHERE event_type = 'loan.checked_out'")}
    returned = {r[0] for r in db.rows(
        "SELECT json_extract(details, '$.loan_id') FROM audit_events WHERE event_type = 'loan.returned'")}
    loans = db.rows("SELECT id, returned_at FROM loans")
    out["loans without their loan.checked_out audit entry"] = sum(1 for i, _ in loans if i not in checked_out)
    out["returned loans without their loan.returned audit entry"] = sum(
        1 for i, r in loans if r is not None and i not in returned)
    return out


def ids(db: Db, sql: str) -> set[str]:
    return {row[0] for row in db.rows(sql)}


# --------------------------------------------------------------------------- seeding


@dataclass
class Catalog:
    barcodes: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)


def seed_catalog(base: str, token: str, prefix: str, items: int, copies_per_item: int,
                 item_type: str = "book") -> Catalog:
    catalog = Catalog()
    for n in range(items):
        item = must(request(base, "POST", "/api/v1/items", {
            "title": f"{prefix} volume {n}", "authors": ["Harness Author"], "item_type": item_type,
            "subjects": ["Testing"], "language": "en"}, token=token), "create item")
        catalog.item_ids.append(item["id"])
        for c in range(copies_per_item):
            barcode = f"{prefix}-{n:03d}-{c:02d}"
            must(request(base, "POST", f"/api/v1/items/{item['id']}/copies", {"barcode": barcode},
                         token=token), "create copy")
            catalog.barcodes.append(barcode)
    return catalog


def user_id(base: str, token: str) -> str:
    return must(request(base, "GET", "/api/v1/users/me", token=token), "users/me")["id"]


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])

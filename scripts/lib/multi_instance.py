"""Driver of scripts/multi-instance.sh: three `carrel serve` processes on one
PostgreSQL database and one Redis, checked for what a scale-out must keep
(standard library only).

    multi_instance.py CARREL PG_SERVER_URL REDIS_URL WORK_DIR FIRST_PORT LAST_PORT

Checks, in order:
  migrations   3 instances started at the same instant on an empty database all
               come up, and the schema is complete (every migration applied once)
  sessions     a session logged out on one instance is refused at once by the others
  rate limits  one login budget (per IP and identifier) spent across all instances
  jobs         the circulation jobs run on one instance; each due-soon notice is
               claimed and mailed once; a hold-ready notice is mailed once
  payments     one Idempotency-Key on three instances at once → one payment; a
               replay on another instance → the first answer
  storm        many concurrent checkouts of the same copies over all instances →
               one open loan per copy; then concurrent returns → one return each

Prints a figures summary; exits 1 if any check failed.
"""

from __future__ import annotations

import email
import glob
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import must, request  # noqa: E402

# Usernames carry a tag of this run: login budgets (per IP and per identifier)
# live in the shared Redis for an hour, and runs follow each other.
RUN = uuid.uuid4().hex[:6]
LOGIN_LIMIT = 6  # per hour (no refill during the check): the budget the rate-limit check spends

failures: list[str] = []
figures: list[str] = []


def check(ok: bool, what: str) -> bool:
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)
    return ok


def figure(line: str) -> None:
    figures.append(line)


def outbox_messages(servers) -> list[dict]:
    """Every mail the instances wrote to their file outboxes."""
    out = []
    for server in servers:
        for path in glob.glob(os.path.join(server.env["CARREL_MAIL_OUTBOX"], "*.eml")):
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(f)
            text = "".join(str(part.get_payload(decode=True) or b"", "utf-8", "replace")
                           for part in msg.walk() if part.get_content_type() == "text/plain")
            out.append({"instance": server.name, "to": msg["To"], "subject": msg["Subject"], "body": text})
    return out


def outbox_rows(server, admin: str) -> list[dict]:
    """Every row of GET /api/v1/admin/outbox, all states, all pages."""
    rows = []
    for state in ("pending", "sent", "dead"):
        cursor = None
        while True:
            path = f"/api/v1/admin/outbox?state={state}&limit=100" + (
                f"&cursor={urllib.parse.quote(cursor, safe='')}" if cursor else "")
            page = must(request(server.base, "GET", path, token=admin), "admin/outbox")
            rows.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return rows


def main() -> int:
    carrel, pg_server, redis_url, work, first_port, last_port = sys.argv[1:7]
    first_port, last_port = int(first_port), int(last_port)
    db_name = f"carrel_harness_{os.getpid()}_{int(time.time())}"
    database_url = f"{pg_server}/{db_name}"
    subprocess.run(["psql", "-w", "-q", f"{pg_server}/postgres", "-c", f'CREATE DATABASE "{db_name}"'],
                   check=True)
    keys = os.path.join(work, "keys")
    os.makedirs(keys, exist_ok=True)
    servers = []
    try:
        port = first_port
        for name in ("A", "B", "C"):
            port = cluster.free_port_in(port, last_port)
            data = os.path.join(work, f"data-{name}")
            env = cluster.base_env(database_url, data, keys)
            env.update({
                "CARREL_AUTO_MIGRATE": "true",
                "CARREL_REDIS_URL": redis_url,
                "CARREL_JOBS_INTERVAL": "1s",
                "CARREL_MAIL_OUTBOX": os.path.join(data, "outbox"),
                "CARREL_RATE_LIMIT_LOGIN": f"{LOGIN_LIMIT}/hour",
                "CARREL_DATABASE_MAX_CONNECTIONS": "8",
            })
            servers.append(cluster.Server(name, carrel, port, env, os.path.join(work, f"server-{name}.log")))
            port += 1
        db = cluster.Db(database_url)
        status = run(carrel, servers, db)
    finally:
        for server in servers:
            server.stop()
        subprocess.run(["psql", "-w", "-q", f"{pg_server}/postgres", "-c",
                        f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'], check=False)
    return status


def run(carrel: str, servers, db: cluster.Db) -> int:
    a, b, c = servers
    print(f"==> multi-instance harness: 3 instances on ports {a.port}, {b.port}, {c.port}; "
          f"load average {cluster.load_average()}", flush=True)

    # ---------------------------------------------------------------- migrations race
    barrier = threading.Barrier(3)

    def start(server):
        barrier.wait()
        server.start()

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ready = {}
    for server in servers:
        try:
            ready[server.name] = cluster.wait_ready(server.base, 120, server.proc)
        except RuntimeError as error:
            check(False, f"migrations race: {error}\n{server.log_text()[-2000:]}")
            return 1
    started = time.monotonic() - t0
    expected = len(glob.glob(os.path.join(os.path.dirname(__file__), "../../crates/carrel-store/migrations/postgres/*.sql")))
    applied = db.rows("SELECT count(*), count(DISTINCT version), bool_and(success) FROM _sqlx_migrations")[0]
    check(all(s.proc.poll() is None for s in servers), "migrations race: all 3 instances up")
    check(int(applied[0]) == expected and int(applied[1]) == expected and applied[2] == "t",
          f"migrations race: {applied[0]} migrations recorded ({expected} expected), each once, all successful")
    tables = int(db.value("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"))
    check(tables >= 25, f"migrations race: schema has {tables} tables")
    figure(f"migrations race: 3 instances on an empty database ready in {started:.1f} s, "
           f"{applied[0]}/{expected} migrations applied once")

    # ---------------------------------------------------------------- users (CLI)
    env = dict(a.env)
    cluster.create_user(carrel, env, f"hadmin{RUN}", "admin")
    cluster.create_user(carrel, env, f"hlibrarian{RUN}", "librarian")
    patrons = [f"hpatron{n}{RUN}" for n in range(6)]
    for name in patrons:
        cluster.create_user(carrel, env, name, "patron")
    admin = cluster.login(a.base, f"hadmin{RUN}")["access_token"]
    staff = cluster.login(b.base, f"hlibrarian{RUN}")["access_token"]
    patron_tokens = {}
    patron_ids = {}
    for i, name in enumerate(patrons):
        server = servers[i % 3]
        patron_tokens[name] = cluster.login(server.base, name)["access_token"]
        patron_ids[name] = cluster.user_id(server.base, patron_tokens[name])
    # An access token made by one instance is good on every other (shared keys).
    check(all(request(s.base, "GET", "/api/v1/users/me", token=staff).status == 200 for s in servers),
          "a token issued by one instance is accepted by the others")

    check_sessions(servers)
    check_rate_limits(servers)
    check_jobs(servers, db, admin, staff, patron_tokens, patron_ids)
    check_payments(servers, db, staff, patron_tokens[f"hpatron0{RUN}"], patron_ids[f"hpatron0{RUN}"])
    check_storm(servers, db, staff, patron_ids)

    errors = {s.name: s.log_text().count('"level":"ERROR"') for s in servers}
    check(sum(errors.values()) == 0, f"no ERROR lines in the server logs ({errors})")
    print("\n==> multi-instance figures")
    for line in figures:
        print(f"  {line}")
    print(f"  load average at the end: {cluster.load_average()}")
    if failures:
        print(f"\n{len(failures)} check(s) FAILED")
        return 1
    print("\nall multi-instance checks passed")
    return 0


# -------------------------------------------------------------------- sessions


def check_sessions(servers) -> None:
    a, b, c = servers
    body = cluster.login(a.base, f"hpatron5{RUN}")
    token, refresh = body["access_token"], body["refresh_token"]
    check(all(request(s.base, "GET", "/api/v1/users/me", token=token).status == 200 for s in servers),
          "sessions: the new session works on all 3 instances")
    must(request(b.base, "POST", "/api/v1/auth/logout", token=token), "logout", (204,))
    t = time.monotonic()
    statuses = [request(s.base, "GET", "/api/v1/users/me", token=token).status for s in (a, c)]
    elapsed = (time.monotonic() - t) * 1000
    refreshed = request(c.base, "POST", "/api/v1/auth/refresh", {"refresh_token": refresh},
                        headers={"X-Forwarded-For": cluster.random_ip()}).status
    check(statuses == [401, 401] and refreshed == 401,
          f"sessions: logged out on B → refused at once on A and C ({statuses}, refresh on C {refreshed})")
    figure(f"sessions: logout on B refused on A and C within {elapsed:.0f} ms (the next request on each)")


# -------------------------------------------------------------------- rate limits


def check_rate_limits(servers) -> None:
    """LOGIN_LIMIT/hour per IP and per identifier, spent round-robin across the
    instances: exactly LOGIN_LIMIT attempts get an answer, the rest 429."""
    # An address of its own each run: budgets live in Redis for up to an hour.
    ip = cluster.random_ip()
    who = f"nobody-{uuid.uuid4().hex[:8]}"
    statuses, remaining = [], []
    for n in range(LOGIN_LIMIT * 2):
        server = servers[n % 3]
        reply = request(server.base, "POST", "/api/v1/auth/login", {"username": who, "password": "wrong-Passw0rd!"},
                        headers={"X-Forwarded-For": ip})
        statuses.append(reply.status)
        remaining.append(reply.headers.get("ratelimit-remaining"))
    answered = sum(1 for s in statuses if s == 401)
    limited = sum(1 for s in statuses if s == 429)
    check(answered == LOGIN_LIMIT and limited == LOGIN_LIMIT,
          f"rate limits: {LOGIN_LIMIT}/hour login budget shared by 3 instances: {answered} answered, "
          f"{limited} refused with 429 (statuses {statuses})")
    figure(f"rate limits: {len(statuses)} logins round-robin over 3 instances with a {LOGIN_LIMIT}/hour budget → "
           f"{answered} × 401, {limited} × 429 (RateLimit-Remaining {remaining[:LOGIN_LIMIT]})")


# -------------------------------------------------------------------- jobs and notices


def check_jobs(servers, db, admin, staff, patron_tokens, patron_ids) -> None:
    a, b, c = servers
    # DVDs lent for 1 day are due within 2 days at once: the next job run must
    # send each of them one "due soon" notice.
    must(request(a.base, "PUT", "/api/v1/circulation-policies/dvd", {
        "loan_days": 1, "max_renewals": 1, "daily_fine_cents": 10, "max_fine_cents": 100,
        "grace_days": 0, "replacement_cost_cents": 500}, token=admin), "dvd policy")
    dvds = cluster.seed_catalog(a.base, staff, "JOBDVD", 2, 3, item_type="dvd")
    names = list(patron_ids)
    for n, barcode in enumerate(dvds.barcodes):
        server = servers[n % 3]
        must(request(server.base, "POST", "/api/v1/loans",
                     {"copy_barcode": barcode, "user_id": patron_ids[names[n % len(names)]]}, token=staff),
             "dvd checkout", (201,))
    expected = len(dvds.barcodes)
    deadline = time.monotonic() + 20
    claimed = 0
    while time.monotonic() < deadline:
        claimed = int(db.value("SELECT count(*) FROM notices_sent WHERE kind = 'due_soon'"))
        if claimed >= expected:
            break
        time.sleep(0.5)
    # A few more job intervals: nothing more may be claimed or mailed.
    time.sleep(3.5)
    claimed = int(db.value("SELECT count(*) FROM notices_sent WHERE kind = 'due_soon'"))

    # A hold-ready notice: the copy of a one-copy book is out with patron 0,
    # patron 1 waits for it, the copy comes back on another instance.
    book = cluster.seed_catalog(a.base, staff, "JOBHOLD", 1, 1)
    must(request(a.base, "POST", "/api/v1/loans", {"copy_barcode": book.barcodes[0],
                                                   "user_id": patron_ids[f"hpatron0{RUN}"]}, token=staff),
         "hold book checkout", (201,))
    must(request(b.base, "POST", "/api/v1/holds", {"item_id": book.item_ids[0]},
                 token=patron_tokens[f"hpatron1{RUN}"]), "hold", (201,))
    returned = must(request(c.base, "POST", "/api/v1/loans/return", {"copy_barcode": book.barcodes[0]},
                            token=staff), "return")
    check(returned.get("hold") is not None and returned["hold"]["status"] == "ready",
          "jobs: the return on C made the waiting hold ready")
    time.sleep(3.5)  # mail goes out in the background; jobs run meanwhile

    mails = outbox_messages(servers)
    due_soon = [m for m in mails if m["subject"] == "A loan is due soon"]
    hold_ready = [m for m in mails if m["subject"] == "Your hold is ready for pickup"]
    per_loan = {}
    for m in due_soon:
        key = (m["to"], m["body"])
        per_loan[key] = per_loan.get(key, 0) + 1
    ran = {s.name: sum(1 for line in s.log_text().splitlines() if "circulation jobs ran" in line)
           for s in servers}
    holder = db.value("SELECT holder FROM job_leases WHERE name = 'circulation'")
    check(claimed == expected, f"jobs: {claimed} due-soon notices claimed for {expected} loans")
    check(sum(1 for n in ran.values() if n) == 1,
          f"jobs: one instance ran the jobs (runs with work per instance: {ran}; lease holder {holder})")
    # Today's guarantee: the claim row makes each notice go to the mailer once,
    # and the in-memory queue of the claiming instance sends it.
    check(len(due_soon) == expected and all(n == 1 for n in per_loan.values()),
          f"notices: {len(due_soon)} due-soon mails for {expected} loans, none twice")
    check(len(hold_ready) == 1, f"notices: {len(hold_ready)} hold-ready mail for 1 ready hold")
    # The durable outbox (issue 19 item 1): each notice is one row, sent once
    # (one attempt, by one instance), none pending or dead.
    rows = outbox_rows(servers[2], admin)
    notices = [r for r in rows if r["kind"] in ("due_soon", "hold_ready")]
    by_kind = {k: sum(1 for r in notices if r["kind"] == k) for k in ("due_soon", "hold_ready")}
    check(by_kind == {"due_soon": expected, "hold_ready": 1}
          and all(r["state"] == "sent" and r["attempts"] == 1 for r in notices),
          f"outbox: {by_kind} notice rows for {expected} due-soon and 1 hold-ready, each sent on its first "
          f"attempt ({sorted({(r['state'], r['attempts']) for r in notices})})")
    figure(f"jobs and notices: due-soon sent {len(due_soon)} / expected {expected}, hold-ready sent "
           f"{len(hold_ready)} / expected 1; job runs with work per instance {ran}")


# -------------------------------------------------------------------- payments


def check_payments(servers, db, staff, patron_token, patron_id) -> None:
    a, b, c = servers
    fine = must(request(a.base, "POST", "/api/v1/fines", {"user_id": patron_id, "amount_cents": 1000,
                                                           "reason": "manual", "note": "harness"}, token=staff),
                "fine", (201,))
    key = f"harness-{uuid.uuid4()}"
    body = {"amount_cents": 300, "method": "online", "payment_token": "tok_test_ok"}

    def pay(server, k=key):
        return request(server.base, "POST", f"/api/v1/fines/{fine['id']}/payments", body, token=patron_token,
                       headers={"Idempotency-Key": k})

    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(pay, servers))
    statuses = [r.status for r in replies]
    payment_ids = {r.body["payment"]["id"] for r in replies if r.status == 201}
    bodies = {json.dumps(r.body, sort_keys=True) for r in replies}
    replayed = sum(1 for r in replies if r.headers.get("idempotent-replayed") == "true")
    check(statuses == [201, 201, 201] and len(payment_ids) == 1 and len(bodies) == 1,
          f"payments: one key on 3 instances at once → {statuses}, {len(payment_ids)} payment, "
          f"identical bodies ({replayed} marked replayed)")
    # Sequential replay on the other instances, and a second key.
    key2 = f"harness-{uuid.uuid4()}"
    first = pay(a, key2)
    again = [pay(s, key2) for s in (b, c)]
    check(first.status == 201 and all(r.status == 201 and r.headers.get("idempotent-replayed") == "true"
                                      and r.body == first.body for r in again),
          "payments: a retry on B and C replays A's answer byte for byte")
    reused = request(b.base, "POST", f"/api/v1/fines/{fine['id']}/payments",
                     dict(body, amount_cents=100), token=patron_token, headers={"Idempotency-Key": key2})
    check(reused.status == 409, f"payments: the same key with another body on B → {reused.status}")
    rows = db.rows(f"SELECT count(*), coalesce(sum(amount_cents), 0) FROM payments WHERE fine_id = '{fine['id']}'")[0]
    paid = db.value(f"SELECT paid_cents FROM fines WHERE id = '{fine['id']}'")
    check(int(rows[0]) == 2 and int(rows[1]) == 600 and int(paid) == 600,
          f"payments: {rows[0]} payments stored, {rows[1]} cents, fine paid_cents {paid} (2, 600 expected)")
    figure(f"payments: 3 concurrent + 3 sequential requests on 2 keys over 3 instances → {rows[0]} payments, "
           f"{rows[1]} cents")


# -------------------------------------------------------------------- checkout storm


def check_storm(servers, db, staff, patron_ids) -> None:
    copies = int(os.environ.get("CARREL_HARNESS_STORM_COPIES", "40"))
    per_copy = int(os.environ.get("CARREL_HARNESS_STORM_ATTEMPTS", "6"))
    workers = int(os.environ.get("CARREL_HARNESS_STORM_WORKERS", "24"))
    catalog = cluster.seed_catalog(servers[0].base, staff, "STORM", copies // 4, 4)
    patrons = list(patron_ids.values())
    jobs = []
    for attempt in range(per_copy):
        for n, barcode in enumerate(catalog.barcodes):
            jobs.append((servers[(n + attempt) % 3], barcode, patrons[(n * 7 + attempt) % len(patrons)]))
    # Interleave so the attempts on one copy land at the same moment on different instances.
    jobs.sort(key=lambda j: (j[1], j[0].name))

    def checkout(job):
        server, barcode, patron = job
        t = time.monotonic()
        r = request(server.base, "POST", "/api/v1/loans", {"copy_barcode": barcode, "user_id": patron}, token=staff)
        return r.status, (r.body or {}).get("error_code") if isinstance(r.body, dict) else None, \
            time.monotonic() - t, barcode

    t0 = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(checkout, jobs))
    wall = time.monotonic() - t0
    won = {}
    for status, _, _, barcode in results:
        if status == 201:
            won[barcode] = won.get(barcode, 0) + 1
    by_status = {}
    for status, code, _, _ in results:
        by_status[f"{status}{'/' + code if code else ''}"] = by_status.get(f"{status}{'/' + code if code else ''}", 0) + 1
    fivexx = sum(1 for s, *_ in results if s >= 500 or s == 0)
    latencies = sorted(r[2] * 1000 for r in results)
    check(len(won) == len(catalog.barcodes) and all(n == 1 for n in won.values()),
          f"storm: {len(results)} checkouts of {len(catalog.barcodes)} copies → each copy lent exactly once "
          f"({by_status})")
    check(fivexx == 0, f"storm: no 5xx or transport error ({fivexx})")

    # Concurrent returns: each copy comes back once, the others are 409.
    def give_back(job):
        server, barcode = job
        r = request(server.base, "POST", "/api/v1/loans/return", {"copy_barcode": barcode}, token=staff)
        return r.status, barcode

    returns = [(servers[k % 3], barcode) for barcode in catalog.barcodes for k in range(3)]
    with ThreadPoolExecutor(workers) as pool:
        back = list(pool.map(give_back, returns))
    ok_returns = {}
    for status, barcode in back:
        if status == 200:
            ok_returns[barcode] = ok_returns.get(barcode, 0) + 1
    check(len(ok_returns) == len(catalog.barcodes) and all(n == 1 for n in ok_returns.values())
          and all(s in (200, 409) for s, _ in back),
          f"storm: {len(back)} concurrent returns → each copy returned once, the rest 409")
    violations = cluster.invariant_violations(db)
    check(all(v == 0 for v in violations.values()), f"storm: invariants hold {violations}")
    figure(f"checkout storm: {len(results)} checkouts of {len(catalog.barcodes)} copies on 3 instances, {workers} "
           f"clients, {wall:.1f} s ({len(results) / wall:.0f} req/s), p50 {statistics.median(latencies):.0f} ms, "
           f"p95 {latencies[int(len(latencies) * 0.95)]:.0f} ms; {sum(won.values())} lent, "
           f"{len(results) - sum(won.values()) - fivexx} refused (409), {fivexx} 5xx; "
           f"{len(back)} returns → {sum(ok_returns.values())} done")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Drives Carrel's web pages in a real Chromium (Debian's `chromium` package through
Playwright for Python; no browser download): a patron registers, confirms the emailed
link, signs in with the keyboard, turns on two-step verification on /account/mfa (the
TOTP code computed here from the key shown beside the QR code, RFC 6238), gets the
recovery codes once, signs out and in again with the password then a fresh code (a
wrong code and a spent one are refused), searches, places a hold (ready at once: the
copy is on the shelf); a librarian checks out and returns at the desk with the
keyboard alone (the scan field keeps the focus); the patron holds an item whose only
copy is on loan to someone else (waiting, number 1 in line), the librarian returns
that copy at the desk (to the hold shelf) and the account shows the hold ready; the
librarian lends it to the patron, who renews the loan on the account (the page and the
API show the later due date); the patron pays a fine online with the `test` payment
provider (declined, then approved) and moves a waiting hold to another pickup branch;
the search page shows its facets; an administrator edits the rule matrix and simulates
a checkout at /admin; the pages come in French for a French browser; the patron turns
two-step verification off again (password and a code); axe-core finds no serious or
critical violation on any page (the MFA sign-in step included). CI runs it through
scripts/web-browser-check.sh. With CARREL_WEB_SCREENSHOTS=DIR it also saves a
full-page screenshot of each page.

Usage: scripts/web-browser-check.py [path/to/carrel]   (default: target/debug/carrel)
Needs: apt-get install -y chromium; pip install playwright axe-playwright-python
Prints "N passed, N failed" and exits non-zero on any failure.
"""

import base64
import email
import hashlib
import hmac
import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

from playwright.sync_api import sync_playwright

try:  # axe-core 4, bundled in the PyPI package (no npm, no CDN)
    from axe_playwright_python.sync_playwright import Axe
except ImportError:  # pragma: no cover - the wrapper script installs it
    Axe = None

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Where a screenshot of each page checked by axe goes (unset: none).
SCREENSHOTS = os.environ.get("CARREL_WEB_SCREENSHOTS")
ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "Brisk-Lantern-Orchard-42"
PATRON_PASSWORD = "Quiet-Harbor-Willow-77"

results = []


def check(name, condition, detail=""):
    results.append((name, bool(condition)))
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else f"  ({detail})"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


def mailed_link(outbox, to, path):
    """The first link to `path` in a mail to `to` in the file outbox."""
    for _ in range(50):
        for eml in sorted(pathlib.Path(outbox).glob("*.eml")):
            message = email.message_from_bytes(eml.read_bytes())
            if to not in message.get("To", ""):
                continue
            for part in message.walk():
                if part.get_content_type() != "text/plain":
                    continue
                text = part.get_payload(decode=True).decode()
                for word in text.split():
                    if path in word:
                        return word
        time.sleep(0.2)
    return None


def totp(secret, step):
    """The RFC 6238 code of a base32 key for one 30-second step (HMAC-SHA1, 6 digits)."""
    secret = secret.replace(" ", "").strip().upper()
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def fresh_totp(secret, after_step):
    """A code the server accepts now, for a step after `after_step` (the last one
    spent: a step is accepted once). The server takes the previous, current and
    next step, so this waits only when even the next step is spent."""
    while True:
        now = int(time.time()) // 30
        step = max(now, after_step + 1)
        if step <= now + 1:
            return totp(secret, step), step
        time.sleep(30 - time.time() % 30 + 0.2)


def submit(page):
    """Enter in the focused field, and the page it leads to."""
    with page.expect_navigation():
        page.keyboard.press("Enter")


def focused_id(page):
    return page.evaluate("document.activeElement && document.activeElement.id")


def has_focus(page, element_id):
    """The element `element_id` has the focus (autofocus may land just after the load event)."""
    try:
        page.wait_for_function("id => document.activeElement && document.activeElement.id === id",
                               arg=element_id, timeout=2000)
        return True
    except Exception:
        return False


def axe_check(tab, base, path, name=None):
    """axe-core on one page: no serious or critical violation."""
    name = name or path
    if path is not None:
        tab.goto(base + path)
    if Axe is None:
        check(f"axe: {name}", False, "axe-playwright-python is not installed")
        return
    results = Axe().run(tab)
    bad = [
        f"{v['id']} ({v['impact']}): {len(v['nodes'])} node(s)"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
    check(f"axe: {name} has no serious or critical violation", not bad, "; ".join(bad))
    if SCREENSHOTS:
        os.makedirs(SCREENSHOTS, exist_ok=True)
        safe = "".join(c if c.isalnum() else "_" for c in name).strip("_") or "home"
        tab.screenshot(path=os.path.join(SCREENSHOTS, f"{safe}.png"), full_page=True)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/carrel"
    data = tempfile.mkdtemp(prefix="carrel-web-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        # `test`: the only mode with the `test` payment provider (the online
        # fine payment); it adds nothing else the pages see.
        CARREL_ENV="test",
        CARREL_PAYMENT_PROVIDER="test",
        CARREL_BIND=f"127.0.0.1:{port}",
        CARREL_PUBLIC_URL=base,
        CARREL_DATA_DIR=data,
        CARREL_DATABASE_URL=f"sqlite://{data}/carrel.db",
        CARREL_BOOTSTRAP_ADMIN_EMAIL=ADMIN_EMAIL,
        CARREL_BOOTSTRAP_ADMIN_PASSWORD=ADMIN_PASSWORD,
        CARREL_ARGON2_MEMORY_KIB="64",
        CARREL_ARGON2_ITERATIONS="1",
        RUST_LOG="warn",
    )
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/readiness")
                break
            except Exception:
                time.sleep(0.2)
        admin = api(base, "POST", "/api/v1/auth/login", {"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        token = admin["access_token"]
        item = api(base, "POST", "/api/v1/items",
                   {"title": "The Lighthouse Keeper", "item_type": "book", "authors": ["Ada Shore"],
                    "publication_year": 1994, "language": "en", "subjects": ["Sea", "Lighthouses"]}, token)
        # More lighthouse items (no copies) for the search page's facets.
        for title, kind, year, language, subjects in [
            ("Lighthouses of the North", "book", 1998, "en", ["Lighthouses", "Architecture"]),
            ("Phares et balises", "ebook", 2011, "fr", ["Lighthouses"]),
            ("The Lighthouse Hour", "audiobook", 2016, "en", ["Sea"]),
        ]:
            api(base, "POST", "/api/v1/items", {"title": title, "item_type": kind, "authors": ["Ada Shore"],
                                                "publication_year": year, "language": language,
                                                "subjects": subjects}, token)
        api(base, "POST", f"/api/v1/items/{item['id']}/copies", {"barcode": "LH-1"}, token)
        # An item whose only copy is on loan to another patron: a hold on it
        # waits until the librarian takes that copy back.
        tide = api(base, "POST", "/api/v1/items",
                   {"title": "The Tide Clock", "item_type": "book", "authors": ["Ada Shore"]}, token)
        api(base, "POST", f"/api/v1/items/{tide['id']}/copies", {"barcode": "TC-1"}, token)
        other = api(base, "POST", "/api/v1/users",
                    {"email": "otto@example.org", "username": "otto", "full_name": "Otto Other",
                     "password": "Amber-Meadow-Falcon-31"}, token)
        api(base, "POST", "/api/v1/loans", {"copy_barcode": "TC-1", "user_id": other["id"]}, token)
        run_browser(base, data, item, tide, token)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def run_browser(base, data, item, tide, token):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        patron = browser.new_context(locale="en-US")
        page = patron.new_page()
        console_errors = []
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))

        # Register, then confirm through the emailed link.
        page.goto(base + "/register")
        check("register: the email field has the focus", has_focus(page, "email"))
        page.keyboard.type("reader@example.org")
        page.keyboard.press("Tab")
        page.keyboard.type("reader")
        page.keyboard.press("Tab")
        page.keyboard.type("Rita Reader")
        page.keyboard.press("Tab")
        page.keyboard.type(PATRON_PASSWORD)
        submit(page)
        check("register: the verification email is announced", "verification email" in page.content())
        link = mailed_link(os.path.join(data, "outbox"), "reader@example.org", "/verify-email?token=")
        check("register: the email links to /verify-email", link is not None)
        if link:
            page.goto(link)
            with page.expect_navigation():
                page.get_by_role("button", name="Confirm my address").click()
            check("verify: the address is confirmed", "is confirmed" in page.content())

        # Sign in with the keyboard alone.
        page.goto(base + "/login")
        check("login: the username field has the focus", has_focus(page, "username"))
        page.keyboard.type("reader")
        page.keyboard.press("Tab")
        page.keyboard.type(PATRON_PASSWORD)
        submit(page)
        check("login: lands on the account", page.url == base + "/account", page.url)
        check("login: the account page", page.get_by_role("heading", name="My account").is_visible())

        # Two-step verification: enrol on /account/mfa (the key is shown as text
        # beside the QR code; the code is computed here as an authenticator app
        # would), keep the recovery codes shown once, then sign out and in again:
        # the password, then a code (a wrong one and a replayed one are refused).
        page.goto(base + "/account/mfa")
        with page.expect_navigation():
            page.get_by_role("button", name="Turn on two-step verification").click()
        check("mfa: the enrolment shows a QR code", page.get_by_role("img", name="QR code for your authenticator app").is_visible())
        axe_check(page, base, None, "/account/mfa/setup")
        key = page.locator("main p:has-text('Key') code")
        secret = key.inner_text().strip() if key.count() == 1 else ""
        check("mfa: the key is shown as text", len(secret) >= 16, secret)
        code, spent = fresh_totp(secret, 0) if secret else ("", 0)
        page.locator("#code").fill(code)
        with page.expect_navigation():
            page.get_by_role("button", name="Confirm").click()
        status = page.get_by_role("status").inner_text() if page.get_by_role("status").count() else ""
        check("mfa: a code from the key confirms the enrolment", "Two-step verification is on" in status, status)
        recovery_codes = page.locator("ul.codes code").all_inner_texts()
        check("mfa: ten recovery codes are shown", len(recovery_codes) == 10, recovery_codes)
        page.goto(base + "/account/mfa")
        check("mfa: the recovery codes are shown only once",
              page.locator("ul.codes").count() == 0 and "Two-step verification is on" in page.content())
        with page.expect_navigation():
            page.get_by_role("button", name="Sign out").click()
        page.goto(base + "/account")
        check("mfa: signed out, the account asks to sign in", page.url.startswith(base + "/login"), page.url)
        page.goto(base + "/login")
        has_focus(page, "username")
        page.keyboard.type("reader")
        page.keyboard.press("Tab")
        page.keyboard.type(PATRON_PASSWORD)
        submit(page)
        check("mfa login: the password leads to the code step",
              page.get_by_role("heading", name="Two-step verification").is_visible() and page.url == base + "/login",
              page.url)
        check("mfa login: the code field has the focus", has_focus(page, "code"))
        axe_check(page, base, None, "/login (the MFA step)")
        right = [totp(secret, s) for s in range(spent - 2, spent + 4)]
        wrong = next(c for c in (f"{(int(code) + k * 123457) % 1_000_000:06d}" for k in range(1, 50)) if c not in right)
        logged = len(console_errors)
        page.keyboard.type(wrong)
        submit(page)
        alert = page.get_by_role("alert").inner_text()
        check("mfa login: a wrong code is refused",
              page.url != base + "/account" and alert.strip() and has_focus(page, "code")
              and page.get_by_role("heading", name="Two-step verification").is_visible(), (page.url, alert))
        # The code that confirmed the enrolment was spent: it is refused again.
        page.keyboard.type(code)
        submit(page)
        alert = page.get_by_role("alert").inner_text()
        check("mfa login: a spent code is refused (no replay)",
              page.url != base + "/account" and alert.strip(), (page.url, alert))
        code, spent = fresh_totp(secret, spent)
        has_focus(page, "code")
        page.keyboard.type(code)
        submit(page)
        check("mfa login: a fresh code signs in, landing on the account", page.url == base + "/account", page.url)
        # The refused codes are answered 401, which Chromium logs as errors.
        console_errors[logged:] = [e for e in console_errors[logged:] if "status of 401" not in e]
        check("mfa login: the account says two-step verification is on",
              "Two-step verification is on" in page.content())

        # Search, open the item, place a hold.
        page.goto(base + "/")
        page.get_by_label("Title, author, subject or words").fill("lighthouse")
        submit(page)
        with page.expect_navigation():
            page.get_by_role("link", name="Refine by type, language, decade and subject").click()
        check("search: the facets count the matches",
              page.get_by_role("heading", name="Refine the results").is_visible()
              and page.get_by_role("link", name="Book", exact=True).is_visible())
        with page.expect_navigation():
            page.get_by_role("link", name="The Lighthouse Keeper").click()
        check("item: availability per branch", "Main library" in page.content())
        with page.expect_navigation():
            page.get_by_role("button", name="Place a hold").click()
        check("item: the hold is placed", "Your hold is placed." in page.content())
        check("item: the copy on the shelf is held at once", "A copy is waiting for you" in page.content())
        check("no console errors (CSP violations included)", not console_errors, console_errors)

        # The librarian's desk, keyboard only.
        staff = browser.new_context(locale="en-US")
        desk = staff.new_page()
        desk.goto(base + "/login")
        has_focus(desk, "username")
        desk.keyboard.type(ADMIN_EMAIL)
        desk.keyboard.press("Tab")
        desk.keyboard.type(ADMIN_PASSWORD)
        submit(desk)
        desk.goto(base + "/desk")
        check("desk: the find field has the focus", has_focus(desk, "find"))
        desk.keyboard.type("Rita")
        submit(desk)
        check("desk: the patron is chosen, the scan field has the focus", has_focus(desk, "checkout-barcode"))
        desk.keyboard.type("LH-1")
        submit(desk)
        check("desk: checked out", "Checked out The Lighthouse Keeper" in desk.content())
        check("desk: the scan field keeps the focus", has_focus(desk, "checkout-barcode"))
        desk.keyboard.type("LH-1")
        submit(desk)
        alert = desk.get_by_role("alert")
        check("desk: a second checkout is refused in the alert region", "Refused:" in alert.inner_text())
        # The patron sees the loan (the checkout fulfilled the hold).
        page.goto(base + "/account")
        loans = page.locator("#loans-heading + table").inner_text() if page.locator("#loans-heading + table").count() else ""
        check("account: the loan is listed", "The Lighthouse Keeper" in loans, loans)
        check("account: the fulfilled hold is gone", "You have no holds." in page.content())

        for _ in range(20):
            if focused_id(desk) == "return-barcode":
                break
            desk.keyboard.press("Tab")
        desk.keyboard.type("LH-1")
        submit(desk)
        status = desk.get_by_role("status").inner_text()
        check("desk: returned", "Returned The Lighthouse Keeper." in status, status)
        check("desk: the return field keeps the focus", has_focus(desk, "return-barcode"))

        page.goto(base + "/account")
        check("account: nothing on loan after the return", "You have nothing on loan." in page.content())

        # A hold that waits: The Tide Clock's only copy is on loan to someone
        # else. It becomes ready when the librarian takes that copy back.
        page.goto(base + f"/items/{tide['id']}")
        with page.expect_navigation():
            page.get_by_role("button", name="Place a hold").click()
        check("item: the hold on a copy out on loan is placed, not ready",
              "Your hold is placed." in page.content() and "A copy is waiting for you" not in page.content())
        page.goto(base + "/account")
        holds = page.locator("#holds-heading + table").inner_text() if page.locator("#holds-heading + table").count() else ""
        check("account: the hold waits, its position shown", "Waiting (number 1 in line)" in holds, holds)
        check("desk: the return field still has the focus", has_focus(desk, "return-barcode"))
        desk.keyboard.type("TC-1")
        submit(desk)
        status = desk.get_by_role("status").inner_text()
        check("desk: the returned copy goes to the hold shelf",
              "Returned The Tide Clock." in status and "hold shelf" in status, status)
        shelf = desk.locator("#shelf-heading + table").inner_text() if desk.locator("#shelf-heading + table").count() else ""
        check("desk: the hold shelf lists the copy for its patron", "TC-1" in shelf and "Rita Reader" in shelf, shelf)
        page.goto(base + "/account")
        holds = page.locator("#holds-heading + table").inner_text() if page.locator("#holds-heading + table").count() else ""
        check("account: the hold is ready after the return", "The Tide Clock" in holds and "Ready until" in holds, holds)
        tide_holds = api(base, "GET", f"/api/v1/holds?item_id={tide['id']}", token=token)["data"]
        check("account: the API has the hold ready", [h["status"] for h in tide_holds] == ["ready"], tide_holds)

        # The librarian lends the held copy to its patron (keyboard), who
        # renews the loan on the account page: the due date moves later.
        desk.goto(base + "/desk")
        has_focus(desk, "find")
        desk.keyboard.type("Rita")
        submit(desk)
        has_focus(desk, "checkout-barcode")
        desk.keyboard.type("TC-1")
        submit(desk)
        status = desk.get_by_role("status").inner_text()
        check("desk: the held copy is checked out to its patron", "Checked out The Tide Clock" in status, status)
        rita = api(base, "GET", "/api/v1/users?q=reader", token=token)["data"][0]
        before = [l for l in api(base, "GET", f"/api/v1/loans?user_id={rita['id']}", token=token)["data"]
                  if l["item_id"] == tide["id"]]
        page.goto(base + "/account")
        check("account: the picked-up hold is gone", "You have no holds." in page.content())
        row = page.locator("#loans-heading + table tr", has_text="The Tide Clock")
        due_before = row.locator("td").first.inner_text() if row.count() else ""
        with page.expect_navigation():
            page.get_by_role("button", name="Renew The Tide Clock").click()
        status = page.get_by_role("status").inner_text() if page.get_by_role("status").count() else ""
        due_after = row.locator("td").first.inner_text() if row.count() else ""
        check("account: the loan is renewed, the page says the new due date",
              "Renewed: now due" in status and due_after in status and due_after != due_before,
              (status, due_before, due_after))
        after = [l for l in api(base, "GET", f"/api/v1/loans?user_id={rita['id']}", token=token)["data"]
                 if l["item_id"] == tide["id"]]
        check("account: the API has the later due date and one renewal",
              len(before) == 1 and len(after) == 1 and after[0]["due_at"] > before[0]["due_at"]
              and after[0]["renewals"] == before[0]["renewals"] + 1, (before, after))

        # A fine to pay online with the test provider (declined, then approved),
        # and a waiting hold (its item has no copy yet) to move to another branch.
        # (Through the librarian's token: the patron's own API sign-in would
        # now need a code too, and the sign-ins stay within 5 a minute.)
        api(base, "POST", "/api/v1/fines",
            {"user_id": rita["id"], "amount_cents": 250, "reason": "manual", "note": "browser check"}, token)
        api(base, "POST", "/api/v1/branches", {"code": "EAST", "name": "East branch"}, token)
        waiting = api(base, "POST", "/api/v1/items",
                      {"title": "The Harbour Map", "item_type": "book", "authors": ["Ada Shore"]}, token)
        hold = api(base, "POST", "/api/v1/holds", {"item_id": waiting["id"], "user_id": rita["id"]}, token)
        page.goto(base + "/account")
        axe_check(page, base, None, "/account with a fine to pay")
        page.get_by_label("Payment token").fill("tok_test_declined")
        with page.expect_navigation():
            page.get_by_role("button", name="Pay online").click()
        alert = page.get_by_role("alert").inner_text()
        check("account: a declined payment is refused and explained", "declined" in alert, alert)
        check("account: the declined fine is still owed", "Total owed" in page.content())
        page.get_by_label("Payment token").fill("tok_test_ok")
        with page.expect_navigation():
            page.get_by_role("button", name="Pay online").click()
        status = page.get_by_role("status").inner_text()
        check("account: the online payment is recorded", "received" in status, status)
        check("account: nothing owed after paying", "You owe nothing." in page.content())

        # The waiting hold moves to the East branch.
        page.goto(base + "/account")
        page.get_by_label("Pick up The Harbour Map at").select_option(label="East branch")
        with page.expect_navigation():
            page.locator(f"form[action='/account/holds/{hold['id']}/pickup'] button").click()
        status = page.get_by_role("status").inner_text()
        check("account: the pickup branch is changed", "East branch" in status, status)
        after = api(base, "GET", f"/api/v1/holds/{hold['id']}", token=token)
        east = [b for b in api(base, "GET", "/api/v1/branches", token=token)["data"] if b["code"] == "EAST"]
        check("account: the hold is picked up at East now",
              east and after["pickup_branch_id"] == east[0]["id"], after)

        # Administration: the rule matrix is edited as a whole with the
        # keyboard (Enter in a field saves it), then a checkout is simulated.
        matrix = api(base, "GET", "/api/v1/circulation-rules", token=token)["data"]
        default_row = len(matrix)  # the default row comes last (most specific first)
        desk.goto(base + "/admin")
        with desk.expect_navigation():
            desk.get_by_role("link", name="Circulation rules").click()
        with desk.expect_navigation():
            desk.get_by_role("link", name="Edit the rule matrix").click()
        loan_days = desk.locator(f'input[name="r{default_row}.loan_days"]')
        check("admin: the matrix form's fields are labelled by row and column",
              loan_days.get_attribute("aria-labelledby") == f"row-{default_row} col-loan_days")
        loan_days.fill("12")
        loan_days.focus()
        submit(desk)
        status = desk.get_by_role("status").inner_text()
        check("admin: the matrix is saved", "The rules are saved." in status, status)
        matrix = api(base, "GET", "/api/v1/circulation-rules", token=token)["data"]
        check("admin: the API shows the new default loan period", matrix[-1]["loan_days"] == 12, matrix[-1])
        # A matrix without its default row is refused, explained, unchanged.
        desk.goto(base + "/admin/rules/edit")
        desk.locator(f'input[name="r{default_row}.remove"]').check()
        with desk.expect_navigation():
            desk.get_by_role("button", name="Save the rules").click()
        alert = desk.get_by_role("alert").inner_text()
        check("admin: a matrix without a default row is refused", "needs a default row" in alert, alert)
        axe_check(desk, base, None, "/admin/rules/edit (refused)")
        after = api(base, "GET", "/api/v1/circulation-rules", token=token)["data"]
        check("admin: the refused matrix changed nothing", after == matrix)
        reader = api(base, "GET", "/api/v1/users?q=reader", token=token)["data"][0]
        api(base, "PATCH", f"/api/v1/users/{reader['id']}", {"card_number": "RC-1"}, token)
        desk.goto(base + "/admin/rules")
        desk.get_by_label("Patron card number").fill("RC-1")
        desk.get_by_label("Copy barcode").fill("LH-1")
        desk.get_by_label("Copy barcode").focus()
        submit(desk)
        simulated = api(base, "POST", "/api/v1/circulation-rules/simulate",
                        {"card_number": "RC-1", "copy_barcode": "LH-1"}, token)
        shown = desk.locator("#simulation time").get_attribute("datetime") if desk.locator("#simulation time").count() else None
        check("admin: the simulator shows the API's due date", shown == simulated["due_date"], (shown, simulated))
        check("admin: the checkout would be allowed", "would be allowed" in desk.content() and simulated["refusals"] == [])
        # A MARC import started from the page (a real multipart upload).
        desk.goto(base + "/admin/imports")
        desk.set_input_files("#import-file", "crates/carrel-marc/tests/fixtures/bad_records.mrc")
        with desk.expect_navigation():
            desk.get_by_role("button", name="Start the import").click()
        status = desk.get_by_role("status").inner_text()
        check("admin: the import has started", "The import has started" in status, status)
        check("admin: the import is listed", "bad_records.mrc" in desk.locator("#imports").inner_text())

        # French for a French browser.
        french = browser.new_context(locale="fr-FR").new_page()
        french.goto(base + "/")
        check("French: the search page", french.get_by_role("heading", name="Rechercher dans le catalogue").is_visible())

        # Accessibility: axe-core on every page, signed out, as a patron and
        # as staff, in both languages: no serious or critical violation.
        anonymous = browser.new_context(locale="en-US").new_page()
        pages = [
            (anonymous, "/"),
            (anonymous, "/?q=lighthouse"),
            (anonymous, f"/items/{item['id']}"),
            (anonymous, "/login"),
            (anonymous, "/register"),
            (anonymous, "/forgot-password"),
            (anonymous, "/verify-email?token=not-a-token"),
            (anonymous, "/reset-password?token=not-a-token"),
            (anonymous, "/items/00000000-0000-7000-8000-00000000dead"),
            (page, "/account"),
            (page, "/account/mfa"),
            (desk, "/desk"),
            (desk, "/desk?find=Rita"),
            (french, "/"),
            (french, f"/items/{item['id']}"),
            (french, "/login"),
            (french, "/register"),
            (french, "/forgot-password"),
            (french, "/verify-email?token=not-a-token"),
            (french, "/reset-password?token=not-a-token"),
            (french, "/items/00000000-0000-7000-8000-00000000dead"),
            (desk, "/admin"),
            (desk, "/admin/rules"),
            (desk, "/admin/rules?card=RC-1&barcode=LH-1"),
            (desk, "/admin/rules/edit"),
            (desk, "/admin/users"),
            (desk, "/admin/users?q=Rita"),
            (desk, "/admin/types"),
            (desk, "/admin/branches"),
            (desk, "/admin/branches/00000000-0000-7000-8000-000000000001"),
            (desk, "/admin/imports"),
        ]
        for tab, path in pages:
            axe_check(tab, base, path, path + (" (fr)" if tab is french else ""))
        # The administration pages in French, for a French administrator.
        french_admin = browser.new_context(locale="fr-FR").new_page()
        french_admin.goto(base + "/login")
        has_focus(french_admin, "username")
        french_admin.keyboard.type(ADMIN_EMAIL)
        french_admin.keyboard.press("Tab")
        french_admin.keyboard.type(ADMIN_PASSWORD)
        submit(french_admin)
        french_admin.goto(base + "/admin/rules")
        check("French: the rules page", french_admin.get_by_role("heading", name="Règles de prêt").is_visible())
        # Every other signed-in page in French too (an administrator is staff).
        for path in ["/account", "/account/mfa", "/desk", "/desk?find=Rita",
                     "/admin", "/admin/rules", "/admin/rules?card=RC-1&barcode=LH-1", "/admin/rules/edit",
                     "/admin/users?q=Rita", "/admin/types", "/admin/branches",
                     "/admin/branches/00000000-0000-7000-8000-000000000001", "/admin/imports"]:
            axe_check(french_admin, base, path, f"{path} (fr)")
        # Two-step verification off again through the page: the password and
        # a fresh code (the step after the one the sign-in spent).
        page.goto(base + "/account/mfa")
        page.get_by_label("Current password").fill(PATRON_PASSWORD)
        code, spent = fresh_totp(secret, spent)
        page.locator("#code").fill(code)
        with page.expect_navigation():
            page.get_by_role("button", name="Turn off two-step verification").click()
        status = page.get_by_role("status").inner_text() if page.get_by_role("status").count() else ""
        check("mfa: turned off with the password and a fresh code", "Two-step verification is off." in status, status)
        check("mfa: the API shows it off",
              not api(base, "GET", f"/api/v1/users/{rita['id']}", token=token)["mfa_enabled"])
        axe_check(page, base, None, "/account/mfa (turned off)")
        browser.close()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Drives Carrel's web pages in a real Chromium (Debian's `chromium` package through
Playwright for Python; no browser download): a patron registers, confirms the emailed
link, signs in with the keyboard, searches, places a hold (ready at once: the copy is
on the shelf); a librarian checks out and
returns at the desk with the keyboard alone (the scan field keeps the focus); the patron
pays a fine online with the `test` payment provider (declined, then approved) and moves
a waiting hold to another pickup branch; the search page shows its facets; an
administrator edits the rule matrix and simulates a checkout at /admin; the pages
come in French for a French browser; axe-core finds no serious or critical violation
on any page. CI runs it through scripts/web-browser-check.sh. With
CARREL_WEB_SCREENSHOTS=DIR it also saves a full-page screenshot of each page.

Usage: scripts/web-browser-check.py [path/to/carrel]   (default: target/debug/carrel)
Needs: apt-get install -y chromium; pip install playwright axe-playwright-python
Prints "N passed, N failed" and exits non-zero on any failure.
"""

import email
import json
import os
import pathlib
import shutil
import socket
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


def submit(page):
    """Enter in the focused field, and the page it leads to."""
    with page.expect_navigation():
        page.keyboard.press("Enter")


def focused_id(page):
    return page.evaluate("document.activeElement && document.activeElement.id")


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
        run_browser(base, data, item, token)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def run_browser(base, data, item, token):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        patron = browser.new_context(locale="en-US")
        page = patron.new_page()
        console_errors = []
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))

        # Register, then confirm through the emailed link.
        page.goto(base + "/register")
        check("register: the email field has the focus", focused_id(page) == "email")
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
        check("login: the username field has the focus", focused_id(page) == "username")
        page.keyboard.type("reader")
        page.keyboard.press("Tab")
        page.keyboard.type(PATRON_PASSWORD)
        submit(page)
        check("login: lands on the account", page.url == base + "/account", page.url)
        check("login: the account page", page.get_by_role("heading", name="My account").is_visible())

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
        desk.keyboard.type(ADMIN_EMAIL)
        desk.keyboard.press("Tab")
        desk.keyboard.type(ADMIN_PASSWORD)
        submit(desk)
        desk.goto(base + "/desk")
        check("desk: the find field has the focus", focused_id(desk) == "find")
        desk.keyboard.type("Rita")
        submit(desk)
        check("desk: the patron is chosen, the scan field has the focus", focused_id(desk) == "checkout-barcode")
        desk.keyboard.type("LH-1")
        submit(desk)
        check("desk: checked out", "Checked out The Lighthouse Keeper" in desk.content())
        check("desk: the scan field keeps the focus", focused_id(desk) == "checkout-barcode")
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
        check("desk: the return field keeps the focus", focused_id(desk) == "return-barcode")

        page.goto(base + "/account")
        check("account: nothing on loan after the return", "You have nothing on loan." in page.content())

        # A fine to pay online with the test provider (declined, then approved),
        # and a waiting hold (its item has no copy yet) to move to another branch.
        reader = api(base, "POST", "/api/v1/auth/login", {"username": "reader", "password": PATRON_PASSWORD})
        me = api(base, "GET", "/api/v1/users/me", token=reader["access_token"])
        api(base, "POST", "/api/v1/fines",
            {"user_id": me["id"], "amount_cents": 250, "reason": "manual", "note": "browser check"}, token)
        api(base, "POST", "/api/v1/branches", {"code": "EAST", "name": "East branch"}, token)
        waiting = api(base, "POST", "/api/v1/items",
                      {"title": "The Harbour Map", "item_type": "book", "authors": ["Ada Shore"]}, token)
        hold = api(base, "POST", "/api/v1/holds", {"item_id": waiting["id"]}, reader["access_token"])
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
        after = api(base, "GET", f"/api/v1/holds/{hold['id']}", token=reader["access_token"])
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
        french_admin.keyboard.type(ADMIN_EMAIL)
        french_admin.keyboard.press("Tab")
        french_admin.keyboard.type(ADMIN_PASSWORD)
        submit(french_admin)
        french_admin.goto(base + "/admin/rules")
        check("French: the rules page", french_admin.get_by_role("heading", name="Règles de prêt").is_visible())
        for path in ["/admin", "/admin/rules", "/admin/rules?card=RC-1&barcode=LH-1", "/admin/rules/edit",
                     "/admin/users?q=Rita", "/admin/types", "/admin/branches",
                     "/admin/branches/00000000-0000-7000-8000-000000000001", "/admin/imports"]:
            axe_check(french_admin, base, path, f"{path} (fr)")
        # The MFA enrolment page (the QR code) is reached by a form.
        page.goto(base + "/account/mfa")
        with page.expect_navigation():
            page.get_by_role("button", name="Turn on two-step verification").click()
        axe_check(page, base, None, "/account/mfa/setup")
        browser.close()


if __name__ == "__main__":
    sys.exit(main())

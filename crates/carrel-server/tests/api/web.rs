//! The web interface: pages render with the pages' headers, every form POST
//! needs its CSRF token, the login form opens a cookie session, the account
//! page lists loans (renew) and holds (cancel), the desk checks out and
//! returns by barcode and explains refusals, and French is chosen from
//! `Accept-Language` or the language switch. Driven over HTTP like a browser
//! without JavaScript (cookies kept by hand, redirects not followed).

use std::collections::BTreeMap;

use reqwest::header::{self, HeaderMap};
use reqwest::redirect::Policy;

use crate::desk::{ADMIN, Desk, LIBRARIAN};
use crate::helpers::{PASSWORD, TestApp, backend_tests, backend_tests_with};

/// The pages' CSP, as the contract asks: nothing inline, no script at all.
const WEB_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The branch every database starts with.
const MAIN_BRANCH: &str = "00000000-0000-7000-8000-000000000001";

/// A cookie-keeping client that does not follow redirects.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
    language: Option<&'static str>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        field_value(&self.body, "csrf").expect("a form with a csrf field")
    }

    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

fn field_value(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            base: app.address.clone(),
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            language: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request.header(header::COOKIE, self.cookie_header());
        if let Some(language) = self.language {
            request = request.header(header::ACCEPT_LANGUAGE, language);
        }
        let response = request.send().await.unwrap();
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") || value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Signs in through the login form; returns the CSRF token of the session.
    async fn sign_in(&mut self, username: &str) -> String {
        let login = self.get("/login").await;
        assert_eq!(login.status, 200);
        let csrf = login.csrf();
        let done = self
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("username", username),
                    ("password", PASSWORD),
                    ("next", "/account"),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.location(), "/account");
        assert!(self.cookies.contains_key("carrel_access"));
        self.cookies["carrel_csrf"].clone()
    }
}

/// Headers every HTML page carries; no inline script or style in the body.
fn assert_page(page: &Page, what: &str) {
    assert_eq!(page.status, 200, "{what}: {}", page.body);
    let h = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(h("content-type").starts_with("text/html"), "{what}");
    assert_eq!(h("content-security-policy"), WEB_CSP, "{what}");
    assert_eq!(h("referrer-policy"), "same-origin", "{what}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(h("cache-control"), "no-store", "{what}");
    let body = page.body.to_lowercase();
    assert!(!body.contains("<script"), "{what}: a script");
    assert!(!body.contains(" style="), "{what}: an inline style");
    assert!(!body.contains("<style"), "{what}: a style element");
    assert!(
        body.contains("<main id=\"main\""),
        "{what}: the main landmark"
    );
    assert!(body.contains("href=\"#main\""), "{what}: the skip link");
    assert!(body.contains("<html lang=\""), "{what}: the language");
}

async fn pages_render_with_the_pages_headers(app: TestApp) {
    let desk = Desk::open(app).await;
    let item = desk.item("The Quiet Harbor", "book", &["WEB-1"]).await;
    let mut browser = Browser::new(&desk.app);
    for path in [
        "/".to_owned(),
        "/?q=quiet&available=true".to_owned(),
        format!("/items/{item}"),
        "/login".to_owned(),
        "/register".to_owned(),
        "/forgot-password".to_owned(),
        "/verify-email?token=abc".to_owned(),
        "/reset-password?token=abc".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert_page(&page, &path);
    }
    // The search found the item, and its page shows availability per branch.
    let search = browser.get("/?q=quiet").await;
    assert!(search.body.contains("The Quiet Harbor"), "{}", search.body);
    assert!(search.body.contains(&format!("/items/{item}")));
    let page = browser.get(&format!("/items/{item}")).await;
    assert!(
        page.body.contains("Main library"),
        "the branch is named: {}",
        page.body
    );

    // The stylesheet: hashed name, a year of immutable caching.
    let marker = "<link rel=\"stylesheet\" href=\"";
    let start = page.body.find(marker).unwrap() + marker.len();
    let href = &page.body[start..start + page.body[start..].find('"').unwrap()];
    assert!(
        href.starts_with("/static/carrel.") && href.ends_with(".css"),
        "{href}"
    );
    let css = browser.get(href).await;
    assert_eq!(css.status, 200);
    assert_eq!(
        css.headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.body.contains(":focus-visible"), "a visible focus style");
    assert_eq!(browser.get("/static/carrel.0000.css").await.status, 404);
    assert_eq!(
        browser.get("/favicon.ico").await.status,
        204,
        "no icon, no 404"
    );

    // The API keeps its own headers.
    let api = browser.get("/api/v1/items").await;
    assert_eq!(api.status, 200);
    assert_eq!(api.headers[header::REFERRER_POLICY], "no-referrer");
    assert!(
        api.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(browser.get("/health").await.status, 200);
    assert_eq!(browser.get("/api/v1/openapi.json").await.status, 200);
    // An unknown page is still the API's 404.
    assert_eq!(browser.get("/no-such-page").await.status, 404);
    // An unknown item is a 404 page.
    let missing = browser
        .get(&format!("/items/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("role=\"alert\""));
}

async fn every_post_needs_its_csrf_token(app: TestApp) {
    let desk = Desk::open(app).await;
    let patron = desk.patron("reader").await;
    desk.item("Tidewater", "book", &["CS-1"]).await;
    assert_eq!(desk.checkout("CS-1", patron.id).await.status(), 201);
    let mut browser = Browser::new(&desk.app);

    // Before sign-in: a double submit against the cookie.
    let login = browser.get("/login").await;
    let good = login.csrf();
    let creds = |csrf: &'static str| {
        vec![
            ("csrf", csrf),
            ("username", "reader"),
            ("password", PASSWORD),
        ]
    };
    let none = browser.post("/login", &creds("")[1..]).await;
    assert_eq!(none.status, 403, "no token");
    assert!(none.body.contains("role=\"alert\""));
    let wrong = browser.post("/login", &creds("not-the-token")).await;
    assert_eq!(wrong.status, 403, "a wrong token");
    assert!(!browser.cookies.contains_key("carrel_access"));
    // The right token from a foreign origin is refused too.
    let foreign = browser
        .send(
            browser
                .client
                .post(format!("{}/login", browser.base))
                .header(header::ORIGIN, "https://evil.example")
                .form(&[
                    ("csrf", good.as_str()),
                    ("username", "reader"),
                    ("password", PASSWORD),
                ]),
        )
        .await;
    assert_eq!(foreign.status, 403, "a foreign origin");
    assert!(!browser.cookies.contains_key("carrel_access"));

    // Signed in: the token bound to the session.
    let session_csrf = browser.sign_in("reader").await;
    let account = browser.get("/account").await;
    let loan_form = account
        .body
        .find("/account/loans/")
        .map(|at| &account.body[at..at + "/account/loans/".len() + 36])
        .expect("a renew form")
        .to_owned();
    let renew = format!("{loan_form}/renew");
    assert_eq!(browser.post(&renew, &[]).await.status, 403, "no token");
    assert_eq!(
        browser
            .post(&renew, &[("csrf", good.as_str())])
            .await
            .status,
        403,
        "the anonymous token is not the session's"
    );
    assert_eq!(browser.post("/logout", &[("csrf", "x")]).await.status, 403);
    assert!(
        browser.cookies.contains_key("carrel_access"),
        "still signed in"
    );
    // Nothing was renewed by the refused posts.
    assert!(desk.app.audit_events("loan.renewed").await.is_empty());
    let renewed = browser.post(&renew, &[("csrf", &session_csrf)]).await;
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    assert_eq!(desk.app.audit_events("loan.renewed").await.len(), 1);
}

async fn login_form_opens_a_session_and_the_account_lists_loans_and_holds(app: TestApp) {
    let desk = Desk::open(app).await;
    let patron = desk.patron("reader").await;
    desk.item("Salt and Stone", "book", &["AC-1"]).await;
    let wanted = desk.item("Long Shadows", "book", &["AC-2"]).await;
    assert_eq!(desk.checkout("AC-1", patron.id).await.status(), 201);
    assert_eq!(desk.checkout("AC-2", desk.librarian.id).await.status(), 201);
    let mut browser = Browser::new(&desk.app);

    // Not signed in: the account page sends to the login page.
    let away = browser.get("/account").await;
    assert_eq!(away.status, 303);
    assert_eq!(away.location(), "/login?next=%2Faccount");

    // A wrong password: the form again, with the reason, and no session.
    let login = browser.get("/login").await;
    let wrong = browser
        .post(
            "/login",
            &[
                ("csrf", &login.csrf()),
                ("username", "reader"),
                ("password", "nope"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("The username or password is wrong."));
    assert!(!browser.cookies.contains_key("carrel_access"));

    let csrf = browser.sign_in("reader").await;
    let account = browser.get("/account").await;
    assert_page(&account, "/account");
    assert!(account.body.contains("Salt and Stone"), "{}", account.body);
    assert!(account.body.contains("reader Tester"));
    assert!(
        !account.body.contains("Long Shadows"),
        "another patron's loan"
    );

    // Renew from the page.
    let at = account.body.find("/account/loans/").unwrap();
    let renew = format!(
        "{}/renew",
        &account.body[at..at + "/account/loans/".len() + 36]
    );
    let renewed = browser.post(&renew, &[("csrf", &csrf)]).await;
    assert_eq!(renewed.status, 200);
    assert!(
        renewed.body.contains("Renewed: now due"),
        "{}",
        renewed.body
    );

    assert!(account.body.contains("You owe nothing."));

    // Place a hold on an item that is out (picked up at a chosen branch), then cancel it.
    let item_page = browser.get(&format!("/items/{wanted}")).await;
    assert!(
        item_page
            .body
            .contains("<select id=\"pickup\" name=\"pickup\">")
    );
    let unknown_branch = uuid::Uuid::now_v7().to_string();
    let nowhere = browser
        .post(
            &format!("/items/{wanted}/hold"),
            &[("csrf", &csrf), ("pickup", &unknown_branch)],
        )
        .await;
    assert_eq!(nowhere.status, 404, "an unknown pickup branch");
    let placed = browser
        .post(
            &format!("/items/{wanted}/hold"),
            &[("csrf", &csrf), ("pickup", MAIN_BRANCH)],
        )
        .await;
    assert_eq!(placed.status, 200, "{}", placed.body);
    assert!(placed.body.contains("Your hold is placed."));
    let again = browser
        .post(&format!("/items/{wanted}/hold"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, 409);
    assert!(
        again.body.contains("there is already a hold"),
        "{}",
        again.body
    );
    assert_eq!(desk.app.audit_events("hold.placed").await.len(), 1);
    let account = browser.get("/account").await;
    assert!(account.body.contains("Long Shadows"));
    assert!(
        account.body.contains("Waiting (number 1 in line)"),
        "{}",
        account.body
    );
    assert!(account.body.contains("Main library"), "the pickup branch");
    let at = account.body.find("/account/holds/").unwrap();
    let cancel = format!(
        "{}/cancel",
        &account.body[at..at + "/account/holds/".len() + 36]
    );
    let cancelled = browser.post(&cancel, &[("csrf", &csrf)]).await;
    assert_eq!(cancelled.status, 200);
    assert!(cancelled.body.contains("The hold is cancelled."));
    assert_eq!(desk.app.audit_events("hold.cancelled").await.len(), 1);

    // Sign out: the session ends, the account page sends to login again.
    let out = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert!(!browser.cookies.contains_key("carrel_access"));
    assert_eq!(desk.app.audit_events("auth.logout").await.len(), 1);
    assert_eq!(browser.get("/account").await.status, 303);
}

async fn the_desk_checks_out_and_returns_by_barcode(app: TestApp) {
    let desk = Desk::open(app).await;
    desk.patron("reader").await;
    desk.item("Harbor Lights", "book", &["DK-1"]).await;
    let mut patron_browser = Browser::new(&desk.app);
    patron_browser.sign_in("reader").await;
    assert_eq!(
        patron_browser.get("/desk").await.status,
        403,
        "patrons have no desk"
    );

    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in(LIBRARIAN).await;
    let empty = browser.get("/desk").await;
    assert_page(&empty, "/desk");
    assert!(
        empty
            .body
            .contains("id=\"find\" name=\"find\" value=\"\" autocomplete=\"off\" autofocus")
    );

    // One patron matches the name: chosen, and the scan field has the focus.
    let found = browser.get("/desk?find=reader+tester").await;
    assert_page(&found, "/desk?find");
    assert!(
        found.body.contains("Check out to reader Tester"),
        "{}",
        found.body
    );
    assert!(found.body.contains(
        "id=\"checkout-barcode\" name=\"barcode\" autocomplete=\"off\" required autofocus"
    ));
    let patron = field_value(&found.body, "patron").expect("the patron's id");

    let out = browser
        .post(
            "/desk/checkout",
            &[("csrf", &csrf), ("patron", &patron), ("barcode", " DK-1 ")],
        )
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(
        out.body.contains("Checked out Harbor Lights: due"),
        "{}",
        out.body
    );
    assert!(out.body.contains("role=\"status\""));
    assert_eq!(desk.app.audit_events("loan.checked_out").await.len(), 1);

    // A second checkout of the same copy is refused, and said so.
    let refused = browser
        .post(
            "/desk/checkout",
            &[("csrf", &csrf), ("patron", &patron), ("barcode", "DK-1")],
        )
        .await;
    assert_eq!(refused.status, 409);
    let alert = refused
        .body
        .find("role=\"alert\"")
        .expect("an alert region");
    assert!(
        refused.body[alert..].contains("Refused: this copy is not available"),
        "{}",
        refused.body
    );
    assert_eq!(desk.app.audit_events("loan.checked_out").await.len(), 1);

    let back = browser
        .post("/desk/return", &[("csrf", &csrf), ("barcode", "DK-1")])
        .await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert!(
        back.body.contains("Returned Harbor Lights."),
        "{}",
        back.body
    );
    assert!(back.body.contains(
        "id=\"return-barcode\" name=\"barcode\" autocomplete=\"off\" required autofocus"
    ));
    assert_eq!(desk.app.audit_events("loan.returned").await.len(), 1);
    let twice = browser
        .post("/desk/return", &[("csrf", &csrf), ("barcode", "DK-1")])
        .await;
    assert_eq!(twice.status, 409);
    assert!(twice.body.contains("Refused: this copy is not on loan."));
    let unknown = browser
        .post("/desk/return", &[("csrf", &csrf), ("barcode", "NO-SUCH")])
        .await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("role=\"alert\""));

    // A late return charges a fine: the desk says so, the patron's account lists it.
    let out = browser
        .post(
            "/desk/checkout",
            &[("csrf", &csrf), ("patron", &patron), ("barcode", "DK-1")],
        )
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    desk.app.clock.advance(time::Duration::days(60));
    // Sixty days on, the access cookie has expired: the desk asks to sign in again.
    let expired = browser
        .post("/desk/return", &[("csrf", &csrf), ("barcode", "DK-1")])
        .await;
    assert_eq!(expired.status, 303);
    assert!(expired.location().starts_with("/login?next="));
    let csrf = browser.sign_in(LIBRARIAN).await;
    let late = browser
        .post("/desk/return", &[("csrf", &csrf), ("barcode", "DK-1")])
        .await;
    assert_eq!(late.status, 200, "{}", late.body);
    assert!(late.body.contains("An overdue fine of"), "{}", late.body);
    let mut patron_browser = Browser::new(&desk.app);
    patron_browser.sign_in("reader").await;
    let account = patron_browser.get("/account").await;
    assert!(account.body.contains("Returned late"), "{}", account.body);
    assert!(account.body.contains("Total owed: "), "{}", account.body);
}

async fn french_from_accept_language_and_the_switch(app: TestApp) {
    let desk = Desk::open(app).await;
    desk.item("Le Port", "book", &["FR-1"]).await;
    let mut browser = Browser::new(&desk.app);
    browser.language = Some("fr-CA,fr;q=0.9,en;q=0.5");
    let page = browser.get("/").await;
    assert_page(&page, "/ in French");
    assert!(page.body.contains("<html lang=\"fr\""));
    assert!(page.body.contains("Rechercher dans le catalogue"));
    assert!(
        page.body.contains("1 disponible(s) · 1 exemplaire"),
        "{}",
        page.body
    );
    let login = browser.get("/login").await;
    assert!(login.body.contains("Mot de passe"));

    // The switch wins over the header, and comes back to the page.
    let csrf = page.csrf();
    let switched = browser
        .post(
            "/language",
            &[("csrf", &csrf), ("lang", "en"), ("next", "/login")],
        )
        .await;
    assert_eq!(switched.status, 303);
    assert_eq!(switched.location(), "/login");
    assert_eq!(
        browser.cookies.get("carrel_lang").map(String::as_str),
        Some("en")
    );
    let english = browser.get("/").await;
    assert!(english.body.contains("<html lang=\"en\""));
    assert!(english.body.contains("Search the catalog"));
    // `next` never leaves the site.
    let away = browser
        .post(
            "/language",
            &[("csrf", &csrf), ("lang", "fr"), ("next", "//evil.example/")],
        )
        .await;
    assert_eq!(away.location(), "/");
}

async fn login_with_the_mfa_step(app: TestApp) {
    app.create_user("guarded", carrel_core::roles::Role::Patron)
        .await;
    let token = app.access_token("guarded").await;
    let (secret, recovery_codes) = crate::mfa::enrol(&app, &token).await;
    // The enrolment used this step's code; sign in with the next one.
    app.clock.advance(time::Duration::seconds(31));

    let mut browser = Browser::new(&app);
    let login = browser.get("/login").await;
    let csrf = login.csrf();
    let step = browser
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", "guarded"),
                ("password", PASSWORD),
                ("next", "/account"),
            ],
        )
        .await;
    assert_page(&step, "the MFA step");
    assert!(step.body.contains("Two-step verification"));
    assert!(
        !browser.cookies.contains_key("carrel_access"),
        "no session yet"
    );
    let mfa_token = field_value(&step.body, "mfa_token").expect("the challenge");

    let wrong = browser
        .post(
            "/login/mfa",
            &[
                ("csrf", &csrf),
                ("mfa_token", &mfa_token),
                ("code", "000000"),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("role=\"alert\""));
    assert_eq!(
        field_value(&wrong.body, "mfa_token").as_deref(),
        Some(mfa_token.as_str())
    );
    assert!(!browser.cookies.contains_key("carrel_access"));

    let code = crate::mfa::code(&secret, &app, 0);
    let done = browser
        .post(
            "/login/mfa",
            &[
                ("csrf", &csrf),
                ("mfa_token", &mfa_token),
                ("code", &code),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/account");
    assert!(browser.cookies.contains_key("carrel_access"));
    assert_eq!(browser.get("/account").await.status, 200);

    // A recovery code works too.
    let mut other = Browser::new(&app);
    let csrf = other.get("/login").await.csrf();
    let step = other
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", "guarded"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let mfa_token = field_value(&step.body, "mfa_token").expect("the challenge");
    let done = other
        .post(
            "/login/mfa",
            &[
                ("csrf", &csrf),
                ("mfa_token", &mfa_token),
                ("code", &recovery_codes[0]),
                ("recovery", "true"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(other.cookies.contains_key("carrel_access"));
}

/// `/account/sessions/{uuid}/revoke` forms on a page, in order.
fn revoke_paths(body: &str) -> Vec<String> {
    let marker = "action=\"/account/sessions/";
    body.match_indices(marker)
        .map(|(at, _)| {
            let start = at + "action=\"".len();
            body[start..start + "/account/sessions/".len() + 36].to_owned() + "/revoke"
        })
        .collect()
}

/// The text between `<title>` and `</title>`.
fn title(body: &str) -> &str {
    let start = body.find("<title>").unwrap() + "<title>".len();
    &body[start..start + body[start..].find("</title>").unwrap()]
}

async fn the_account_page_manages_devices_pin_history_and_export(app: TestApp) {
    let desk = Desk::open(app).await;
    let patron = desk.patron("reader").await;
    desk.charge(patron.id, 250).await;
    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in("reader").await;
    let mut laptop = Browser::new(&desk.app);
    laptop.sign_in("reader").await;

    let account = browser.get("/account").await;
    assert_page(&account, "/account");
    // The fines are on the page, not in its title.
    assert!(
        !title(&account.body).contains('<'),
        "{}",
        title(&account.body)
    );
    let main = &account.body[account.body.find("<main").unwrap()..];
    assert!(main.contains("id=\"fines-heading\""), "{main}");
    assert!(main.contains("2.50"), "the fine's amount: {main}");
    // Both devices listed; only the other one can be signed out from here.
    assert!(main.contains("Signed-in devices"));
    assert!(main.contains("(This device)"));
    let revoke = revoke_paths(&account.body);
    assert_eq!(revoke.len(), 1, "{main}");

    // Someone else's session, an unknown one, a bad id: 404, nothing revoked.
    desk.app
        .create_user("other", carrel_core::roles::Role::Patron)
        .await;
    let other = desk.app.access_token("other").await;
    let listed: serde_json::Value = desk
        .app
        .authed(reqwest::Method::GET, "/api/v1/auth/sessions", &other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other_session = listed["data"][0]["id"].as_str().unwrap().to_owned();
    for id in [
        other_session.as_str(),
        &uuid::Uuid::now_v7().to_string(),
        "x",
    ] {
        let refused = browser
            .post(
                &format!("/account/sessions/{id}/revoke"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(refused.status, 404, "{id}: {}", refused.body);
    }
    let still = desk
        .app
        .authed(reqwest::Method::GET, "/api/v1/users/me", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200, "the other user's session lives");
    assert!(
        desk.app
            .audit_events("auth.session_revoked")
            .await
            .is_empty()
    );
    // Without the token: refused, the laptop stays signed in.
    assert_eq!(browser.post(&revoke[0], &[]).await.status, 403);
    assert_eq!(laptop.get("/account").await.status, 200);

    let done = browser.post(&revoke[0], &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("That device is signed out."));
    assert!(revoke_paths(&done.body).is_empty());
    assert_eq!(
        laptop.get("/account").await.status,
        303,
        "the laptop is signed out"
    );
    assert_eq!(desk.app.audit_events("auth.session_revoked").await.len(), 1);

    // The PIN: the password is checked, the PIN's shape too, then it is set.
    let wrong = browser
        .post(
            "/account/pin",
            &[("csrf", &csrf), ("pin", "4821"), ("password", "not-it")],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("role=\"alert\"><p>"));
    let short = browser
        .post(
            "/account/pin",
            &[("csrf", &csrf), ("pin", "12"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(short.status, 422, "{}", short.body);
    assert!(desk.app.audit_events("user.pin_changed").await.is_empty());
    let set = browser
        .post(
            "/account/pin",
            &[("csrf", &csrf), ("pin", "4821"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert!(set.body.contains("Your PIN is set."));
    assert_eq!(desk.app.audit_events("user.pin_changed").await.len(), 1);

    // The loan-history choice, as GET /users/me sees it.
    let token = desk.app.access_token("reader").await;
    let me = |token: String| {
        let request = desk
            .app
            .authed(reqwest::Method::GET, "/api/v1/users/me", &token);
        async move {
            request
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()["keep_loan_history"]
                .clone()
        }
    };
    assert_eq!(me(token.clone()).await, false);
    let on = browser
        .post("/account/history", &[("csrf", &csrf), ("keep", "true")])
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert!(
        on.body
            .contains("id=\"keep\" name=\"keep\" value=\"true\" checked")
    );
    assert_eq!(me(token.clone()).await, true);
    let off = browser.post("/account/history", &[("csrf", &csrf)]).await;
    assert_eq!(off.status, 200);
    assert!(!off.body.contains("value=\"true\" checked"));
    assert_eq!(me(token).await, false);

    // The export: a JSON download of the caller's own data, no secrets.
    let export = browser.get("/account/export").await;
    assert_eq!(export.status, 200);
    assert_eq!(
        export.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"carrel-export.json\""
    );
    assert_eq!(export.headers[header::CACHE_CONTROL], "no-store");
    let document: serde_json::Value = serde_json::from_str(&export.body).unwrap();
    assert_eq!(document["profile"]["username"], "reader");
    assert_eq!(document["fines"].as_array().unwrap().len(), 1);
    assert!(!export.body.contains("hash"), "no hash of anything");
    let mut stranger = Browser::new(&desk.app);
    let away = stranger.get("/account/export").await;
    assert_eq!(away.status, 303);
    assert_eq!(away.location(), "/login?next=%2Faccount%2Fexport");
}

/// The key shown under the QR code.
fn shown_key(body: &str) -> String {
    let marker = "Key: <code>";
    let start = body.find(marker).expect("the key") + marker.len();
    body[start..start + body[start..].find('<').unwrap()].to_owned()
}

async fn two_step_verification_is_set_up_and_turned_off_on_the_account_page(app: TestApp) {
    app.create_user("guarded", carrel_core::roles::Role::Patron)
        .await;
    let mut browser = Browser::new(&app);
    let csrf = browser.sign_in("guarded").await;
    let settings = browser.get("/account/mfa").await;
    assert_page(&settings, "/account/mfa");
    assert!(settings.body.contains("action=\"/account/mfa/setup\""));
    assert_eq!(browser.post("/account/mfa/setup", &[]).await.status, 403);

    let setup = browser.post("/account/mfa/setup", &[("csrf", &csrf)]).await;
    assert_page(&setup, "the enrolment page");
    assert!(
        setup
            .body
            .contains("<svg xmlns=\"http://www.w3.org/2000/svg\"")
    );
    assert!(
        setup.body.contains("role=\"img\""),
        "the QR code is labelled"
    );
    let key = shown_key(&setup.body);
    let wrong = browser
        .post(
            "/account/mfa/confirm",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(app.audit_events("auth.mfa_enabled").await.is_empty());
    let code = crate::mfa::code(&key, &app, 0);
    let confirmed = browser
        .post("/account/mfa/confirm", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let codes = confirmed.body.matches("<li><code>").count();
    assert!(codes >= 8, "the recovery codes, once: {}", confirmed.body);
    assert_eq!(app.audit_events("auth.mfa_enabled").await.len(), 1);
    assert_eq!(
        app.tokens("guarded", PASSWORD).await["mfa_required"],
        true,
        "signing in now asks for a code"
    );
    let page = browser.get("/account/mfa").await;
    assert!(page.body.contains("action=\"/account/mfa/disable\""));
    assert_eq!(
        page.body.matches("<li><code>").count(),
        0,
        "shown only once"
    );

    // Off again: the password and a fresh code.
    app.clock.advance(time::Duration::seconds(31));
    let code = crate::mfa::code(&key, &app, 0);
    let refused = browser
        .post(
            "/account/mfa/disable",
            &[("csrf", &csrf), ("password", "not-it"), ("code", &code)],
        )
        .await;
    assert_eq!(refused.status, 401);
    let off = browser
        .post(
            "/account/mfa/disable",
            &[("csrf", &csrf), ("password", PASSWORD), ("code", &code)],
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert!(off.body.contains("action=\"/account/mfa/setup\""));
    assert_eq!(app.audit_events("auth.mfa_disabled").await.len(), 1);
}

/// A role that must use two-step verification is sent to set it up, and
/// reaches the desk once it has.
async fn required_enrolment_happens_on_the_web(app: TestApp) {
    app.create_user("desk", carrel_core::roles::Role::Librarian)
        .await;
    let mut browser = Browser::new(&app);
    let csrf = browser.sign_in("desk").await;
    let sent = browser.get("/account").await;
    assert_eq!(sent.status, 303);
    assert_eq!(sent.location(), "/account/mfa");
    let desk = browser.get("/desk").await;
    assert_eq!(desk.location(), "/account/mfa", "the desk waits too");
    let setup = browser.post("/account/mfa/setup", &[("csrf", &csrf)]).await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    let code = crate::mfa::code(&shown_key(&setup.body), &app, 0);
    let confirmed = browser
        .post("/account/mfa/confirm", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    // The same session is complete once enrolled.
    let again = browser.get("/desk").await;
    assert_page(&again, "/desk after enrolment");
}

/// The rows of the table under the heading `id`, as text.
fn section<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id}: {body}"));
    let end = body[start..].find("</section>").unwrap() + start;
    &body[start..end]
}

async fn the_desk_works_at_a_branch_with_its_hold_shelf_and_transits(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    desk.patron("bob").await;
    let admin = desk.app.access_token(crate::desk::ADMIN).await;
    let east: serde_json::Value = desk
        .app
        .authed(reqwest::Method::POST, "/api/v1/branches", &admin)
        .json(&serde_json::json!({"code": "EAST", "name": "East branch"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let east = east["id"].as_str().unwrap().to_owned();
    let item = desk.item("Persuasion", "book", &["TR-1"]).await;
    desk.lend("TR-1", ann.id).await;
    // Bob will collect at East.
    let held = desk
        .as_user("bob", reqwest::Method::POST, "/api/v1/holds")
        .await
        .json(&serde_json::json!({"item_id": item, "pickup_branch_id": east}))
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 201);

    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in(LIBRARIAN).await;
    let main = browser.get("/desk").await;
    assert_page(&main, "/desk at the main library");
    assert!(
        main.body
            .contains(&format!("<option value=\"{MAIN_BRANCH}\" selected>"))
    );
    assert!(section(&main.body, "shelf-heading").contains("Nothing is waiting"));
    assert!(section(&main.body, "transit-heading").contains("Nothing is in transit"));

    // Returned at the main library: it travels to East for Bob.
    let back = browser
        .post("/desk/return", &[("csrf", &csrf), ("barcode", "TR-1")])
        .await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert!(back.body.contains("in transit"), "{}", back.body);
    assert!(
        section(&back.body, "transit-heading").contains("Nothing is in transit"),
        "not to here"
    );

    // A patron cannot choose a desk; an unknown branch is refused.
    let mut patron = Browser::new(&desk.app);
    let patron_csrf = patron.sign_in("ann").await;
    let refused = patron
        .post("/desk/branch", &[("csrf", &patron_csrf), ("branch", &east)])
        .await;
    assert_eq!(refused.status, 403);
    let unknown = uuid::Uuid::now_v7().to_string();
    let refused = browser
        .post("/desk/branch", &[("csrf", &csrf), ("branch", &unknown)])
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(
        browser
            .post("/desk/branch", &[("branch", &east)])
            .await
            .status,
        403
    );
    // A remembered branch that names none (the cookie is the browser's):
    // the desk works at the main library.
    browser
        .cookies
        .insert("carrel_desk_branch".to_owned(), unknown.clone());
    let fallback = browser.get("/desk").await;
    assert_page(&fallback, "/desk with a stale branch cookie");
    assert!(
        fallback
            .body
            .contains(&format!("<option value=\"{MAIN_BRANCH}\" selected>"))
    );

    // At East: the copy is on its way here; receiving it fills Bob's hold.
    let moved = browser
        .post("/desk/branch", &[("csrf", &csrf), ("branch", &east)])
        .await;
    assert_eq!(moved.status, 303);
    assert_eq!(moved.location(), "/desk");
    let at_east = browser.get("/desk").await;
    assert!(
        at_east
            .body
            .contains(&format!("<option value=\"{east}\" selected>"))
    );
    let transits = section(&at_east.body, "transit-heading");
    assert!(
        transits.contains("On their way to East branch"),
        "{transits}"
    );
    assert!(
        transits.contains("TR-1") && transits.contains("Main library"),
        "{transits}"
    );
    let copy = field_value(transits, "copy").expect("a receive form");
    let received = browser
        .post("/desk/receive", &[("csrf", &csrf), ("copy", &copy)])
        .await;
    assert_eq!(received.status, 200, "{}", received.body);
    assert!(
        received.body.contains("Received TR-1 from transit."),
        "{}",
        received.body
    );
    assert!(received.body.contains("hold shelf"));
    let shelf = section(&received.body, "shelf-heading");
    assert!(shelf.contains("Hold shelf at East branch"), "{shelf}");
    assert!(
        shelf.contains("Persuasion") && shelf.contains("bob"),
        "{shelf}"
    );
    assert!(section(&received.body, "transit-heading").contains("Nothing is in transit"));
    assert_eq!(desk.copy_status(item, "TR-1").await, "on_hold_shelf");
    assert_eq!(desk.app.audit_events("copy.received").await.len(), 1);
    // Received twice: refused, explained.
    let again = browser
        .post("/desk/receive", &[("csrf", &csrf), ("copy", &copy)])
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("not in transit"), "{}", again.body);
}

/// The value of field `name` in the first form whose action is `action`.
fn form_field(body: &str, action: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("action=\"{action}\""))?;
    let end = body[start..].find("</form>")? + start;
    field_value(&body[start..end], name)
}

async fn the_desk_takes_payments_and_waives_fines(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let fine = desk.charge(ann.id, 500).await;
    let fine_id = fine["id"].as_str().unwrap().to_owned();
    let pay = format!("/desk/fines/{fine_id}/pay");
    let waive = format!("/desk/fines/{fine_id}/waive");
    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in(LIBRARIAN).await;
    let panel = browser.get(&format!("/desk?patron={}", ann.id)).await;
    assert_page(&panel, "/desk with a patron's fines");
    assert!(panel.body.contains("Fines of this patron"));
    assert_eq!(
        form_field(&panel.body, &pay, "amount").as_deref(),
        Some("5.00")
    );
    let key = form_field(&panel.body, &pay, "key").expect("the form's idempotency key");
    let patron = ann.id.to_string();
    let form = |amount: &'static str, key: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("patron", patron.clone()),
            ("amount", amount.to_owned()),
            ("method", "cash".to_owned()),
            ("key", key.to_owned()),
        ]
    };
    let send = |fields: Vec<(&'static str, String)>| {
        fields
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect::<Vec<(&str, String)>>()
    };

    // Bad amounts and too much: refused, explained, nothing recorded.
    for (amount, status) in [("abc", 422), ("0", 422), ("2.505", 422), ("6.00", 409)] {
        let fields = send(form(amount, &key));
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = browser.post(&pay, &pairs).await;
        assert_eq!(refused.status, status, "{amount}: {}", refused.body);
        assert!(
            refused.body.contains("role=\"alert\"><p>Refused:"),
            "{amount}"
        );
    }
    assert!(desk.app.audit_events("fine.paid").await.is_empty());

    // €1.50 in cash; the same form sent twice records one payment.
    for _ in 0..2 {
        let fields = send(form("1,50", &key));
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let paid = browser.post(&pay, &pairs).await;
        assert_eq!(paid.status, 200, "{}", paid.body);
        assert!(
            paid.body.contains("Payment of $1.50 recorded."),
            "{}",
            paid.body
        );
    }
    assert_eq!(desk.app.audit_events("fine.paid").await.len(), 1);
    let detail: serde_json::Value = desk
        .staff(reqwest::Method::GET, &format!("/api/v1/fines/{fine_id}"))
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["paid_cents"], 150, "{detail}");
    assert_eq!(detail["payments"][0]["method"], "cash");

    // A waiver needs a reason; without an amount it waives the rest.
    let no_reason = browser
        .post(
            &waive,
            &[
                ("csrf", &csrf),
                ("patron", &patron),
                ("amount", ""),
                ("reason", " "),
            ],
        )
        .await;
    assert_eq!(no_reason.status, 422, "{}", no_reason.body);
    let waived = browser
        .post(
            &waive,
            &[
                ("csrf", &csrf),
                ("patron", &patron),
                ("amount", "1"),
                ("reason", "goodwill"),
            ],
        )
        .await;
    assert_eq!(waived.status, 200, "{}", waived.body);
    assert!(waived.body.contains("$2.50 still owed"), "{}", waived.body);
    let rest = browser
        .post(
            &waive,
            &[
                ("csrf", &csrf),
                ("patron", &patron),
                ("amount", ""),
                ("reason", "closing the account"),
            ],
        )
        .await;
    assert_eq!(rest.status, 200, "{}", rest.body);
    assert!(rest.body.contains("$0.00 still owed"), "{}", rest.body);
    assert!(section(&rest.body, "fines-heading").contains("You owe nothing."));
    assert_eq!(desk.app.audit_events("fine.waived").await.len(), 2);
    // Settled: another payment is refused.
    let fields = send(form("1", "another-key"));
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let settled = browser.post(&pay, &pairs).await;
    assert_eq!(settled.status, 409);
    assert!(
        settled.body.contains("already paid or waived"),
        "{}",
        settled.body
    );

    // Staff never settle their own fines; a patron has no desk.
    let own = desk.charge(desk.librarian.id, 300).await;
    let own_pay = format!("/desk/fines/{}/pay", own["id"].as_str().unwrap());
    let mut fields = send(form("3", "own-key"));
    fields[1].1 = desk.librarian.id.to_string();
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = browser.post(&own_pay, &pairs).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("their own fines"), "{}", refused.body);
    let mut patron_browser = Browser::new(&desk.app);
    let patron_csrf = patron_browser.sign_in("ann").await;
    let refused = patron_browser
        .post(
            &waive,
            &[
                ("csrf", &patron_csrf),
                ("patron", &patron),
                ("reason", "me"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(desk.app.audit_events("fine.waived").await.len(), 2);
}

/// The rule matrix as the API shows it.
async fn api_matrix(desk: &Desk) -> serde_json::Value {
    desk.get_json(LIBRARIAN, "/api/v1/circulation-rules").await["data"].clone()
}

/// `/admin` is for administrators: signed out → the sign-in page, a patron or
/// a librarian → 403 on every page and every form (nothing changes), and
/// every admin form needs the session's CSRF token.
async fn admin_pages_are_for_administrators_only(app: TestApp) {
    let desk = Desk::open(app).await;
    let reader = desk.patron("reader").await;
    let pages = [
        "/admin",
        "/admin/rules",
        "/admin/rules/edit",
        "/admin/users",
        "/admin/types",
    ];
    let mut anonymous = Browser::new(&desk.app);
    let away = anonymous.get("/admin/rules").await;
    assert_eq!(away.status, 303);
    assert_eq!(away.location(), "/login?next=%2Fadmin%2Frules");

    let before = api_matrix(&desk).await;
    let default_row = [
        ("r1.loan_days", "1"),
        ("r1.max_renewals", "0"),
        ("r1.daily_fine", "0"),
        ("r1.max_fine", "0"),
        ("r1.grace_days", "0"),
        ("r1.replacement", "0"),
    ];
    for username in ["reader", LIBRARIAN] {
        let mut browser = Browser::new(&desk.app);
        let csrf = browser.sign_in(username).await;
        for path in pages {
            let page = browser.get(path).await;
            assert_eq!(page.status, 403, "{username} {path}");
            assert!(page.body.contains("role=\"alert\""));
        }
        let home = browser.get("/account").await;
        assert!(!home.body.contains("href=\"/admin\""), "no admin link");
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(default_row);
        let refused = browser.post("/admin/rules/edit", &form).await;
        assert_eq!(refused.status, 403, "{username} edits the matrix");
        let role = format!("/admin/users/{}/role", reader.id);
        let refused = browser
            .post(&role, &[("csrf", &csrf), ("role", "admin")])
            .await;
        assert_eq!(refused.status, 403, "{username} changes a role");
        let refused = browser
            .post(
                "/admin/item-types",
                &[("csrf", &csrf), ("code", "zine"), ("name", "Zine")],
            )
            .await;
        assert_eq!(refused.status, 403, "{username} defines a type");
    }
    assert_eq!(api_matrix(&desk).await, before, "the matrix is unchanged");
    assert!(desk.app.audit_events("user.role_changed").await.is_empty());
    assert!(desk.app.audit_events("item_type.created").await.is_empty());

    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in(ADMIN).await;
    for path in pages {
        let page = browser.get(path).await;
        assert_page(&page, path);
        assert!(
            page.body.contains("href=\"/admin\""),
            "{path}: the admin link"
        );
    }
    // Without the token, or with another one, nothing changes.
    let mut form: Vec<(&str, &str)> = default_row.to_vec();
    assert_eq!(browser.post("/admin/rules/edit", &form).await.status, 403);
    form.push(("csrf", "not-the-token"));
    assert_eq!(browser.post("/admin/rules/edit", &form).await.status, 403);
    assert_eq!(
        browser
            .post("/admin/item-types", &[("code", "zine"), ("name", "Zine")])
            .await
            .status,
        403
    );
    assert_eq!(api_matrix(&desk).await, before, "the matrix is unchanged");
    assert!(desk.app.audit_events("rules.replaced").await.is_empty());
    // With it, the change is made.
    form.pop();
    form.push(("csrf", &csrf));
    let saved = browser.post("/admin/rules/edit", &form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(api_matrix(&desk).await.as_array().unwrap().len(), 1);
}

/// The matrix form replaces the whole matrix as `PUT
/// /api/v1/circulation-rules` does (same checks, same audit entry); a bad
/// matrix is refused with its problems named by row and nothing changes; the
/// simulator shows what the API's simulation says.
async fn the_rule_matrix_is_edited_and_simulated_on_the_web(app: TestApp) {
    let desk = Desk::open(app).await;
    let reader = desk.patron("reader").await;
    let card = desk
        .staff(
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{}", reader.id),
        )
        .await
        .json(&serde_json::json!({"card_number": "C-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(card.status(), 200);
    desk.item("Night Train", "dvd", &["SIM-1"]).await;
    desk.item("Open Sea", "book", &["SIM-2"]).await;
    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in(ADMIN).await;

    // The form shows the matrix as it is: one row per rule, then new rows.
    let before = api_matrix(&desk).await;
    let edit = browser.get("/admin/rules/edit").await;
    assert_page(&edit, "/admin/rules/edit");
    let rows = before.as_array().unwrap().len();
    assert!(
        edit.body
            .contains(&format!("name=\"r{}.loan_days\"", rows + 3))
    );
    assert!(
        !edit
            .body
            .contains(&format!("name=\"r{}.loan_days\"", rows + 4))
    );
    assert!(
        edit.body
            .contains("aria-labelledby=\"row-1 col-loan_days\"")
    );

    // A default row and a DVD row in the main library.
    let matrix = [
        ("csrf", csrf.as_str()),
        ("r1.branch", ""),
        ("r1.category", ""),
        ("r1.item_type", ""),
        ("r1.loan_days", "10"),
        ("r1.max_renewals", "2"),
        ("r1.daily_fine", "20"),
        ("r1.max_fine", "500"),
        ("r1.grace_days", "1"),
        ("r1.replacement", "2000"),
        ("r1.max_of_type", ""),
        ("r1.holds", "on"),
        ("r2.branch", MAIN_BRANCH),
        ("r2.category", ""),
        ("r2.item_type", "dvd"),
        ("r2.loan_days", "3"),
        ("r2.max_renewals", "0"),
        ("r2.daily_fine", "100"),
        ("r2.max_fine", "1500"),
        ("r2.grace_days", "0"),
        ("r2.replacement", "2500"),
        ("r2.max_of_type", "2"),
        // An empty new row adds nothing; a removed row is dropped.
        ("r3.branch", ""),
        ("r3.loan_days", ""),
        ("r4.item_type", "book"),
        ("r4.loan_days", "99"),
        ("r4.max_renewals", "0"),
        ("r4.daily_fine", "0"),
        ("r4.max_fine", "0"),
        ("r4.grace_days", "0"),
        ("r4.replacement", "0"),
        ("r4.remove", "on"),
    ];
    let saved = browser.post("/admin/rules/edit", &matrix).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), "/admin/rules?saved=1");
    let after = api_matrix(&desk).await;
    assert_eq!(
        after,
        serde_json::json!([
            {"branch_id": MAIN_BRANCH, "patron_category": null, "item_type": "dvd", "loan_days": 3,
             "max_renewals": 0, "daily_fine_cents": 100, "max_fine_cents": 1500, "grace_days": 0,
             "replacement_cost_cents": 2500, "max_loans_of_type": 2, "holds_allowed": false},
            {"branch_id": null, "patron_category": null, "item_type": null, "loan_days": 10,
             "max_renewals": 2, "daily_fine_cents": 20, "max_fine_cents": 500, "grace_days": 1,
             "replacement_cost_cents": 2000, "max_loans_of_type": null, "holds_allowed": true},
        ])
    );
    let replaced = desk.app.audit_events("rules.replaced").await;
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0].details.0["rows"], 2);
    let view = browser.get("/admin/rules?saved=1").await;
    assert_page(&view, "/admin/rules");
    assert!(view.body.contains("The rules are saved."));
    assert!(view.body.contains("Branch and type"), "the DVD row's level");
    assert!(view.body.contains("15.00<"), "money in the page's format");

    // No default row: refused, explained, nothing changed.
    let no_default: Vec<(&str, &str)> = matrix
        .iter()
        .copied()
        .filter(|(k, _)| !k.starts_with("r1."))
        .collect();
    let refused = browser.post("/admin/rules/edit", &no_default).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("Nothing was changed."),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("The matrix needs a default row"));
    // The form comes back as sent, to be corrected.
    assert!(refused.body.contains("name=\"r1.loan_days\" value=\"3\""));
    // Values out of range, text where a number goes, two rows with one key.
    let mut bad: Vec<(&str, &str)> = matrix
        .iter()
        .copied()
        .map(|(k, v)| match k {
            "r1.loan_days" => (k, "400"),
            "r2.daily_fine" => (k, "lots"),
            _ => (k, v),
        })
        .collect();
    let refused = browser.post("/admin/rules/edit", &bad).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .body
            .contains("Row 2: Daily fine (cents): a whole number of cents"),
        "{}",
        refused.body
    );
    bad.retain(|(k, _)| !k.starts_with("r2."));
    bad.extend([
        ("r2.loan_days", "5"),
        ("r2.max_renewals", "0"),
        ("r2.daily_fine", "0"),
        ("r2.max_fine", "0"),
        ("r2.grace_days", "0"),
        ("r2.replacement", "0"),
    ]);
    let refused = browser.post("/admin/rules/edit", &bad).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .body
            .contains("Row 1: Loan days: a whole number from 1 to 365."),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("Row 2: another row has the same branch, category and type.")
    );
    assert_eq!(api_matrix(&desk).await, after, "nothing changed");
    assert_eq!(desk.app.audit_events("rules.replaced").await.len(), 1);

    // The simulator agrees with the API's simulation: due date and refusals.
    let api_simulation = |barcode: &'static str| {
        let desk = &desk;
        async move {
            let response = desk
                .staff(reqwest::Method::POST, "/api/v1/circulation-rules/simulate")
                .await
                .json(&serde_json::json!({"card_number": "C-7", "copy_barcode": barcode}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    for (barcode, level, days) in [
        ("SIM-1", "Branch and type", "3"),
        ("SIM-2", "Default", "10"),
    ] {
        let api = api_simulation(barcode).await;
        assert_eq!(api["refusals"], serde_json::json!([]));
        let page = browser
            .get(&format!("/admin/rules?card=c-7&barcode={barcode}"))
            .await;
        assert_page(&page, "the simulator");
        let result = section(&page.body, "simulate-heading");
        let due = api["due_date"].as_str().unwrap();
        assert!(
            result.contains(&format!("<time datetime=\"{due}\">")),
            "{result}"
        );
        assert!(result.contains(&format!("<dd>{level}</dd>")), "{result}");
        assert!(result.contains(&format!("<dd>{days}</dd>")), "{result}");
        assert!(result.contains("The checkout would be allowed."));
    }
    desk.charge(reader.id, 1_000).await;
    let api = api_simulation("SIM-1").await;
    assert_eq!(api["refusals"], serde_json::json!(["PATRON_BLOCKED"]));
    let page = browser.get("/admin/rules?card=C-7&barcode=SIM-1").await;
    let result = section(&page.body, "simulate-heading");
    assert!(
        result.contains("<li>the patron owes too much in fines.</li>"),
        "{result}"
    );
    assert!(result.contains(&format!(
        "<time datetime=\"{}\">",
        api["due_date"].as_str().unwrap()
    )));
    // Nothing was lent.
    assert!(desk.app.audit_events("loan.created").await.is_empty());
    // An unknown card or barcode is explained.
    let unknown = browser.get("/admin/rules?card=NOPE&barcode=SIM-1").await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown
            .body
            .contains("No patron has this card number or name.")
    );
    let unknown = browser.get("/admin/rules?card=C-7&barcode=NOPE").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("no copy has this barcode."));

    // In French.
    browser.language = Some("fr");
    let french = browser.get("/admin/rules?card=C-7&barcode=SIM-1").await;
    assert_page(&french, "/admin/rules in French");
    assert!(french.body.contains("Bibliothèque et type"));
    assert!(
        french.body.contains("le lecteur doit trop d&#39;amendes."),
        "{}",
        french.body
    );
    let refused = browser.post("/admin/rules/edit", &no_default).await;
    assert!(
        refused
            .body
            .contains("La matrice doit avoir une ligne par défaut")
    );
}

/// Roles change through the API's own use case: the same refusals (never
/// one's own role or account) and the same audit entry.
async fn roles_change_on_the_web_as_through_the_api(app: TestApp) {
    let desk = Desk::open(app).await;
    let reader = desk.patron("reader").await;
    let other = desk.patron("other").await;
    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in(ADMIN).await;
    let admin_id = desk.get_json(ADMIN, "/api/v1/users/me").await["id"].clone();

    let found = browser.get("/admin/users?q=reader").await;
    assert_page(&found, "/admin/users?q=reader");
    assert!(
        found
            .body
            .contains(&format!("/admin/users/{}/role", reader.id))
    );
    assert!(
        !found
            .body
            .contains(&format!("/admin/users/{}/role", other.id))
    );

    let changed = browser
        .post(
            &format!("/admin/users/{}/role", reader.id),
            &[("csrf", &csrf), ("role", "librarian"), ("q", "reader")],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(
        changed.body.contains("reader is now: Librarian."),
        "{}",
        changed.body
    );
    let user = desk
        .get_json(LIBRARIAN, &format!("/api/v1/users/{}", reader.id))
        .await;
    assert_eq!(user["role"], "librarian");
    // The same change through the API, for comparison.
    let api = desk
        .as_user(
            ADMIN,
            reqwest::Method::PATCH,
            &format!("/api/v1/users/{}", other.id),
        )
        .await
        .json(&serde_json::json!({"role": "librarian"}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let events = desk.app.audit_events("user.role_changed").await;
    assert_eq!(events.len(), 2);
    let web_event = events
        .iter()
        .find(|e| e.subject_id == Some(reader.id))
        .unwrap();
    let api_event = events
        .iter()
        .find(|e| e.subject_id == Some(other.id))
        .unwrap();
    assert_eq!(web_event.details, api_event.details);
    assert_eq!(
        web_event.details.0,
        serde_json::json!({"from": "patron", "to": "librarian"})
    );
    assert_eq!(web_event.actor_id, api_event.actor_id);
    assert_eq!(serde_json::json!(web_event.actor_id), admin_id);

    // Not one's own role, not one's own account: refused and explained.
    let me = admin_id.as_str().unwrap();
    let refused = browser
        .post(
            &format!("/admin/users/{me}/role"),
            &[("csrf", &csrf), ("role", "patron")],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("you cannot change your own role"),
        "{}",
        refused.body
    );
    let refused = browser
        .post(
            &format!("/admin/users/{me}/active"),
            &[("csrf", &csrf), ("active", "false")],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(desk.app.audit_events("user.role_changed").await.len(), 2);
    assert_eq!(
        desk.get_json(ADMIN, "/api/v1/users/me").await["role"],
        "admin"
    );

    // Deactivating ends the account's use; reactivating restores it.
    let off = browser
        .post(
            &format!("/admin/users/{}/active", other.id),
            &[("csrf", &csrf), ("active", "false")],
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert!(off.body.contains("The account of other is deactivated"));
    let user = desk
        .get_json(ADMIN, &format!("/api/v1/users/{}", other.id))
        .await;
    assert_eq!(user["is_active"], false);
    assert_eq!(desk.app.login("other", PASSWORD).await.status(), 401);
    let on = browser
        .post(
            &format!("/admin/users/{}/active", other.id),
            &[("csrf", &csrf), ("active", "true")],
        )
        .await;
    assert_eq!(on.status, 200);
    let user = desk
        .get_json(ADMIN, &format!("/api/v1/users/{}", other.id))
        .await;
    assert_eq!(user["is_active"], true);
}

/// Item types and patron categories are defined, renamed and deleted through
/// the API's use cases; a type or category in use is refused, explained.
async fn item_types_and_categories_on_the_web(app: TestApp) {
    let desk = Desk::open(app).await;
    desk.item("Paper Boats", "book", &["T-1"]).await;
    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in(ADMIN).await;
    let page = browser.get("/admin/types").await;
    assert_page(&page, "/admin/types");

    let created = browser
        .post(
            "/admin/item-types",
            &[("csrf", &csrf), ("code", "zine"), ("name", " Zine ")],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.body.contains("zine is created."));
    let taken = browser
        .post(
            "/admin/item-types",
            &[("csrf", &csrf), ("code", "zine"), ("name", "Again")],
        )
        .await;
    assert_eq!(taken.status, 409);
    assert!(taken.body.contains("this code is already used."));
    let invalid = browser
        .post(
            "/admin/item-types",
            &[("csrf", &csrf), ("code", "Bad Code"), ("name", "")],
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert!(invalid.body.contains("(code, name)"), "{}", invalid.body);
    let renamed = browser
        .post(
            "/admin/item-types/zine",
            &[("csrf", &csrf), ("name", "Fanzine")],
        )
        .await;
    assert_eq!(renamed.status, 200);
    let types = desk
        .app
        .get("/api/v1/item-types")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert!(
        types["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["code"] == "zine" && t["name"] == "Fanzine")
    );
    // A type items use: refused, explained, kept.
    let in_use = browser
        .post("/admin/item-types/book/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(in_use.status, 409);
    assert!(
        in_use
            .body
            .contains("items (deleted ones included) or circulation rules use this item type")
    );
    let deleted = browser
        .post("/admin/item-types/zine/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(desk.app.audit_events("item_type.created").await.len(), 1);
    assert_eq!(desk.app.audit_events("item_type.updated").await.len(), 1);
    assert_eq!(desk.app.audit_events("item_type.deleted").await.len(), 1);

    let created = browser
        .post(
            "/admin/categories",
            &[
                ("csrf", &csrf),
                ("code", "teen"),
                ("name", "Teen"),
                ("max_loans", "3"),
                ("max_holds", ""),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let updated = browser
        .post(
            "/admin/categories/teen",
            &[
                ("csrf", &csrf),
                ("name", "Teenager"),
                ("max_loans", ""),
                ("max_holds", "2"),
            ],
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let categories = desk.get_json(LIBRARIAN, "/api/v1/patron-categories").await;
    let teen = categories["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "teen")
        .unwrap()
        .clone();
    assert_eq!(
        teen,
        serde_json::json!({"code": "teen", "name": "Teenager", "max_active_loans": null, "max_active_holds": 2})
    );
    let too_many = browser
        .post(
            "/admin/categories/teen",
            &[
                ("csrf", &csrf),
                ("name", "Teen"),
                ("max_loans", "99999"),
                ("max_holds", "x"),
            ],
        )
        .await;
    assert_eq!(too_many.status, 422);
    let default = browser
        .post("/admin/categories/adult/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(default.status, 409);
    assert!(default.body.contains("this is the default category"));
    let deleted = browser
        .post("/admin/categories/teen/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        desk.app.audit_events("patron_category.deleted").await.len(),
        1
    );
    assert_eq!(
        desk.app.audit_events("patron_category.updated").await.len(),
        1
    );
}

/// A branch as `GET /api/v1/branches` lists it.
async fn branch_of(desk: &Desk, id: &str) -> serde_json::Value {
    let list = desk.get_json(LIBRARIAN, "/api/v1/branches?limit=100").await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .expect("the branch")
        .clone()
}

/// Branches are added and changed, and their calendars set, through the
/// API's use cases and checks; refusals are explained and change nothing.
async fn branches_and_calendars_on_the_web(app: TestApp) {
    let desk = Desk::open(app).await;
    let mut librarian = Browser::new(&desk.app);
    let staff_csrf = librarian.sign_in(LIBRARIAN).await;
    let refused = librarian
        .post(
            "/admin/branches",
            &[("csrf", &staff_csrf), ("code", "EAST"), ("name", "East")],
        )
        .await;
    assert_eq!(refused.status, 403);
    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in(ADMIN).await;
    assert_page(&browser.get("/admin/branches").await, "/admin/branches");

    let created = browser
        .post(
            "/admin/branches",
            &[
                ("csrf", &csrf),
                ("code", "EAST"),
                ("name", " East branch "),
                ("timezone", ""),
                ("address", "1 Sea Road"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let location = created.location().to_owned();
    let id = location
        .strip_prefix("/admin/branches/")
        .and_then(|rest| rest.strip_suffix("?created=1"))
        .expect("the new branch's page")
        .to_owned();
    let page = browser.get(&location).await;
    assert_page(&page, "/admin/branches/{id}");
    assert!(page.body.contains("The branch is created."));
    let branch = branch_of(&desk, &id).await;
    assert_eq!(branch["code"], "EAST");
    assert_eq!(branch["name"], "East branch");
    assert_eq!(branch["address"], "1 Sea Road");
    assert_eq!(desk.app.audit_events("branch.created").await.len(), 1);

    let invalid = browser
        .post(
            "/admin/branches",
            &[
                ("csrf", &csrf),
                ("code", "bad code!"),
                ("name", "West"),
                ("timezone", "Mars/Base"),
            ],
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert!(invalid.body.contains("code, timezone"), "{}", invalid.body);
    assert!(
        invalid.body.contains("value=\"Mars/Base\""),
        "the form as sent"
    );
    let taken = browser
        .post(
            "/admin/branches",
            &[("csrf", &csrf), ("code", "EAST"), ("name", "Again")],
        )
        .await;
    assert_eq!(taken.status, 409);
    assert!(taken.body.contains("this code is already used."));
    assert_eq!(desk.app.audit_events("branch.created").await.len(), 1);

    let updated = browser
        .post(
            &format!("/admin/branches/{id}"),
            &[
                ("csrf", &csrf),
                ("code", "EAST"),
                ("name", "East library"),
                ("timezone", "Europe/Paris"),
                ("address", ""),
            ],
        )
        .await;
    assert_eq!(updated.status, 303, "{}", updated.body);
    let branch = branch_of(&desk, &id).await;
    assert_eq!(branch["name"], "East library");
    assert_eq!(branch["timezone"], "Europe/Paris");
    assert_eq!(branch["address"], serde_json::Value::Null);

    let calendar_path = format!("/admin/branches/{id}/calendar");
    let set = browser
        .post(
            &calendar_path,
            &[
                ("csrf", &csrf),
                ("mon", "14:00-18:00, 09:00-12:00"),
                ("tue", "09:00-17:00"),
                ("wed", "09:00-17:00"),
                ("thu", "09:00-17:00"),
                ("fri", "09:00 - 17:00"),
                ("sat", ""),
                ("sun", ""),
                ("closed_dates", "2026-12-25\r\n2027-01-01\r\n"),
            ],
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.body);
    let expected = serde_json::json!({
        "weekly": {"mon": [["09:00", "12:00"], ["14:00", "18:00"]], "tue": [["09:00", "17:00"]],
            "wed": [["09:00", "17:00"]], "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]],
            "sat": [], "sun": []},
        "closed_dates": ["2026-12-25", "2027-01-01"],
    });
    let calendar = desk
        .get_json(LIBRARIAN, &format!("/api/v1/branches/{id}/calendar"))
        .await;
    assert_eq!(calendar, expected);
    let page = browser.get(&format!("/admin/branches/{id}")).await;
    assert!(
        page.body
            .contains("name=\"mon\" value=\"09:00-12:00, 14:00-18:00\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("2026-12-25\n2027-01-01</textarea>"));

    let bad = browser
        .post(
            &calendar_path,
            &[
                ("csrf", &csrf),
                ("mon", "18:00-09:00"),
                ("tue", "9am"),
                ("closed_dates", "2026-13-45"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("The calendar was not changed:"));
    assert!(
        bad.body.contains("Monday: hours must be HH:MM-HH:MM"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("Tuesday: hours must be"));
    assert!(bad.body.contains("2026-13-45") && bad.body.contains("is not a date YYYY-MM-DD."));
    assert!(
        bad.body.contains("name=\"mon\" value=\"18:00-09:00\""),
        "the form as sent"
    );
    let calendar = desk
        .get_json(LIBRARIAN, &format!("/api/v1/branches/{id}/calendar"))
        .await;
    assert_eq!(calendar, expected, "unchanged");
    assert_eq!(
        desk.app.audit_events("branch.calendar_updated").await.len(),
        1
    );
}

/// An import upload: the CSRF token first, then the API's fields.
fn import_form(csrf: Option<&str>) -> reqwest::multipart::Form {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../carrel-marc/tests/fixtures/bad_records.mrc");
    let bytes = std::fs::read(path).unwrap();
    let form = reqwest::multipart::Form::new();
    let form = match csrf {
        Some(token) => form.text("csrf", token.to_owned()),
        None => form,
    };
    form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("bad_records.mrc"),
    )
    .text("format", "auto")
    .text("match", "isbn")
}

/// A MARC import starts from the page (as `POST /api/v1/imports`, CSRF
/// checked on the multipart form) and the list shows its progress as the
/// API's job does.
async fn marc_imports_start_and_show_progress_on_the_web(app: TestApp) {
    let desk = Desk::open(app).await;
    let mut librarian = Browser::new(&desk.app);
    let staff_csrf = librarian.sign_in(LIBRARIAN).await;
    assert_eq!(librarian.get("/admin/imports").await.status, 403);
    let url = format!("{}/admin/imports", librarian.base);
    let request = librarian
        .client
        .post(&url)
        .multipart(import_form(Some(&staff_csrf)));
    assert_eq!(
        librarian.send(request).await.status,
        403,
        "librarians use the API"
    );

    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in(ADMIN).await;
    let empty = browser.get("/admin/imports").await;
    assert_page(&empty, "/admin/imports");
    assert!(empty.body.contains("No import yet."));
    assert!(empty.body.contains("enctype=\"multipart/form-data\""));
    for form in [import_form(None), import_form(Some("not-the-token"))] {
        let request = browser.client.post(&url).multipart(form);
        assert_eq!(browser.send(request).await.status, 403);
    }
    assert!(
        desk.app
            .audit_events("catalog.import_started")
            .await
            .is_empty()
    );

    let request = browser
        .client
        .post(&url)
        .multipart(import_form(Some(&csrf)));
    let started = browser.send(request).await;
    assert_eq!(started.status, 303, "{}", started.body);
    let id = started
        .location()
        .strip_prefix("/admin/imports?started=")
        .expect("the started job")
        .to_owned();
    let mut job = serde_json::Value::Null;
    for _ in 0..300 {
        job = desk
            .get_json(LIBRARIAN, &format!("/api/v1/imports/{id}"))
            .await;
        if job["status"] == "done" || job["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(job["status"], "done", "{job}");
    let events = desk.app.audit_events("catalog.import_started").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].subject_id.map(|s| s.to_string()),
        Some(id.clone())
    );
    let list = browser.get(&format!("/admin/imports?started={id}")).await;
    assert_page(&list, "/admin/imports?started");
    assert!(list.body.contains("The import has started"));
    let row = section(&list.body, "imports-heading");
    let total = job["total"].as_i64().unwrap();
    let cells = format!(
        "<th scope=\"row\">bad_records.mrc</th><td>Done</td><td>{total} of {total} (100%)</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        job["created"], job["updated"], job["skipped"], job["failed"]
    );
    assert!(row.contains(&cells), "{cells} in {row}");
}

backend_tests!(
    login_with_the_mfa_step,
    pages_render_with_the_pages_headers,
    every_post_needs_its_csrf_token,
    login_form_opens_a_session_and_the_account_lists_loans_and_holds,
    the_desk_checks_out_and_returns_by_barcode,
    french_from_accept_language_and_the_switch,
    the_account_page_manages_devices_pin_history_and_export,
    two_step_verification_is_set_up_and_turned_off_on_the_account_page,
    the_desk_works_at_a_branch_with_its_hold_shelf_and_transits,
    the_desk_takes_payments_and_waives_fines,
    admin_pages_are_for_administrators_only,
    the_rule_matrix_is_edited_and_simulated_on_the_web,
    roles_change_on_the_web_as_through_the_api,
    item_types_and_categories_on_the_web,
    branches_and_calendars_on_the_web,
    marc_imports_start_and_show_progress_on_the_web,
);

backend_tests_with!(
    vec![("CARREL_MFA_REQUIRED_ROLES", "librarian,admin".into())] =>
    required_enrolment_happens_on_the_web,
);

// ---- Patron pages (issue 18, branch `patron`): online fine payment, a
// hold's pickup branch, search facets ----

backend_tests!(
    no_pay_form_without_a_payment_provider,
    the_account_page_changes_a_holds_pickup_branch,
    the_search_page_shows_the_apis_facets,
);

backend_tests_with!(
    vec![("CARREL_PAYMENT_PROVIDER", "test".into())] =>
    the_account_page_pays_fines_online,
);

/// The charges the `test` payment provider took.
fn provider_charges(app: &TestApp) -> Vec<carrel_server::circulation::payments::TestCharge> {
    let provider = app.state.payments.as_ref().expect("a payment provider");
    let any: &dyn std::any::Any = provider.as_ref();
    any.downcast_ref::<carrel_server::circulation::payments::TestPaymentProvider>()
        .expect("the test provider")
        .charges()
}

async fn fine_detail(desk: &Desk, fine_id: &str) -> serde_json::Value {
    desk.staff(reqwest::Method::GET, &format!("/api/v1/fines/{fine_id}"))
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn the_account_page_pays_fines_online(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    let fine = desk.charge(ann.id, 500).await;
    let fine_id = fine["id"].as_str().unwrap().to_owned();
    let bobs = desk.charge(bob.id, 300).await;
    let pay = format!("/account/fines/{fine_id}/pay");
    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in("ann").await;
    let account = browser.get("/account").await;
    assert_page(&account, "/account with a pay form");
    let fines = section(&account.body, "fines-heading");
    assert!(fines.contains("Pay online"), "{fines}");
    assert!(fines.contains("<label for=\"pay-token-"), "{fines}");
    assert_eq!(
        form_field(&account.body, &pay, "amount").as_deref(),
        Some("5.00")
    );
    let key = form_field(&account.body, &pay, "key").expect("the form's idempotency key");
    // Every rendering gets a fresh key.
    let again = browser.get("/account").await;
    assert_ne!(form_field(&again.body, &pay, "key").unwrap(), key);

    // Declined: explained, nothing recorded or charged.
    let declined = browser
        .post(
            &pay,
            &[
                ("csrf", &csrf),
                ("amount", "5.00"),
                ("token", "tok_test_declined"),
                ("key", &key),
            ],
        )
        .await;
    assert_eq!(declined.status, 402, "{}", declined.body);
    assert!(
        declined
            .body
            .contains("role=\"alert\"><p>Refused: the payment was declined"),
        "{}",
        declined.body
    );
    assert!(desk.app.audit_events("fine.paid").await.is_empty());
    assert!(provider_charges(&desk.app).is_empty());
    assert_eq!(fine_detail(&desk, &fine_id).await["paid_cents"], 0);

    // Without the CSRF token, or with another one: refused, nothing charged.
    for token in ["", "forged"] {
        let forged = browser
            .post(
                &pay,
                &[
                    ("csrf", token),
                    ("amount", "5.00"),
                    ("token", "tok_test_ok"),
                    ("key", "k-forged"),
                ],
            )
            .await;
        assert_eq!(forged.status, 403, "{}", forged.body);
    }
    assert!(provider_charges(&desk.app).is_empty());

    // No token, a bad amount: refused and explained.
    let no_token = browser
        .post(
            &pay,
            &[
                ("csrf", &csrf),
                ("amount", "5.00"),
                ("token", " "),
                ("key", &key),
            ],
        )
        .await;
    assert_eq!(no_token.status, 422, "{}", no_token.body);
    assert!(
        no_token.body.contains("payment token is missing"),
        "{}",
        no_token.body
    );
    let too_much = browser
        .post(
            &pay,
            &[
                ("csrf", &csrf),
                ("amount", "9.00"),
                ("token", "tok_test_ok"),
                ("key", &key),
            ],
        )
        .await;
    assert_eq!(too_much.status, 409, "{}", too_much.body);

    // Approved: €2 of the €5; the same form sent twice is one payment, one charge.
    let approved_key = form_field(&again.body, &pay, "key").unwrap();
    for _ in 0..2 {
        let paid = browser
            .post(
                &pay,
                &[
                    ("csrf", &csrf),
                    ("amount", "2,00"),
                    ("token", "tok_test_ok"),
                    ("key", &approved_key),
                ],
            )
            .await;
        assert_eq!(paid.status, 200, "{}", paid.body);
        assert!(
            paid.body.contains("Payment of $2.00 received."),
            "{}",
            paid.body
        );
        assert!(section(&paid.body, "fines-heading").contains("$3.00"));
    }
    assert_eq!(desk.app.audit_events("fine.paid").await.len(), 1);
    let charges = provider_charges(&desk.app);
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0].amount_cents, 200);
    let detail = fine_detail(&desk, &fine_id).await;
    assert_eq!(detail["paid_cents"], 200, "{detail}");
    assert_eq!(detail["payments"][0]["method"], "online");

    // Someone else's fine: not found, nothing charged.
    let other = browser
        .post(
            &format!("/account/fines/{}/pay", bobs["id"].as_str().unwrap()),
            &[
                ("csrf", &csrf),
                ("amount", "3.00"),
                ("token", "tok_test_ok"),
                ("key", "k-bob"),
            ],
        )
        .await;
    assert_eq!(other.status, 404, "{}", other.body);
    assert_eq!(provider_charges(&desk.app).len(), 1);

    // The rest in French: the page and the notice are translated.
    browser.language = Some("fr");
    let french = browser.get("/account").await;
    assert!(french.body.contains("Payer en ligne"), "{}", french.body);
    let key = form_field(&french.body, &pay, "key").unwrap();
    let paid = browser
        .post(
            &pay,
            &[
                ("csrf", &csrf),
                ("amount", "3.00"),
                ("token", "tok_test_ok"),
                ("key", &key),
            ],
        )
        .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert!(paid.body.contains("Paiement de 3,00"), "{}", paid.body);
    assert!(section(&paid.body, "fines-heading").contains("Vous ne devez rien."));
    assert_eq!(desk.app.audit_events("fine.paid").await.len(), 2);
}

async fn no_pay_form_without_a_payment_provider(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let fine = desk.charge(ann.id, 500).await;
    let pay = format!("/account/fines/{}/pay", fine["id"].as_str().unwrap());
    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in("ann").await;
    let account = browser.get("/account").await;
    assert_page(&account, "/account without a provider");
    assert!(section(&account.body, "fines-heading").contains("$5.00"));
    assert!(
        !account.body.contains(&pay),
        "no pay form without a provider"
    );
    assert!(!account.body.contains("Pay online"));
    // A hand-made form is refused and explained; nothing is recorded.
    let refused = browser
        .post(
            &pay,
            &[
                ("csrf", &csrf),
                ("amount", "5.00"),
                ("token", "tok_test_ok"),
                ("key", "k-1"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("online payments are not available"),
        "{}",
        refused.body
    );
    assert!(desk.app.audit_events("fine.paid").await.is_empty());
}

async fn the_account_page_changes_a_holds_pickup_branch(app: TestApp) {
    let desk = Desk::open(app).await;
    let ann = desk.patron("ann").await;
    let bob = desk.patron("bob").await;
    let admin = desk.app.access_token(crate::desk::ADMIN).await;
    let east: serde_json::Value = desk
        .app
        .authed(reqwest::Method::POST, "/api/v1/branches", &admin)
        .json(&serde_json::json!({"code": "EAST", "name": "East branch"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let east = east["id"].as_str().unwrap().to_owned();
    let item = desk.item("Persuasion", "book", &["PK-1"]).await;
    let other_item = desk.item("Emma", "book", &["PK-2"]).await;
    desk.lend("PK-1", bob.id).await;
    desk.lend("PK-2", ann.id).await;
    let held = desk.place_hold("ann", item).await;
    assert_eq!(held.status(), 201);
    let hold: serde_json::Value = held.json().await.unwrap();
    let hold_id = hold["id"].as_str().unwrap().to_owned();
    let bobs: serde_json::Value = desk
        .place_hold("bob", other_item)
        .await
        .json()
        .await
        .unwrap();
    let bobs_id = bobs["id"].as_str().unwrap().to_owned();
    let pickup = format!("/account/holds/{hold_id}/pickup");

    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in("ann").await;
    let account = browser.get("/account").await;
    assert_page(&account, "/account with a waiting hold");
    let holds = section(&account.body, "holds-heading");
    assert!(holds.contains(&format!("action=\"{pickup}\"")), "{holds}");
    assert!(
        holds.contains(&format!("<option value=\"{MAIN_BRANCH}\" selected>")),
        "{holds}"
    );
    assert!(holds.contains(&format!("<label class=\"visually-hidden\" for=\"pickup-{hold_id}\">Pick up Persuasion at</label>")), "{holds}");

    // Without the CSRF token: refused, unchanged.
    let forged = browser.post(&pickup, &[("pickup", &east)]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    // An unknown branch, or not a branch id: refused and explained.
    for bad in ["00000000-0000-7000-8000-0000000000ff", "east"] {
        let refused = browser
            .post(&pickup, &[("csrf", &csrf), ("pickup", bad)])
            .await;
        assert_eq!(refused.status, 422, "{bad}: {}", refused.body);
        assert!(
            refused.body.contains("this branch does not exist"),
            "{}",
            refused.body
        );
    }
    assert_eq!(
        desk.hold(&hold["id"]).await["pickup_branch_id"],
        MAIN_BRANCH
    );
    assert!(
        desk.app
            .audit_events("hold.pickup_changed")
            .await
            .is_empty()
    );

    // To East: changed, in the audit trail, shown on the page.
    let moved = browser
        .post(&pickup, &[("csrf", &csrf), ("pickup", &east)])
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert!(
        moved.body.contains("You will pick it up at East branch."),
        "{}",
        moved.body
    );
    assert!(
        section(&moved.body, "holds-heading")
            .contains(&format!("<option value=\"{east}\" selected>"))
    );
    assert_eq!(
        desk.hold(&hold["id"]).await["pickup_branch_id"],
        east.as_str()
    );
    let audit = desk.app.audit_events("hold.pickup_changed").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor_id, Some(ann.id));
    assert_eq!(audit[0].details["from"], MAIN_BRANCH);
    assert_eq!(audit[0].details["to"], east.as_str());

    // Someone else's hold: not found (no hint that it exists), unchanged.
    let idor = browser
        .post(
            &format!("/account/holds/{bobs_id}/pickup"),
            &[("csrf", &csrf), ("pickup", &east)],
        )
        .await;
    assert_eq!(idor.status, 404, "{}", idor.body);
    assert_eq!(
        desk.hold(&bobs["id"]).await["pickup_branch_id"],
        MAIN_BRANCH
    );

    // A librarian may move it (the use case's rule; the page is the same form).
    let mut librarian = Browser::new(&desk.app);
    let staff_csrf = librarian.sign_in(LIBRARIAN).await;
    let by_staff = librarian
        .post(&pickup, &[("csrf", &staff_csrf), ("pickup", MAIN_BRANCH)])
        .await;
    assert_eq!(by_staff.status, 200, "{}", by_staff.body);
    assert_eq!(
        desk.hold(&hold["id"]).await["pickup_branch_id"],
        MAIN_BRANCH
    );
    assert_eq!(desk.app.audit_events("hold.pickup_changed").await.len(), 2);

    // Ready (the copy came back at MAIN and waits on its hold shelf): fixed.
    desk.returned("PK-1").await;
    assert_eq!(desk.hold(&hold["id"]).await["status"], "ready");
    let account = browser.get("/account").await;
    let holds = section(&account.body, "holds-heading");
    assert!(!holds.contains(&format!("action=\"{pickup}\"")), "{holds}");
    assert!(holds.contains("can no longer change"), "{holds}");
    let refused = browser
        .post(&pickup, &[("csrf", &csrf), ("pickup", &east)])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("Refused: the hold is no longer waiting"),
        "{}",
        refused.body
    );
    assert_eq!(
        desk.hold(&hold["id"]).await["pickup_branch_id"],
        MAIN_BRANCH
    );
    assert_eq!(desk.app.audit_events("hold.pickup_changed").await.len(), 2);
    // Cancelled: still refused.
    browser
        .post(
            &format!("/account/holds/{hold_id}/cancel"),
            &[("csrf", &csrf)],
        )
        .await;
    let closed = browser
        .post(&pickup, &[("csrf", &csrf), ("pickup", &east)])
        .await;
    assert_eq!(closed.status, 409, "{}", closed.body);
}

async fn the_search_page_shows_the_apis_facets(app: TestApp) {
    let desk = Desk::open(app).await;
    for (title, kind, year, language, subjects) in [
        (
            "Harbour lights",
            "book",
            Some(1994),
            Some("en"),
            vec!["Sea", "Ports"],
        ),
        (
            "Harbour songs",
            "audiobook",
            Some(1998),
            Some("fr"),
            vec!["Sea"],
        ),
        ("Harbour maps", "book", Some(2003), None, vec!["Maps"]),
        ("Harbour tides", "dvd", None, Some("en"), vec![]),
        (
            "Mountain paths",
            "book",
            Some(1994),
            Some("en"),
            vec!["Sea"],
        ),
    ] {
        let created = desk
            .staff(reqwest::Method::POST, "/api/v1/items")
            .await
            .json(
                &serde_json::json!({"title": title, "item_type": kind, "publication_year": year,
                "language": language, "subjects": subjects, "authors": ["A. Writer"]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    let mut browser = Browser::new(&desk.app);
    // The bare catalog lists everything and skips the counting.
    let bare = browser.get("/").await;
    assert_page(&bare, "/ without a search");
    assert!(!bare.body.contains("facets-heading"));

    // A search offers the counts (a pass over every match) behind a link.
    let plain = browser.get("/?q=harbour").await;
    assert_page(&plain, "/?q=harbour");
    assert!(!plain.body.contains("facets-heading"), "{}", plain.body);
    assert!(
        plain.body.contains(
            "<a href=\"/?q=harbour&#38;facets=1\">Refine by type, language, decade and subject</a>"
        ),
        "{}",
        plain.body
    );
    let page = browser.get("/?q=harbour&facets=1").await;
    assert_page(&page, "/?q=harbour&facets=1");
    assert!(
        !page.body.contains("Refine by type, language"),
        "{}",
        page.body
    );
    let api: serde_json::Value = desk
        .app
        .client
        .get(format!(
            "{}/api/v1/items?q=harbour&facets=true",
            desk.app.address
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let facets = &api["facets"];
    assert_eq!(facets["total"], 4, "{api}");
    let type_names = [("book", "Book"), ("audiobook", "Audiobook"), ("dvd", "DVD")];
    let mut shown = 0;
    for (facet, section_id) in [
        ("item_type", "facet-item_type"),
        ("language", "facet-language"),
        ("decade", "facet-decade"),
        ("subject", "facet-subject"),
    ] {
        let start = page
            .body
            .find(&format!("id=\"{section_id}\""))
            .expect(section_id);
        let end = page.body[start..].find("</ul>").unwrap() + start;
        let group = &page.body[start..end];
        let values = facets[facet].as_array().unwrap();
        assert!(!values.is_empty(), "{facet}");
        // One entry per value, each with the API's count.
        assert_eq!(
            group.matches("<li>").count(),
            values.len(),
            "{facet}: {group}"
        );
        for v in values {
            let count = v["count"].as_i64().unwrap();
            let label = match (facet, &v["value"]) {
                ("item_type", serde_json::Value::String(code)) => type_names
                    .iter()
                    .find(|(c, _)| c == code)
                    .map(|(_, name)| (*name).to_owned())
                    .unwrap_or_else(|| code.clone()),
                ("decade", serde_json::Value::Number(n)) => format!("{n}s"),
                ("decade", serde_json::Value::Null) => "Year unknown".to_owned(),
                (_, serde_json::Value::Null) => "Not given".to_owned(),
                (_, other) => other.as_str().unwrap().to_owned(),
            };
            let linked = format!("{label}</a> <span class=\"count\">({count})</span>");
            let plain = format!("<li>{label} <span class=\"count\">({count})</span>");
            assert!(
                group.contains(&linked) || group.contains(&plain),
                "{facet} {label} ({count}): {group}"
            );
            shown += 1;
        }
    }
    assert!(shown >= 9, "{shown}");
    // Languages are counted, not links (the search has no language filter).
    let start = page.body.find("id=\"facet-language\"").unwrap();
    let languages = &page.body[start..start + page.body[start..].find("</ul>").unwrap()];
    assert!(!languages.contains("<a "), "{languages}");

    // A facet link narrows the search; followed again, it removes the filter.
    let narrow = "/?q=harbour&#38;item_type=book&#38;facets=1";
    assert!(
        page.body.contains(&format!(
            "<a href=\"{narrow}\">Book</a> <span class=\"count\">(2)</span>"
        )),
        "{}",
        page.body
    );
    let books = browser.get("/?q=harbour&item_type=book&facets=1").await;
    assert_page(&books, "a facet link");
    assert!(books.body.contains("Harbour lights") && books.body.contains("Harbour maps"));
    assert!(!books.body.contains("Harbour songs"));
    assert!(books.body.contains("<a href=\"/?q=harbour&#38;facets=1\" class=\"selected\" aria-current=\"true\">Book<span class=\"visually-hidden\">"), "{}", books.body);
    // The decade and subject links are the year and subject filters.
    assert!(page.body.contains("href=\"/?q=harbour&#38;year_from=1990&#38;year_to=1999&#38;facets=1\">1990s</a> <span class=\"count\">(2)</span>"), "{}", page.body);
    assert!(
        page.body.contains(
            "href=\"/?q=harbour&#38;subject=Sea&#38;facets=1\">Sea</a> <span class=\"count\">(2)</span>"
        ),
        "{}",
        page.body
    );
    let nineties = browser.get("/?q=harbour&year_from=1990&year_to=1999").await;
    assert!(nineties.body.contains("Harbour songs") && !nineties.body.contains("Harbour maps"));
    // French headings.
    browser.language = Some("fr");
    let french = browser.get("/?q=harbour&facets=1").await;
    assert!(
        french.body.contains("Affiner les résultats"),
        "{}",
        french.body
    );
}

// ---- Signing out everywhere ----
backend_tests!(signing_out_everywhere_ends_every_session_of_the_account);

/// `/account`'s "Sign out everywhere" ends every session of the account (the
/// other browser's, an API token's, this one's), as `POST /auth/logout-all`;
/// without the CSRF token nothing ends, and another account is untouched.
async fn signing_out_everywhere_ends_every_session_of_the_account(app: TestApp) {
    let desk = Desk::open(app).await;
    desk.patron("reader").await;
    let mut browser = Browser::new(&desk.app);
    let csrf = browser.sign_in("reader").await;
    let mut laptop = Browser::new(&desk.app);
    laptop.sign_in("reader").await;
    let api_token = desk.app.access_token("reader").await;
    desk.app
        .create_user("bystander", carrel_core::roles::Role::Patron)
        .await;
    let bystander = desk.app.access_token("bystander").await;
    let me = |token: String| {
        let app = &desk.app;
        async move {
            app.authed(reqwest::Method::GET, "/api/v1/users/me", &token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    let account = browser.get("/account").await;
    assert!(
        account
            .body
            .contains("<form method=\"post\" action=\"/logout-all\">"),
        "{}",
        account.body
    );
    // Without the token: refused, everyone stays signed in.
    assert_eq!(browser.post("/logout-all", &[]).await.status, 403);
    assert_eq!(laptop.get("/account").await.status, 200);
    assert_eq!(me(api_token.clone()).await, 200);

    let done = browser.post("/logout-all", &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/");
    assert!(!browser.cookies.contains_key("carrel_access"));
    assert_eq!(browser.get("/account").await.status, 303, "this browser");
    assert_eq!(
        laptop.get("/account").await.status,
        303,
        "the other browser"
    );
    assert_eq!(me(api_token).await, 401, "an API token of the account");
    assert_eq!(me(bystander).await, 200, "another account");
    let events = desk.app.audit_events("auth.logout").await;
    assert_eq!(events.len(), 1, "{events:?}");
}

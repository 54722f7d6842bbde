//! A circulation desk for tests: a librarian, patrons, items with copies, and
//! shortcuts for the circulation requests. Tokens are fetched per request, so
//! tests can move the clock by weeks without access tokens expiring under them.

use carrel_core::roles::Role;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser};

pub const LIBRARIAN: &str = "desk";
pub const ADMIN: &str = "boss";

pub struct Desk {
    pub app: TestApp,
    pub librarian: TestUser,
}

#[allow(dead_code)] // not every test module uses every shortcut
impl Desk {
    pub async fn open(app: TestApp) -> Self {
        let librarian = app.create_user(LIBRARIAN, Role::Librarian).await;
        app.create_user(ADMIN, Role::Admin).await;
        Self { app, librarian }
    }

    pub async fn patron(&self, username: &str) -> TestUser {
        self.app.create_user(username, Role::Patron).await
    }

    /// A request as `username` (a fresh login each time).
    pub async fn as_user(
        &self,
        username: &str,
        method: Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let token = self.app.access_token(username).await;
        self.app.authed(method, path, &token)
    }

    pub async fn staff(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.as_user(LIBRARIAN, method, path).await
    }

    /// Creates an item of `item_type` with one copy per barcode; returns its id.
    pub async fn item(&self, title: &str, item_type: &str, barcodes: &[&str]) -> Uuid {
        let response = self
            .staff(Method::POST, "/api/v1/items")
            .await
            .json(&json!({"title": title, "item_type": item_type, "authors": ["A. Writer"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let item: Value = response.json().await.unwrap();
        let id: Uuid = item["id"].as_str().unwrap().parse().unwrap();
        for barcode in barcodes {
            let response = self
                .staff(Method::POST, &format!("/api/v1/items/{id}/copies"))
                .await
                .json(&json!({"barcode": barcode}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201, "copy {barcode}");
        }
        id
    }

    pub async fn checkout(&self, barcode: &str, user: Uuid) -> Response {
        self.staff(Method::POST, "/api/v1/loans")
            .await
            .json(&json!({"copy_barcode": barcode, "user_id": user}))
            .send()
            .await
            .unwrap()
    }

    /// Checks out and expects success; returns the loan.
    pub async fn lend(&self, barcode: &str, user: Uuid) -> Value {
        let response = self.checkout(barcode, user).await;
        assert_eq!(response.status(), 201, "checkout of {barcode}");
        response.json().await.unwrap()
    }

    pub async fn give_back(&self, barcode: &str) -> Response {
        self.staff(Method::POST, "/api/v1/loans/return")
            .await
            .json(&json!({"copy_barcode": barcode}))
            .send()
            .await
            .unwrap()
    }

    /// Returns and expects success; returns `{loan, fine, hold}`.
    pub async fn returned(&self, barcode: &str) -> Value {
        let response = self.give_back(barcode).await;
        assert_eq!(response.status(), 200, "return of {barcode}");
        response.json().await.unwrap()
    }

    pub async fn place_hold(&self, username: &str, item: Uuid) -> Response {
        self.as_user(username, Method::POST, "/api/v1/holds")
            .await
            .json(&json!({"item_id": item}))
            .send()
            .await
            .unwrap()
    }

    pub async fn hold(&self, id: &Value) -> Value {
        let response = self
            .staff(
                Method::GET,
                &format!("/api/v1/holds/{}", id.as_str().unwrap()),
            )
            .await
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn get_json(&self, username: &str, path: &str) -> Value {
        let response = self
            .as_user(username, Method::GET, path)
            .await
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// The status of the copy with `barcode`.
    pub async fn copy_status(&self, item: Uuid, barcode: &str) -> String {
        let copies = self
            .get_json(LIBRARIAN, &format!("/api/v1/items/{item}/copies"))
            .await;
        let copies = copies
            .as_array()
            .or_else(|| copies["data"].as_array())
            .unwrap()
            .clone();
        copies
            .iter()
            .find(|c| c["barcode"] == barcode)
            .map(|c| c["status"].as_str().unwrap().to_owned())
            .unwrap()
    }

    /// A fine for `user` of `amount_cents` (manual).
    pub async fn charge(&self, user: Uuid, amount_cents: i64) -> Value {
        let response = self
            .staff(Method::POST, "/api/v1/fines")
            .await
            .json(&json!({"user_id": user, "amount_cents": amount_cents, "reason": "manual", "note": "test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// Moves the clock and runs the background jobs, as an interval would.
    pub async fn advance(&self, by: Duration) {
        self.app.clock.advance(by);
        self.run_jobs().await;
    }

    pub async fn run_jobs(&self) {
        carrel_server::jobs::run_once(&self.app.state, self.app.state.instance_id)
            .await
            .expect("jobs run")
            .expect("this instance holds the lease");
    }

    pub fn now(&self) -> OffsetDateTime {
        self.app.clock.now()
    }
}

pub fn at(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        value.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

//! `carrel demo-data`: a sample catalog (real public-domain titles, shipped in
//! `data/demo-catalog.json`) and a few patrons, so a new user can try the
//! system at once. Only loads into an empty catalog.

use anyhow::{Context as _, bail};
use carrel_core::roles::Role;
use carrel_store::{ItemSearch, ItemSort};
use secrecy::SecretString;
use serde::Deserialize;

use crate::accounts::{self, NewAccount};
use crate::app::{self, catalog::NewCopyInput};
use crate::catalog::fields::ItemInput;
use crate::state::AppState;

const CATALOG: &str = include_str!("../../data/demo-catalog.json");
const LOCATIONS: [&str; 4] = [
    "Main stacks",
    "Reading room",
    "Children's corner",
    "Media shelf",
];
const PATRONS: [(&str, &str); 3] = [
    ("demo.ada", "Ada Reader"),
    ("demo.bram", "Bram Borrower"),
    ("demo.clara", "Clara Browser"),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoItem {
    title: String,
    subtitle: Option<String>,
    authors: Vec<String>,
    item_type: String,
    publisher: Option<String>,
    publication_year: Option<i32>,
    language: Option<String>,
    subjects: Vec<String>,
    description: Option<String>,
    isbn: Option<String>,
    copies: u8,
}

/// What was loaded; the patrons' passwords are shown once, here.
#[derive(Debug, Default)]
pub struct DemoReport {
    pub items: usize,
    pub copies: usize,
    pub patrons: Vec<(String, String)>,
}

/// The sample catalog as shipped (validated by a test).
fn demo_items() -> anyhow::Result<Vec<DemoItem>> {
    serde_json::from_str(CATALOG).context("the bundled demo catalog is not valid")
}

pub async fn load(state: &AppState) -> anyhow::Result<DemoReport> {
    let probe = ItemSearch {
        terms: Vec::new(),
        prefix: false,
        author: None,
        item_type: None,
        subject: None,
        isbn: None,
        year_from: None,
        year_to: None,
        available_only: false,
        branch_id: None,
        sort: ItemSort::Title { descending: false },
        after: None,
        limit: 1,
    };
    if !state.store.search_items(&probe).await?.is_empty() {
        bail!("the catalog is not empty: demo data is only loaded into an empty catalog");
    }
    let mut report = DemoReport::default();
    for (n, item) in demo_items()?.into_iter().enumerate() {
        let copies = item.copies;
        let input = ItemInput {
            title: Some(item.title),
            subtitle: item.subtitle,
            authors: Some(item.authors),
            isbn: item.isbn,
            item_type: Some(item.item_type),
            publisher: item.publisher,
            publication_year: item.publication_year,
            language: item.language,
            subjects: Some(item.subjects),
            description: item.description,
        };
        // No person acts: the items and copies are recorded without an actor.
        let row = app::catalog::create_item(state, None, input)
            .await
            .map_err(|e| anyhow::anyhow!("demo item {n}: {e:?}"))?;
        report.items += 1;
        for c in 0..copies {
            report.copies += 1;
            let copy = NewCopyInput {
                branch_id: None,
                barcode: format!("DEMO-{:05}", report.copies),
                location: Some(LOCATIONS[(n + usize::from(c)) % LOCATIONS.len()].to_owned()),
                call_number: None,
            };
            app::catalog::add_copy(state, None, row.id, copy)
                .await
                .map_err(|e| anyhow::anyhow!("demo item {n}, copy {c}: {e:?}"))?;
        }
    }
    for (username, name) in PATRONS {
        // A random password, printed once: no account ever has a known default.
        let password = format!(
            "Demo-{}-7a",
            carrel_crypto::OpaqueToken::generate()
                .as_str()
                .get(..16)
                .unwrap_or("fallback0000000")
        );
        let new = NewAccount {
            email: format!("{username}@example.org"),
            username: username.to_owned(),
            full_name: Some(name.to_owned()),
            role: Role::Patron,
            password: Some(SecretString::from(password.clone())),
            email_verified: true,
            card_number: None,
            category: None,
        };
        match accounts::create_account(state, new).await {
            Ok(_) => report.patrons.push((username.to_owned(), password)),
            Err(accounts::AccountError::Conflict(_)) => {}
            Err(e) => return Err(anyhow::anyhow!("demo patron {username}: {e}")),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_catalog_is_valid() {
        let items = demo_items().unwrap();
        assert!(items.len() >= 300, "{} items", items.len());
        for (n, item) in items.into_iter().enumerate() {
            let input = ItemInput {
                title: Some(item.title),
                subtitle: item.subtitle,
                authors: Some(item.authors),
                isbn: item.isbn,
                item_type: Some(item.item_type),
                publisher: item.publisher,
                publication_year: item.publication_year,
                language: item.language,
                subjects: Some(item.subjects),
                description: item.description,
            };
            assert!(
                crate::catalog::fields::validate_item(input, 2030).is_ok(),
                "item {n}"
            );
            assert!((1..=4).contains(&item.copies));
        }
    }
}

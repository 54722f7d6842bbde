//! Ready-made message texts: short, friendly plain text, each signed "— Carrel".
//!
//! Links are passed in complete (scheme, host, path and token); each stands alone on its
//! own line so mail clients make it clickable and tests can find it by substring search.
//! Subjects are fixed ASCII strings (titles and dates go into the body only).

use crate::Email;

const SIGNATURE: &str = "— Carrel";

fn email(to: &str, subject: &str, paragraphs: &[&str]) -> Email {
    let mut body = String::from("Hello,\n\n");
    for paragraph in paragraphs {
        body.push_str(paragraph);
        body.push_str("\n\n");
    }
    body.push_str(SIGNATURE);
    body.push('\n');
    Email::new(to, subject, body)
}

fn count(n: u32, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// Subject "Confirm your email address".
pub fn verify_email(to: &str, link: &str) -> Email {
    email(
        to,
        "Confirm your email address",
        &[
            "please confirm your email address for your Carrel account by opening this link:",
            link,
            "If you did not create a Carrel account, you can ignore this email.",
        ],
    )
}

/// Subject "Reset your password" ([`Priority::Security`](crate::Priority::Security)).
pub fn password_reset(to: &str, link: &str, valid_minutes: u32) -> Email {
    let expiry = format!(
        "The link expires in {} and works only once. If you did not ask for this, you can \
         ignore this email: your password stays unchanged.",
        count(valid_minutes, "minute")
    );
    email(
        to,
        "Reset your password",
        &[
            "someone (hopefully you) asked to reset the password of your Carrel account. \
             To choose a new password, open this link:",
            link,
            &expiry,
        ],
    )
    .security()
}

/// Subject "You have been invited to Carrel" ([`Priority::Security`](crate::Priority::Security)).
pub fn invitation(to: &str, link: &str, valid_hours: u32) -> Email {
    let expiry = format!(
        "The invitation expires in {}. If you were not expecting it, you can ignore this email.",
        count(valid_hours, "hour")
    );
    email(
        to,
        "You have been invited to Carrel",
        &[
            "you have been invited to Carrel, the library system. To accept, set a password \
             for your new account here:",
            link,
            &expiry,
        ],
    )
    .security()
}

/// Subject "Your account was locked" ([`Priority::Security`](crate::Priority::Security)).
pub fn account_locked(to: &str, until_rfc3339: &str) -> Email {
    let locked = format!(
        "your Carrel account was locked after too many failed sign-in attempts. \
         It stays locked until {until_rfc3339}."
    );
    email(
        to,
        "Your account was locked",
        &[
            &locked,
            "If this wasn't you, someone may be trying to guess your password: please reset \
             it using \"Forgot password\" on the sign-in page. Resetting your password also \
             unlocks your account straight away.",
        ],
    )
    .security()
}

/// Subject "Someone tried to register with your email" — for the owner of an address that
/// already has an account.
pub fn registration_attempt(to: &str, reset_link: &str) -> Email {
    email(
        to,
        "Someone tried to register with your email",
        &[
            "someone tried to create a new Carrel account with this email address. You \
             already have an account, so no new account was created and nothing was changed.",
            "If it was you and you have forgotten your password, you can reset it here:",
            reset_link,
            "If it wasn't you, you can ignore this email.",
        ],
    )
}

/// Subject "Your Carrel registration" — for an address that asked for a username
/// someone else has.
pub fn username_taken(to: &str, username: &str) -> Email {
    let taken = format!(
        "the username \"{username}\" is already taken, so no account was created. \
         Please register again with another username."
    );
    email(to, "Your Carrel registration", &[&taken])
}

/// Subject "Your hold is ready for pickup".
pub fn hold_ready(to: &str, title: &str, pickup_until: &str) -> Email {
    let ready = format!("good news: \"{title}\", which you placed a hold on, is ready for pickup.");
    let until = format!(
        "Please collect it by {pickup_until}. After that the hold lapses and the item goes \
         to the next reader."
    );
    email(to, "Your hold is ready for pickup", &[&ready, &until])
}

/// Subject "A loan is due soon".
pub fn due_soon(to: &str, title: &str, due_date: &str) -> Email {
    let due = format!("\"{title}\" is due back on {due_date}.");
    email(
        to,
        "A loan is due soon",
        &[&due, "Please return or renew it by then. Thank you!"],
    )
}

/// Subject "A loan is overdue".
pub fn overdue(to: &str, title: &str, due_date: &str) -> Email {
    let due = format!("\"{title}\" was due back on {due_date} and is now overdue.");
    email(
        to,
        "A loan is overdue",
        &[
            &due,
            "Please return it as soon as possible, or renew it if renewals are allowed.",
        ],
    )
}

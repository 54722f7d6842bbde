//! What every page needs about its request (language, caller, CSRF token),
//! the form reader that checks the token, and the sign-in pages: login with
//! its MFA step, logout, registration, email verification, password reset.

use askama::Template;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::i18n::{Lang, Texts};
use super::{html, local_path, see_other};
use crate::accounts::login::{self, LoginInput, LoginOutcome};
use crate::accounts::{AccountError, mfa, recovery};
use crate::auth::cookies::{self, CSRF_COOKIE, CSRF_HEADER};
use crate::config::to_time;
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::principal::{Authenticated, Principal, origin_allowed};
use crate::limits::{self, Limit};
use crate::state::AppState;

/// The language switch's cookie.
pub const LANG_COOKIE: &str = "carrel_lang";

/// What the layout shows on every page.
#[derive(Debug)]
pub struct PageCtx {
    pub lang: Lang,
    pub t: &'static Texts,
    pub csrf: String,
    /// The signed-in caller's name.
    pub user: Option<String>,
    pub staff: bool,
    /// The caller is an administrator (the navigation links `/admin`).
    pub admin: bool,
    pub css: String,
    /// This page's path and query (where the language switch comes back to).
    pub here: String,
}

impl PageCtx {
    pub fn signed_in_as(&self, name: &str) -> String {
        Lang::fill(self.t.signed_in_as, name)
    }

    pub fn langs(&self) -> &'static [Lang] {
        &Lang::ALL
    }
}

/// One page request: its language, its caller (if signed in), the CSRF token
/// its forms carry, and the cookies the response must set.
#[derive(Debug)]
pub struct Web {
    pub lang: Lang,
    pub principal: Option<Principal>,
    pub csrf: String,
    pub here: String,
    /// The cookies the request carried.
    incoming: CookieJar,
    /// The cookies the response sets.
    jar: CookieJar,
    secure: bool,
}

fn language_of(parts: &Parts, jar: &CookieJar) -> Lang {
    jar.get(LANG_COOKIE)
        .and_then(|c| Lang::from_code(c.value()))
        .or_else(|| {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map(Lang::negotiate)
        })
        .unwrap_or(Lang::En)
}

impl Web {
    /// For a GET: the caller is whoever the session cookie names (none if it
    /// is missing, expired or revoked).
    pub async fn load(state: &AppState, parts: &mut Parts) -> Web {
        let principal = crate::http::principal::optional(parts, state).await;
        Self::with(state, parts, principal)
    }

    fn with(state: &AppState, parts: &Parts, principal: Option<Principal>) -> Web {
        let incoming = CookieJar::from_headers(&parts.headers);
        let lang = language_of(parts, &incoming);
        let secure = state.config.secure_cookies();
        let here = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let (csrf, jar) = match &principal {
            // The token bound to the session, as set by the login.
            Some(me) => (
                carrel_crypto::csrf_token(&state.secrets, me.session_id),
                CookieJar::new(),
            ),
            None => match incoming.get(CSRF_COOKIE).map(|c| c.value().to_owned()) {
                Some(token) if !token.is_empty() => (token, CookieJar::new()),
                _ => {
                    let token = carrel_crypto::OpaqueToken::generate().as_str().to_owned();
                    let jar = cookies::set_csrf_cookie(
                        CookieJar::new(),
                        secure,
                        token.clone(),
                        to_time(state.config.refresh_token_ttl),
                    );
                    (token, jar)
                }
            },
        };
        Web {
            lang,
            principal,
            csrf,
            here,
            incoming,
            jar,
            secure,
        }
    }

    /// A form POST of a signed-in caller ([`Web::form`] with `signed_in`):
    /// the page, the form and the caller.
    pub async fn signed_in_form<T: DeserializeOwned>(
        state: &AppState,
        request: Request,
    ) -> Result<(Web, T, Principal), Response> {
        let (web, form) = Self::form::<T>(state, request, true).await?;
        match web.principal.clone() {
            Some(me) => Ok((web, form, me)),
            None => Err(web.to_login()),
        }
    }

    /// A `multipart/form-data` POST of a signed-in caller (a file upload):
    /// its first field must be the `csrf` token, checked as [`Web::form`]
    /// checks it for a signed-in caller; the rest of the body is left to
    /// read. The page, the caller and the remaining fields.
    pub async fn signed_in_multipart(
        state: &AppState,
        request: Request,
    ) -> Result<(Web, Principal, axum::extract::Multipart), Response> {
        use axum::extract::FromRequest as _;
        let (mut parts, body) = request.into_parts();
        let mut upload = Request::new(body);
        *upload.headers_mut() = parts.headers.clone();
        // The route's body limit (the upload's own limit is enforced while
        // the file streams).
        *upload.extensions_mut() = parts.extensions.clone();
        let refused = |parts: &Parts| {
            let web = Self::with(state, parts, None);
            web.problem(StatusCode::FORBIDDEN, web.t().error_csrf)
        };
        let Ok(mut multipart) = axum::extract::Multipart::from_request(upload, state).await else {
            return Err(refused(&parts));
        };
        let token = match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("csrf") => {
                field.text().await.unwrap_or_default()
            }
            _ => return Err(refused(&parts)),
        };
        match HeaderValue::from_str(&token) {
            Ok(value) => {
                parts.headers.insert(CSRF_HEADER, value);
            }
            Err(_) => return Err(refused(&parts)),
        }
        match Authenticated::from_request_parts(&mut parts, state).await {
            Ok(Authenticated(me)) => {
                Ok((Self::with(state, &parts, Some(me.clone())), me, multipart))
            }
            Err(error) => Err(Self::with(state, &parts, None).refused(&error)),
        }
    }

    /// Reads a form POST and checks its CSRF token. With `signed_in`, the
    /// caller must have a live session and the token is checked by the API's
    /// own cookie-mode check (equal to the cookie, bound to the session, no
    /// foreign `Origin`); otherwise by a double submit against the cookie and
    /// the same `Origin` rule. A refusal is a finished page.
    pub async fn form<T: DeserializeOwned>(
        state: &AppState,
        request: Request,
        signed_in: bool,
    ) -> Result<(Web, T), Response> {
        let (mut parts, body) = request.into_parts();
        // After a POST "this page" is the form's page (the referrer, sent under
        // `same-origin`), not the action's: the language switch and the way
        // back from the sign-in page go there.
        let back = parts
            .headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .filter(|u| u.origin().ascii_serialization() == state.config.own_origin())
            .map_or_else(
                || "/".to_owned(),
                |u| {
                    let mut path = u.path().to_owned();
                    if let Some(q) = u.query() {
                        path.push('?');
                        path.push_str(q);
                    }
                    path
                },
            );
        parts.uri = back.parse().unwrap_or_default();
        let bytes = match axum::body::to_bytes(body, state.config.body_max_bytes).await {
            Ok(bytes) => bytes,
            Err(_) => {
                let web = Self::with(state, &parts, None);
                return Err(web.problem(StatusCode::PAYLOAD_TOO_LARGE, web.t().error_invalid));
            }
        };
        let token = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        // The field stands for the API's header, so the API's check applies.
        if let Ok(value) = HeaderValue::from_str(&token) {
            parts.headers.insert(CSRF_HEADER, value);
        }
        let principal = if signed_in {
            match Authenticated::from_request_parts(&mut parts, state).await {
                Ok(Authenticated(me)) => Some(me),
                Err(error) => return Err(Self::with(state, &parts, None).refused(&error)),
            }
        } else {
            let jar = CookieJar::from_headers(&parts.headers);
            let cookie = jar
                .get(CSRF_COOKIE)
                .map(|c| c.value().to_owned())
                .unwrap_or_default();
            let ok = !token.is_empty()
                && carrel_crypto::constant_time_eq(token.as_bytes(), cookie.as_bytes())
                && origin_allowed(state, &parts.headers);
            if !ok {
                let web = Self::with(state, &parts, None);
                return Err(web.problem(StatusCode::FORBIDDEN, web.t().error_csrf));
            }
            crate::http::principal::optional(&mut parts, state).await
        };
        let web = Self::with(state, &parts, principal);
        match serde_urlencoded::from_bytes::<T>(&bytes) {
            Ok(form) => Ok((web, form)),
            Err(_) => Err(web.problem(StatusCode::BAD_REQUEST, web.t().error_invalid)),
        }
    }

    pub fn t(&self) -> &'static Texts {
        self.lang.texts()
    }

    /// The layout's context.
    pub fn page(&self) -> PageCtx {
        PageCtx {
            lang: self.lang,
            t: self.t(),
            csrf: self.csrf.clone(),
            user: self.principal.as_ref().map(|p| {
                p.user
                    .full_name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| p.user.username.clone())
            }),
            staff: self.principal.as_ref().is_some_and(Principal::is_staff),
            admin: self
                .principal
                .as_ref()
                .is_some_and(|p| p.role == carrel_core::roles::Role::Admin),
            css: super::assets::stylesheet_url(),
            here: self.here.clone(),
        }
    }

    /// Renders a page; the response sets the cookies this request needs.
    pub fn render(&self, status: StatusCode, template: &impl Template) -> Response {
        (self.jar.clone(), html(status, template)).into_response()
    }

    /// A page with one message (`alert` for a problem).
    pub fn message(&self, status: StatusCode, heading: &str, text: &str, alert: bool) -> Response {
        let t = self.t();
        self.render(
            status,
            &MessagePage {
                page: self.page(),
                heading: heading.to_owned(),
                text: text.to_owned(),
                alert,
                link_href: "/".to_owned(),
                link_text: t.back_to_catalog.to_owned(),
            },
        )
    }

    pub fn problem(&self, status: StatusCode, text: &str) -> Response {
        self.message(status, self.t().error_title, text, true)
    }

    /// The page for an error from a use case, with its status.
    pub fn api_problem(&self, error: &ApiError) -> Response {
        self.problem(error.status(), &self.describe(error))
    }

    /// What went wrong, in the page's language, naming the fields at fault.
    pub fn describe(&self, error: &ApiError) -> String {
        let mut text = self.lang.error(error.code()).to_owned();
        if let Some(serde_json::Value::Object(fields)) = error.detail("fields") {
            if fields.contains_key("token") {
                return self.t().error_token.to_owned();
            }
            let names: Vec<&str> = fields.keys().map(String::as_str).collect();
            text = format!("{text} ({})", names.join(", "));
        }
        if let Some(serde_json::Value::Array(violations)) = error.detail("violations") {
            let reasons: Vec<&str> = violations
                .iter()
                .filter_map(|v| v["message"].as_str())
                .collect();
            text = format!("{text} {}", reasons.join(" "));
        }
        if error.code() == ErrorCode::Forbidden && error.detail("mfa_enrolment_required").is_some()
        {
            return self.t().error_mfa_setup.to_owned();
        }
        text
    }

    /// A page refused by the session check: no session → the sign-in page;
    /// a session that must enrol in two-step verification first → its setup
    /// page; anything else → the problem.
    fn refused(&self, error: &ApiError) -> Response {
        if error.code() == ErrorCode::Unauthorized {
            self.to_login()
        } else if error.detail("mfa_enrolment_required").is_some() {
            (self.jar.clone(), see_other("/account/mfa")).into_response()
        } else {
            self.api_problem(error)
        }
    }

    /// Off to the sign-in page, coming back here afterwards.
    pub fn to_login(&self) -> Response {
        let next: String = form_urlencoded::byte_serialize(self.here.as_bytes()).collect();
        (self.jar.clone(), see_other(&format!("/login?next={next}"))).into_response()
    }

    /// A redirect that keeps the cookies this request set.
    pub fn redirect(self, location: &str) -> Response {
        (self.jar, see_other(location)).into_response()
    }

    /// The value of a cookie the request carried.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.incoming.get(name).map(|c| c.value().to_owned())
    }

    /// A long-lived preference cookie of the pages (HttpOnly, SameSite=Lax).
    pub fn remember(&mut self, name: &'static str, value: String) {
        let cookie = Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(time::Duration::days(365))
            .build();
        self.add_cookie(cookie);
    }

    fn add_cookie(&mut self, cookie: Cookie<'static>) {
        self.jar = std::mem::take(&mut self.jar).add(cookie);
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    page: PageCtx,
    heading: String,
    text: String,
    alert: bool,
    link_href: String,
    link_text: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    page: PageCtx,
    next: String,
    username: String,
    notice: Option<String>,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage {
    page: PageCtx,
    next: String,
    mfa_token: String,
    problem: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_page(
    State(state): State<AppState>,
    Query(query): Query<NextQuery>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let web = Web::load(&state, &mut parts).await;
    let next = local_path(query.next.as_deref().unwrap_or("/account"));
    web.render(
        StatusCode::OK,
        &LoginPage {
            page: web.page(),
            next,
            username: String::new(),
            notice: None,
            problem: None,
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: SecretString,
    #[serde(default)]
    next: String,
}

/// The password step, exactly as `POST /api/v1/auth/login` with cookies does
/// it (same limits, lockout and audit); an account with MFA gets the code step.
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (mut web, form) = match Web::form::<LoginForm>(&state, request, false).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let next = after_sign_in(&form.next);
    let input = LoginInput {
        identifier: form.username.clone(),
        password: form.password,
        device_name: None,
        use_cookies: true,
    };
    let outcome = match login::admit(&state, &client).await {
        Ok(admitted) => login::login(&state, &client, admitted, input).await,
        Err(refused) => Err(refused),
    }
    .map_err(ApiError::from);
    match outcome {
        Ok(LoginOutcome::Tokens { tokens, .. }) => {
            let (jar, _) = cookies::start_session(&state, std::mem::take(&mut web.jar), tokens);
            web.jar = jar;
            web.redirect(&next)
        }
        Ok(LoginOutcome::MfaRequired { mfa_token }) => web.render(
            StatusCode::OK,
            &MfaPage {
                page: web.page(),
                next,
                mfa_token,
                problem: None,
            },
        ),
        Err(error) => web.render(
            error.status(),
            &LoginPage {
                page: web.page(),
                next,
                username: form.username,
                notice: None,
                problem: Some(web.describe(&error)),
            },
        ),
    }
}

#[derive(Deserialize)]
pub struct MfaForm {
    mfa_token: String,
    code: String,
    recovery: Option<String>,
    #[serde(default)]
    next: String,
}

/// The code step (as `POST /api/v1/auth/mfa/verify`): a TOTP code or, when
/// ticked, a recovery code.
pub async fn login_mfa(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (mut web, form) = match Web::form::<MfaForm>(&state, request, false).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let next = after_sign_in(&form.next);
    let recovery = form.recovery.is_some();
    let code = form.code.trim();
    let outcome = match limits::enforce(&state, Limit::MfaVerify, &client.ip_key()).await {
        Ok(()) => mfa::verify(
            &state,
            &client,
            &form.mfa_token,
            (!recovery).then_some(code),
            recovery.then_some(code),
        )
        .await
        .map_err(ApiError::from),
        Err(refused) => Err(ApiError::from(refused)),
    };
    match outcome {
        Ok((tokens, _)) => {
            let (jar, _) = cookies::start_session(&state, std::mem::take(&mut web.jar), tokens);
            web.jar = jar;
            web.redirect(&next)
        }
        // The challenge is gone (used, expired, out of attempts): start again.
        Err(error) if error.code() == ErrorCode::Unauthorized => web.render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                page: web.page(),
                next,
                username: String::new(),
                notice: None,
                problem: Some(web.t().error_sign_in.to_owned()),
            },
        ),
        Err(error) => web.render(
            error.status(),
            &MfaPage {
                page: web.page(),
                next,
                mfa_token: form.mfa_token,
                problem: Some(web.describe(&error)),
            },
        ),
    }
}

#[derive(Deserialize)]
pub struct EmptyForm {}

/// Signs out (as `POST /api/v1/auth/logout`) and clears the cookies.
pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    sign_out(&state, &client, request, false).await
}

/// `POST /logout-all`: ends every session of the account, on every device
/// (as `POST /api/v1/auth/logout-all`), then signs this browser out.
pub async fn logout_all(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    sign_out(&state, &client, request, true).await
}

/// Ends this session (or, `everywhere`, every session of the account) and
/// clears the cookies.
async fn sign_out(
    state: &AppState,
    client: &ClientInfo,
    request: Request,
    everywhere: bool,
) -> Response {
    let (web, _) = match Web::form::<EmptyForm>(state, request, true).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let Some(me) = web.principal.clone() else {
        return web.to_login();
    };
    let ended = if everywhere {
        crate::accounts::sessions::revoke_all(state, client, &me)
            .await
            .map(drop)
            .map_err(ApiError::from)
    } else {
        login::logout(state, client, &me)
            .await
            .map_err(ApiError::from)
    };
    if let Err(error) = ended {
        return web.api_problem(&error);
    }
    // Every session cookie expires; the next page hands out a fresh CSRF cookie.
    let jar = cookies::clear_session_cookies(CookieJar::new(), web.secure);
    (jar, see_other("/")).into_response()
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    page: PageCtx,
    email: String,
    username: String,
    full_name: String,
    problem: Option<String>,
}

pub async fn register_page(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let web = Web::load(&state, &mut parts).await;
    web.render(
        StatusCode::OK,
        &RegisterPage {
            page: web.page(),
            email: String::new(),
            username: String::new(),
            full_name: String::new(),
            problem: None,
        },
    )
}

#[derive(Deserialize)]
pub struct RegisterForm {
    email: String,
    username: String,
    password: SecretString,
    #[serde(default)]
    full_name: String,
}

/// Registers a patron (as `POST /api/v1/auth/register`: same limit, same
/// answer whether or not the address is taken).
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form) = match Web::form::<RegisterForm>(&state, request, false).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let full_name = Some(form.full_name.trim()).filter(|n| !n.is_empty());
    let outcome = match limits::enforce(&state, Limit::Register, &client.ip_key()).await {
        Ok(()) => recovery::register(
            &state,
            &client,
            &form.email,
            &form.username,
            form.password,
            full_name,
        )
        .await
        .map_err(ApiError::from),
        Err(refused) => Err(ApiError::from(refused)),
    };
    match outcome {
        Ok(()) => {
            let t = web.t();
            web.message(StatusCode::OK, t.register_title, t.register_done, false)
        }
        Err(error) => web.render(
            error.status(),
            &RegisterPage {
                page: web.page(),
                email: form.email,
                username: form.username,
                full_name: form.full_name,
                problem: Some(web.describe(&error)),
            },
        ),
    }
}

/// A one-field form: confirm an address, ask for a reset link, set a password.
#[derive(Template)]
#[template(path = "token_form.html")]
struct TokenFormPage {
    page: PageCtx,
    heading: String,
    intro: Option<String>,
    action: &'static str,
    token: Option<String>,
    ask_email: bool,
    ask_password: bool,
    button: String,
    problem: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The link in the verification email lands here. Opening it changes nothing
/// (mail scanners follow links): the button confirms.
pub async fn verify_page(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let web = Web::load(&state, &mut parts).await;
    let t = web.t();
    web.render(
        StatusCode::OK,
        &TokenFormPage {
            page: web.page(),
            heading: t.verify_title.to_owned(),
            intro: None,
            action: "/verify-email",
            token: Some(query.token.unwrap_or_default()),
            ask_email: false,
            ask_password: false,
            button: t.verify_button.to_owned(),
            problem: None,
        },
    )
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
}

pub async fn verify(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form) = match Web::form::<TokenForm>(&state, request, false).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    match recovery::verify_email(&state, &client, &form.token).await {
        Ok(()) => web.message(StatusCode::OK, t.verify_title, t.verify_done, false),
        Err(error) => web.token_problem(error),
    }
}

impl Web {
    fn token_problem(&self, error: AccountError) -> Response {
        let error = ApiError::from(error);
        self.problem(error.status(), &self.describe(&error))
    }
}

pub async fn forgot_page(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let web = Web::load(&state, &mut parts).await;
    let t = web.t();
    web.render(
        StatusCode::OK,
        &TokenFormPage {
            page: web.page(),
            heading: t.forgot_title.to_owned(),
            intro: Some(t.forgot_intro.to_owned()),
            action: "/forgot-password",
            token: None,
            ask_email: true,
            ask_password: false,
            button: t.forgot_button.to_owned(),
            problem: None,
        },
    )
}

#[derive(Deserialize)]
pub struct EmailForm {
    email: String,
}

/// As `POST /api/v1/auth/password/forgot`: same limit, same answer either way.
pub async fn forgot(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form) = match Web::form::<EmailForm>(&state, request, false).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    if let Err(refused) = limits::enforce(&state, Limit::PasswordForgot, &client.ip_key()).await {
        return web.api_problem(&ApiError::from(refused));
    }
    let t = web.t();
    match recovery::forgot_password(&state, &client, &form.email).await {
        Ok(()) => web.message(StatusCode::OK, t.forgot_title, t.forgot_done, false),
        Err(error) => web.token_problem(error),
    }
}

pub async fn reset_page(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let web = Web::load(&state, &mut parts).await;
    let t = web.t();
    web.render(
        StatusCode::OK,
        &TokenFormPage {
            page: web.page(),
            heading: t.reset_title.to_owned(),
            intro: None,
            action: "/reset-password",
            token: Some(query.token.unwrap_or_default()),
            ask_email: false,
            ask_password: true,
            button: t.reset_button.to_owned(),
            problem: None,
        },
    )
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    new_password: SecretString,
}

/// As `POST /api/v1/auth/password/reset`; a password the policy refuses
/// shows the form again with the reasons.
pub async fn reset(
    State(state): State<AppState>,
    client: ClientInfo,
    request: Request,
) -> Response {
    let (web, form) = match Web::form::<ResetForm>(&state, request, false).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let t = web.t();
    match recovery::reset_password(&state, &client, &form.token, form.new_password).await {
        Ok(()) => web.message(StatusCode::OK, t.reset_title, t.reset_done, false),
        Err(error @ (AccountError::PasswordPolicy(_) | AccountError::InvalidFields(_))) => {
            let error = ApiError::from(error);
            web.render(
                error.status(),
                &TokenFormPage {
                    page: web.page(),
                    heading: t.reset_title.to_owned(),
                    intro: None,
                    action: "/reset-password",
                    token: Some(form.token),
                    ask_email: false,
                    ask_password: true,
                    button: t.reset_button.to_owned(),
                    problem: Some(web.describe(&error)),
                },
            )
        }
        Err(error) => web.token_problem(error),
    }
}

#[derive(Deserialize)]
pub struct LanguageForm {
    lang: String,
    #[serde(default)]
    next: String,
}

/// The language switch: a year-long cookie, then back to the page.
pub async fn set_language(State(state): State<AppState>, request: Request) -> Response {
    let (mut web, form) = match Web::form::<LanguageForm>(&state, request, false).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    let Some(lang) = Lang::from_code(&form.lang) else {
        return web.problem(StatusCode::BAD_REQUEST, web.t().error_invalid);
    };
    web.remember(LANG_COOKIE, lang.code().to_owned());
    let next = local_path(&form.next);
    web.redirect(&next)
}

/// A signed-in caller for a GET page, or the way to the sign-in page.
pub async fn signed_in(state: &AppState, request: Request) -> Result<Web, Response> {
    let (mut parts, _) = request.into_parts();
    match Authenticated::from_request_parts(&mut parts, state).await {
        Ok(Authenticated(me)) => Ok(Web::with(state, &parts, Some(me))),
        Err(error) => Err(Web::with(state, &parts, None).refused(&error)),
    }
}

/// Where a sign-in goes on: the page asked for (on this site), else the account.
fn after_sign_in(next: &str) -> String {
    local_path(if next.is_empty() { "/account" } else { next })
}

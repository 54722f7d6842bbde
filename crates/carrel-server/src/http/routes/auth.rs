//! `/api/v1/auth`: registration, login (JSON or OAuth2 form, bearer or cookies),
//! refresh, logout, sessions, password flows, CSRF; plus the JWKS document.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::accounts::login::{self, LoginInput, LoginOutcome};
use crate::accounts::{mfa, recovery, sessions};
use crate::auth::cookies::{self, REFRESH_COOKIE};
use crate::auth::tokens::{self, IssuedTokens};
use crate::config::to_time;
use crate::http::client::ClientInfo;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Json, Query, body_rejection, parse_json};
use crate::http::pagination::{self, Page};
use crate::http::principal::{Authenticated, check_csrf, unauthorized};
use crate::limits::{self, Limit};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(change_password))
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(csrf))
        .routes(routes!(mfa_setup))
        .routes(routes!(mfa_confirm))
        .routes(routes!(mfa_disable))
        .routes(routes!(mfa_verify))
}

pub fn well_known_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(jwks))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: &'static str,
}

fn accepted(message: &'static str) -> (StatusCode, axum::Json<Message>) {
    (StatusCode::ACCEPTED, axum::Json(Message { message }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    pub full_name: Option<String>,
}

/// Registers a patron account and sends a verification email. The answer is the
/// same whether or not the email or username is taken.
#[utoipa::path(post, path = "/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 202, body = Message), (status = 422, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<RegisterRequest>,
) -> Result<impl IntoResponse, ApiError> {
    limits::enforce(&state, Limit::Register, &client.ip_key()).await?;
    recovery::register(
        &state,
        &client,
        &req.email,
        &req.username,
        req.password,
        req.full_name.as_deref(),
    )
    .await?;
    Ok(accepted(
        "if the details can be used, a verification email is on its way",
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub token: String,
}

/// Confirms an email address.
#[utoipa::path(post, path = "/verify-email", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = Message), (status = 400, body = ErrorBody)))]
async fn verify_email(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<TokenRequest>,
) -> Result<axum::Json<Message>, ApiError> {
    recovery::verify_email(&state, &client, &req.token).await?;
    Ok(axum::Json(Message {
        message: "email address verified",
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    pub email: String,
}

/// Sends a new verification email (always 202). Limited per client IP and per
/// email address typed (whether or not it belongs to an account), so nobody
/// can flood one mailbox.
#[utoipa::path(post, path = "/resend-verification", tag = "auth", request_body = EmailRequest,
    responses((status = 202, body = Message), (status = 429, body = ErrorBody)))]
async fn resend_verification(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<EmailRequest>,
) -> Result<impl IntoResponse, ApiError> {
    limits::enforce(&state, Limit::ResendVerification, &client.ip_key()).await?;
    // Keyed by a MAC of the normalised address, so the limiter (Redis) never
    // stores addresses.
    let typed: String = req.email.trim().chars().take(254).collect();
    let address = state.secrets.mac(
        "rate-limit-email",
        carrel_core::identity::email_key(&typed).as_bytes(),
    );
    let address: String = address[..16].iter().map(|b| format!("{b:02x}")).collect();
    limits::enforce(
        &state,
        Limit::ResendVerification,
        &format!("email:{address}"),
    )
    .await?;
    recovery::resend_verification(&state, &req.email).await?;
    Ok(accepted(
        "if the address needs verifying, an email is on its way",
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The username or the email address.
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    pub device_name: Option<String>,
    #[serde(default)]
    pub use_cookies: bool,
}

/// The OAuth2 password flow's form body (used by the docs UI's Authorize button).
#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: SecretString,
    #[allow(dead_code)]
    grant_type: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
    #[allow(dead_code)]
    client_id: Option<String>,
    #[allow(dead_code)]
    client_secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
    pub session_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CookieLoginResponse {
    pub csrf_token: String,
    pub expires_in: i64,
    pub session_id: Uuid,
}

fn token_response(tokens: IssuedTokens) -> Response {
    let body = TokenResponse {
        access_token: tokens.access_token,
        token_type: "bearer",
        expires_in: tokens.expires_in,
        refresh_token: tokens.refresh_token,
        refresh_expires_in: tokens.refresh_expires_in,
        session_id: tokens.session_id,
    };
    axum::Json(body).into_response()
}

fn cookie_response(state: &AppState, jar: CookieJar, tokens: IssuedTokens) -> Response {
    let (expires_in, session_id) = (tokens.expires_in, tokens.session_id);
    let (jar, csrf) = cookies::start_session(state, jar, tokens);
    let body = CookieLoginResponse {
        csrf_token: csrf,
        expires_in,
        session_id,
    };
    (jar, axum::Json(body)).into_response()
}

/// Reads the JSON body or the OAuth2 form body.
async fn login_request(request: Request, state: &AppState) -> Result<LoginRequest, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        let form: LoginForm = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ApiError::invalid_fields([("body".to_owned(), e.to_string())]))?;
        return Ok(LoginRequest {
            username: form.username,
            password: form.password,
            device_name: None,
            use_cookies: false,
        });
    }
    let Json(req) = Json::<LoginRequest>::from_request(request, state).await?;
    Ok(req)
}

/// Logs in with a username or email and a password: a token pair, or cookies
/// with `use_cookies`. Every failure is the same 401 `INVALID_CREDENTIALS`.
#[utoipa::path(post, path = "/login", tag = "auth", request_body(content((LoginRequest = "application/json"), (LoginRequest = "application/x-www-form-urlencoded"))),
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    jar: CookieJar,
    request: Request,
) -> Result<Response, ApiError> {
    let admitted = login::admit(&state, &client).await?;
    let req = login_request(request, &state).await?;
    let use_cookies = req.use_cookies;
    let input = LoginInput {
        identifier: req.username,
        password: req.password,
        device_name: req.device_name,
        use_cookies,
    };
    match login::login(&state, &client, admitted, input).await? {
        LoginOutcome::Tokens { tokens, .. } if use_cookies => {
            Ok(cookie_response(&state, jar, tokens))
        }
        LoginOutcome::Tokens { tokens, .. } => Ok(token_response(tokens)),
        LoginOutcome::MfaRequired { mfa_token } => Ok(axum::Json(MfaRequiredResponse {
            mfa_required: true,
            mfa_token,
            methods: ["totp", "recovery_code"],
        })
        .into_response()),
    }
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: Option<String>,
}

/// Exchanges a refresh token for a new pair (the old one dies). In cookie mode:
/// an empty body, the refresh cookie and `X-CSRF-Token`. Presenting an
/// already-exchanged token revokes the whole session.
#[utoipa::path(post, path = "/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    jar: CookieJar,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    limits::enforce(&state, Limit::Refresh, &client.ip_key()).await?;
    let req: RefreshRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshRequest::default()
    } else {
        parse_json(&body)?
    };
    if let Some(token) = req.refresh_token {
        let tokens = tokens::exchange_refresh_token(&state, &token, &client).await?;
        return Ok(token_response(tokens));
    }
    let token = jar
        .get(REFRESH_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    // CSRF is checked against the session the cookie belongs to, before the token is spent.
    let session_id = state
        .store
        .refresh_token_session(*carrel_crypto::TokenHash::of(&token).as_bytes())
        .await?
        .ok_or_else(unauthorized)?;
    check_csrf(
        &state,
        &axum::http::Method::POST,
        &headers,
        &jar,
        session_id,
    )?;
    let tokens = tokens::exchange_refresh_token(&state, &token, &client).await?;
    Ok(cookie_response(&state, jar, tokens))
}

/// Ends the current session; its access token stops working at once.
#[utoipa::path(post, path = "/logout", tag = "auth", security(("bearer" = [])), responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    jar: CookieJar,
    Authenticated(me): Authenticated,
) -> Result<Response, ApiError> {
    login::logout(&state, &client, &me).await?;
    Ok((
        cookies::clear_session_cookies(jar, state.config.secure_cookies()),
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

/// Ends every session of the caller.
#[utoipa::path(post, path = "/logout-all", tag = "auth", security(("bearer" = [])), responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout_all(
    State(state): State<AppState>,
    client: ClientInfo,
    jar: CookieJar,
    Authenticated(me): Authenticated,
) -> Result<Response, ApiError> {
    crate::accounts::sessions::revoke_all(&state, &client, &me).await?;
    Ok((
        cookies::clear_session_cookies(jar, state.config.secure_cookies()),
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub device_name: Option<String>,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    pub current: bool,
}

/// `GET /sessions` takes `limit` and `cursor` only; any other parameter is a 400.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionListParams {
    /// 1..=100, default 20.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The caller's live sessions, newest first.
#[utoipa::path(get, path = "/sessions", tag = "auth", security(("bearer" = [])), params(SessionListParams),
    responses((status = 200, body = Page<SessionView>), (status = 400, body = ErrorBody)))]
async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(me): Authenticated,
    Query(params): Query<SessionListParams>,
) -> Result<axum::Json<Page<SessionView>>, ApiError> {
    let limit = pagination::limit(params.limit)?;
    let before = pagination::decode_cursor(params.cursor.as_deref())?;
    // Newest first by (created_at, id); a user has few live sessions.
    let sessions: Vec<_> = sessions::list(&state, &me)
        .await?
        .into_iter()
        .filter(|s| before.is_none_or(|position| (s.created_at, s.id) < position))
        .take(limit as usize + 1)
        .collect();
    Ok(axum::Json(pagination::paginate(
        sessions,
        limit,
        |s| (s.created_at, s.id),
        |s| SessionView {
            current: s.id == me.session_id,
            id: s.id,
            device_name: s.device_name,
            user_agent: s.user_agent,
            ip_address: s.ip_address,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
        },
    )))
}

/// Revokes one of the caller's sessions (someone else's is 404).
#[utoipa::path(delete, path = "/sessions/{id}", tag = "auth", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_session(
    State(state): State<AppState>,
    client: ClientInfo,
    Authenticated(me): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    sessions::revoke(&state, &client, &me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// Changes the password; every other session is revoked.
#[utoipa::path(post, path = "/password/change", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Authenticated(me): Authenticated,
    Json(req): Json<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    recovery::change_password(
        &state,
        &client,
        me.user_id,
        me.session_id,
        req.current_password,
        req.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Emails a single-use reset link when the account exists (always 202).
#[utoipa::path(post, path = "/password/forgot", tag = "auth", request_body = EmailRequest, responses((status = 202, body = Message)))]
async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<EmailRequest>,
) -> Result<impl IntoResponse, ApiError> {
    limits::enforce(&state, Limit::PasswordForgot, &client.ip_key()).await?;
    recovery::forgot_password(&state, &client, &req.email).await?;
    Ok(accepted(
        "if an account uses this address, a reset link is on its way",
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub token: String,
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// Sets a new password with a reset (or invitation) token; all sessions end.
#[utoipa::path(post, path = "/password/reset", tag = "auth", request_body = ResetPasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Json(req): Json<ResetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    recovery::reset_password(&state, &client, &req.token, req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CsrfResponse {
    pub csrf_token: String,
}

/// The CSRF token of the caller's cookie session (and the cookie); without a
/// session, a fresh random token.
#[utoipa::path(get, path = "/csrf", tag = "auth", responses((status = 200, body = CsrfResponse)))]
async fn csrf(
    State(state): State<AppState>,
    jar: CookieJar,
    request: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _) = request.into_parts();
    let token = match crate::http::principal::optional(&mut parts, &state).await {
        Some(me) => carrel_crypto::csrf_token(&state.secrets, me.session_id),
        None => carrel_crypto::OpaqueToken::generate().as_str().to_owned(),
    };
    let jar = cookies::set_csrf_cookie(
        jar,
        state.config.secure_cookies(),
        token.clone(),
        to_time(state.config.refresh_token_ttl),
    );
    Ok((jar, axum::Json(CsrfResponse { csrf_token: token })).into_response())
}

/// The public keys that verify access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, body = Object)))]
async fn jwks(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(state.jwt.jwks())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MfaRequiredResponse {
    pub mfa_required: bool,
    /// Single use, valid for 5 minutes and 5 attempts.
    pub mfa_token: String,
    pub methods: [&'static str; 2],
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpSetupResponse {
    /// Base32, for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code (SVG, generated by the server).
    pub qr_svg: String,
}

/// Starts TOTP enrolment (pending until confirmed).
#[utoipa::path(post, path = "/mfa/totp/setup", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = TotpSetupResponse), (status = 409, body = ErrorBody)))]
async fn mfa_setup(
    State(state): State<AppState>,
    Authenticated(me): Authenticated,
) -> Result<axum::Json<TotpSetupResponse>, ApiError> {
    let setup = mfa::setup(&state, &me).await?;
    Ok(axum::Json(TotpSetupResponse {
        secret: setup.secret,
        otpauth_uri: setup.otpauth_uri,
        qr_svg: setup.qr_svg,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// Ten single-use codes, shown once.
    pub recovery_codes: Vec<String>,
}

/// Confirms TOTP enrolment with a current code; returns the recovery codes once.
#[utoipa::path(post, path = "/mfa/totp/confirm", tag = "auth", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodesResponse), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn mfa_confirm(
    State(state): State<AppState>,
    client: ClientInfo,
    Authenticated(me): Authenticated,
    Json(req): Json<CodeRequest>,
) -> Result<axum::Json<RecoveryCodesResponse>, ApiError> {
    let recovery_codes = mfa::confirm(&state, &client, &me, &req.code).await?;
    Ok(axum::Json(RecoveryCodesResponse { recovery_codes }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableMfaRequest {
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    pub code: String,
}

/// Turns MFA off (needs the password and a current code).
#[utoipa::path(post, path = "/mfa/totp/disable", tag = "auth", security(("bearer" = [])), request_body = DisableMfaRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn mfa_disable(
    State(state): State<AppState>,
    client: ClientInfo,
    Authenticated(me): Authenticated,
    Json(req): Json<DisableMfaRequest>,
) -> Result<StatusCode, ApiError> {
    mfa::disable(&state, &client, &me, req.password, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaVerifyRequest {
    pub mfa_token: String,
    pub code: Option<String>,
    pub recovery_code: Option<String>,
}

/// The second step of a login with MFA: a code or a recovery code.
#[utoipa::path(post, path = "/mfa/verify", tag = "auth", request_body = MfaVerifyRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
async fn mfa_verify(
    State(state): State<AppState>,
    client: ClientInfo,
    jar: CookieJar,
    Json(req): Json<MfaVerifyRequest>,
) -> Result<Response, ApiError> {
    limits::enforce(&state, Limit::MfaVerify, &client.ip_key()).await?;
    if req.code.is_some() == req.recovery_code.is_some() {
        return Err(crate::http::error::field_error(
            "code",
            "send exactly one of code and recovery_code",
        ));
    }
    let (tokens, use_cookies) = mfa::verify(
        &state,
        &client,
        &req.mfa_token,
        req.code.as_deref(),
        req.recovery_code.as_deref(),
    )
    .await?;
    Ok(if use_cookies {
        cookie_response(&state, jar, tokens)
    } else {
        token_response(tokens)
    })
}

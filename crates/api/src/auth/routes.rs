//! `/api/auth/*` and `/api/admin/users/*` (API.md "Auth", "Platform roles").

use axum::body::Bytes;
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use carelog_commands::identity::{Issued, Registration, UserView};
use carelog_domain::user::RegistrationRole;
use carelog_domain::{Role, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::actor::has_requested_with;
use super::cookies::{self, REFRESH_COOKIE};
use super::Authenticated;
use crate::envelope::ApiResponse;
use crate::error::ApiError;
use crate::extract::{Command, Path, RequestMeta};
use crate::openapi::{ErrorBody, SuccessBody};
use crate::state::AppState;

/// The auth and platform-role routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(mfa_challenge))
        .routes(routes!(mfa_enroll))
        .routes(routes!(mfa_verify))
        .routes(routes!(mfa_disable))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(keys))
        .routes(routes!(grant_role))
        .routes(routes!(revoke_role))
}

/// A user as the API shows them.
#[derive(Serialize, ToSchema)]
pub struct UserDto {
    id: Uuid,
    email: String,
    first_name: String,
    last_name: String,
    #[schema(example = json!(["BASE:DOCTOR"]))]
    roles: Vec<String>,
    memberships: Vec<serde_json::Value>,
    mfa_enabled: bool,
}

impl From<UserView> for UserDto {
    fn from(u: UserView) -> Self {
        Self {
            id: u.id.0,
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            roles: u.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            memberships: u.memberships,
            mfa_enabled: u.mfa_enabled,
        }
    }
}

/// `{user}`.
#[derive(Serialize, ToSchema)]
pub struct UserEnvelope {
    user: UserDto,
}

/// A new session.
#[derive(Serialize, ToSchema)]
pub struct SessionDto {
    user: UserDto,
    /// PASETO v4.public access token (15 minutes).
    token: String,
    /// Opaque refresh token, rotated on every use.
    refresh_token: String,
    expires_at: DateTime<Utc>,
}

/// Registration (unknown fields, e.g. `roles`, are refused).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    email: String,
    /// 12–128 characters; common passwords and ones containing the email are refused.
    password: String,
    first_name: String,
    last_name: String,
    #[schema(value_type = String, example = "PATIENT")]
    registration_role: RegistrationRole,
}

/// Email and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

/// The second factor for a login that answered `MFA_REQUIRED`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeBody {
    mfa_token: String,
    /// A 6-digit TOTP code or a recovery code.
    code: String,
}

/// A TOTP code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
}

/// Password and a current code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableMfaBody {
    password: String,
    code: String,
}

/// A refresh token (or none: the `refresh_token` cookie is used).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

/// A platform role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    #[schema(example = "APP:AUDITOR")]
    role: String,
}

/// A TOTP secret, shown once.
#[derive(Serialize, ToSchema)]
pub struct EnrollmentDto {
    secret: String,
    otpauth_uri: String,
}

/// One-time recovery codes, shown once.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesDto {
    recovery_codes: Vec<String>,
}

/// The keys that verify carelog's tokens.
#[derive(Serialize, ToSchema)]
pub struct KeysDto {
    issuer: String,
    audience: String,
    implicit_assertion: String,
    keys: Vec<KeyDto>,
}

/// One verification key.
#[derive(Serialize, ToSchema)]
pub struct KeyDto {
    /// PASERK id (`k4.pid.…`), as in the token footer's `kid`.
    kid: String,
    /// PASERK `k4.public.…`.
    paserk: String,
}

fn ctx(meta: &RequestMeta, method: &Method, path: &MatchedPath) -> carelog_commands::Ctx {
    super::ctx(meta, method.as_str(), Some(path))
}

async fn user_dto(state: &AppState, id: UserId) -> Result<UserDto, ApiError> {
    Ok(state.identity.user_view(id).await?.into())
}

/// A session answer: the envelope plus the two cookies.
async fn session_response(state: &AppState, issued: Issued) -> Result<Response, ApiError> {
    let policy = &state.identity.config().sessions;
    let set = cookies::set(
        &issued,
        policy.access_token.num_seconds(),
        policy.absolute.num_seconds(),
    );
    let dto = SessionDto {
        user: user_dto(state, issued.user_id).await?,
        token: issued.token,
        refresh_token: issued.refresh_token,
        expires_at: issued.expires_at,
    };
    Ok((set, ApiResponse::ok(dto)).into_response())
}

/// Counts login failures per address; refuses addresses over their budget.
fn throttled<T>(state: &AppState, meta: &RequestMeta, result: &Result<T, ApiError>) {
    if matches!(
        result,
        Err(ApiError::Unauthorized(_) | ApiError::AccountLocked { .. })
    ) {
        state.login_throttle.record(meta.ip);
    }
}

fn check_throttle(state: &AppState, meta: &RequestMeta) -> Result<(), ApiError> {
    match state.login_throttle.blocked(meta.ip) {
        Some(retry_after_secs) => Err(ApiError::RateLimited {
            retry_after_secs,
            limit: 100,
            reset_secs: retry_after_secs,
        }),
        None => Ok(()),
    }
}

/// Create an account.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 201, body = SuccessBody<UserEnvelope>), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn register(
    State(state): State<AppState>,
    meta: RequestMeta,
    method: Method,
    path: MatchedPath,
    Command(body): Command<RegisterBody>,
) -> Result<ApiResponse<UserEnvelope>, ApiError> {
    let registration = Registration {
        email: body.email,
        password: body.password,
        first_name: body.first_name,
        last_name: body.last_name,
        role: Some(body.registration_role),
        platform_roles: vec![],
    };
    let user = state
        .identity
        .register(&ctx(&meta, &method, &path), registration)
        .await?;
    Ok(ApiResponse::created(UserEnvelope { user: user.into() }))
}

/// Log in with email and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, body = SuccessBody<SessionDto>), (status = 401, description = "UNAUTHORIZED, or MFA_REQUIRED with details.mfa_token", body = ErrorBody),
              (status = 423, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    meta: RequestMeta,
    method: Method,
    path: MatchedPath,
    Command(body): Command<LoginBody>,
) -> Result<Response, ApiError> {
    check_throttle(&state, &meta)?;
    let result = state
        .identity
        .login(&ctx(&meta, &method, &path), &body.email, &body.password)
        .await
        .map_err(ApiError::from);
    throttled(&state, &meta, &result);
    session_response(&state, result?).await
}

/// Complete a login with the second factor.
#[utoipa::path(post, path = "/api/auth/mfa/challenge", tag = "auth", request_body = ChallengeBody,
    responses((status = 200, body = SuccessBody<SessionDto>), (status = 401, body = ErrorBody), (status = 423, body = ErrorBody)))]
async fn mfa_challenge(
    State(state): State<AppState>,
    meta: RequestMeta,
    method: Method,
    path: MatchedPath,
    Command(body): Command<ChallengeBody>,
) -> Result<Response, ApiError> {
    check_throttle(&state, &meta)?;
    let result = state
        .identity
        .mfa_challenge(&ctx(&meta, &method, &path), &body.mfa_token, &body.code)
        .await
        .map_err(ApiError::from);
    throttled(&state, &meta, &result);
    session_response(&state, result?).await
}

/// Start MFA enrolment: a TOTP secret (RFC 6238, SHA-1, 6 digits, 30 s).
#[utoipa::path(post, path = "/api/auth/mfa/enroll", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = SuccessBody<EnrollmentDto>), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn mfa_enroll(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<ApiResponse<EnrollmentDto>, ApiError> {
    let e = state.identity.mfa_enroll(&auth.ctx, &auth.actor).await?;
    Ok(ApiResponse::ok(EnrollmentDto {
        secret: e.secret,
        otpauth_uri: e.otpauth_uri,
    })
    .no_store())
}

/// Confirm enrolment with a code: MFA on, recovery codes issued.
#[utoipa::path(post, path = "/api/auth/mfa/verify", tag = "auth", security(("bearer" = [])), request_body = CodeBody,
    responses((status = 200, body = SuccessBody<RecoveryCodesDto>), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn mfa_verify(
    State(state): State<AppState>,
    auth: Authenticated,
    Command(body): Command<CodeBody>,
) -> Result<ApiResponse<RecoveryCodesDto>, ApiError> {
    let recovery_codes = state
        .identity
        .mfa_verify(&auth.ctx, &auth.actor, &body.code)
        .await?;
    Ok(ApiResponse::ok(RecoveryCodesDto { recovery_codes }).no_store())
}

/// Turn MFA off (password and a current code required).
#[utoipa::path(post, path = "/api/auth/mfa/disable", tag = "auth", security(("bearer" = [])), request_body = DisableMfaBody,
    responses((status = 200, body = SuccessBody<UserEnvelope>), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn mfa_disable(
    State(state): State<AppState>,
    auth: Authenticated,
    Command(body): Command<DisableMfaBody>,
) -> Result<ApiResponse<UserEnvelope>, ApiError> {
    state
        .identity
        .mfa_disable(&auth.ctx, &auth.actor, &body.password, &body.code)
        .await?;
    let user = user_dto(&state, auth.actor.user_id).await?;
    Ok(ApiResponse::ok(UserEnvelope { user }))
}

/// Exchange a refresh token (body, or the cookie together with `X-Requested-With`) for a
/// new pair; the old one is spent.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body(content = RefreshBody, description = "optional: the refresh_token cookie is used without a body"),
    responses((status = 200, body = SuccessBody<SessionDto>), (status = 401, body = ErrorBody),
              (status = 403, description = "cookie without X-Requested-With", body = ErrorBody)))]
async fn refresh(
    State(state): State<AppState>,
    meta: RequestMeta,
    method: Method,
    path: MatchedPath,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = if body.iter().all(u8::is_ascii_whitespace) {
        let token = cookies::get(&headers, REFRESH_COOKIE)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::Unauthorized("no refresh token".into()))?;
        // A cookie-authenticated write like any other (API.md): a cross-site form could
        // send the cookie, not the header. Checked before the token is spent.
        if !has_requested_with(&headers) {
            return Err(ApiError::Forbidden);
        }
        token
    } else {
        crate::extract::command::parse::<RefreshBody>(&body)?.refresh_token
    };
    let issued = state
        .identity
        .refresh(&ctx(&meta, &method, &path), &token)
        .await?;
    session_response(&state, issued).await
}

/// End the session: its refresh token and access tokens stop working.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn logout(State(state): State<AppState>, auth: Authenticated) -> Result<Response, ApiError> {
    state.identity.logout(&auth.ctx, &auth.actor).await?;
    Ok((cookies::clear(), ApiResponse::<()>::no_content()).into_response())
}

/// The caller's account.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = SuccessBody<UserDto>), (status = 401, body = ErrorBody)))]
async fn me(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<ApiResponse<UserDto>, ApiError> {
    let me = state.identity.me(&auth.actor).await?;
    Ok(ApiResponse::ok(UserDto::from(me)).no_store())
}

/// The public keys that verify carelog's tokens (PASERK k4.public), for other services.
#[utoipa::path(get, path = "/api/auth/keys", tag = "auth", responses((status = 200, body = SuccessBody<KeysDto>)))]
async fn keys(State(state): State<AppState>) -> ApiResponse<KeysDto> {
    let t = state.identity.tokens();
    ApiResponse::ok(KeysDto {
        issuer: t.issuer().to_owned(),
        audience: t.audience().to_owned(),
        implicit_assertion: t.implicit_assertion(),
        keys: t
            .public_keys()
            .into_iter()
            .map(|(kid, paserk)| KeyDto { kid, paserk })
            .collect(),
    })
}

fn platform_role(name: &str) -> Result<Role, ApiError> {
    name.parse::<Role>()
        .ok()
        .filter(|r| r.is_platform())
        .ok_or_else(|| {
            ApiError::validation_fields(
                "role must be SUPER:ADMIN, APP:ADMIN or APP:AUDITOR",
                ["role"],
            )
        })
}

/// Grant a platform role (SUPER:ADMIN only).
#[utoipa::path(post, path = "/api/admin/users/{id}/roles", tag = "admin", security(("bearer" = [])), request_body = RoleBody,
    params(("id" = Uuid, Path, description = "user id")),
    responses((status = 200, body = SuccessBody<UserEnvelope>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn grant_role(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<Uuid>,
    Command(body): Command<RoleBody>,
) -> Result<ApiResponse<UserEnvelope>, ApiError> {
    require_super_admin(&auth)?;
    let role = platform_role(&body.role)?;
    let user = state
        .identity
        .grant_role(&auth.ctx, &auth.actor, UserId(id), role)
        .await?;
    Ok(ApiResponse::ok(UserEnvelope { user: user.into() }))
}

/// Revoke a platform role (SUPER:ADMIN only).
#[utoipa::path(delete, path = "/api/admin/users/{id}/roles/{role}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id"), ("role" = String, Path, description = "e.g. APP:AUDITOR")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_role(
    State(state): State<AppState>,
    auth: Authenticated,
    Path((id, role)): Path<(Uuid, String)>,
) -> Result<ApiResponse<()>, ApiError> {
    require_super_admin(&auth)?;
    let role = platform_role(&role)?;
    state
        .identity
        .revoke_role(&auth.ctx, &auth.actor, UserId(id), role)
        .await?;
    Ok(ApiResponse::no_content())
}

/// The route-level role check (the domain checks again on the account itself).
fn require_super_admin(auth: &Authenticated) -> Result<(), ApiError> {
    if auth.actor.has(Role::SuperAdmin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

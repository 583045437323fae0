//! Identity state that security decisions read: credentials, lockout counters, TOTP
//! steps, recovery codes, sessions and refresh tokens (migrations/0004_identity.sql).
//!
//! These functions take an open transaction: callers change these rows and append the
//! matching events (`EventStore::append_in_tx`) in the same transaction, so the state a
//! decision reads is never behind the log and never ahead of it.

use carelog_domain::{Role, SessionId, UserId};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};

use crate::error::StoreError;

/// A new account's inline row.
pub struct NewUser<'a> {
    /// The account.
    pub user_id: UserId,
    /// Keyed hash of the normalised email.
    pub email_index: &'a [u8],
    /// Argon2id PHC string.
    pub password_hash: &'a str,
    /// Base role, if any.
    pub base_role: Option<Role>,
    /// Platform roles given at creation.
    pub platform_roles: &'a [Role],
}

/// Why a new account could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum NewUserError {
    /// Another account has this email.
    #[error("the email is already registered")]
    EmailTaken,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The credential row of one account, locked for the rest of the transaction.
#[derive(Clone)]
pub struct Credentials {
    /// The account.
    pub user_id: UserId,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Base role.
    pub base_role: Option<Role>,
    /// Platform roles.
    pub platform_roles: Vec<Role>,
    /// Second factor required.
    pub mfa_enabled: bool,
    /// Sealed TOTP secret (in use).
    pub totp_secret: Option<Vec<u8>>,
    /// Sealed TOTP secret (enrolled, not verified).
    pub totp_pending: Option<Vec<u8>>,
    /// Last accepted TOTP step.
    pub totp_last_step: Option<i64>,
    /// Consecutive failures.
    pub failed_logins: i32,
    /// Locks so far.
    pub lock_count: i32,
    /// Locked until then.
    pub locked_until: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// What authenticating a request needs to know about its session, current.
#[derive(Debug, Clone)]
pub struct SessionActor {
    /// Whose session.
    pub user_id: UserId,
    /// Whether it was opened with a second factor.
    pub mfa: bool,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it was last used (to the minute).
    pub last_seen_at: DateTime<Utc>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// The user's roles now (not what the token says).
    pub roles: Vec<Role>,
    /// Whether the account requires a second factor now.
    pub mfa_enabled: bool,
}

/// A session found by its refresh token, locked for the rest of the transaction.
#[derive(Debug, Clone)]
pub struct RefreshSession {
    /// The session.
    pub session_id: SessionId,
    /// Whose.
    pub user_id: UserId,
    /// Opened with a second factor.
    pub mfa: bool,
    /// Start.
    pub created_at: DateTime<Utc>,
    /// Last use.
    pub last_seen_at: DateTime<Utc>,
    /// Revoked.
    pub revoked: bool,
}

fn role_names(roles: &[Role]) -> Vec<String> {
    roles.iter().map(|r| r.as_str().to_owned()).collect()
}

fn parse_roles(base: Option<String>, platform: Vec<String>) -> Vec<Role> {
    // Unknown names cannot be written (the column is only written from `Role`), so they
    // are skipped rather than trusted.
    base.into_iter()
        .chain(platform)
        .filter_map(|r| r.parse().ok())
        .collect()
}

/// Stores a new account; `EmailTaken` if the blind index is already used.
pub async fn insert_user(tx: &mut PgConnection, u: NewUser<'_>) -> Result<(), NewUserError> {
    let result = sqlx::query(include_str!("../sql/identity/user_insert.sql"))
        .bind(u.user_id.0)
        .bind(u.email_index)
        .bind(u.password_hash)
        .bind(u.base_role.map(|r| r.as_str()))
        .bind(role_names(u.platform_roles))
        .execute(&mut *tx)
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("users_email_index_key") => {
            Err(NewUserError::EmailTaken)
        }
        Err(e) => Err(StoreError::from(e).into()),
    }
}

/// The account with this email blind index.
pub async fn user_by_email(
    pool: &PgPool,
    email_index: &[u8],
) -> Result<Option<UserId>, StoreError> {
    let row = sqlx::query(include_str!("../sql/identity/user_by_email.sql"))
        .bind(email_index)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| r.try_get("user_id")).transpose()?.map(UserId))
}

/// Whether an account with this id exists.
pub async fn user_exists(db: impl sqlx::PgExecutor<'_>, user: UserId) -> Result<bool, StoreError> {
    let row = sqlx::query(include_str!("../sql/identity/user_exists.sql"))
        .bind(user.0)
        .fetch_one(db)
        .await?;
    Ok(row.try_get("found")?)
}

/// Locks and reads an account's credentials.
pub async fn lock_credentials(
    tx: &mut PgConnection,
    user: UserId,
) -> Result<Option<Credentials>, StoreError> {
    let Some(r) = sqlx::query(include_str!("../sql/identity/credentials_lock.sql"))
        .bind(user.0)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let base: Option<String> = r.try_get("base_role")?;
    let platform: Vec<String> = r.try_get("platform_roles")?;
    Ok(Some(Credentials {
        user_id: user,
        password_hash: r.try_get("password_hash")?,
        base_role: base.as_deref().and_then(|b| b.parse().ok()),
        platform_roles: parse_roles(None, platform),
        mfa_enabled: r.try_get("mfa_enabled")?,
        totp_secret: r.try_get("totp_secret")?,
        totp_pending: r.try_get("totp_pending")?,
        totp_last_step: r.try_get("totp_last_step")?,
        failed_logins: r.try_get("failed_logins")?,
        lock_count: r.try_get("lock_count")?,
        locked_until: r.try_get("locked_until")?,
    }))
}

/// Writes back a credential row read with [`lock_credentials`].
pub async fn save_credentials(tx: &mut PgConnection, c: &Credentials) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/identity/credentials_save.sql"))
        .bind(c.user_id.0)
        .bind(c.failed_logins)
        .bind(c.lock_count)
        .bind(c.locked_until)
        .bind(c.totp_last_step)
        .bind(&c.totp_pending)
        .bind(&c.totp_secret)
        .bind(c.mfa_enabled)
        .bind(role_names(&c.platform_roles))
        .bind(&c.password_hash)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Replaces an account's recovery codes with these hashes.
pub async fn replace_recovery_codes(
    tx: &mut PgConnection,
    user: UserId,
    hashes: &[[u8; 32]],
) -> Result<(), StoreError> {
    let hashes: Vec<Vec<u8>> = hashes.iter().map(|h| h.to_vec()).collect();
    sqlx::query(include_str!("../sql/identity/recovery_replace.sql"))
        .bind(user.0)
        .bind(hashes)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Spends a recovery code; false if it is unknown or already used.
pub async fn use_recovery_code(
    tx: &mut PgConnection,
    user: UserId,
    hash: &[u8; 32],
) -> Result<bool, StoreError> {
    let row = sqlx::query(include_str!("../sql/identity/recovery_use.sql"))
        .bind(user.0)
        .bind(&hash[..])
        .fetch_optional(&mut *tx)
        .await?;
    Ok(row.is_some())
}

/// Opens a session with its first refresh token (hashed).
pub async fn insert_session(
    tx: &mut PgConnection,
    session: SessionId,
    user: UserId,
    refresh_hash: &[u8; 32],
    mfa: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/identity/session_insert.sql"))
        .bind(session.0)
        .bind(user.0)
        .bind(&refresh_hash[..])
        .bind(mfa)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The session and the user's current roles, for authenticating a request.
pub async fn session_actor(
    pool: &PgPool,
    session: SessionId,
) -> Result<Option<SessionActor>, StoreError> {
    let Some(r) = sqlx::query(include_str!("../sql/identity/session_actor.sql"))
        .bind(session.0)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(SessionActor {
        user_id: UserId(r.try_get("user_id")?),
        mfa: r.try_get("mfa")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        revoked: r.try_get("revoked")?,
        roles: parse_roles(r.try_get("base_role")?, r.try_get("platform_roles")?),
        mfa_enabled: r.try_get("mfa_enabled")?,
    }))
}

/// Records that `session` has now given the second factor.
pub async fn mark_session_mfa(tx: &mut PgConnection, session: SessionId) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/identity/session_mark_mfa.sql"))
        .bind(session.0)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Revokes every live session of `user` but `keep` that never gave a second factor;
/// returns the revoked sessions.
pub async fn revoke_password_only_sessions(
    tx: &mut PgConnection,
    user: UserId,
    keep: SessionId,
) -> Result<Vec<SessionId>, StoreError> {
    let rows = sqlx::query(include_str!(
        "../sql/identity/sessions_revoke_password_only.sql"
    ))
    .bind(user.0)
    .bind(keep.0)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter()
        .map(|r| Ok(SessionId(r.try_get("session_id")?)))
        .collect()
}

/// Records use of a session (at most one write a minute).
pub async fn touch_session(
    pool: &PgPool,
    session: SessionId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(include_str!("../sql/identity/session_touch.sql"))
        .bind(session.0)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// The session whose current refresh token has this hash, locked.
pub async fn session_by_refresh(
    tx: &mut PgConnection,
    refresh_hash: &[u8; 32],
) -> Result<Option<RefreshSession>, StoreError> {
    let Some(r) = sqlx::query(include_str!("../sql/identity/session_by_refresh.sql"))
        .bind(&refresh_hash[..])
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(RefreshSession {
        session_id: SessionId(r.try_get("session_id")?),
        user_id: UserId(r.try_get("user_id")?),
        mfa: r.try_get("mfa")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        revoked: r.try_get("revoked")?,
    }))
}

/// The session a spent refresh token belonged to, if it was ever spent.
pub async fn spent_refresh_session(
    tx: &mut PgConnection,
    refresh_hash: &[u8; 32],
) -> Result<Option<SessionId>, StoreError> {
    let row = sqlx::query(include_str!("../sql/identity/spent_lookup.sql"))
        .bind(&refresh_hash[..])
        .fetch_optional(&mut *tx)
        .await?;
    Ok(row
        .map(|r| r.try_get("session_id"))
        .transpose()?
        .map(SessionId))
}

/// Spends `old` and makes `new` the session's refresh token; false if `old` is no longer current.
pub async fn rotate_refresh(
    tx: &mut PgConnection,
    session: SessionId,
    old: &[u8; 32],
    new: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row = sqlx::query(include_str!("../sql/identity/session_rotate.sql"))
        .bind(session.0)
        .bind(&old[..])
        .bind(&new[..])
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(row.is_some())
}

/// Revokes a session; returns its user if it was live.
pub async fn revoke_session(
    tx: &mut PgConnection,
    session: SessionId,
    reason: &str,
) -> Result<Option<UserId>, StoreError> {
    let row = sqlx::query(include_str!("../sql/identity/session_revoke.sql"))
        .bind(session.0)
        .bind(reason)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(row.map(|r| r.try_get("user_id")).transpose()?.map(UserId))
}

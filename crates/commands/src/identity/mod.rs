//! Identity commands: accounts, logins, second factors, sessions, platform roles.
//!
//! Decisions that must be current (credentials, lockout, TOTP steps, sessions) read and
//! change the inline identity tables under a row lock, and append their events in the
//! same transaction. Personal data (email, names) is only in the sealed events; the
//! database finds an account by the email's blind index.

mod account;
mod error;
mod login;
mod mfa;
mod session;

use std::sync::Arc;

use carelog_crypto::password::{check_password_policy, PasswordHasher};
use carelog_crypto::random::{blind_index, random_token, sha256};
use carelog_crypto::token::{Claims, TokenKeys, TokenPurpose};
use carelog_crypto::Dek;
use carelog_domain::user::lockout::LockoutPolicy;
use carelog_domain::user::session::SessionPolicy;
use carelog_domain::user::{SessionEvent, UserEvent};
use carelog_domain::{Metadata, NewEvent, Role, SessionId, StreamId, StreamVersion, UserId};
use carelog_store::identity::{self as rows, Credentials};
use carelog_store::{AppendRequest, EventStore, Expected};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;
use zeroize::Zeroizing;

pub use account::{Registration, UserView};
pub use error::IdentityError;
pub use mfa::Enrollment;

use crate::context::Ctx;

/// Identity settings.
#[derive(Debug, Clone, Default)]
pub struct IdentityConfig {
    /// Idle and absolute session limits, token lifetimes.
    pub sessions: SessionPolicy,
    /// Failures before lockout and its growth.
    pub lockout: LockoutPolicy,
}

/// A freshly opened or refreshed session: what login answers.
#[derive(Clone, Serialize)]
pub struct Issued {
    /// The account.
    pub user_id: UserId,
    /// The session.
    pub session_id: SessionId,
    /// PASETO v4.public access token.
    pub token: String,
    /// Opaque refresh token (shown once; stored hashed).
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// The identity service. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    store: EventStore,
    hasher: PasswordHasher,
    tokens: TokenKeys,
    cfg: IdentityConfig,
    email_key: Zeroizing<[u8; 32]>,
}

impl Identity {
    /// The identity service over `store`. `system_key` is the system data key: the email
    /// blind-index key is derived from it (so it survives master-key rotation).
    pub fn new(
        store: EventStore,
        tokens: TokenKeys,
        hasher: PasswordHasher,
        cfg: IdentityConfig,
        system_key: &Dek,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                hasher,
                tokens,
                cfg,
                email_key: system_key.subkey(b"carelog-email-index-v1"),
            }),
        }
    }

    /// The token keys (for `GET /api/auth/keys`).
    pub fn tokens(&self) -> &TokenKeys {
        &self.inner.tokens
    }

    /// The settings.
    pub fn config(&self) -> &IdentityConfig {
        &self.inner.cfg
    }

    fn store(&self) -> &EventStore {
        &self.inner.store
    }

    fn email_index(&self, normalized_email: &str) -> [u8; 32] {
        blind_index(&self.inner.email_key, normalized_email)
    }

    /// Runs Argon2id off the async worker threads.
    async fn verify_password(&self, password: &str, phc: Option<String>) -> bool {
        let hasher = self.inner.hasher.clone();
        let password = Zeroizing::new(password.to_owned());
        tokio::task::spawn_blocking(move || match phc {
            Some(phc) => hasher.verify(&password, &phc),
            None => {
                hasher.dummy_verify(&password);
                false
            }
        })
        .await
        .unwrap_or(false)
    }

    /// Checks a new password against the policy and hashes it, off the async worker
    /// threads (both take tens to hundreds of milliseconds).
    async fn check_and_hash_password(
        &self,
        password: &str,
        email: &str,
    ) -> Result<String, IdentityError> {
        let hasher = self.inner.hasher.clone();
        let (password, email) = (Zeroizing::new(password.to_owned()), email.to_owned());
        tokio::task::spawn_blocking(move || {
            check_password_policy(&password, &email).map_err(IdentityError::WeakPassword)?;
            Ok(hasher.hash(&password))
        })
        .await
        .map_err(|_| IdentityError::Conflict("password hashing was interrupted".into()))?
    }

    fn sign(
        &self,
        user: UserId,
        session: SessionId,
        roles: &[Role],
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let policy = &self.inner.cfg.sessions;
        let life = match purpose {
            TokenPurpose::Access => policy.access_token,
            TokenPurpose::Mfa => policy.mfa_token,
        };
        let exp = now + life;
        let claims = Claims {
            sub: user.0,
            sid: session.0,
            jti: Uuid::now_v7(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            purpose,
            iat: now,
            nbf: now,
            exp,
            iss: self.inner.tokens.issuer().to_owned(),
            aud: self.inner.tokens.audience().to_owned(),
        };
        (self.inner.tokens.sign(&claims), exp)
    }

    /// Appends user events in the caller's transaction (nothing if there are none).
    async fn append_user(
        &self,
        tx: &mut PgConnection,
        user: UserId,
        expected: Expected,
        events: Vec<UserEvent>,
        metadata: Metadata,
    ) -> Result<(), IdentityError> {
        let events = events
            .into_iter()
            .map(|e| e.into_new_event(user, metadata.clone()));
        self.append_in_tx(tx, user.stream(), expected, events.collect())
            .await
    }

    /// Appends events of `user`'s session in the caller's transaction.
    async fn append_session(
        &self,
        tx: &mut PgConnection,
        session: SessionId,
        user: UserId,
        expected: Expected,
        events: Vec<SessionEvent>,
        metadata: Metadata,
    ) -> Result<(), IdentityError> {
        let events = events
            .into_iter()
            .map(|e| e.into_new_event(user, metadata.clone()));
        self.append_in_tx(tx, session.stream(), expected, events.collect())
            .await
    }

    async fn append_in_tx(
        &self,
        tx: &mut PgConnection,
        stream: StreamId,
        expected: Expected,
        events: Vec<NewEvent>,
    ) -> Result<(), IdentityError> {
        if events.is_empty() {
            return Ok(());
        }
        let req = AppendRequest {
            stream,
            expected,
            events,
        };
        self.store().append_in_tx(tx, req).await?;
        Ok(())
    }

    /// Opens a session for `cred`'s user (clearing its failure count) and signs its first
    /// access token. Runs inside the login's transaction.
    async fn start_session(
        &self,
        tx: &mut PgConnection,
        ctx: &Ctx,
        cred: &mut Credentials,
        mfa: bool,
    ) -> Result<Issued, IdentityError> {
        let session = SessionId::new_v7();
        let refresh = random_token();
        rows::insert_session(
            tx,
            session,
            cred.user_id,
            &sha256(refresh.as_bytes()),
            mfa,
            ctx.now,
        )
        .await?;
        cred.failed_logins = 0;
        rows::save_credentials(tx, cred).await?;
        let started = SessionEvent::SessionStarted {
            user_id: cred.user_id,
            mfa,
        };
        self.append_session(
            tx,
            session,
            cred.user_id,
            Expected::Exact(StreamVersion::EMPTY),
            vec![started],
            ctx.metadata_for_user(cred.user_id),
        )
        .await?;
        let roles = roles_of(cred);
        let (token, expires_at) =
            self.sign(cred.user_id, session, &roles, TokenPurpose::Access, ctx.now);
        Ok(Issued {
            user_id: cred.user_id,
            session_id: session,
            token,
            refresh_token: refresh,
            expires_at,
        })
    }

    /// Counts a failed password or second factor; locks the account at the threshold.
    /// Returns the error to answer with.
    async fn record_failure(
        &self,
        tx: &mut PgConnection,
        ctx: &Ctx,
        cred: &mut Credentials,
        reason: &str,
    ) -> Result<IdentityError, IdentityError> {
        let policy = &self.inner.cfg.lockout;
        cred.failed_logins += 1;
        let mut events = vec![UserEvent::LoginFailed {
            reason: reason.to_owned(),
        }];
        let mut answer = IdentityError::InvalidCredentials;
        if policy.locks(cred.failed_logins.max(0) as u32) {
            let until = ctx.now + policy.lock_duration(cred.lock_count.max(0) as u32);
            events.push(UserEvent::AccountLocked {
                until,
                failures: cred.failed_logins as u32,
            });
            cred.lock_count += 1;
            cred.failed_logins = 0;
            cred.locked_until = Some(until);
            answer = IdentityError::Locked {
                retry_after: seconds_until(until, ctx.now),
            };
        }
        rows::save_credentials(tx, cred).await?;
        self.append_user(
            tx,
            cred.user_id,
            Expected::Any,
            events,
            ctx.metadata_for_user(cred.user_id),
        )
        .await?;
        Ok(answer)
    }
}

/// The roles on a credential row: base role first.
fn roles_of(cred: &Credentials) -> Vec<Role> {
    cred.base_role
        .into_iter()
        .chain(cred.platform_roles.iter().copied())
        .collect()
}

/// Whole seconds from `now` to `until`, at least 1.
fn seconds_until(until: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let ms = (until - now).num_milliseconds().max(0) as u64;
    ms.div_ceil(1000).max(1)
}

/// Refuses a locked account with the time left.
fn check_not_locked(cred: &Credentials, now: DateTime<Utc>) -> Result<(), IdentityError> {
    match cred.locked_until {
        Some(until) if until > now => Err(IdentityError::Locked {
            retry_after: seconds_until(until, now),
        }),
        _ => Ok(()),
    }
}

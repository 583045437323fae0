//! Sessions: authenticating each request on current state, refresh-token rotation with
//! theft detection, logout.

use carelog_crypto::random::{random_token, sha256};
use carelog_crypto::token::{TokenError, TokenPurpose};
use carelog_domain::audit::{
    AccessEvent, Action as AuditAction, Outcome, ResourceType, API_SERVICE,
};
use carelog_domain::user::SessionEvent;
use carelog_domain::{SessionId, UserId};
use carelog_store::identity as rows;
use carelog_store::Expected;

use super::{roles_of, Identity, IdentityError, Issued};
use crate::context::{Actor, Ctx};

impl Identity {
    /// Authenticates a bearer access token: signature, key id, audience, expiry, purpose;
    /// then the session from current state — revoked, idle or expired sessions refuse
    /// at once, and the roles are the user's roles now, not the token's.
    pub async fn authenticate(&self, token: &str, ctx: &Ctx) -> Result<Actor, IdentityError> {
        let claims = match self.tokens().verify(token, ctx.now, TokenPurpose::Access) {
            Ok(claims) => claims,
            Err(TokenError::Expired { user, session }) => {
                let refused = (UserId(user), SessionId(session));
                return Err(self.refuse_known(ctx, refused, "token expired").await);
            }
            Err(_) => return Err(IdentityError::Unauthenticated("invalid access token")),
        };
        let session = SessionId(claims.sid);
        let known = (UserId(claims.sub), session);
        let Some(s) = rows::session_actor(self.store().pool(), session).await? else {
            return Err(self.refuse_known(ctx, known, "unknown session").await);
        };
        if s.user_id.0 != claims.sub {
            return Err(self
                .refuse_known(ctx, known, "token and session disagree")
                .await);
        }
        if self
            .config()
            .sessions
            .check(s.created_at, s.last_seen_at, s.revoked, ctx.now)
            .is_err()
        {
            return Err(self.refuse_known(ctx, known, "session ended").await);
        }
        if s.mfa_enabled && !s.mfa {
            return Err(self.refuse_known(ctx, known, "session predates MFA").await);
        }
        rows::touch_session(self.store().pool(), session, ctx.now).await?;
        Ok(Actor {
            user_id: s.user_id,
            session_id: session,
            roles: s.roles,
            mfa: s.mfa,
        })
    }

    /// The 401 of a genuine token (its signature verified, so its user and session are
    /// known) that is refused: expired, or its session unknown, ended or from before
    /// MFA. The refusal is recorded as an access event (`authenticate` on the `session`,
    /// outcome `denied`) before the answer; if that append fails the 401 stands and the
    /// failure is logged.
    async fn refuse_known(
        &self,
        ctx: &Ctx,
        (user, session): (UserId, SessionId),
        why: &'static str,
    ) -> IdentityError {
        let event = AccessEvent::AccessRecorded {
            action: AuditAction::Authenticate,
            resource_type: ResourceType::Session,
            resource_id: session.0,
            outcome: Outcome::Denied,
            service: API_SERVICE.to_owned(),
            endpoint: ctx.command.clone(),
            emergency: false,
            grant_id: None,
        };
        let meta = ctx.metadata_for_user(user);
        if let Err((stream, e)) = crate::access_log::append(self.store(), event, meta).await {
            tracing::error!(error = %e, stream_id = %stream, "refused token not recorded");
        }
        IdentityError::Unauthenticated(why)
    }

    /// Rotates a refresh token: the old one is spent, a new pair is issued. A spent
    /// token presented again revokes its whole session (and so every access token of it).
    pub async fn refresh(&self, ctx: &Ctx, refresh_token: &str) -> Result<Issued, IdentityError> {
        let old = sha256(refresh_token.trim().as_bytes());
        let mut tx = self.store().pool().begin().await?;
        let Some(s) = rows::session_by_refresh(&mut tx, &old).await? else {
            let reused = rows::spent_refresh_session(&mut tx, &old).await?;
            if let Some(session) = reused {
                self.revoke_for_reuse(&mut tx, ctx, session).await?;
                tx.commit().await?;
                return Err(IdentityError::Unauthenticated("refresh token reuse"));
            }
            return Err(IdentityError::Unauthenticated("unknown refresh token"));
        };
        let ended = self
            .config()
            .sessions
            .check(s.created_at, s.last_seen_at, s.revoked, ctx.now);
        if let Err(end) = ended {
            let meta = ctx.metadata_for_user(s.user_id);
            if self
                .end_session(&mut tx, s.session_id, s.user_id, end.as_reason(), meta)
                .await?
            {
                tx.commit().await?;
            }
            return Err(IdentityError::Unauthenticated("session ended"));
        }
        let cred = rows::lock_credentials(&mut tx, s.user_id)
            .await?
            .ok_or(IdentityError::Unauthenticated("no such user"))?;
        if cred.mfa_enabled && !s.mfa {
            // Opened with the password alone before MFA was turned on: not renewable.
            let meta = ctx.metadata_for_user(s.user_id);
            self.end_session(&mut tx, s.session_id, s.user_id, "mfa_enabled", meta)
                .await?;
            tx.commit().await?;
            return Err(IdentityError::Unauthenticated("session predates MFA"));
        }
        let new = random_token();
        if !rows::rotate_refresh(
            &mut tx,
            s.session_id,
            &old,
            &sha256(new.as_bytes()),
            ctx.now,
        )
        .await?
        {
            return Err(IdentityError::Unauthenticated(
                "refresh token already rotated",
            ));
        }
        self.append_session(
            &mut tx,
            s.session_id,
            s.user_id,
            Expected::Any,
            vec![SessionEvent::SessionRefreshed {}],
            ctx.metadata_for_user(s.user_id),
        )
        .await?;
        tx.commit().await?;
        let (token, expires_at) = self.sign(
            s.user_id,
            s.session_id,
            &roles_of(&cred),
            TokenPurpose::Access,
            ctx.now,
        );
        Ok(Issued {
            user_id: s.user_id,
            session_id: s.session_id,
            token,
            refresh_token: new,
            expires_at,
        })
    }

    /// Ends the caller's session: its refresh token and every access token of it stop
    /// working at once.
    pub async fn logout(&self, ctx: &Ctx, actor: &Actor) -> Result<(), IdentityError> {
        let mut tx = self.store().pool().begin().await?;
        let meta = ctx.metadata(Some(actor));
        self.end_session(&mut tx, actor.session_id, actor.user_id, "logout", meta)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes a live session and records `SessionRevoked` with `reason`; false (and
    /// nothing recorded) if it had already ended.
    async fn end_session(
        &self,
        tx: &mut sqlx::PgConnection,
        session: SessionId,
        user: UserId,
        reason: &str,
        metadata: carelog_domain::Metadata,
    ) -> Result<bool, IdentityError> {
        if rows::revoke_session(tx, session, reason).await?.is_none() {
            return Ok(false);
        }
        let ev = SessionEvent::SessionRevoked {
            reason: reason.to_owned(),
        };
        self.append_session(tx, session, user, Expected::Any, vec![ev], metadata)
            .await?;
        Ok(true)
    }

    async fn revoke_for_reuse(
        &self,
        tx: &mut sqlx::PgConnection,
        ctx: &Ctx,
        session: SessionId,
    ) -> Result<(), IdentityError> {
        let Some(s) = rows::session_actor(self.store().pool(), session).await? else {
            return Ok(());
        };
        let user: UserId = s.user_id;
        let mut events = vec![SessionEvent::RefreshReuseDetected {}];
        if rows::revoke_session(tx, session, "refresh_reuse")
            .await?
            .is_some()
        {
            events.push(SessionEvent::SessionRevoked {
                reason: "refresh_reuse".to_owned(),
            });
        }
        tracing::warn!(session_id = %session, user_id = %user, "refresh token reuse: session revoked");
        self.append_session(
            tx,
            session,
            user,
            Expected::Any,
            events,
            ctx.metadata_for_user(user),
        )
        .await
    }
}

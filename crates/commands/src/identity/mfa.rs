//! TOTP second factor: enrol, confirm (recovery codes issued), check, turn off.

use carelog_crypto::totp::{generate_recovery_codes, hash_recovery_code, TotpSecret};
use carelog_domain::user::{SessionEvent, UserEvent};
use carelog_domain::UserId;
use carelog_store::identity::{self as rows, Credentials};
use carelog_store::Expected;
use serde::Serialize;
use sqlx::PgConnection;

use super::{check_not_locked, Identity, IdentityError};
use crate::context::{Actor, Ctx};

/// A TOTP secret to load into an authenticator app (shown once).
#[derive(Clone, Serialize)]
pub struct Enrollment {
    /// Base32 secret.
    pub secret: String,
    /// `otpauth://totp/...` (SHA-1, 6 digits, 30 s).
    pub otpauth_uri: String,
}

/// Associated data of a sealed TOTP secret: what it is and whose.
fn totp_context(user: UserId) -> Vec<u8> {
    let mut c = b"carelog-totp-v1\0".to_vec();
    c.extend_from_slice(user.0.as_bytes());
    c
}

impl Identity {
    /// Issues a TOTP secret (not yet in force until confirmed with [`Self::mfa_verify`]).
    pub async fn mfa_enroll(&self, ctx: &Ctx, actor: &Actor) -> Result<Enrollment, IdentityError> {
        let profile_email = self.me(actor).await?.email;
        let mut tx = self.store().pool().begin().await?;
        let mut cred = rows::lock_credentials(&mut tx, actor.user_id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        if cred.mfa_enabled {
            return Err(IdentityError::Conflict("MFA is already enabled".into()));
        }
        let secret = TotpSecret::generate();
        let user = actor.user_id;
        cred.totp_pending = Some(
            self.store()
                .vault()
                .seal_value(&user.subject(), &totp_context(user), secret.as_bytes())
                .await?,
        );
        rows::save_credentials(&mut tx, &cred).await?;
        self.append_user(
            &mut tx,
            user,
            Expected::Any,
            vec![UserEvent::MfaEnrolled {}],
            ctx.metadata(Some(actor)),
        )
        .await?;
        tx.commit().await?;
        Ok(Enrollment {
            secret: secret.base32(),
            otpauth_uri: secret.otpauth_uri("carelog", &profile_email),
        })
    }

    /// Confirms the enrolled secret with a code: MFA is on; returns 10 recovery codes
    /// (shown once; stored hashed). A wrong code counts towards lockout.
    pub async fn mfa_verify(
        &self,
        ctx: &Ctx,
        actor: &Actor,
        code: &str,
    ) -> Result<Vec<String>, IdentityError> {
        let user = actor.user_id;
        let mut tx = self.store().pool().begin().await?;
        let mut cred = rows::lock_credentials(&mut tx, user)
            .await?
            .ok_or(IdentityError::NotFound)?;
        if cred.mfa_enabled {
            return Err(IdentityError::Conflict("MFA is already enabled".into()));
        }
        // Wrong codes count towards lockout, so a locked account takes no more guesses.
        check_not_locked(&cred, ctx.now)?;
        let Some(sealed) = cred.totp_pending.clone() else {
            return Err(IdentityError::Conflict(
                "enroll first: POST /api/auth/mfa/enroll".into(),
            ));
        };
        let secret = self.open_secret(user, &sealed).await?;
        let Some(step) = secret.verify(code, unix(ctx)) else {
            let answer = self.record_failure(&mut tx, ctx, &mut cred, "mfa").await?;
            tx.commit().await?;
            return Err(answer);
        };
        cred.totp_secret = Some(sealed);
        cred.totp_pending = None;
        cred.mfa_enabled = true;
        cred.totp_last_step = Some(step as i64);
        let codes = generate_recovery_codes();
        let hashes: Vec<[u8; 32]> = codes.iter().map(|c| hash_recovery_code(c)).collect();
        rows::replace_recovery_codes(&mut tx, user, &hashes).await?;
        rows::save_credentials(&mut tx, &cred).await?;
        self.append_user(
            &mut tx,
            user,
            Expected::Any,
            vec![UserEvent::MfaEnabled {}],
            ctx.metadata(Some(actor)),
        )
        .await?;
        // The caller just gave the code: their session now counts as second-factor. Every
        // other session opened with the password alone ends, so MFA cannot be bypassed
        // by a session (or its refresh token) that predates it.
        rows::mark_session_mfa(&mut tx, actor.session_id).await?;
        for session in rows::revoke_password_only_sessions(&mut tx, user, actor.session_id).await? {
            let ev = SessionEvent::SessionRevoked {
                reason: "mfa_enabled".to_owned(),
            };
            self.append_session(
                &mut tx,
                session,
                user,
                Expected::Any,
                vec![ev],
                ctx.metadata(Some(actor)),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(codes)
    }

    /// Turns MFA off; needs the password and a current code (or a recovery code).
    pub async fn mfa_disable(
        &self,
        ctx: &Ctx,
        actor: &Actor,
        password: &str,
        code: &str,
    ) -> Result<(), IdentityError> {
        let user = actor.user_id;
        let mut tx = self.store().pool().begin().await?;
        let mut cred = rows::lock_credentials(&mut tx, user)
            .await?
            .ok_or(IdentityError::NotFound)?;
        if !cred.mfa_enabled {
            return Err(IdentityError::Conflict("MFA is not enabled".into()));
        }
        // A password and code check like a login's: refused while the account is locked,
        // or a live session could keep guessing past the lockout.
        if let Err(locked) = check_not_locked(&cred, ctx.now) {
            self.verify_password(password, None).await;
            return Err(locked);
        }
        let password_ok = self
            .verify_password(password, Some(cred.password_hash.clone()))
            .await;
        let code_ok = password_ok
            && self
                .check_second_factor(&mut tx, ctx, &mut cred, code)
                .await?;
        if !code_ok {
            let reason = if password_ok { "mfa" } else { "password" };
            let answer = self.record_failure(&mut tx, ctx, &mut cred, reason).await?;
            tx.commit().await?;
            return Err(answer);
        }
        cred.mfa_enabled = false;
        cred.totp_secret = None;
        rows::replace_recovery_codes(&mut tx, user, &[]).await?;
        rows::save_credentials(&mut tx, &cred).await?;
        self.append_user(
            &mut tx,
            user,
            Expected::Any,
            vec![UserEvent::MfaDisabled {}],
            ctx.metadata(Some(actor)),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks a TOTP code (a step is accepted once: it must be later than the last one
    /// used) or spends a recovery code. Updates `cred` (not saved).
    pub(super) async fn check_second_factor(
        &self,
        tx: &mut PgConnection,
        ctx: &Ctx,
        cred: &mut Credentials,
        code: &str,
    ) -> Result<bool, IdentityError> {
        let code = code.trim();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            let Some(sealed) = cred.totp_secret.clone() else {
                return Ok(false);
            };
            let secret = self.open_secret(cred.user_id, &sealed).await?;
            return Ok(match secret.verify(code, unix(ctx)) {
                Some(step) if cred.totp_last_step.is_none_or(|last| (step as i64) > last) => {
                    cred.totp_last_step = Some(step as i64);
                    true
                }
                _ => false,
            });
        }
        Ok(rows::use_recovery_code(tx, cred.user_id, &hash_recovery_code(code)).await?)
    }

    async fn open_secret(&self, user: UserId, sealed: &[u8]) -> Result<TotpSecret, IdentityError> {
        let plain = self
            .store()
            .vault()
            .open_value(&user.subject(), &totp_context(user), sealed)
            .await?
            .ok_or(IdentityError::NotFound)?;
        TotpSecret::from_bytes(&plain).ok_or(IdentityError::Conflict(
            "stored TOTP secret is damaged".into(),
        ))
    }
}

fn unix(ctx: &Ctx) -> u64 {
    ctx.now.timestamp().max(0) as u64
}

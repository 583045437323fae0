//! Logging in: password, then (when MFA is on) the second factor.

use carelog_crypto::token::TokenPurpose;
use carelog_domain::user::normalize_email;
use carelog_domain::{SessionId, UserId};
use carelog_store::identity as rows;

use super::{check_not_locked, Identity, IdentityError, Issued};
use crate::context::Ctx;

impl Identity {
    /// Checks email and password. Answers the same, in about the same time, for an
    /// unknown email and a wrong password; counts failures towards lockout; with MFA on,
    /// answers [`IdentityError::MfaRequired`] with a short-lived single-purpose token.
    pub async fn login(
        &self,
        ctx: &Ctx,
        email: &str,
        password: &str,
    ) -> Result<Issued, IdentityError> {
        let user = match normalize_email(email) {
            Ok(email) => {
                rows::user_by_email(self.store().pool(), &self.email_index(&email)).await?
            }
            Err(_) => None,
        };
        let Some(user) = user else {
            self.verify_password(password, None).await;
            return Err(IdentityError::InvalidCredentials);
        };

        let mut tx = self.store().pool().begin().await?;
        let mut cred = rows::lock_credentials(&mut tx, user)
            .await?
            .ok_or(IdentityError::InvalidCredentials)?;
        if let Err(locked) = check_not_locked(&cred, ctx.now) {
            // Same cost as a real attempt, so timing does not tell a locked account apart.
            self.verify_password(password, None).await;
            return Err(locked);
        }
        if !self
            .verify_password(password, Some(cred.password_hash.clone()))
            .await
        {
            let answer = self
                .record_failure(&mut tx, ctx, &mut cred, "password")
                .await?;
            tx.commit().await?;
            return Err(answer);
        }
        if cred.mfa_enabled {
            tx.rollback().await?;
            let (mfa_token, _) =
                self.sign(user, SessionId::new_v7(), &[], TokenPurpose::Mfa, ctx.now);
            return Err(IdentityError::MfaRequired { mfa_token });
        }
        let issued = self.start_session(&mut tx, ctx, &mut cred, false).await?;
        tx.commit().await?;
        Ok(issued)
    }

    /// Completes a login with the `mfa_token` from [`Self::login`] and a TOTP code (each
    /// accepted once) or a one-time recovery code. Wrong codes count towards lockout.
    pub async fn mfa_challenge(
        &self,
        ctx: &Ctx,
        mfa_token: &str,
        code: &str,
    ) -> Result<Issued, IdentityError> {
        let claims = self
            .tokens()
            .verify(mfa_token, ctx.now, TokenPurpose::Mfa)
            .map_err(|_| IdentityError::Unauthenticated("invalid mfa token"))?;
        let user = UserId(claims.sub);
        let mut tx = self.store().pool().begin().await?;
        let mut cred = rows::lock_credentials(&mut tx, user)
            .await?
            .ok_or(IdentityError::Unauthenticated("no such user"))?;
        check_not_locked(&cred, ctx.now)?;
        if !cred.mfa_enabled {
            return Err(IdentityError::Conflict(
                "MFA is not enabled for this account".into(),
            ));
        }
        if !self
            .check_second_factor(&mut tx, ctx, &mut cred, code)
            .await?
        {
            let answer = self.record_failure(&mut tx, ctx, &mut cred, "mfa").await?;
            tx.commit().await?;
            return Err(answer);
        }
        let issued = self.start_session(&mut tx, ctx, &mut cred, true).await?;
        tx.commit().await?;
        Ok(issued)
    }
}

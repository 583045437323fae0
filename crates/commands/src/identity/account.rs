//! Accounts: registration, the user's own view, platform roles.

use carelog_domain::user::{
    normalize_email, validate_name, Profile, RegistrationRole, User, UserEvent,
};
use carelog_domain::{Role, StreamVersion, UserId};
use carelog_store::identity::{self as rows, NewUser, NewUserError};
use carelog_store::{Expected, Opened};
use serde::Serialize;

use super::{roles_of, Identity, IdentityError};
use crate::context::{Actor, Ctx};

/// What a person registers with. Platform roles only come from the CLI.
pub struct Registration {
    /// Email (normalised here).
    pub email: String,
    /// Password (checked against the policy here, never stored).
    pub password: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// DOCTOR, PATIENT or STAFF; `None` for an operator-created account with no base role.
    pub role: Option<RegistrationRole>,
    /// Platform roles (CLI `users create --role`).
    pub platform_roles: Vec<Role>,
}

/// A user as they see themselves (`GET /api/auth/me`).
#[derive(Clone, Serialize)]
pub struct UserView {
    /// The account.
    pub id: UserId,
    /// Email.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Roles held now.
    pub roles: Vec<Role>,
    /// Organisation memberships (`{org_id, role}`).
    pub memberships: Vec<serde_json::Value>,
    /// Whether a second factor is required at login.
    pub mfa_enabled: bool,
}

impl std::fmt::Debug for UserView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserView")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl UserView {
    fn of(user: &User) -> Option<Self> {
        let p = user.profile.as_ref()?;
        Some(Self {
            id: user.id,
            email: p.email.clone(),
            first_name: p.first_name.clone(),
            last_name: p.last_name.clone(),
            roles: user.roles(),
            memberships: vec![],
            mfa_enabled: user.mfa_enabled,
        })
    }
}

impl Identity {
    /// Creates an account (`POST /api/auth/register`, `carelog users create`).
    pub async fn register(&self, ctx: &Ctx, r: Registration) -> Result<UserView, IdentityError> {
        let email = normalize_email(&r.email).map_err(|e| invalid("email", e))?;
        let first_name = validate_name(&r.first_name).map_err(|e| invalid("first_name", e))?;
        let last_name = validate_name(&r.last_name).map_err(|e| invalid("last_name", e))?;

        let user = User::new(UserId::new_v7());
        let profile = Profile {
            email: email.clone(),
            first_name,
            last_name,
        };
        let events = user.register(profile, r.role, &r.platform_roles)?;
        let mut registered = user.clone();
        events.iter().for_each(|e| registered.apply(e));
        let password_hash = self.check_and_hash_password(&r.password, &email).await?;

        let mut tx = self.store().pool().begin().await?;
        let new = NewUser {
            user_id: user.id,
            email_index: &self.email_index(&email),
            password_hash: &password_hash,
            base_role: registered.base_role,
            platform_roles: &registered
                .platform_roles
                .iter()
                .copied()
                .collect::<Vec<_>>(),
        };
        rows::insert_user(&mut tx, new).await.map_err(|e| match e {
            NewUserError::EmailTaken => IdentityError::EmailTaken,
            NewUserError::Store(e) => IdentityError::Store(e),
        })?;
        self.append_user(
            &mut tx,
            user.id,
            Expected::Exact(StreamVersion::EMPTY),
            events,
            ctx.metadata_for_user(user.id),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(user_id = %user.id, "user registered");
        Ok(UserView::of(&registered).expect("registered"))
    }

    /// The account as folded from its stream.
    pub async fn load_user(&self, id: UserId) -> Result<User, IdentityError> {
        let mut user = User::new(id);
        let stream = id.stream();
        loop {
            let page = self.store().read_stream(&stream, user.version, 500).await?;
            if page.is_empty() {
                break;
            }
            for stored in &page {
                let ty = stored.header.event_type.as_str();
                let payload = match self.store().open(stored).await? {
                    Opened::Payload(p) => p,
                    Opened::Erased => return Err(IdentityError::NotFound),
                    Opened::Unread => return Err(crate::load::not_opened(stored).into()),
                };
                match UserEvent::decode(ty, payload) {
                    Some(Ok(event)) => user.apply(&event),
                    Some(Err(_)) => {
                        return Err(IdentityError::Conflict(format!("undecodable {ty} event")))
                    }
                    None => user.version = user.version.next(),
                }
            }
        }
        Ok(user)
    }

    /// The caller's own account, with their organisation memberships.
    pub async fn me(&self, actor: &Actor) -> Result<UserView, IdentityError> {
        let mut view = self.user_view(actor.user_id).await?;
        view.memberships =
            carelog_store::clinical::memberships_of(self.store().pool(), actor.user_id)
                .await?
                .into_iter()
                .map(|m| serde_json::json!({"org_id": m.org_id, "role": m.role.as_str()}))
                .collect();
        Ok(view)
    }

    /// The account registered with `email`, if any (organisations add members by email).
    pub async fn find_by_email(&self, email: &str) -> Result<Option<UserId>, IdentityError> {
        let email = normalize_email(email).map_err(|e| invalid("email", e))?;
        Ok(rows::user_by_email(self.store().pool(), &self.email_index(&email)).await?)
    }

    /// An account as its owner sees it.
    pub async fn user_view(&self, id: UserId) -> Result<UserView, IdentityError> {
        let user = self.load_user(id).await?;
        UserView::of(&user).ok_or(IdentityError::NotFound)
    }

    /// Grants a platform role (SUPER:ADMIN only).
    pub async fn grant_role(
        &self,
        ctx: &Ctx,
        actor: &Actor,
        target: UserId,
        role: Role,
    ) -> Result<UserView, IdentityError> {
        self.change_role(ctx, actor, target, role, true).await
    }

    /// Revokes a platform role (SUPER:ADMIN only).
    pub async fn revoke_role(
        &self,
        ctx: &Ctx,
        actor: &Actor,
        target: UserId,
        role: Role,
    ) -> Result<UserView, IdentityError> {
        self.change_role(ctx, actor, target, role, false).await
    }

    async fn change_role(
        &self,
        ctx: &Ctx,
        actor: &Actor,
        target: UserId,
        role: Role,
        grant: bool,
    ) -> Result<UserView, IdentityError> {
        let mut tx = self.store().pool().begin().await?;
        // The credential row lock serialises role changes of one account.
        let mut cred = rows::lock_credentials(&mut tx, target)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let mut user = self.load_user(target).await?;
        let events = if grant {
            user.grant_role(&actor.roles, role)?
        } else {
            user.revoke_role(actor.user_id, &actor.roles, role)?
        };
        events.iter().for_each(|e| user.apply(e));
        cred.platform_roles = user.platform_roles.iter().copied().collect();
        debug_assert_eq!(roles_of(&cred), user.roles());
        if !events.is_empty() {
            rows::save_credentials(&mut tx, &cred).await?;
            let expected = Expected::Exact(StreamVersion(user.version.0 - events.len() as i64));
            self.append_user(&mut tx, target, expected, events, ctx.metadata(Some(actor)))
                .await?;
        }
        tx.commit().await?;
        UserView::of(&user).ok_or(IdentityError::NotFound)
    }
}

fn invalid(field: &'static str, e: carelog_domain::user::InputError) -> IdentityError {
    IdentityError::Invalid {
        field,
        message: e.to_string(),
    }
}

//! Organisations and their members.

use carelog_domain::access::Action;
use carelog_domain::org::{OrgEvent, Organization};
use carelog_domain::{OrgId, Role, StreamVersion, UserId};
use carelog_store::clinical as inline;
use carelog_store::{AppendRequest, Expected};

use super::views::{MemberView, OrgView};
use super::{Caller, Clinical, ClinicalError};
use crate::context::Ctx;
use crate::load::{load_stream, EventFacts};

impl Clinical {
    /// Creates an organisation; the caller becomes its ORG:ADMIN.
    pub async fn create_org(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        name: &str,
    ) -> Result<OrgView, ClinicalError> {
        self.authorize_org(caller, Action::CreateOrg, None, ctx)
            .await?;
        let id = OrgId::new_v7();
        let org = Organization::new(id);
        let creator = caller.actor.user_id;
        let events = org.create(name, creator)?;
        let mut meta = ctx.metadata(Some(&caller.actor));
        meta.org_id = Some(id.0);
        let mut tx = self.pool().begin().await?;
        inline::insert_org(&mut tx, id, ctx.now).await?;
        inline::upsert_member(&mut tx, id, creator, Role::OrgAdmin, ctx.now).await?;
        let appended = self
            .store()
            .append_in_tx(&mut tx, request(id, StreamVersion::EMPTY, &events, &meta))
            .await?;
        tx.commit().await?;
        let mut state = org;
        events.iter().for_each(|e| state.apply(e));
        tracing::info!(org_id = %id, "organisation created");
        Ok(OrgView {
            org_id: id,
            name: state.name.clone().unwrap_or_default(),
            created_by: creator,
            created_at: ctx.now,
            version: appended.version,
        })
    }

    /// An organisation (its members and platform admins).
    pub async fn org(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: OrgId,
    ) -> Result<OrgView, ClinicalError> {
        self.authorize_org(caller, Action::ReadOrg, Some(id), ctx)
            .await?;
        let (state, facts) = self.load_org(id).await?;
        let first = facts.first().ok_or(ClinicalError::NotFound)?;
        Ok(OrgView {
            org_id: id,
            name: state.name.clone().unwrap_or_default(),
            created_by: first.actor_id.map(UserId).unwrap_or(caller.actor.user_id),
            created_at: first.recorded_at,
            version: state.version,
        })
    }

    /// Whether the caller may add members to `id` (asked before the member's email is
    /// looked up, so that a caller who may not cannot probe which emails have accounts).
    pub async fn may_add_member(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: OrgId,
    ) -> Result<(), ClinicalError> {
        self.authorize_org(caller, Action::AddMember, Some(id), ctx)
            .await
            .map(|_| ())
    }

    /// Adds `user` with `role`, or changes their role (ORG:ADMIN of the org).
    /// Answers the member and whether they are new.
    pub async fn add_member(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: OrgId,
        user: UserId,
        role: Role,
    ) -> Result<(MemberView, bool), ClinicalError> {
        self.authorize_org(caller, Action::AddMember, Some(id), ctx)
            .await?;
        let (state, _) = self.load_org(id).await?;
        let new = !state.members.contains_key(&user);
        let events = state.add_member(user, role)?;
        let mut tx = self.pool().begin().await?;
        inline::upsert_member(&mut tx, id, user, role, ctx.now).await?;
        self.append_org(&mut tx, ctx, caller, id, state.version, &events)
            .await?;
        tx.commit().await?;
        Ok((
            MemberView {
                user_id: user,
                role,
                added_at: ctx.now,
            },
            new,
        ))
    }

    /// The members of an organisation (any member).
    pub async fn members(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: OrgId,
    ) -> Result<Vec<MemberView>, ClinicalError> {
        self.authorize_org(caller, Action::ListMembers, Some(id), ctx)
            .await?;
        Ok(inline::members_of(self.pool(), id)
            .await?
            .into_iter()
            .map(|(user_id, role, added_at)| MemberView {
                user_id,
                role,
                added_at,
            })
            .collect())
    }

    /// Removes a member (ORG:ADMIN of the org); effective on the member's next request.
    pub async fn remove_member(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: OrgId,
        user: UserId,
    ) -> Result<(), ClinicalError> {
        self.authorize_org(caller, Action::RemoveMember, Some(id), ctx)
            .await?;
        let (state, _) = self.load_org(id).await?;
        let events = state.remove_member(user)?;
        let mut tx = self.pool().begin().await?;
        inline::remove_member(&mut tx, id, user).await?;
        self.append_org(&mut tx, ctx, caller, id, state.version, &events)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append_org(
        &self,
        tx: &mut sqlx::PgConnection,
        ctx: &Ctx,
        caller: &Caller,
        id: OrgId,
        expected: StreamVersion,
        events: &[OrgEvent],
    ) -> Result<(), ClinicalError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut meta = ctx.metadata(Some(&caller.actor));
        meta.org_id = Some(id.0);
        self.store()
            .append_in_tx(tx, request(id, expected, events, &meta))
            .await?;
        Ok(())
    }

    async fn load_org(&self, id: OrgId) -> Result<(Organization, Vec<EventFacts>), ClinicalError> {
        let loaded = load_stream(self.store(), &id.stream(), OrgEvent::decode).await?;
        let mut state = Organization::new(id);
        let mut facts = Vec::with_capacity(loaded.len());
        for (f, e) in loaded {
            state.apply(&e);
            facts.push(f);
        }
        if state.name.is_none() {
            return Err(ClinicalError::NotFound);
        }
        Ok((state, facts))
    }
}

fn request(
    id: OrgId,
    expected: StreamVersion,
    events: &[OrgEvent],
    meta: &carelog_domain::Metadata,
) -> AppendRequest {
    AppendRequest {
        stream: id.stream(),
        expected: Expected::Exact(expected),
        events: events
            .iter()
            .cloned()
            .map(|e| e.into_new_event(id, meta.clone()))
            .collect(),
    }
}

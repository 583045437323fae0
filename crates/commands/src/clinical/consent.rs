//! Consents (grant, request, approve, decline, revoke, list) and session consents
//! (grant, list, revoke): API.md "Consent".
//!
//! Each consent is a stream of its own (`consent-<uuid>`, `session_consent-<uuid>`),
//! sealed under its patient's key. Its current state is also written to the inline
//! tables `consents` / `session_consents` in the same transaction as its events: that is
//! what access decisions read on every request (crate::clinical::access), so a revoke or
//! an expiry stops access at once. Listings read the same tables (ids, terms and states,
//! no PHI).

use carelog_domain::access::{Action, DenyReason, Grantee};
use carelog_domain::consent::{
    ApproveConsent, Consent, ConsentEvent, EffectiveConsentStatus, GrantConsent, RequestConsent,
};
use carelog_domain::session_consent::{
    GrantSessionConsent, SessionConsent, SessionConsentEvent, SessionConsentStatus,
};
use carelog_domain::{ConsentId, OrgId, PatientId, SessionConsentId, StreamVersion};
use carelog_store::clinical as inline;
use carelog_store::consent::{self as consents, ConsentRow, SessionConsentRow};
use carelog_store::{AppendRequest, Expected};
use chrono::{DateTime, Utc};

use super::views::{ConsentView, SessionConsentView};
use super::{Caller, Clinical, ClinicalError, PageQuery};
use crate::context::Ctx;
use crate::load::load_stream;

/// What the patient does with a consent of theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentDecision {
    /// Approve a doctor's request (optionally until `expires_at`).
    Approve(ApproveConsent),
    /// Decline a doctor's request.
    Decline,
    /// Withdraw an active consent.
    Revoke,
}

impl Clinical {
    /// The patient grants a consent on their chart (`input.patient_id`, else the one
    /// chart linked to their account).
    pub async fn grant_consent(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        input: GrantConsent,
    ) -> Result<ConsentView, ClinicalError> {
        let patient = self.own_chart(caller, input.patient_id).await?;
        let access = self
            .authorize_patient(caller, Action::GrantConsent, patient, false, ctx)
            .await?;
        let id = ConsentId::new_v7();
        let state = Consent::new(id);
        let events = state.grant(patient, &input, ctx.now)?;
        match input.grantee()? {
            Grantee::Org(org) => {
                if !inline::org_exists(self.pool(), org).await? {
                    return Err(ClinicalError::invalid(
                        "grantee_org_id",
                        "no such organisation",
                    ));
                }
            }
            Grantee::User(user) => {
                if !carelog_store::identity::user_exists(self.pool(), user).await? {
                    return Err(ClinicalError::invalid("grantee_user_id", "no such account"));
                }
            }
        }
        let org = access.indexed.facts.org_id;
        let view = self
            .commit_consent(ctx, caller, org, state, events, None)
            .await?;
        tracing::info!(consent_id = %id, patient_id = %patient, "consent granted");
        Ok(view)
    }

    /// A doctor asks a patient for a consent; the doctor is the grantee.
    pub async fn request_consent(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        input: RequestConsent,
    ) -> Result<ConsentView, ClinicalError> {
        let access = self
            .authorize_patient(caller, Action::RequestConsent, input.patient_id, false, ctx)
            .await?;
        let id = ConsentId::new_v7();
        let state = Consent::new(id);
        let events = state.request(caller.actor.user_id, &input)?;
        let org = access.indexed.facts.org_id;
        let view = self
            .commit_consent(ctx, caller, org, state, events, None)
            .await?;
        tracing::info!(consent_id = %id, patient_id = %input.patient_id, "consent requested");
        Ok(view)
    }

    /// The patient approves or declines a request, or revokes a consent. The wrong state
    /// (approving a revoked consent, revoking a declined one) is a 409.
    pub async fn decide_consent(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: ConsentId,
        decision: ConsentDecision,
    ) -> Result<ConsentView, ClinicalError> {
        let row = consents::consent(self.pool(), id)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        let action = match decision {
            ConsentDecision::Approve(_) | ConsentDecision::Decline => Action::DecideConsent,
            ConsentDecision::Revoke => Action::RevokeConsent,
        };
        let access = self
            .authorize_consent(caller, action, row.patient_id, row.grantee, ctx)
            .await?;
        let loaded = load_stream(self.store(), &id.stream(), ConsentEvent::decode).await?;
        let state = Consent::fold(id, loaded.iter().map(|(_, e)| e));
        let events = match &decision {
            ConsentDecision::Approve(input) => state.approve(input, ctx.now)?,
            ConsentDecision::Decline => state.decline()?,
            ConsentDecision::Revoke => state.revoke()?,
        };
        let org = access.indexed.facts.org_id;
        let view = self
            .commit_consent(ctx, caller, org, state, events, Some(&row))
            .await?;
        tracing::info!(consent_id = %id, action = ?action, "consent decided");
        Ok(view)
    }

    /// The caller's own consents, newest first: those on the charts linked to their
    /// account (as patient) and those granted to or requested by them (as doctor).
    pub async fn own_consents(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        page: PageQuery,
    ) -> Result<(Vec<ConsentView>, i64), ClinicalError> {
        self.authorize_own(caller, Action::ListOwnConsents, ctx.now)?;
        let user = caller.actor.user_id;
        let charts = inline::patients_of_user(self.pool(), user).await?;
        let (rows, total) =
            consents::list_own(self.pool(), &charts, user, page.offset, page.limit).await?;
        Ok((
            rows.iter().map(|r| consent_view(r, ctx.now)).collect(),
            total,
        ))
    }

    /// The consents granted to `org` and those on the patients whose chart it holds,
    /// newest first (its ORG:ADMIN and ORG:DOCTOR; platform admins).
    pub async fn org_consents(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        org: OrgId,
        page: PageQuery,
    ) -> Result<(Vec<ConsentView>, i64), ClinicalError> {
        self.authorize_org(caller, Action::ListOrgConsents, Some(org), ctx)
            .await?;
        let (rows, total) =
            consents::list_of_org(self.pool(), org, page.offset, page.limit).await?;
        Ok((
            rows.iter().map(|r| consent_view(r, ctx.now)).collect(),
            total,
        ))
    }

    /// The patient consents to a session being recorded or transcribed (on
    /// `input.patient_id`, else the one chart linked to their account).
    pub async fn grant_session_consent(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        input: GrantSessionConsent,
    ) -> Result<SessionConsentView, ClinicalError> {
        let patient = self.own_chart(caller, input.patient_id).await?;
        let access = self
            .authorize_patient(caller, Action::ManageSessionConsent, patient, false, ctx)
            .await?;
        let id = SessionConsentId::new_v7();
        let state = SessionConsent::new(id);
        let events = state.grant(patient, &input, ctx.now)?;
        if let Some(org) = input.org_id {
            if !inline::org_exists(self.pool(), org).await? {
                return Err(ClinicalError::invalid("org_id", "no such organisation"));
            }
        }
        if let Some(user) = input.user_id {
            if !carelog_store::identity::user_exists(self.pool(), user).await? {
                return Err(ClinicalError::invalid("user_id", "no such account"));
            }
        }
        let org = access.indexed.facts.org_id;
        let view = self
            .commit_session_consent(ctx, caller, org, state, events, None)
            .await?;
        tracing::info!(session_consent_id = %id, patient_id = %patient, "session consent granted");
        Ok(view)
    }

    /// The session consents of `patient` (the patient; ORG:DOCTORs of their organisation;
    /// doctors holding a consent on them), or, without one, of the charts linked to the
    /// caller's account; newest first.
    pub async fn session_consents(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        patient: Option<PatientId>,
        page: PageQuery,
    ) -> Result<(Vec<SessionConsentView>, i64), ClinicalError> {
        let patients = match patient {
            Some(p) => vec![p],
            None => inline::patients_of_user(self.pool(), caller.actor.user_id).await?,
        };
        let mut rows = Vec::new();
        for p in patients {
            self.authorize_patient(caller, Action::ReadSessionConsents, p, false, ctx)
                .await?;
            rows.extend(consents::session_consents_of_patient(self.pool(), p).await?);
        }
        rows.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.consent_id.0)));
        let total = rows.len() as i64;
        let views = rows
            .iter()
            .skip(page.offset.max(0) as usize)
            .take(page.limit.max(0) as usize)
            .map(|r| session_view(r, ctx.now))
            .collect();
        Ok((views, total))
    }

    /// The patient withdraws a session consent (revoking it twice is a 409).
    pub async fn revoke_session_consent(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: SessionConsentId,
    ) -> Result<SessionConsentView, ClinicalError> {
        let row = consents::session_consent(self.pool(), id)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        let access = self
            .authorize_patient(
                caller,
                Action::ManageSessionConsent,
                row.patient_id,
                false,
                ctx,
            )
            .await?;
        let loaded = load_stream(self.store(), &id.stream(), SessionConsentEvent::decode).await?;
        let state = SessionConsent::fold(id, loaded.iter().map(|(_, e)| e));
        let events = state.revoke()?;
        let org = access.indexed.facts.org_id;
        let view = self
            .commit_session_consent(ctx, caller, org, state, events, Some(&row))
            .await?;
        tracing::info!(session_consent_id = %id, "session consent revoked");
        Ok(view)
    }

    /// The chart a patient acts on: the one named, else the one linked to their account.
    /// Several linked and none named: `patient_id` is required (400); none linked: the
    /// caller is no patient (403).
    async fn own_chart(
        &self,
        caller: &Caller,
        given: Option<PatientId>,
    ) -> Result<PatientId, ClinicalError> {
        if let Some(p) = given {
            return Ok(p);
        }
        let charts = inline::patients_of_user(self.pool(), caller.actor.user_id).await?;
        match charts.as_slice() {
            [one] => Ok(*one),
            [] => Err(ClinicalError::Forbidden(DenyReason::PatientOnly)),
            _ => Err(ClinicalError::invalid(
                "patient_id",
                "required: several charts are linked to this account",
            )),
        }
    }

    /// Appends `events` to the consent's stream at its current version and writes the
    /// inline row in the same transaction.
    async fn commit_consent(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        org: OrgId,
        state: Consent,
        events: Vec<ConsentEvent>,
        existing: Option<&ConsentRow>,
    ) -> Result<ConsentView, ClinicalError> {
        let mut state = state;
        let expected = state.version;
        events.iter().for_each(|e| state.apply(e));
        let (Some(terms), Some(status)) = (state.terms, state.status) else {
            return Err(ClinicalError::NotFound);
        };
        let mut meta = ctx.metadata(Some(&caller.actor));
        meta.org_id = Some(org.0);
        let mut tx = self.pool().begin().await?;
        let appended = self
            .store()
            .append_in_tx(
                &mut tx,
                AppendRequest {
                    stream: state.id.stream(),
                    expected: Expected::Exact(expected),
                    events: events
                        .into_iter()
                        .map(|e| e.into_new_event(terms.patient_id, meta.clone()))
                        .collect(),
                },
            )
            .await?;
        let requested_by = match (terms.requested, terms.grantee) {
            (true, Grantee::User(u)) => Some(u),
            _ => None,
        };
        let row = ConsentRow {
            consent_id: state.id,
            patient_id: terms.patient_id,
            grantee: terms.grantee,
            scope: terms.scope,
            purpose: terms.purpose,
            status,
            expires_at: state.expires_at,
            requested_by,
            created_at: existing.map_or(ctx.now, |r| r.created_at),
            updated_at: ctx.now,
            version: appended.version,
            position: *appended.positions.last().expect("one event"),
        };
        consents::upsert_consent(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(consent_view(&row, ctx.now))
    }

    /// As [`Clinical::commit_consent`], for a session consent.
    async fn commit_session_consent(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        org: OrgId,
        state: SessionConsent,
        events: Vec<SessionConsentEvent>,
        existing: Option<&SessionConsentRow>,
    ) -> Result<SessionConsentView, ClinicalError> {
        let mut state = state;
        let expected: StreamVersion = state.version;
        events.iter().for_each(|e| state.apply(e));
        let (Some(patient), Some(kind)) = (state.patient_id, state.kind) else {
            return Err(ClinicalError::NotFound);
        };
        let mut meta = ctx.metadata(Some(&caller.actor));
        meta.org_id = Some(org.0);
        let mut tx = self.pool().begin().await?;
        let appended = self
            .store()
            .append_in_tx(
                &mut tx,
                AppendRequest {
                    stream: state.id.stream(),
                    expected: Expected::Exact(expected),
                    events: events
                        .into_iter()
                        .map(|e| e.into_new_event(patient, meta.clone()))
                        .collect(),
                },
            )
            .await?;
        let row = SessionConsentRow {
            consent_id: state.id,
            patient_id: patient,
            kind,
            org_id: state.org_id,
            user_id: state.user_id,
            revoked: state.revoked,
            expires_at: state.expires_at,
            created_at: existing.map_or(ctx.now, |r| r.created_at),
            updated_at: ctx.now,
            version: appended.version,
            position: *appended.positions.last().expect("one event"),
        };
        consents::upsert_session_consent(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(session_view(&row, ctx.now))
    }
}

/// A consent row as shown at `now` (an active consent past `expires_at` is `expired`).
pub(super) fn consent_view(r: &ConsentRow, now: DateTime<Utc>) -> ConsentView {
    use carelog_domain::access::ConsentStatus;
    let status = match r.status {
        ConsentStatus::Requested => EffectiveConsentStatus::Requested,
        ConsentStatus::Active if r.expires_at.is_some_and(|at| at <= now) => {
            EffectiveConsentStatus::Expired
        }
        ConsentStatus::Active => EffectiveConsentStatus::Active,
        ConsentStatus::Declined => EffectiveConsentStatus::Declined,
        ConsentStatus::Revoked => EffectiveConsentStatus::Revoked,
    };
    ConsentView {
        consent_id: r.consent_id,
        patient_id: r.patient_id,
        grantee: r.grantee,
        scope: r.scope,
        purpose: r.purpose,
        status,
        expires_at: r.expires_at,
        requested_by: r.requested_by,
        created_at: r.created_at,
        updated_at: r.updated_at,
        version: r.version,
        position: r.position,
    }
}

/// A session consent row as shown at `now`.
pub(super) fn session_view(r: &SessionConsentRow, now: DateTime<Utc>) -> SessionConsentView {
    let status = if r.revoked {
        SessionConsentStatus::Revoked
    } else if r.expires_at.is_some_and(|at| at <= now) {
        SessionConsentStatus::Expired
    } else {
        SessionConsentStatus::Active
    };
    SessionConsentView {
        consent_id: r.consent_id,
        patient_id: r.patient_id,
        kind: r.kind,
        org_id: r.org_id,
        user_id: r.user_id,
        status,
        expires_at: r.expires_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
        version: r.version,
        position: r.position,
    }
}

//! Patients: register, read, update, history, emergency access.

use carelog_domain::access::{Action, EmergencyFacts, Grounds, PatientFacts};
use carelog_domain::audit::ResourceType;
use carelog_domain::patient::{
    grant_emergency, Demographics, DemographicsPatch, EmergencyEvent, Patient, PatientEvent,
};
use carelog_domain::{GrantId, OrgId, PatientId, Position, StreamVersion, UserId};
use carelog_store::clinical as inline;
use carelog_store::read_models::{self, PatientRow};
use carelog_store::{AppendRequest, Expected};
use chrono::{DateTime, Utc};

use super::audit::Accessed;
use super::views::{GrantView, HistoryEntry, PatientHistory, PatientView};
use super::{Caller, Clinical, ClinicalError, PageQuery};
use crate::context::Ctx;
use crate::load::{load_stream, EventFacts};

/// The read model of patients.
pub const PATIENTS_PROJECTION: &str = "patients";

/// A new patient: demographics and, optionally, the patient's own account.
#[derive(Clone)]
pub struct NewPatient {
    /// Demographics.
    pub demographics: Demographics,
    /// The patient's account.
    pub user_id: Option<UserId>,
}

impl Clinical {
    /// Registers a patient in `org` (ORG:ADMIN, ORG:DOCTOR, ORG:STAFF of it).
    pub async fn register_patient(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        org: OrgId,
        new: NewPatient,
    ) -> Result<PatientView, ClinicalError> {
        self.authorize_org(caller, Action::CreatePatient, Some(org), ctx)
            .await?;
        if let Some(user) = new.user_id {
            if !carelog_store::identity::user_exists(self.pool(), user).await? {
                return Err(ClinicalError::invalid("user_id", "no such account"));
            }
        }
        let id = PatientId::new_v7();
        let patient = Patient::new(id);
        let events = patient.register(org, new.demographics, new.user_id, ctx.now.date_naive())?;
        let mut meta = ctx.metadata(Some(&caller.actor));
        meta.org_id = Some(org.0);
        let mut tx = self.pool().begin().await?;
        let appended = self
            .store()
            .append_in_tx(
                &mut tx,
                AppendRequest {
                    stream: id.stream(),
                    expected: Expected::Exact(StreamVersion::EMPTY),
                    events: events
                        .iter()
                        .cloned()
                        .map(|e| e.into_new_event(id, meta.clone()))
                        .collect(),
                },
            )
            .await?;
        let position = *appended.positions.last().expect("one event");
        let mut state = patient;
        events.iter().for_each(|e| state.apply(e));
        let facts = facts_of(&state, org);
        inline::upsert_patient_index(&mut tx, &facts, appended.version, position).await?;
        tx.commit().await?;
        tracing::info!(patient_id = %id, org_id = %org, "patient registered");
        Ok(view_of(&state, org, position, ctx.now, ctx.now))
    }

    /// The patients of `org`, a page at a time (`family_name`: exact match). Waits up to
    /// the read wait for the read model to reach `min_position`, if given.
    pub async fn list_patients(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        org: OrgId,
        family_name: Option<&str>,
        page: PageQuery,
    ) -> Result<(Vec<PatientView>, i64), ClinicalError> {
        let grounds = self
            .authorize_org(caller, Action::ListPatients, Some(org), ctx)
            .await?;
        if let Some(p) = page.min_position {
            self.wait_list(PATIENTS_PROJECTION, p).await?;
        }
        let (rows, total) =
            read_models::list_patients(self.pool(), org, family_name, page.offset, page.limit)
                .await?;
        // A page of demographics: a read of PHI, recorded on the organisation.
        let target = Accessed::new(ResourceType::Organization, org.0, Some(org));
        self.record_read(ctx, caller, Action::ListPatients, target, grounds)
            .await?;
        let views = rows.into_iter().filter_map(row_view).collect();
        Ok((views, total))
    }

    /// One patient's demographics, and on what grounds the caller reads them.
    pub async fn patient(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: PatientId,
    ) -> Result<(PatientView, Grounds), ClinicalError> {
        // The decision's facts and the read model's row in one statement; the row is
        // used only once the policy allows the read.
        let (facts, row) = inline::patient_read(self.pool(), id, caller.actor.user_id, ctx.now)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        let access = self
            .authorize_patient_facts(caller, Action::ReadPatient, facts, false, ctx)
            .await?;
        let view = self
            .current_patient(id, access.indexed.position, access.indexed.version, row)
            .await?;
        let target = Accessed::patient(&access.indexed.facts);
        self.record_read(ctx, caller, Action::ReadPatient, target, access.grounds)
            .await?;
        Ok((view, access.grounds))
    }

    /// Updates demographics (ORG:ADMIN, ORG:DOCTOR, ORG:STAFF of the patient's org).
    /// `if_match`: the version the client read; a different current version is a 409.
    pub async fn update_patient(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: PatientId,
        if_match: Option<StreamVersion>,
        patch: DemographicsPatch,
    ) -> Result<PatientView, ClinicalError> {
        let access = self
            .authorize_patient(caller, Action::UpdatePatient, id, false, ctx)
            .await?;
        let (state, history) = self.load_patient(id).await?;
        check_version(if_match, state.version)?;
        if let Some(Some(u)) = patch.user_id {
            if !carelog_store::identity::user_exists(self.pool(), u).await? {
                return Err(ClinicalError::invalid("user_id", "no such account"));
            }
        }
        let events = state.update(patch, ctx.now.date_naive())?;
        let org = access.indexed.facts.org_id;
        let created_at = history.first().map_or(ctx.now, |f| f.recorded_at);
        if events.is_empty() {
            let position = history.last().map_or(Position::START, |f| f.position);
            let updated_at = history.last().map_or(ctx.now, |f| f.recorded_at);
            return Ok(view_of(&state, org, position, created_at, updated_at));
        }
        let mut meta = ctx.metadata(Some(&caller.actor));
        meta.org_id = Some(org.0);
        let mut tx = self.pool().begin().await?;
        let appended = self
            .store()
            .append_in_tx(
                &mut tx,
                AppendRequest {
                    stream: id.stream(),
                    expected: Expected::Exact(state.version),
                    events: events
                        .iter()
                        .cloned()
                        .map(|e| e.into_new_event(id, meta.clone()))
                        .collect(),
                },
            )
            .await?;
        let position = *appended.positions.last().expect("one event");
        let mut state = state;
        events.iter().for_each(|e| state.apply(e));
        inline::upsert_patient_index(&mut tx, &facts_of(&state, org), appended.version, position)
            .await?;
        tx.commit().await?;
        Ok(view_of(&state, org, position, created_at, ctx.now))
    }

    /// The patient as of `as_of` (now if `None`), folded from the stream. Auditors get
    /// the events' facts without the state.
    pub async fn patient_history(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: PatientId,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<PatientHistory, ClinicalError> {
        let access = self
            .authorize_patient(caller, Action::ReadPatientHistory, id, false, ctx)
            .await?;
        let loaded = load_stream(self.store(), &id.stream(), PatientEvent::decode).await?;
        let mut state = Patient::new(id);
        let mut events = Vec::new();
        let (mut created_at, mut updated_at, mut position) = (None, None, Position::START);
        for (facts, event) in &loaded {
            if as_of.is_some_and(|t| facts.recorded_at > t) {
                break;
            }
            state.apply(event);
            created_at.get_or_insert(facts.recorded_at);
            updated_at = Some(facts.recorded_at);
            position = facts.position;
            events.push(entry(facts));
        }
        let visible = !matches!(access.grounds, Grounds::AuditOnly);
        let org = access.indexed.facts.org_id;
        let view = match (visible && state.exists(), created_at, updated_at) {
            (true, Some(c), Some(u)) => Some(view_of(&state, org, position, c, u)),
            _ => None,
        };
        let target = Accessed::patient(&access.indexed.facts);
        self.record_read(
            ctx,
            caller,
            Action::ReadPatientHistory,
            target,
            access.grounds,
        )
        .await?;
        Ok(PatientHistory {
            patient_id: id,
            as_of,
            version: state.version,
            state: view,
            events,
        })
    }

    /// Grants the caller time-boxed emergency access to a patient (`reason` required).
    pub async fn emergency_access(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: PatientId,
        reason: &str,
    ) -> Result<GrantView, ClinicalError> {
        let access = self
            .authorize_patient(caller, Action::EmergencyAccess, id, false, ctx)
            .await?;
        let user = caller.actor.user_id;
        let event = grant_emergency(id, user, reason, ctx.now, self.config().emergency_duration)?;
        let EmergencyEvent::EmergencyAccessGranted { expires_at, .. } = &event;
        let expires_at = *expires_at;
        let grant = GrantId::new_v7();
        let mut meta = ctx.metadata(Some(&caller.actor));
        meta.org_id = Some(access.indexed.facts.org_id.0);
        let mut tx = self.pool().begin().await?;
        let facts = EmergencyFacts {
            grant_id: grant,
            patient_id: id,
            user_id: user,
            expires_at,
        };
        inline::insert_emergency_grant(&mut tx, &facts, ctx.now).await?;
        let appended = self
            .store()
            .append_in_tx(
                &mut tx,
                AppendRequest {
                    stream: grant.stream(),
                    expected: Expected::Exact(StreamVersion::EMPTY),
                    events: vec![event.into_new_event(meta)],
                },
            )
            .await?;
        tx.commit().await?;
        tracing::warn!(patient_id = %id, user_id = %user, grant_id = %grant, "emergency access granted");
        Ok(GrantView {
            grant_id: grant,
            patient_id: id,
            user_id: user,
            expires_at,
            position: *appended.positions.last().expect("one event"),
        })
    }

    /// The patient now: from the read model once it has reached `position`, else from
    /// the stream.
    /// The patient's current view: `row`, the read model's row as read with the
    /// decision's facts, when it already reflects `version` (the usual case: no wait and
    /// no checkpoint query); else the row once the projection reaches `position` (a
    /// bounded wait); else the stream, folded.
    async fn current_patient(
        &self,
        id: PatientId,
        position: Position,
        version: StreamVersion,
        row: Option<PatientRow>,
    ) -> Result<PatientView, ClinicalError> {
        let fresh = |r: &read_models::PatientRow| r.version >= version;
        let mut row = row.filter(fresh);
        if row.is_none() && self.wait_for(PATIENTS_PROJECTION, position).await? {
            row = read_models::get_patient(self.pool(), id)
                .await?
                .filter(fresh);
        }
        if let Some(view) = row.and_then(row_view) {
            return Ok(view);
        }
        let (state, history) = self.load_patient(id).await?;
        let org = state.org_id.ok_or(ClinicalError::NotFound)?;
        let (first, last) = match (history.first(), history.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => return Err(ClinicalError::NotFound),
        };
        Ok(view_of(
            &state,
            org,
            last.position,
            first.recorded_at,
            last.recorded_at,
        ))
    }

    async fn load_patient(
        &self,
        id: PatientId,
    ) -> Result<(Patient, Vec<EventFacts>), ClinicalError> {
        let loaded = load_stream(self.store(), &id.stream(), PatientEvent::decode).await?;
        let mut state = Patient::new(id);
        let mut facts = Vec::with_capacity(loaded.len());
        for (f, e) in loaded {
            state.apply(&e);
            facts.push(f);
        }
        if !state.exists() {
            return Err(ClinicalError::NotFound);
        }
        Ok((state, facts))
    }

    /// Waits (bounded by the list wait) until `projection` has applied `position`.
    pub(super) async fn wait_list(
        &self,
        projection: &str,
        position: Position,
    ) -> Result<bool, ClinicalError> {
        Ok(read_models::wait_for_projection(
            self.pool(),
            projection,
            position,
            self.config().list_wait,
        )
        .await?)
    }

    /// Waits (bounded) until `projection` has applied `position`.
    pub(super) async fn wait_for(
        &self,
        projection: &str,
        position: Position,
    ) -> Result<bool, ClinicalError> {
        Ok(read_models::wait_for_projection(
            self.pool(),
            projection,
            position,
            self.config().read_wait,
        )
        .await?)
    }
}

/// A stale `If-Match` is a 409.
pub(super) fn check_version(
    if_match: Option<StreamVersion>,
    current: StreamVersion,
) -> Result<(), ClinicalError> {
    match if_match {
        Some(v) if v != current => Err(ClinicalError::Conflict(format!(
            "version mismatch: If-Match is {v}, the resource is at {current}"
        ))),
        _ => Ok(()),
    }
}

pub(super) fn entry(f: &EventFacts) -> HistoryEntry {
    HistoryEntry {
        version: f.version,
        position: f.position,
        event_type: f.event_type.as_str().to_owned(),
        recorded_at: f.recorded_at,
        actor_id: f.actor_id,
    }
}

fn facts_of(state: &Patient, org: OrgId) -> PatientFacts {
    PatientFacts {
        patient_id: state.id,
        org_id: org,
        user_id: state.user_id,
        erased: false,
    }
}

fn view_of(
    state: &Patient,
    org: OrgId,
    position: Position,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> PatientView {
    PatientView {
        patient_id: state.id,
        org_id: org,
        user_id: state.user_id,
        demographics: state.demographics.clone().expect("a registered patient"),
        version: state.version,
        position,
        created_at,
        updated_at,
    }
}

/// A read-model row as a view (`None` if the row holds what this code never writes).
fn row_view(r: PatientRow) -> Option<PatientView> {
    let sex = serde_json::from_value(serde_json::Value::String(r.sex)).ok()?;
    Some(PatientView {
        patient_id: r.patient_id,
        org_id: r.org_id,
        user_id: r.user_id,
        demographics: Demographics {
            given_name: r.given_name,
            family_name: r.family_name,
            birth_date: r.birth_date,
            sex,
            phone: r.phone,
            email: r.email,
            address: r.address,
            national_id: r.national_id,
        },
        version: r.version,
        position: r.position,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

//! GDPR data-subject requests (API.md "GDPR"): erasure requested by the patient (or an
//! ORG:ADMIN on their behalf), approved or rejected by a platform administrator, and
//! executed by the approval; the patient's export (JSON or FHIR R4); legal holds that
//! stop erasures of an organisation's patients.
//!
//! Every decision reads current state (DESIGN.md "Consistency of decisions"): the
//! request's own stream and the inline `dsr_requests` / `legal_holds` / `patient_index`
//! rows written in the same transaction as the events — never a read model.
//!
//! **What an approval does, in one transaction** (so it happens whole or not at all):
//! lock the patient's index row and (shared) the organisation's row; refuse (409, with
//! the hold's reason) if a legal hold is in place; destroy the patient's data key (the
//! subject `patient-<uuid>`, which seals their demographics, records, emergency grants,
//! consents, and the reasons of their requests); mark the patient erased in
//! `patient_index`; purge the `patients` and `clinical_records` read models; append
//! `ErasureApproved`, `PatientErased` (on the patient's stream, `system` subject, no PHI)
//! and `ErasureCompleted`; record the request `completed`. After the commit the key is
//! evicted from this process's cache again (other processes drop it within the cache
//! TTL). The projectors purge their rows again when they reach `PatientErased`, and a
//! rebuild finds the payloads unreadable, so nothing comes back.
//!
//! **Only the patient's key is destroyed.** A patient's account (`user_id`, a
//! BASE:PATIENT login) is a data subject of its own, with its own key (email, name,
//! sessions): the chart's erasure does not close the account, which the user can still
//! log in to (and which then sees a 410 on the erased chart). Organisation keys and the
//! `system` key stay. What stays readable after erasure: event types, stream ids,
//! versions, hashes and the PHI-free metadata of every event (who, when, which command);
//! the inline ids (`patient_index` with its org and erasure time, `record_index`,
//! `emergency_grants`, `consents`, `dsr_requests`); the DSR's status and times.
//!
//! **The export is audited** by a `PatientDataExported {patient_id, format}` event on a
//! stream of its own (`dsr-<uuid>`, a DSR of kind `export`, completed at once), appended
//! before the answer is sent — never on the patient's stream (its `ETag` would change).

use carelog_domain::access::{Action, ConsentStatus, PatientFacts};
use carelog_domain::consent::Purpose;
use carelog_domain::dsr::{Dsr, DsrEvent, DsrStatus, ErasureRequest};
use carelog_domain::export::{
    ConsentExport, DsrExport, ExportConsentPurpose, ExportConsentStatus, ExportEvent, ExportFormat,
    PatientExport, PatientExportBundle, RecordExport, RecordVersionExport, SessionConsentExport,
    VoidExport,
};
use carelog_domain::org::{OrgEvent, Organization};
use carelog_domain::patient::{Patient, PatientEvent};
use carelog_domain::record::RecordEvent;
use carelog_domain::{DsrId, Metadata, OrgId, PatientId, RecordId, StreamVersion};
use carelog_store::clinical as inline;
use carelog_store::dsr::{self, DsrKind, DsrRow, LegalHold};
use carelog_store::{read_models, AppendRequest, Appended, Expected, Opened};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use super::audit::Accessed;
use super::views::{DsrView, LegalHoldView};
use super::{Caller, Clinical, ClinicalError};
use crate::context::Ctx;
use crate::load::{load_stream, LoadError};

impl Clinical {
    /// Requests the erasure of a patient (the patient, or an ORG:ADMIN of their
    /// organisation): `confirm` must be true. One open erasure per patient (409).
    pub async fn request_erasure(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        patient: PatientId,
        input: &ErasureRequest,
    ) -> Result<DsrView, ClinicalError> {
        let access = self
            .authorize_patient(caller, Action::RequestErasure, patient, false, ctx)
            .await?;
        input.validate()?;
        let id = DsrId::new_v7();
        let events = Dsr::new(id).request(patient, input)?;
        let meta = self.meta_for(ctx, caller, access.indexed.facts.org_id);
        let mut tx = self.pool().begin().await?;
        if !dsr::lock_patient(&mut tx, patient).await? {
            return Err(ClinicalError::NotFound);
        }
        if dsr::open_erasure(&mut *tx, patient).await?.is_some() {
            return Err(ClinicalError::Conflict(
                "an erasure of this patient is already requested".into(),
            ));
        }
        let appended = self
            .store()
            .append_in_tx(
                &mut tx,
                dsr_request(id, patient, StreamVersion::EMPTY, &events, &meta),
            )
            .await?;
        let row = DsrRow {
            dsr_id: id,
            patient_id: patient,
            kind: DsrKind::Erasure,
            status: DsrStatus::Pending,
            requested_by: caller.actor.user_id,
            requested_at: ctx.now,
            decided_by: None,
            decided_at: None,
            completed_at: None,
            version: appended.version,
            position: appended.last_position(),
        };
        dsr::insert(&mut tx, &row).await?;
        tx.commit().await?;
        tracing::warn!(dsr_id = %id, patient_id = %patient, "erasure requested");
        Ok(view(row))
    }

    /// A patient's data-subject requests, oldest first (the patient, an ORG:ADMIN of
    /// their organisation, platform admins; answered after the erasure too).
    pub async fn list_dsrs(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        patient: PatientId,
    ) -> Result<Vec<DsrView>, ClinicalError> {
        self.authorize_patient(caller, Action::ReadDsr, patient, false, ctx)
            .await?;
        let rows = dsr::of_patient(self.pool(), patient).await?;
        Ok(rows.into_iter().map(view).collect())
    }

    /// Rejects a pending erasure request, with a reason (SUPER:ADMIN, APP:ADMIN).
    pub async fn reject_erasure(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: DsrId,
        reason: &str,
    ) -> Result<DsrView, ClinicalError> {
        let (mut row, facts) = self.authorize_dsr(ctx, caller, id).await?;
        let state = self.load_dsr(id).await?;
        let events = state.reject(reason)?;
        let meta = self.meta_for(ctx, caller, facts.org_id);
        let mut tx = self.pool().begin().await?;
        let appended = self
            .store()
            .append_in_tx(
                &mut tx,
                dsr_request(id, row.patient_id, state.version, &events, &meta),
            )
            .await?;
        row.status = DsrStatus::Rejected;
        row.decided_by = Some(caller.actor.user_id);
        row.decided_at = Some(ctx.now);
        row.version = appended.version;
        row.position = appended.last_position();
        dsr::update(&mut tx, &row).await?;
        tx.commit().await?;
        tracing::info!(dsr_id = %id, "erasure rejected");
        Ok(view(row))
    }

    /// Approves a pending erasure request and executes it (SUPER:ADMIN, APP:ADMIN): see
    /// the module's documentation. A legal hold on the patient's organisation is a 409
    /// naming the hold's reason, and nothing changes.
    pub async fn approve_erasure(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: DsrId,
    ) -> Result<DsrView, ClinicalError> {
        let (mut row, facts) = self.authorize_dsr(ctx, caller, id).await?;
        let state = self.load_dsr(id).await?;
        let approved = state.approve()?;
        if let Some(hold) = dsr::legal_hold(self.pool(), facts.org_id).await? {
            return Err(held(&hold));
        }
        let patient = row.patient_id;
        let mut chart = Patient::new(patient);
        for (_, e) in load_stream(self.store(), &patient.stream(), PatientEvent::decode).await? {
            chart.apply(&e);
        }
        let erased = chart.erase(id)?;
        let mut after = state.clone();
        approved.iter().for_each(|e| after.apply(e));
        let completed = after.complete()?;
        let meta = self.meta_for(ctx, caller, facts.org_id);
        let subject = patient.subject();
        let keys = self.store().vault().keys().clone();

        let mut tx = self.pool().begin().await?;
        if !dsr::lock_patient(&mut tx, patient).await? {
            return Err(ClinicalError::NotFound);
        }
        dsr::lock_org(&mut tx, facts.org_id, false).await?;
        if let Some(hold) = dsr::legal_hold(&mut *tx, facts.org_id).await? {
            return Err(held(&hold));
        }
        keys.destroy_in_tx(&mut tx, &subject).await?;
        inline::mark_patient_erased(&mut tx, patient, ctx.now).await?;
        read_models::patient_delete(&mut tx, patient).await?;
        dsr::purge_patient_records(&mut tx, patient).await?;
        let a1 = self
            .store()
            .append_in_tx(
                &mut tx,
                dsr_request(id, patient, state.version, &approved, &meta),
            )
            .await?;
        let a2: Appended = self
            .store()
            .append_in_tx(
                &mut tx,
                AppendRequest {
                    stream: patient.stream(),
                    expected: Expected::Exact(chart.version),
                    events: erased
                        .iter()
                        .cloned()
                        .map(|e| e.into_new_event(patient, meta.clone()))
                        .collect(),
                },
            )
            .await?;
        let a3 = self
            .store()
            .append_in_tx(
                &mut tx,
                dsr_request(id, patient, a1.version, &completed, &meta),
            )
            .await?;
        let facts_after = PatientFacts {
            erased: true,
            ..facts
        };
        inline::upsert_patient_index(&mut tx, &facts_after, a2.version, a2.last_position()).await?;
        row.status = DsrStatus::Completed;
        row.decided_by = Some(caller.actor.user_id);
        row.decided_at = Some(ctx.now);
        row.completed_at = Some(ctx.now);
        row.version = a3.version;
        row.position = a3.last_position();
        dsr::update(&mut tx, &row).await?;
        tx.commit().await?;
        keys.forget(&subject);
        tracing::warn!(dsr_id = %id, patient_id = %patient, "patient erased");
        Ok(view(row))
    }

    /// Places a legal hold on an organisation, or replaces its reason (SUPER:ADMIN,
    /// APP:ADMIN). While it is in place no erasure of its patients is approved.
    pub async fn place_legal_hold(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        org: OrgId,
        reason: &str,
    ) -> Result<LegalHoldView, ClinicalError> {
        self.authorize_org(caller, Action::ManageLegalHold, Some(org), ctx)
            .await?;
        let mut tx = self.pool().begin().await?;
        dsr::lock_org(&mut tx, org, true).await?;
        let state = self.load_org_state(org).await?;
        let events = state.place_legal_hold(reason)?;
        let Some(OrgEvent::LegalHoldPlaced { reason }) = events.first().cloned() else {
            // The same reason again: nothing changes.
            let hold = dsr::legal_hold(&mut *tx, org)
                .await?
                .ok_or(ClinicalError::NotFound)?;
            return Ok(hold_view(hold, state.version));
        };
        let hold = LegalHold {
            org_id: org,
            reason,
            placed_by: caller.actor.user_id,
            placed_at: ctx.now,
        };
        dsr::place_legal_hold(&mut tx, &hold).await?;
        let appended = self
            .append_org_events(&mut tx, ctx, caller, org, state.version, &events)
            .await?;
        tx.commit().await?;
        tracing::warn!(org_id = %org, "legal hold placed");
        Ok(hold_view(hold, appended))
    }

    /// Lifts the legal hold on an organisation (404 if there is none).
    pub async fn lift_legal_hold(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        org: OrgId,
    ) -> Result<(), ClinicalError> {
        self.authorize_org(caller, Action::ManageLegalHold, Some(org), ctx)
            .await?;
        let mut tx = self.pool().begin().await?;
        dsr::lock_org(&mut tx, org, true).await?;
        let state = self.load_org_state(org).await?;
        let events = state.lift_legal_hold()?;
        dsr::lift_legal_hold(&mut tx, org).await?;
        self.append_org_events(&mut tx, ctx, caller, org, state.version, &events)
            .await?;
        tx.commit().await?;
        tracing::warn!(org_id = %org, "legal hold lifted");
        Ok(())
    }

    /// Everything carelog holds on one patient (the patient, an ORG:ADMIN on their
    /// behalf): demographics, every record with every version, consents, session
    /// consents, data-subject requests. The export is audited before it is answered.
    pub async fn export_patient(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        patient: PatientId,
        format: ExportFormat,
    ) -> Result<PatientExportBundle, ClinicalError> {
        let access = self
            .authorize_patient(caller, Action::Export, patient, false, ctx)
            .await?;
        let org = access.indexed.facts.org_id;
        let mut bundle = PatientExportBundle {
            exported_at: ctx.now,
            patient: self.export_demographics(patient, org).await?,
            records: self.export_records(patient).await?,
            consents: self.export_consents(patient, ctx.now).await?,
            session_consents: self.export_session_consents(patient, ctx.now).await?,
            dsrs: dsr::of_patient(self.pool(), patient)
                .await?
                .into_iter()
                .map(dsr_export)
                .collect(),
        };
        // The audit: a DSR of kind export, completed at once.
        let id = DsrId::new_v7();
        let meta = self.meta_for(ctx, caller, org);
        let event = ExportEvent::PatientDataExported {
            patient_id: patient,
            format,
        }
        .into_new_event(meta);
        let mut tx = self.pool().begin().await?;
        let appended = self
            .store()
            .append_in_tx(
                &mut tx,
                AppendRequest {
                    stream: id.stream(),
                    expected: Expected::Exact(StreamVersion::EMPTY),
                    events: vec![event],
                },
            )
            .await?;
        let row = DsrRow {
            dsr_id: id,
            patient_id: patient,
            kind: DsrKind::Export,
            status: DsrStatus::Completed,
            requested_by: caller.actor.user_id,
            requested_at: ctx.now,
            decided_by: None,
            decided_at: None,
            completed_at: Some(ctx.now),
            version: appended.version,
            position: appended.last_position(),
        };
        dsr::insert(&mut tx, &row).await?;
        tx.commit().await?;
        bundle.dsrs.push(dsr_export(row));
        let target = Accessed::patient(&access.indexed.facts);
        self.record_read(ctx, caller, Action::Export, target, access.grounds)
            .await?;
        tracing::info!(patient_id = %patient, dsr_id = %id, format = format.as_str(), "patient exported");
        Ok(bundle)
    }

    /// The request (an erasure), and the facts of its patient, if the caller may decide
    /// it. A request on an erased patient still answers (its state decides: 409).
    async fn authorize_dsr(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: DsrId,
    ) -> Result<(DsrRow, PatientFacts), ClinicalError> {
        let row = dsr::get(self.pool(), id)
            .await?
            .filter(|r| r.kind == DsrKind::Erasure)
            .ok_or(ClinicalError::NotFound)?;
        let access = self
            .authorize_patient(caller, Action::DecideErasure, row.patient_id, false, ctx)
            .await?;
        Ok((row, access.indexed.facts))
    }

    /// The request folded from its stream. Events whose payload can no longer be opened
    /// (the patient was erased) count by their type alone.
    async fn load_dsr(&self, id: DsrId) -> Result<Dsr, ClinicalError> {
        let mut state = Dsr::new(id);
        let mut after = StreamVersion::EMPTY;
        loop {
            let page = self.store().read_stream(&id.stream(), after, 500).await?;
            let Some(last) = page.last() else { break };
            after = last.header.version;
            for stored in &page {
                let ty = stored.header.event_type.as_str();
                match self.store().open(stored).await? {
                    Opened::Erased => state.apply_shredded(ty),
                    Opened::Unread => return Err(crate::load::not_opened(stored).into()),
                    Opened::Payload(p) => match DsrEvent::decode(ty, p) {
                        Some(Ok(e)) => state.apply(&e),
                        Some(Err(_)) => {
                            return Err(ClinicalError::Load(LoadError::Undecodable(ty.into())))
                        }
                        None => state.apply_shredded(ty),
                    },
                }
            }
        }
        if !state.exists() {
            return Err(ClinicalError::NotFound);
        }
        Ok(state)
    }

    async fn load_org_state(&self, org: OrgId) -> Result<Organization, ClinicalError> {
        let mut state = Organization::new(org);
        for (_, e) in load_stream(self.store(), &org.stream(), OrgEvent::decode).await? {
            state.apply(&e);
        }
        if !state.exists() {
            return Err(ClinicalError::NotFound);
        }
        Ok(state)
    }

    async fn append_org_events(
        &self,
        tx: &mut PgConnection,
        ctx: &Ctx,
        caller: &Caller,
        org: OrgId,
        expected: StreamVersion,
        events: &[OrgEvent],
    ) -> Result<StreamVersion, ClinicalError> {
        let meta = self.meta_for(ctx, caller, org);
        let appended = self
            .store()
            .append_in_tx(
                tx,
                AppendRequest {
                    stream: org.stream(),
                    expected: Expected::Exact(expected),
                    events: events
                        .iter()
                        .cloned()
                        .map(|e| e.into_new_event(org, meta.clone()))
                        .collect(),
                },
            )
            .await?;
        Ok(appended.version)
    }

    fn meta_for(&self, ctx: &Ctx, caller: &Caller, org: OrgId) -> Metadata {
        let mut meta = ctx.metadata(Some(&caller.actor));
        meta.org_id = Some(org.0);
        meta
    }

    async fn export_demographics(
        &self,
        patient: PatientId,
        org: OrgId,
    ) -> Result<PatientExport, ClinicalError> {
        let loaded = load_stream(self.store(), &patient.stream(), PatientEvent::decode).await?;
        let mut state = Patient::new(patient);
        for (_, e) in &loaded {
            state.apply(e);
        }
        let (Some((first, _)), Some((last, _))) = (loaded.first(), loaded.last()) else {
            return Err(ClinicalError::NotFound);
        };
        if state.is_erased() {
            return Err(ClinicalError::Gone);
        }
        Ok(PatientExport {
            patient_id: patient,
            org_id: state.org_id.unwrap_or(org),
            demographics: state.demographics.clone().ok_or(ClinicalError::NotFound)?,
            user_id: state.user_id,
            version: state.version,
            registered_at: first.recorded_at,
            updated_at: last.recorded_at,
        })
    }

    async fn export_records(&self, patient: PatientId) -> Result<Vec<RecordExport>, ClinicalError> {
        let mut out = Vec::new();
        for id in dsr::record_ids_of_patient(self.pool(), patient).await? {
            if let Some(r) = self.export_record(id, patient).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn export_record(
        &self,
        id: RecordId,
        patient: PatientId,
    ) -> Result<Option<RecordExport>, ClinicalError> {
        let loaded = load_stream(self.store(), &id.stream(), RecordEvent::decode).await?;
        let mut kind = None;
        let mut versions = Vec::new();
        let mut voided = None;
        for (f, e) in loaded {
            match e {
                RecordEvent::RecordCreated {
                    patient_id,
                    kind: k,
                    content,
                    ..
                } => {
                    if patient_id != patient {
                        // Never another patient's data, whatever the index says.
                        return Ok(None);
                    }
                    kind = Some(k);
                    versions.push(RecordVersionExport {
                        version: f.version,
                        content,
                        at: f.recorded_at,
                    });
                }
                RecordEvent::RecordAmended { content, .. } => {
                    versions.push(RecordVersionExport {
                        version: f.version,
                        content,
                        at: f.recorded_at,
                    });
                }
                RecordEvent::RecordVoided { reason, .. } => {
                    voided = Some(VoidExport {
                        reason,
                        at: f.recorded_at,
                    });
                }
            }
        }
        Ok(kind.map(|kind| RecordExport {
            record_id: id,
            kind,
            versions,
            voided,
        }))
    }

    async fn export_consents(
        &self,
        patient: PatientId,
        now: DateTime<Utc>,
    ) -> Result<Vec<ConsentExport>, ClinicalError> {
        let rows = carelog_store::consent::consents_of_patient(self.pool(), patient).await?;
        Ok(rows
            .into_iter()
            .map(|r| ConsentExport {
                consent_id: r.consent_id.0,
                grantee: r.grantee.into(),
                scope: r.scope.into(),
                purpose: match r.purpose {
                    Purpose::Treatment => ExportConsentPurpose::Treatment,
                    Purpose::Payment => ExportConsentPurpose::Payment,
                    Purpose::Operations => ExportConsentPurpose::Operations,
                    Purpose::Research => ExportConsentPurpose::Research,
                },
                status: match r.status {
                    ConsentStatus::Requested => ExportConsentStatus::Requested,
                    ConsentStatus::Active if lapsed(r.expires_at, now) => {
                        ExportConsentStatus::Expired
                    }
                    ConsentStatus::Active => ExportConsentStatus::Active,
                    ConsentStatus::Declined => ExportConsentStatus::Declined,
                    ConsentStatus::Revoked => ExportConsentStatus::Revoked,
                },
                expires_at: r.expires_at,
                created_at: r.created_at,
            })
            .collect())
    }

    async fn export_session_consents(
        &self,
        patient: PatientId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionConsentExport>, ClinicalError> {
        let mut rows =
            carelog_store::consent::session_consents_of_patient(self.pool(), patient).await?;
        rows.sort_by_key(|r| (r.created_at, r.consent_id.0));
        Ok(rows
            .into_iter()
            .map(|r| SessionConsentExport {
                id: r.consent_id.0,
                kind: match serde_json::to_value(r.kind) {
                    Ok(Value::String(k)) => k,
                    _ => String::new(),
                },
                status: if r.revoked {
                    ExportConsentStatus::Revoked
                } else if lapsed(r.expires_at, now) {
                    ExportConsentStatus::Expired
                } else {
                    ExportConsentStatus::Active
                },
                created_at: r.created_at,
            })
            .collect())
    }
}

/// Whether something ending at `expires_at` has lapsed at `now`.
fn lapsed(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|t| t <= now)
}

/// The 409 of an approval under a legal hold: the hold's reason is an administrator's
/// case reference, not patient data, so it is shown.
fn held(hold: &LegalHold) -> ClinicalError {
    ClinicalError::Conflict(format!(
        "a legal hold on the patient's organisation prevents erasure: {}",
        hold.reason
    ))
}

fn dsr_request(
    id: DsrId,
    patient: PatientId,
    expected: StreamVersion,
    events: &[DsrEvent],
    meta: &Metadata,
) -> AppendRequest {
    AppendRequest {
        stream: id.stream(),
        expected: Expected::Exact(expected),
        events: events
            .iter()
            .cloned()
            .map(|e| e.into_new_event(patient, meta.clone()))
            .collect(),
    }
}

fn view(r: DsrRow) -> DsrView {
    DsrView {
        dsr_id: r.dsr_id,
        patient_id: r.patient_id,
        kind: r.kind.as_str(),
        status: r.status,
        requested_by: r.requested_by,
        requested_at: r.requested_at,
        decided_by: r.decided_by,
        decided_at: r.decided_at,
        completed_at: r.completed_at,
        version: r.version,
        position: r.position,
    }
}

fn dsr_export(r: DsrRow) -> DsrExport {
    DsrExport {
        dsr_id: r.dsr_id.0,
        kind: r.kind.as_str().to_owned(),
        status: r.status.as_str().to_owned(),
        requested_at: r.requested_at,
        decided_at: r.decided_at,
    }
}

fn hold_view(h: LegalHold, version: StreamVersion) -> LegalHoldView {
    LegalHoldView {
        org_id: h.org_id,
        reason: h.reason,
        placed_by: h.placed_by,
        placed_at: h.placed_at,
        version,
    }
}

//! Clinical records: write, read, amend, void, history.

use carelog_domain::access::{Action, Grounds};
use carelog_domain::record::{ClinicalRecord, RecordContent, RecordEvent, RecordKind};
use carelog_domain::{PatientId, Position, RecordId, StreamVersion};
use carelog_store::clinical as inline;
use carelog_store::read_models::{self, RecordRow};
use carelog_store::{AppendRequest, Expected};

use super::access::RecordAccess;
use super::audit::Accessed;
use super::patient::check_version;
use super::views::{RecordHistory, RecordVersionView, RecordView};
use super::{Caller, Clinical, ClinicalError, PageQuery};
use crate::context::Ctx;
use crate::load::{load_stream, EventFacts};

/// A PATCH of a record: the fields present replace the current version's
/// (`Some(None)` clears `code` or `data`).
#[derive(Clone, Default)]
pub struct RecordPatch {
    /// New code.
    pub code: Option<Option<String>>,
    /// New title.
    pub title: Option<String>,
    /// New text.
    pub body: Option<String>,
    /// New structured data.
    pub data: Option<Option<serde_json::Value>>,
    /// New clinical time.
    pub recorded_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl RecordPatch {
    /// The content after the patch.
    fn apply_to(self, mut c: RecordContent) -> RecordContent {
        if let Some(v) = self.code {
            c.code = v;
        }
        if let Some(v) = self.title {
            c.title = v;
        }
        if let Some(v) = self.body {
            c.body = v;
        }
        if let Some(v) = self.data {
            c.data = v;
        }
        if let Some(v) = self.recorded_at {
            c.recorded_at = v;
        }
        c
    }
}

/// The read model of clinical records.
pub const RECORDS_PROJECTION: &str = "clinical_records";

impl Clinical {
    /// Writes a record for a patient (ORG:DOCTOR of their org, or a doctor with consent).
    pub async fn create_record(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        patient: PatientId,
        kind: RecordKind,
        content: RecordContent,
    ) -> Result<RecordView, ClinicalError> {
        let access = self
            .authorize_patient(caller, Action::CreateRecord, patient, true, ctx)
            .await?;
        let org = access.indexed.facts.org_id;
        let id = RecordId::new_v7();
        let record = ClinicalRecord::new(id);
        let events = record.create(patient, org, kind, content, caller.actor.user_id, ctx.now)?;
        let (state, position) = self
            .append_record(ctx, caller, record, StreamVersion::EMPTY, events, org.0)
            .await?;
        Ok(view_of(&state, position, ctx.now, ctx.now).expect("a created record"))
    }

    /// The patient's records (voided ones excluded), newest first.
    pub async fn list_records(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        patient: PatientId,
        page: PageQuery,
    ) -> Result<(Vec<RecordView>, i64, Grounds), ClinicalError> {
        let access = self
            .authorize_patient(caller, Action::ReadRecord, patient, true, ctx)
            .await?;
        if let Some(p) = page.min_position {
            self.wait_list(RECORDS_PROJECTION, p).await?;
        }
        let (rows, total) =
            read_models::list_records(self.pool(), patient, page.offset, page.limit).await?;
        let target = Accessed::patient(&access.indexed.facts);
        self.record_read(ctx, caller, Action::ReadRecord, target, access.grounds)
            .await?;
        Ok((
            rows.into_iter().filter_map(row_view).collect(),
            total,
            access.grounds,
        ))
    }

    /// One record (its current version).
    pub async fn record(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: RecordId,
    ) -> Result<(RecordView, Grounds), ClinicalError> {
        // The decision's facts and the read model's row in one statement; the row is
        // used only once the policy allows the read.
        let (facts, row) = inline::record_read(self.pool(), id, caller.actor.user_id, ctx.now)
            .await?
            .ok_or(ClinicalError::NotFound)?;
        let access = self
            .authorize_record_facts(caller, Action::ReadRecord, id, facts, ctx)
            .await?;
        let view = self.current_record(id, &access, row).await?;
        let target = Accessed::record(id, &access);
        self.record_read(ctx, caller, Action::ReadRecord, target, access.grounds)
            .await?;
        Ok((view, access.grounds))
    }

    /// The record now: `row`, the read model's row as read with the decision's facts,
    /// when it already reflects the record's last event (no wait and no checkpoint query);
    /// else the row once the projection reaches it (a bounded wait); else the stream.
    async fn current_record(
        &self,
        id: RecordId,
        access: &RecordAccess,
        row: Option<RecordRow>,
    ) -> Result<RecordView, ClinicalError> {
        let fresh = |r: &read_models::RecordRow| r.version >= access.record.version;
        let mut row = row.filter(fresh);
        if row.is_none()
            && self
                .wait_for(RECORDS_PROJECTION, access.record.position)
                .await?
        {
            row = read_models::get_record(self.pool(), id)
                .await?
                .filter(fresh);
        }
        if let Some(view) = row.and_then(row_view) {
            return Ok(view);
        }
        let (state, facts) = self.load_record(id).await?;
        current_view(&state, &facts).ok_or(ClinicalError::NotFound)
    }

    /// Amends a record: a new version; every earlier one is kept.
    pub async fn amend_record(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: RecordId,
        if_match: Option<StreamVersion>,
        patch: RecordPatch,
    ) -> Result<RecordView, ClinicalError> {
        let access = self
            .authorize_record(caller, Action::AmendRecord, id, ctx)
            .await?;
        let (state, facts) = self.load_record(id).await?;
        check_version(if_match, state.version)?;
        let current = state.content.clone().ok_or(ClinicalError::NotFound)?;
        let events = state.amend(patch.apply_to(current), caller.actor.user_id, ctx.now)?;
        self.finish_change(
            ctx,
            caller,
            state,
            facts,
            events,
            access.patient.facts.org_id.0,
        )
        .await
    }

    /// Voids a record (entered in error): hidden from lists, kept in history.
    pub async fn void_record(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: RecordId,
        reason: &str,
    ) -> Result<RecordView, ClinicalError> {
        let access = self
            .authorize_record(caller, Action::VoidRecord, id, ctx)
            .await?;
        let (state, facts) = self.load_record(id).await?;
        let events = state.void(reason, caller.actor.user_id)?;
        self.finish_change(
            ctx,
            caller,
            state,
            facts,
            events,
            access.patient.facts.org_id.0,
        )
        .await
    }

    /// Every version of a record (auditors: without content).
    pub async fn record_history(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        id: RecordId,
    ) -> Result<RecordHistory, ClinicalError> {
        let access = self
            .authorize_record(caller, Action::ReadRecordHistory, id, ctx)
            .await?;
        let audit_only = matches!(access.grounds, Grounds::AuditOnly);
        let loaded = load_stream(self.store(), &id.stream(), RecordEvent::decode).await?;
        let mut kind = None;
        let mut versions = Vec::with_capacity(loaded.len());
        for (f, e) in loaded {
            let (change, content, author, reason) = match e {
                RecordEvent::RecordCreated {
                    kind: k,
                    content,
                    author_id,
                    ..
                } => {
                    kind = Some(k);
                    ("created", Some(content), author_id, None)
                }
                RecordEvent::RecordAmended { content, author_id } => {
                    ("amended", Some(content), author_id, None)
                }
                RecordEvent::RecordVoided { reason, author_id } => {
                    ("voided", None, author_id, Some(reason))
                }
            };
            versions.push(RecordVersionView {
                version: f.version,
                change,
                content: content.filter(|_| !audit_only),
                author_id: author,
                reason: reason.filter(|_| !audit_only),
                at: f.recorded_at,
            });
        }
        let kind = kind.ok_or(ClinicalError::NotFound)?;
        let target = Accessed::record(id, &access);
        self.record_read(
            ctx,
            caller,
            Action::ReadRecordHistory,
            target,
            access.grounds,
        )
        .await?;
        Ok(RecordHistory {
            record_id: id,
            patient_id: access.record.patient_id,
            kind,
            versions,
            audit_only,
        })
    }

    async fn finish_change(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        state: ClinicalRecord,
        facts: Vec<EventFacts>,
        events: Vec<RecordEvent>,
        org: uuid::Uuid,
    ) -> Result<RecordView, ClinicalError> {
        let created_at = facts.first().map_or(ctx.now, |f| f.recorded_at);
        if events.is_empty() {
            return current_view(&state, &facts).ok_or(ClinicalError::NotFound);
        }
        let version = state.version;
        let (state, position) = self
            .append_record(ctx, caller, state, version, events, org)
            .await?;
        Ok(view_of(&state, position, created_at, ctx.now).expect("an existing record"))
    }

    async fn append_record(
        &self,
        ctx: &Ctx,
        caller: &Caller,
        mut state: ClinicalRecord,
        expected: StreamVersion,
        events: Vec<RecordEvent>,
        org: uuid::Uuid,
    ) -> Result<(ClinicalRecord, Position), ClinicalError> {
        let patient = match &events[..] {
            [RecordEvent::RecordCreated { patient_id, .. }, ..] => *patient_id,
            _ => state.patient_id.ok_or(ClinicalError::NotFound)?,
        };
        let mut meta = ctx.metadata(Some(&caller.actor));
        meta.org_id = Some(org);
        let mut tx = self.pool().begin().await?;
        let appended = self
            .store()
            .append_in_tx(
                &mut tx,
                AppendRequest {
                    stream: state.id.stream(),
                    expected: Expected::Exact(expected),
                    events: events
                        .iter()
                        .cloned()
                        .map(|e| e.into_new_event(patient, meta.clone()))
                        .collect(),
                },
            )
            .await?;
        let position = *appended.positions.last().expect("one event");
        events.iter().for_each(|e| state.apply(e));
        inline::upsert_record_index(&mut tx, state.id, patient, appended.version, position).await?;
        tx.commit().await?;
        Ok((state, position))
    }

    async fn load_record(
        &self,
        id: RecordId,
    ) -> Result<(ClinicalRecord, Vec<EventFacts>), ClinicalError> {
        let loaded = load_stream(self.store(), &id.stream(), RecordEvent::decode).await?;
        let mut state = ClinicalRecord::new(id);
        let mut facts = Vec::with_capacity(loaded.len());
        for (f, e) in loaded {
            state.apply(&e);
            facts.push(f);
        }
        if state.content.is_none() {
            return Err(ClinicalError::NotFound);
        }
        Ok((state, facts))
    }
}

fn current_view(state: &ClinicalRecord, facts: &[EventFacts]) -> Option<RecordView> {
    let (first, last) = (facts.first()?, facts.last()?);
    view_of(state, last.position, first.recorded_at, last.recorded_at)
}

fn view_of(
    state: &ClinicalRecord,
    position: Position,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
) -> Option<RecordView> {
    let last = state.versions.last()?;
    Some(RecordView {
        record_id: state.id,
        patient_id: state.patient_id?,
        org_id: state.org_id?,
        kind: state.kind?,
        content: state.content.clone()?,
        author_id: last.author_id,
        void_reason: state.voided.clone(),
        version: state.version,
        position,
        created_at,
        updated_at,
    })
}

fn row_view(r: RecordRow) -> Option<RecordView> {
    let kind = serde_json::from_value(serde_json::Value::String(r.kind)).ok()?;
    Some(RecordView {
        record_id: r.record_id,
        patient_id: r.patient_id,
        org_id: r.org_id,
        kind,
        content: RecordContent {
            code: r.code,
            title: r.title,
            body: r.body,
            data: r.data,
            recorded_at: r.recorded_at,
        },
        author_id: r.author_id,
        void_reason: r.void_reason,
        version: r.version,
        position: r.position,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

//! The clinical record aggregate: state folded from the `record-<uuid>` stream, and the
//! decisions taken on it. A record is never deleted: an amendment adds a version (every
//! version is kept), voiding marks it entered-in-error with a reason.

use chrono::{DateTime, Utc};

use crate::field::FieldError;
use crate::ids::{OrgId, PatientId, RecordId, StreamVersion, UserId};

use super::events::{RecordContent, RecordEvent, RecordKind};
use super::input::{validate_content, validate_void_reason};

/// Why a record command was refused. Messages carry no PHI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// There is no such record (404).
    #[error("no such clinical record")]
    NotFound,
    /// The stream already holds a record (409).
    #[error("the clinical record already exists")]
    AlreadyExists,
    /// A voided record cannot be amended or voided again (409).
    #[error("the clinical record is voided")]
    Voided,
    /// An input field broke a rule (400 naming the field).
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

/// One version of a record's content. PHI: no `Debug`.
#[derive(Clone, PartialEq)]
pub struct RecordVersion {
    /// The stream version of the event that wrote it (1 for the creation).
    pub version: StreamVersion,
    /// The content of this version.
    pub content: RecordContent,
    /// Who wrote it.
    pub author_id: UserId,
}

/// The state of one clinical record. PHI: `Debug` shows ids only.
#[derive(Clone, PartialEq)]
pub struct ClinicalRecord {
    /// The record.
    pub id: RecordId,
    /// Events applied so far.
    pub version: StreamVersion,
    /// Whose record (set by creation).
    pub patient_id: Option<PatientId>,
    /// The patient's organisation when it was written (set by creation).
    pub org_id: Option<OrgId>,
    /// What kind of record (set by creation).
    pub kind: Option<RecordKind>,
    /// The current content (the last version).
    pub content: Option<RecordContent>,
    /// The reason, once voided.
    pub voided: Option<String>,
    /// Every version, oldest first.
    pub versions: Vec<RecordVersion>,
}

impl std::fmt::Debug for ClinicalRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClinicalRecord")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("patient_id", &self.patient_id)
            .field("kind", &self.kind)
            .field("voided", &self.voided.is_some())
            .finish_non_exhaustive()
    }
}

impl ClinicalRecord {
    /// A record with no events yet.
    pub fn new(id: RecordId) -> Self {
        Self {
            id,
            version: StreamVersion::EMPTY,
            patient_id: None,
            org_id: None,
            kind: None,
            content: None,
            voided: None,
            versions: Vec::new(),
        }
    }

    /// The state after `events`, in stream order (history `as_of` folds a prefix: the
    /// command layer keeps the events recorded up to that time).
    pub fn fold<'a>(id: RecordId, events: impl IntoIterator<Item = &'a RecordEvent>) -> Self {
        let mut record = Self::new(id);
        for event in events {
            record.apply(event);
        }
        record
    }

    /// Whether the record exists.
    pub fn exists(&self) -> bool {
        self.content.is_some()
    }

    /// Whether it was voided.
    pub fn is_voided(&self) -> bool {
        self.voided.is_some()
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: &RecordEvent) {
        self.version = self.version.next();
        match event {
            RecordEvent::RecordCreated {
                patient_id,
                org_id,
                kind,
                content,
                author_id,
            } => {
                self.patient_id = Some(*patient_id);
                self.org_id = Some(*org_id);
                self.kind = Some(*kind);
                self.push_version(content, *author_id);
            }
            RecordEvent::RecordAmended { content, author_id } => {
                self.push_version(content, *author_id);
            }
            RecordEvent::RecordVoided { reason, .. } => self.voided = Some(reason.clone()),
        }
    }

    fn push_version(&mut self, content: &RecordContent, author_id: UserId) {
        self.content = Some(content.clone());
        self.versions.push(RecordVersion {
            version: self.version,
            content: content.clone(),
            author_id,
        });
    }

    /// Writes the record (version 1) for `patient_id` of `org_id`; `now` bounds
    /// `recorded_at`.
    pub fn create(
        &self,
        patient_id: PatientId,
        org_id: OrgId,
        kind: RecordKind,
        content: RecordContent,
        author: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordEvent>, RecordError> {
        if self.exists() {
            return Err(RecordError::AlreadyExists);
        }
        let content = validate_content(content, now)?;
        Ok(vec![RecordEvent::RecordCreated {
            patient_id,
            org_id,
            kind,
            content,
            author_id: author,
        }])
    }

    /// Adds a version; no event if the content is the current one.
    pub fn amend(
        &self,
        content: RecordContent,
        author: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordEvent>, RecordError> {
        let current = self.check_open()?;
        let content = validate_content(content, now)?;
        if content == *current {
            return Ok(vec![]);
        }
        Ok(vec![RecordEvent::RecordAmended {
            content,
            author_id: author,
        }])
    }

    /// Voids the record (entered in error); `reason` is required.
    pub fn void(&self, reason: &str, author: UserId) -> Result<Vec<RecordEvent>, RecordError> {
        self.check_open()?;
        let reason = validate_void_reason(reason)?;
        Ok(vec![RecordEvent::RecordVoided {
            reason,
            author_id: author,
        }])
    }

    /// The current content of an existing, not voided record.
    fn check_open(&self) -> Result<&RecordContent, RecordError> {
        let content = self.content.as_ref().ok_or(RecordError::NotFound)?;
        if self.is_voided() {
            return Err(RecordError::Voided);
        }
        Ok(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn now() -> DateTime<Utc> {
        "2025-06-01T12:00:00Z".parse().unwrap()
    }

    fn doctor(n: u128) -> UserId {
        UserId(Uuid::from_u128(n))
    }

    fn note(body: &str) -> RecordContent {
        RecordContent {
            code: None,
            title: "Visit".into(),
            body: body.into(),
            data: None,
            recorded_at: now(),
        }
    }

    fn after(mut r: ClinicalRecord, events: Vec<RecordEvent>) -> ClinicalRecord {
        events.iter().for_each(|e| r.apply(e));
        r
    }

    fn given_a_note_by_doctor_1() -> ClinicalRecord {
        let r = ClinicalRecord::new(RecordId(Uuid::from_u128(5)));
        let events = r
            .create(
                PatientId(Uuid::from_u128(2)),
                OrgId(Uuid::from_u128(1)),
                RecordKind::Note,
                note("first"),
                doctor(1),
                now(),
            )
            .unwrap();
        after(r, events)
    }

    #[test]
    fn given_no_record_when_created_then_version_1_is_kept() {
        let r = given_a_note_by_doctor_1();
        assert!(r.exists() && !r.is_voided());
        assert_eq!(r.kind, Some(RecordKind::Note));
        assert_eq!(r.versions.len(), 1);
        assert_eq!(r.versions[0].version, StreamVersion(1));
        assert_eq!(r.versions[0].author_id, doctor(1));
    }

    #[test]
    fn given_a_record_when_created_again_then_already_exists() {
        let r = given_a_note_by_doctor_1();
        let err = r
            .create(
                r.patient_id.unwrap(),
                r.org_id.unwrap(),
                RecordKind::Note,
                note("x"),
                doctor(1),
                now(),
            )
            .unwrap_err();
        assert_eq!(err, RecordError::AlreadyExists);
    }

    #[test]
    fn given_no_record_when_created_with_a_blank_title_then_title_is_named() {
        let r = ClinicalRecord::new(RecordId(Uuid::nil()));
        let content = RecordContent {
            title: " ".into(),
            ..note("x")
        };
        let err = r
            .create(
                PatientId(Uuid::nil()),
                OrgId(Uuid::nil()),
                RecordKind::Diagnosis,
                content,
                doctor(1),
                now(),
            )
            .unwrap_err();
        assert!(matches!(err, RecordError::Invalid(f) if f.field == "title"));
    }

    #[test]
    fn given_a_record_when_amended_then_every_version_is_kept() {
        let r = given_a_note_by_doctor_1();
        let r = after(
            r.clone(),
            r.amend(note("second"), doctor(2), now()).unwrap(),
        );
        assert_eq!(r.versions.len(), 2);
        assert_eq!(r.content.as_ref().unwrap().body, "second");
        assert_eq!(r.versions[0].content.body, "first");
        assert_eq!(r.versions[1].version, StreamVersion(2));
        assert_eq!(r.versions[1].author_id, doctor(2));
    }

    #[test]
    fn given_a_record_when_amended_with_identical_content_then_no_event() {
        let r = given_a_note_by_doctor_1();
        assert!(r
            .amend(note(" first "), doctor(2), now())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn given_no_record_when_amended_or_voided_then_not_found() {
        let r = ClinicalRecord::new(RecordId(Uuid::nil()));
        assert_eq!(
            r.amend(note("x"), doctor(1), now()).unwrap_err(),
            RecordError::NotFound
        );
        assert_eq!(r.void("why", doctor(1)).unwrap_err(), RecordError::NotFound);
    }

    #[test]
    fn given_a_record_when_voided_then_it_keeps_its_versions_and_the_reason() {
        let r = given_a_note_by_doctor_1();
        let r = after(r.clone(), r.void(" wrong patient ", doctor(1)).unwrap());
        assert_eq!(r.voided.as_deref(), Some("wrong patient"));
        assert_eq!(r.versions.len(), 1);
        assert_eq!(r.version, StreamVersion(2));
    }

    #[test]
    fn given_a_record_when_voided_without_a_reason_then_reason_is_named() {
        let r = given_a_note_by_doctor_1();
        assert!(
            matches!(r.void("  ", doctor(1)).unwrap_err(), RecordError::Invalid(f) if f.field == "reason")
        );
    }

    #[test]
    fn given_a_voided_record_when_amended_or_voided_again_then_conflict() {
        let r = given_a_note_by_doctor_1();
        let r = after(r.clone(), r.void("error", doctor(1)).unwrap());
        assert_eq!(
            r.amend(note("x"), doctor(1), now()).unwrap_err(),
            RecordError::Voided
        );
        assert_eq!(r.void("again", doctor(1)).unwrap_err(), RecordError::Voided);
    }

    #[test]
    fn given_a_history_when_folded_up_to_an_event_then_the_old_version_is_current() {
        let r = given_a_note_by_doctor_1();
        let amend = r.amend(note("second"), doctor(2), now()).unwrap();
        let created = RecordEvent::RecordCreated {
            patient_id: r.patient_id.unwrap(),
            org_id: r.org_id.unwrap(),
            kind: RecordKind::Note,
            content: note("first"),
            author_id: doctor(1),
        };
        let all = [created, amend[0].clone()];
        assert_eq!(
            ClinicalRecord::fold(r.id, &all[..1]).content.unwrap().body,
            "first"
        );
        assert_eq!(
            ClinicalRecord::fold(r.id, &all).content.unwrap().body,
            "second"
        );
    }
}

//! The `clinical_records` read model (`projections/clinical_records.sql`): each record's
//! current version (`clinical_records`; lists show the active ones) and every version ever
//! written (`clinical_record_versions`, the record's history).
//!
//! From the `record-<uuid>` streams only: `RecordCreated` inserts the record and its first
//! version, `RecordAmended` replaces the content and adds a version, `RecordVoided` marks
//! it voided with its reason and adds a version (each only over an older stream version).
//! A payload that can no longer be opened ([`Opened::Erased`]: the patient's key was
//! destroyed) deletes every row of the record, so a rebuild after an erasure reaches the
//! same state.
//!
//! From the `patient-<uuid>` streams, `PatientErased` alone: every record of the patient
//! and every version of them go at once (whatever a key cache still held when the
//! records' own events were applied). The patient's other events, opened or erased, do
//! nothing here.

use carelog_domain::patient::PatientEvent;
use carelog_domain::record::RecordEvent;
use carelog_domain::{PatientId, RecordId, StreamType};
use carelog_store::read_models::{self as rm, EventPlace, NewRecord};
use carelog_store::{Opened, StoredEvent};
use sqlx::PgConnection;

use crate::change::{change, Change};
use crate::{ApplyError, BoxFuture, Projection, RebuildSql};

/// The tables of the read model (`CREATE ... IF NOT EXISTS`), run by
/// [`crate::schemas::ensure_schemas`].
pub const SCHEMA: &str = include_str!("../../../projections/clinical_records.sql");

/// The projection feeding `clinical_records` and `clinical_record_versions`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClinicalRecords;

impl ClinicalRecords {
    /// Its name (checkpoint row, consumer `<prefix>proj_clinical_records`).
    pub const NAME: &'static str = "clinical_records";
}

impl Projection for ClinicalRecords {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a StoredEvent,
        opened: &'a Opened,
    ) -> BoxFuture<'a, Result<(), ApplyError>> {
        Box::pin(async move {
            if event.header.stream_id.stream_type() == StreamType::Patient {
                if let Change::Event(PatientEvent::PatientErased { .. }) =
                    change(event, opened, StreamType::Patient, PatientEvent::decode)?
                {
                    let patient = PatientId(event.header.stream_id.uuid());
                    carelog_store::dsr::purge_patient_records(tx, patient).await?;
                }
                return Ok(());
            }
            let record = RecordId(event.header.stream_id.uuid());
            let place = EventPlace::of(event);
            match change(event, opened, StreamType::Record, RecordEvent::decode)? {
                Change::None => {}
                Change::Erase => rm::record_delete(tx, record).await?,
                Change::Event(RecordEvent::RecordCreated {
                    patient_id,
                    org_id,
                    kind,
                    content,
                    author_id,
                }) => {
                    let new = NewRecord {
                        record_id: record,
                        patient_id,
                        org_id,
                        kind,
                        author_id,
                    };
                    rm::record_insert(tx, &new, &content, place).await?
                }
                Change::Event(RecordEvent::RecordAmended { content, author_id }) => {
                    rm::record_amend(tx, record, &content, author_id, place).await?
                }
                Change::Event(RecordEvent::RecordVoided { reason, author_id }) => {
                    rm::record_void(tx, record, &reason, author_id, place).await?
                }
            }
            Ok(())
        })
    }

    fn rebuild_sql(&self) -> Option<RebuildSql> {
        Some(RebuildSql {
            prepare: include_str!("../../../projections/clinical_records_rebuild_prepare.sql"),
            swap: include_str!("../../../projections/clinical_records_rebuild_swap.sql"),
        })
    }
}

//! The `patients` read model (`projections/patients.sql`): each patient's current
//! demographics, for the organisation's patient list and the patient detail.
//!
//! From the `patient-<uuid>` streams only: `PatientRegistered` inserts the row,
//! `PatientUpdated` replaces it (only over an older stream version). A payload that can
//! no longer be opened ([`Opened::Erased`]: the patient's key was destroyed) deletes the
//! row, so an erased patient leaves nothing here, and a rebuild after an erasure reaches
//! the same state.

use carelog_domain::patient::PatientEvent;
use carelog_domain::{PatientId, StreamType};
use carelog_store::read_models::{self as rm, EventPlace};
use carelog_store::{Opened, StoredEvent};
use sqlx::PgConnection;

use crate::change::{change, Change};
use crate::{ApplyError, BoxFuture, Projection, RebuildSql};

/// The tables of the read model (`CREATE ... IF NOT EXISTS`), run by
/// [`crate::schemas::ensure_schemas`].
pub const SCHEMA: &str = include_str!("../../../projections/patients.sql");

/// The projection feeding `patients`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Patients;

impl Patients {
    /// Its name (checkpoint row, consumer `<prefix>proj_patients`).
    pub const NAME: &'static str = "patients";
}

impl Projection for Patients {
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
            let patient = PatientId(event.header.stream_id.uuid());
            let place = EventPlace::of(event);
            match change(event, opened, StreamType::Patient, PatientEvent::decode)? {
                Change::None => {}
                // An erasure: the key is gone (payloads unreadable) or, at the
                // `PatientErased` event itself, the patient is forgotten.
                Change::Erase | Change::Event(PatientEvent::PatientErased { .. }) => {
                    rm::patient_delete(tx, patient).await?
                }
                Change::Event(PatientEvent::PatientRegistered {
                    org_id,
                    demographics,
                    user_id,
                }) => {
                    rm::patient_insert(tx, patient, org_id, user_id, &demographics, place).await?
                }
                Change::Event(PatientEvent::PatientUpdated {
                    demographics,
                    user_id,
                }) => rm::patient_update(tx, patient, user_id, &demographics, place).await?,
            }
            Ok(())
        })
    }

    fn rebuild_sql(&self) -> Option<RebuildSql> {
        Some(RebuildSql {
            prepare: include_str!("../../../projections/patients_rebuild_prepare.sql"),
            swap: include_str!("../../../projections/patients_rebuild_swap.sql"),
        })
    }
}

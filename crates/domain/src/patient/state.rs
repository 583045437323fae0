//! The patient aggregate: state folded from the `patient-<uuid>` stream, and the
//! decisions taken on it. `apply` cannot fail and holds no rule; the decisions validate
//! their input (time comes in as an argument) and hold every rule.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

use crate::field::FieldError;
use crate::ids::{DsrId, OrgId, PatientId, StreamVersion, UserId};

use super::events::{Demographics, PatientEvent, Sex};
use super::input::{
    validate_address, validate_birth_date, validate_demographics, validate_email,
    validate_family_name, validate_given_name, validate_national_id, validate_phone,
};

/// Why a patient command was refused. Messages carry no PHI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatientError {
    /// There is no such patient (404).
    #[error("no such patient")]
    NotFound,
    /// The stream already holds a registration (409).
    #[error("the patient is already registered")]
    AlreadyRegistered,
    /// The patient was erased (410): nothing more is decided on them.
    #[error("the patient was erased")]
    Erased,
    /// An input field broke a rule (400 naming the field).
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

/// A partial update of demographics (`PATCH /api/patients/:id`). A field left out is
/// `None` (unchanged). Nullable fields are `Option<Option<_>>`: `Some(None)` clears them
/// (`null` in JSON), `Some(Some(v))` sets them. Required fields cannot be `null`.
/// PHI: no `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemographicsPatch {
    /// New given name.
    #[serde(default, deserialize_with = "present")]
    pub given_name: Option<String>,
    /// New family name.
    #[serde(default, deserialize_with = "present")]
    pub family_name: Option<String>,
    /// New birth date.
    #[serde(default, deserialize_with = "present")]
    pub birth_date: Option<NaiveDate>,
    /// New sex.
    #[serde(default, deserialize_with = "present")]
    pub sex: Option<Sex>,
    /// New phone, or `Some(None)` to clear it.
    #[serde(default, deserialize_with = "present")]
    pub phone: Option<Option<String>>,
    /// New email, or `Some(None)` to clear it.
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<String>>,
    /// New address, or `Some(None)` to clear it.
    #[serde(default, deserialize_with = "present")]
    pub address: Option<Option<String>>,
    /// New national id, or `Some(None)` to clear it.
    #[serde(default, deserialize_with = "present")]
    pub national_id: Option<Option<String>>,
    /// Link the patient's own account, or `Some(None)` to unlink it.
    #[serde(default, deserialize_with = "present")]
    pub user_id: Option<Option<UserId>>,
}

/// A field that is present in the JSON: `null` is `Some(None)` for nullable fields and an
/// error for required ones (serde's `Option` alone would read `null` as "absent").
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The state of one patient. PHI: `Debug` shows ids only.
#[derive(Clone, PartialEq, Eq)]
pub struct Patient {
    /// The patient.
    pub id: PatientId,
    /// Events applied so far.
    pub version: StreamVersion,
    /// The organisation holding the chart (set by registration).
    pub org_id: Option<OrgId>,
    /// Set by registration.
    pub demographics: Option<Demographics>,
    /// The patient's own account, if linked.
    pub user_id: Option<UserId>,
    /// The data-subject request that erased the patient, once erased.
    pub erased: Option<DsrId>,
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patient")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("org_id", &self.org_id)
            .field("erased", &self.erased)
            .finish_non_exhaustive()
    }
}

impl Patient {
    /// A patient with no events yet.
    pub fn new(id: PatientId) -> Self {
        Self {
            id,
            version: StreamVersion::EMPTY,
            org_id: None,
            demographics: None,
            user_id: None,
            erased: None,
        }
    }

    /// The state after `events`, in stream order (history `as_of` folds a prefix: the
    /// command layer keeps the events recorded up to that time).
    pub fn fold<'a>(id: PatientId, events: impl IntoIterator<Item = &'a PatientEvent>) -> Self {
        let mut patient = Self::new(id);
        for event in events {
            patient.apply(event);
        }
        patient
    }

    /// Whether the patient was registered (erased ones included: see [`Self::is_erased`]).
    pub fn exists(&self) -> bool {
        self.org_id.is_some()
    }

    /// Whether the patient was erased.
    pub fn is_erased(&self) -> bool {
        self.erased.is_some()
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: &PatientEvent) {
        self.version = self.version.next();
        match event {
            PatientEvent::PatientRegistered {
                org_id,
                demographics,
                user_id,
            } => {
                self.org_id = Some(*org_id);
                self.demographics = Some(demographics.clone());
                self.user_id = *user_id;
            }
            PatientEvent::PatientUpdated {
                demographics,
                user_id,
            } => {
                self.demographics = Some(demographics.clone());
                self.user_id = *user_id;
            }
            PatientEvent::PatientErased { dsr_id } => {
                // Forget what the erasure made unreadable; keep the ids.
                self.erased = Some(*dsr_id);
                self.demographics = None;
            }
        }
    }

    /// Registers the patient in `org`; `today` bounds the birth date.
    pub fn register(
        &self,
        org: OrgId,
        demographics: Demographics,
        user_id: Option<UserId>,
        today: NaiveDate,
    ) -> Result<Vec<PatientEvent>, PatientError> {
        if self.is_erased() {
            return Err(PatientError::Erased);
        }
        if self.exists() {
            return Err(PatientError::AlreadyRegistered);
        }
        let demographics = validate_demographics(demographics, today)?;
        Ok(vec![PatientEvent::PatientRegistered {
            org_id: org,
            demographics,
            user_id,
        }])
    }

    /// Applies `patch`; no event if it changes nothing. `today` bounds the birth date.
    pub fn update(
        &self,
        patch: DemographicsPatch,
        today: NaiveDate,
    ) -> Result<Vec<PatientEvent>, PatientError> {
        if self.is_erased() {
            return Err(PatientError::Erased);
        }
        let Some(current) = &self.demographics else {
            return Err(PatientError::NotFound);
        };
        let demographics = patched(current, patch.clone(), today)?;
        let user_id = patch.user_id.unwrap_or(self.user_id);
        if demographics == *current && user_id == self.user_id {
            return Ok(vec![]);
        }
        Ok(vec![PatientEvent::PatientUpdated {
            demographics,
            user_id,
        }])
    }
    /// Erases the patient, as the approved data-subject request `dsr` asks. The caller
    /// destroys the patient's key and purges the read models in the same transaction.
    pub fn erase(&self, dsr: DsrId) -> Result<Vec<PatientEvent>, PatientError> {
        if self.is_erased() {
            return Err(PatientError::Erased);
        }
        if !self.exists() {
            return Err(PatientError::NotFound);
        }
        Ok(vec![PatientEvent::PatientErased { dsr_id: dsr }])
    }
}

/// `current` with the fields of `patch` validated and laid over it.
fn patched(
    current: &Demographics,
    patch: DemographicsPatch,
    today: NaiveDate,
) -> Result<Demographics, FieldError> {
    fn nullable(
        current: &Option<String>,
        patch: Option<Option<String>>,
        validate: fn(&str) -> Result<String, FieldError>,
    ) -> Result<Option<String>, FieldError> {
        match patch {
            None => Ok(current.clone()),
            Some(None) => Ok(None),
            Some(Some(v)) => validate(&v).map(Some),
        }
    }
    let mut next = current.clone();
    if let Some(v) = patch.given_name {
        next.given_name = validate_given_name(&v)?;
    }
    if let Some(v) = patch.family_name {
        next.family_name = validate_family_name(&v)?;
    }
    if let Some(v) = patch.birth_date {
        next.birth_date = validate_birth_date(v, today)?;
    }
    if let Some(v) = patch.sex {
        next.sex = v;
    }
    next.phone = nullable(&current.phone, patch.phone, validate_phone)?;
    next.email = nullable(&current.email, patch.email, validate_email)?;
    next.address = nullable(&current.address, patch.address, validate_address)?;
    next.national_id = nullable(
        &current.national_id,
        patch.national_id,
        validate_national_id,
    )?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
    }

    fn org() -> OrgId {
        OrgId(Uuid::from_u128(1))
    }

    fn ada() -> Demographics {
        Demographics {
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            birth_date: NaiveDate::from_ymd_opt(1990, 12, 10).unwrap(),
            sex: Sex::Female,
            phone: Some("0123".into()),
            email: None,
            address: None,
            national_id: None,
        }
    }

    fn given_a_registered_patient() -> Patient {
        let p = Patient::new(PatientId(Uuid::from_u128(2)));
        let events = p.register(org(), ada(), None, today()).unwrap();
        Patient::fold(p.id, &events)
    }

    fn after(mut p: Patient, events: Vec<PatientEvent>) -> Patient {
        events.iter().for_each(|e| p.apply(e));
        p
    }

    #[test]
    fn given_no_patient_when_registered_then_the_chart_belongs_to_the_org() {
        let p = given_a_registered_patient();
        assert!(p.exists());
        assert_eq!(p.org_id, Some(org()));
        assert_eq!(p.version, StreamVersion(1));
        assert_eq!(p.demographics.unwrap().family_name, "Lovelace");
    }

    #[test]
    fn given_a_patient_when_registered_again_then_already_registered() {
        let p = given_a_registered_patient();
        assert_eq!(
            p.register(org(), ada(), None, today()).unwrap_err(),
            PatientError::AlreadyRegistered
        );
    }

    #[test]
    fn given_no_patient_when_registered_with_a_bad_field_then_it_is_named() {
        let p = Patient::new(PatientId(Uuid::nil()));
        let mut d = ada();
        d.birth_date = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
        let err = p.register(org(), d, None, today()).unwrap_err();
        assert_eq!(
            err,
            PatientError::Invalid(FieldError::new(
                "birth_date",
                "must be a date from 1900-01-01 up to today"
            ))
        );
    }

    #[test]
    fn given_no_patient_when_updated_then_not_found() {
        let p = Patient::new(PatientId(Uuid::nil()));
        assert_eq!(
            p.update(DemographicsPatch::default(), today()).unwrap_err(),
            PatientError::NotFound
        );
    }

    #[test]
    fn given_a_patient_when_the_patch_changes_nothing_then_no_event() {
        let p = given_a_registered_patient();
        assert!(p
            .update(DemographicsPatch::default(), today())
            .unwrap()
            .is_empty());
        let same = DemographicsPatch {
            given_name: Some(" Ada ".into()),
            phone: Some(Some("0123".into())),
            email: Some(None),
            ..Default::default()
        };
        assert!(p.update(same, today()).unwrap().is_empty());
    }

    #[test]
    fn given_a_patient_when_fields_are_set_and_cleared_then_the_event_holds_the_whole_new_state() {
        let p = given_a_registered_patient();
        let account = UserId(Uuid::from_u128(3));
        let patch = DemographicsPatch {
            family_name: Some("King".into()),
            phone: Some(None),
            email: Some(Some("ada@example.org".into())),
            user_id: Some(Some(account)),
            ..Default::default()
        };
        let p = after(p.clone(), p.update(patch, today()).unwrap());
        let d = p.demographics.as_ref().unwrap();
        assert_eq!(d.family_name, "King");
        assert_eq!(d.given_name, "Ada");
        assert_eq!(d.phone, None);
        assert_eq!(d.email.as_deref(), Some("ada@example.org"));
        assert_eq!(p.user_id, Some(account));
        assert_eq!(p.version, StreamVersion(2));
    }

    #[test]
    fn given_a_patient_when_a_patched_field_is_invalid_then_it_is_named() {
        let p = given_a_registered_patient();
        let patch = DemographicsPatch {
            phone: Some(Some("not a phone".into())),
            ..Default::default()
        };
        assert!(matches!(
            p.update(patch, today()).unwrap_err(),
            PatientError::Invalid(f) if f.field == "phone"
        ));
    }

    #[test]
    fn given_a_json_patch_when_read_then_absent_null_and_value_are_told_apart() {
        let patch: DemographicsPatch =
            serde_json::from_str(r#"{"phone": null, "email": "a@b", "sex": "other"}"#).unwrap();
        assert_eq!(patch.phone, Some(None));
        assert_eq!(patch.email, Some(Some("a@b".into())));
        assert_eq!(patch.address, None);
        assert_eq!(patch.sex, Some(Sex::Other));
        assert!(serde_json::from_str::<DemographicsPatch>(r#"{"given_name": null}"#).is_err());
        assert!(serde_json::from_str::<DemographicsPatch>(r#"{"org_id": "x"}"#).is_err());
    }

    fn given_an_erased_patient() -> Patient {
        let p = given_a_registered_patient();
        let events = p.erase(DsrId(Uuid::from_u128(5))).unwrap();
        after(p, events)
    }

    #[test]
    fn given_a_patient_when_erased_then_the_demographics_are_forgotten_and_the_dsr_kept() {
        let p = given_an_erased_patient();
        assert!(p.is_erased());
        assert!(p.exists());
        assert_eq!(p.erased, Some(DsrId(Uuid::from_u128(5))));
        assert!(p.demographics.is_none());
        assert_eq!(p.org_id, Some(org()));
        assert_eq!(p.version, StreamVersion(2));
    }

    #[test]
    fn given_an_erased_patient_when_anything_is_decided_then_erased() {
        let p = given_an_erased_patient();
        let patch = DemographicsPatch {
            family_name: Some("King".into()),
            ..Default::default()
        };
        assert_eq!(p.update(patch, today()).unwrap_err(), PatientError::Erased);
        assert_eq!(
            p.update(DemographicsPatch::default(), today()).unwrap_err(),
            PatientError::Erased
        );
        assert_eq!(
            p.register(org(), ada(), None, today()).unwrap_err(),
            PatientError::Erased
        );
        assert_eq!(
            p.erase(DsrId(Uuid::from_u128(6))).unwrap_err(),
            PatientError::Erased
        );
    }

    #[test]
    fn given_no_patient_when_erased_then_not_found() {
        let p = Patient::new(PatientId(Uuid::nil()));
        assert_eq!(
            p.erase(DsrId(Uuid::nil())).unwrap_err(),
            PatientError::NotFound
        );
    }

    #[test]
    fn given_a_history_when_folded_up_to_an_event_then_the_old_state_returns() {
        let p = given_a_registered_patient();
        let patch = DemographicsPatch {
            family_name: Some("King".into()),
            ..Default::default()
        };
        let update = p.update(patch, today()).unwrap();
        let registered = p.register(org(), ada(), None, today());
        assert!(registered.is_err());
        let first = PatientEvent::PatientRegistered {
            org_id: org(),
            demographics: ada(),
            user_id: None,
        };
        let all = [first.clone(), update[0].clone()];
        let then = Patient::fold(p.id, &all[..1]);
        let now = Patient::fold(p.id, &all);
        assert_eq!(then.demographics.unwrap().family_name, "Lovelace");
        assert_eq!(now.demographics.unwrap().family_name, "King");
    }
}

//! Request bodies and answers of the clinical routes (API.md "Organisations",
//! "Patients and clinical records"). Answers holding PHI have no `Debug`.

use carelog_commands::clinical::{ConsentView, SessionConsentView};
use carelog_commands::clinical::{
    GrantView, HistoryEntry, MemberView, OrgView, PatientHistory, PatientView, RecordHistory,
    RecordVersionView, RecordView,
};
use carelog_domain::access::{ConsentScope, Grantee};
use carelog_domain::consent::{GrantConsent, Purpose, RequestConsent};
use carelog_domain::patient::Sex;
use carelog_domain::record::RecordKind;
use carelog_domain::session_consent::{
    GrantSessionConsent, SessionConsentKind, SessionConsentStatus,
};
use carelog_domain::{OrgId, PatientId, UserId};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `Option<Option<T>>` for PATCH bodies: absent → `None`, `null` → `Some(None)`.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /api/organizations`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgBody {
    /// Display name.
    pub name: String,
}

/// `POST /api/organizations/:org_id/members`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberBody {
    /// The account to add.
    pub email: String,
    /// `ORG:ADMIN`, `ORG:DOCTOR`, `ORG:STAFF` or `ORG:AUDITOR`.
    pub role: String,
}

/// `POST /api/organizations/:org_id/patients`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePatientBody {
    pub given_name: String,
    pub family_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: NaiveDate,
    #[schema(value_type = String, example = "female")]
    pub sex: Sex,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub national_id: Option<String>,
    /// The patient's own account (BASE:PATIENT), if any.
    #[serde(default)]
    pub user_id: Option<Uuid>,
}

/// `PATCH /api/patients/:id`: only the fields present change; `null` clears an optional one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePatientBody {
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub birth_date: Option<NaiveDate>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub sex: Option<Sex>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub address: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub national_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub user_id: Option<Option<Uuid>>,
}

/// `POST /api/patients/:id/clinical-records`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRecordBody {
    /// note | diagnosis | prescription | lab_result | immunization | vital_signs.
    #[schema(value_type = String, example = "diagnosis")]
    pub kind: RecordKind,
    #[serde(default)]
    pub code: Option<String>,
    pub title: String,
    pub body: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    pub recorded_at: DateTime<Utc>,
}

/// `PATCH /api/clinical-records/:id` (amend): the fields present replace the current
/// version's; `null` clears `code` or `data`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendRecordBody {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub code: Option<Option<String>>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Option<Value>>,
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
}

/// `POST /api/clinical-records/:id/void` and `POST /api/patients/:id/emergency-access`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why (required).
    pub reason: String,
}

/// `?family_name=` (exact match) and `?min_position=` (read your writes).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PatientListQuery {
    /// Exact family name.
    pub family_name: Option<String>,
    /// Wait (bounded) until the list reflects the event at this position.
    pub min_position: Option<i64>,
}

/// `?min_position=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MinPositionQuery {
    /// Wait (bounded) until the list reflects the event at this position.
    pub min_position: Option<i64>,
}

/// `?as_of=` (RFC 3339).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The state at this time (default: now).
    pub as_of: Option<DateTime<Utc>>,
}

/// An organisation.
#[derive(Serialize, ToSchema)]
pub struct OrgDto {
    pub id: Uuid,
    pub name: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

impl From<OrgView> for OrgDto {
    fn from(v: OrgView) -> Self {
        Self {
            id: v.org_id.0,
            name: v.name,
            created_by: v.created_by.0,
            created_at: v.created_at,
            version: v.version.0,
        }
    }
}

/// A member of an organisation.
#[derive(Serialize, ToSchema)]
pub struct MemberDto {
    pub user_id: Uuid,
    pub role: String,
    pub added_at: DateTime<Utc>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl From<MemberView> for MemberDto {
    fn from(v: MemberView) -> Self {
        Self {
            user_id: v.user_id.0,
            role: v.role.as_str().to_owned(),
            added_at: v.added_at,
            email: None,
            first_name: None,
            last_name: None,
        }
    }
}

/// A patient.
#[derive(Serialize, ToSchema)]
pub struct PatientDto {
    pub id: Uuid,
    pub stream_id: String,
    pub org_id: Uuid,
    pub user_id: Option<Uuid>,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: NaiveDate,
    #[schema(value_type = String)]
    pub sex: Sex,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub national_id: Option<String>,
    /// The stream version (also the `ETag`).
    pub version: i64,
    /// The position of the patient's last event (for `?min_position=`).
    pub position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PatientView> for PatientDto {
    fn from(v: PatientView) -> Self {
        let d = v.demographics;
        Self {
            id: v.patient_id.0,
            stream_id: v.patient_id.stream().to_string(),
            org_id: v.org_id.0,
            user_id: v.user_id.map(|u| u.0),
            given_name: d.given_name,
            family_name: d.family_name,
            birth_date: d.birth_date,
            sex: d.sex,
            phone: d.phone,
            email: d.email,
            address: d.address,
            national_id: d.national_id,
            version: v.version.0,
            position: v.position.0,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// One event of a history (no payload).
#[derive(Serialize, ToSchema)]
pub struct HistoryEntryDto {
    pub version: i64,
    pub position: i64,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
}

impl From<HistoryEntry> for HistoryEntryDto {
    fn from(e: HistoryEntry) -> Self {
        Self {
            version: e.version.0,
            position: e.position.0,
            event_type: e.event_type,
            recorded_at: e.recorded_at,
            actor_id: e.actor_id,
        }
    }
}

/// A patient as of a time.
#[derive(Serialize, ToSchema)]
pub struct PatientHistoryDto {
    pub patient_id: Uuid,
    pub as_of: Option<DateTime<Utc>>,
    pub version: i64,
    /// The state then (`null` before registration, and for auditors).
    pub state: Option<PatientDto>,
    pub events: Vec<HistoryEntryDto>,
}

impl From<PatientHistory> for PatientHistoryDto {
    fn from(h: PatientHistory) -> Self {
        Self {
            patient_id: h.patient_id.0,
            as_of: h.as_of,
            version: h.version.0,
            state: h.state.map(Into::into),
            events: h.events.into_iter().map(Into::into).collect(),
        }
    }
}

/// A clinical record (its current version).
#[derive(Serialize, ToSchema)]
pub struct RecordDto {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub org_id: Uuid,
    #[schema(value_type = String)]
    pub kind: RecordKind,
    pub code: Option<String>,
    pub title: String,
    pub body: String,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    pub recorded_at: DateTime<Utc>,
    pub author_id: Uuid,
    /// `active` or `voided`.
    pub status: &'static str,
    pub void_reason: Option<String>,
    pub version: i64,
    pub position: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<RecordView> for RecordDto {
    fn from(v: RecordView) -> Self {
        Self {
            id: v.record_id.0,
            patient_id: v.patient_id.0,
            org_id: v.org_id.0,
            kind: v.kind,
            code: v.content.code,
            title: v.content.title,
            body: v.content.body,
            data: v.content.data,
            recorded_at: v.content.recorded_at,
            author_id: v.author_id.0,
            status: if v.void_reason.is_some() {
                "voided"
            } else {
                "active"
            },
            void_reason: v.void_reason,
            version: v.version.0,
            position: v.position.0,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// One version of a record (content omitted for auditors and voids).
#[derive(Serialize, ToSchema)]
pub struct RecordVersionDto {
    pub version: i64,
    /// `created`, `amended` or `voided`.
    pub change: &'static str,
    pub code: Option<String>,
    pub title: Option<String>,
    pub body: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub author_id: Uuid,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<RecordVersionView> for RecordVersionDto {
    fn from(v: RecordVersionView) -> Self {
        let (code, title, body, data, recorded_at) = match v.content {
            Some(c) => (
                c.code,
                Some(c.title),
                Some(c.body),
                c.data,
                Some(c.recorded_at),
            ),
            None => (None, None, None, None, None),
        };
        Self {
            version: v.version.0,
            change: v.change,
            code,
            title,
            body,
            data,
            recorded_at,
            author_id: v.author_id.0,
            reason: v.reason,
            at: v.at,
        }
    }
}

/// Every version of a record.
#[derive(Serialize, ToSchema)]
pub struct RecordHistoryDto {
    pub record_id: Uuid,
    pub patient_id: Uuid,
    #[schema(value_type = String)]
    pub kind: RecordKind,
    /// An auditor's view: versions without content.
    pub audit_only: bool,
    pub versions: Vec<RecordVersionDto>,
}

impl From<RecordHistory> for RecordHistoryDto {
    fn from(h: RecordHistory) -> Self {
        Self {
            record_id: h.record_id.0,
            patient_id: h.patient_id.0,
            kind: h.kind,
            audit_only: h.audit_only,
            versions: h.versions.into_iter().map(Into::into).collect(),
        }
    }
}

/// An emergency access grant.
#[derive(Serialize, ToSchema)]
pub struct GrantDto {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub position: i64,
}

impl From<GrantView> for GrantDto {
    fn from(g: GrantView) -> Self {
        Self {
            id: g.grant_id.0,
            patient_id: g.patient_id.0,
            user_id: g.user_id.0,
            expires_at: g.expires_at,
            position: g.position.0,
        }
    }
}

// ---- consent (API.md "Consent") -----------------------------------------------------

/// `POST /api/consent/grant`: exactly one of `grantee_org_id`, `grantee_user_id`.
/// `patient_id` may be left out when one chart is linked to the caller's account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantConsentBody {
    /// The chart (default: the one linked to the caller's account).
    #[serde(default)]
    pub patient_id: Option<Uuid>,
    /// An organisation whose doctors get access.
    #[serde(default)]
    pub grantee_org_id: Option<Uuid>,
    /// A doctor who gets access.
    #[serde(default)]
    pub grantee_user_id: Option<Uuid>,
    /// all | demographics | clinical_records.
    #[schema(value_type = String, example = "clinical_records")]
    pub scope: ConsentScope,
    /// treatment | payment | operations | research.
    #[schema(value_type = String, example = "treatment")]
    pub purpose: Purpose,
    /// When it lapses by itself (in the future).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<GrantConsentBody> for GrantConsent {
    fn from(b: GrantConsentBody) -> Self {
        GrantConsent {
            patient_id: b.patient_id.map(PatientId),
            grantee_org_id: b.grantee_org_id.map(OrgId),
            grantee_user_id: b.grantee_user_id.map(UserId),
            scope: b.scope,
            purpose: b.purpose,
            expires_at: b.expires_at,
        }
    }
}

/// `POST /api/consent/request`: the caller (a doctor) asks the patient.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestConsentBody {
    pub patient_id: Uuid,
    /// all | demographics | clinical_records.
    #[schema(value_type = String, example = "all")]
    pub scope: ConsentScope,
    /// treatment | payment | operations | research.
    #[schema(value_type = String, example = "treatment")]
    pub purpose: Purpose,
}

impl From<RequestConsentBody> for RequestConsent {
    fn from(b: RequestConsentBody) -> Self {
        RequestConsent {
            patient_id: PatientId(b.patient_id),
            scope: b.scope,
            purpose: b.purpose,
        }
    }
}

/// `POST /api/consent/:id/approve` (optional body).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveConsentBody {
    /// When the consent lapses by itself (in the future).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// An empty command body (`{}`; optional): nothing can be passed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// `POST /api/sessions/consents`. `patient_id` may be left out when one chart is linked
/// to the caller's account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantSessionConsentBody {
    #[serde(default)]
    pub patient_id: Option<Uuid>,
    /// recording | ai_transcription.
    #[schema(value_type = String, example = "recording")]
    pub kind: SessionConsentKind,
    /// Limited to sessions of this organisation.
    #[serde(default)]
    pub org_id: Option<Uuid>,
    /// Limited to sessions with this clinician.
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// When it lapses by itself (in the future).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<GrantSessionConsentBody> for GrantSessionConsent {
    fn from(b: GrantSessionConsentBody) -> Self {
        GrantSessionConsent {
            patient_id: b.patient_id.map(PatientId),
            kind: b.kind,
            org_id: b.org_id.map(OrgId),
            user_id: b.user_id.map(UserId),
            expires_at: b.expires_at,
        }
    }
}

/// `?patient_id=` of `GET /api/sessions/consents` (default: the caller's own charts).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionConsentQuery {
    /// The patient whose session consents to list.
    pub patient_id: Option<Uuid>,
}

/// A consent (ids, terms and state; no PHI).
#[derive(Serialize, ToSchema)]
pub struct ConsentDto {
    pub id: Uuid,
    pub stream_id: String,
    pub patient_id: Uuid,
    /// `org` or `user`.
    pub grantee_type: &'static str,
    pub grantee_org_id: Option<Uuid>,
    pub grantee_user_id: Option<Uuid>,
    /// all | demographics | clinical_records.
    pub scope: &'static str,
    /// treatment | payment | operations | research.
    pub purpose: &'static str,
    /// requested | active | expired | declined | revoked.
    pub status: &'static str,
    pub expires_at: Option<DateTime<Utc>>,
    /// The doctor who asked for it (a request), else `null`.
    pub requested_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub position: i64,
}

impl From<ConsentView> for ConsentDto {
    fn from(v: ConsentView) -> Self {
        let (grantee_type, grantee_org_id, grantee_user_id) = match v.grantee {
            Grantee::Org(o) => ("org", Some(o.0), None),
            Grantee::User(u) => ("user", None, Some(u.0)),
        };
        Self {
            id: v.consent_id.0,
            stream_id: v.consent_id.stream().to_string(),
            patient_id: v.patient_id.0,
            grantee_type,
            grantee_org_id,
            grantee_user_id,
            scope: v.scope.as_str(),
            purpose: v.purpose.as_str(),
            status: v.status.as_str(),
            expires_at: v.expires_at,
            requested_by: v.requested_by.map(|u| u.0),
            created_at: v.created_at,
            updated_at: v.updated_at,
            version: v.version.0,
            position: v.position.0,
        }
    }
}

/// A session consent.
#[derive(Serialize, ToSchema)]
pub struct SessionConsentDto {
    pub id: Uuid,
    pub stream_id: String,
    pub patient_id: Uuid,
    /// recording | ai_transcription.
    pub kind: &'static str,
    pub org_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    /// active | expired | revoked.
    pub status: &'static str,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub position: i64,
}

impl From<SessionConsentView> for SessionConsentDto {
    fn from(v: SessionConsentView) -> Self {
        Self {
            id: v.consent_id.0,
            stream_id: v.consent_id.stream().to_string(),
            patient_id: v.patient_id.0,
            kind: v.kind.as_str(),
            org_id: v.org_id.map(|o| o.0),
            user_id: v.user_id.map(|u| u.0),
            status: match v.status {
                SessionConsentStatus::Active => "active",
                SessionConsentStatus::Expired => "expired",
                SessionConsentStatus::Revoked => "revoked",
            },
            expires_at: v.expires_at,
            created_at: v.created_at,
            updated_at: v.updated_at,
            version: v.version.0,
            position: v.position.0,
        }
    }
}

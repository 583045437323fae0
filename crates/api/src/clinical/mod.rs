//! Organisations, patients, clinical records and emergency access (API.md
//! "Organisations", "Patients and clinical records"), and GDPR (API.md "GDPR").
//!
//! Every handler takes a [`gate::Caller`]: authenticated, memberships read now, and the
//! route's action checked against the caller's roles (the gateway check). The
//! resource-level decision — tenant, own data, consent, emergency — is taken by the
//! clinical service itself before it reads or changes anything, so no handler can
//! forget either.

mod consents;
mod dto;
mod error;
pub mod gate;
mod gdpr;
mod orgs;
mod patients;
mod records;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The clinical routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(orgs::create_org))
        .routes(routes!(orgs::get_org))
        .routes(routes!(orgs::add_member, orgs::list_members))
        .routes(routes!(orgs::remove_member))
        .routes(routes!(patients::create_patient, patients::list_patients))
        .routes(routes!(patients::get_patient, patients::update_patient))
        .routes(routes!(patients::patient_history))
        .routes(routes!(patients::emergency_access))
        .routes(routes!(records::create_record, records::list_records))
        .routes(routes!(records::get_record, records::amend_record))
        .routes(routes!(records::void_record))
        .routes(routes!(records::record_history))
        .routes(routes!(consents::grant_consent))
        .routes(routes!(consents::request_consent))
        .routes(routes!(consents::approve_consent))
        .routes(routes!(consents::decline_consent))
        .routes(routes!(consents::revoke_consent))
        .routes(routes!(consents::list_own_consents))
        .routes(routes!(consents::list_org_consents))
        .routes(routes!(
            consents::grant_session_consent,
            consents::list_session_consents
        ))
        .routes(routes!(consents::revoke_session_consent))
        .routes(routes!(gdpr::request_erasure))
        .routes(routes!(gdpr::list_dsrs))
        .routes(routes!(gdpr::approve_erasure))
        .routes(routes!(gdpr::reject_erasure))
        .routes(routes!(gdpr::export_patient))
        .routes(routes!(gdpr::place_legal_hold, gdpr::lift_legal_hold))
}

/// A `?min_position=` as a position (negative → 400).
fn min_position(
    value: Option<i64>,
) -> Result<Option<carelog_domain::Position>, crate::error::ApiError> {
    match value {
        Some(p) if p < 0 => Err(crate::error::ApiError::validation_fields(
            "min_position must be zero or more",
            ["min_position"],
        )),
        other => Ok(other.map(carelog_domain::Position)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clinical_route_has_a_policy_action() {
        let (_, doc) = routes().split_for_parts();
        let mut seen = 0;
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
                ("PUT", &item.put),
            ] {
                if op.is_some() {
                    let m: axum::http::Method = method.parse().unwrap();
                    assert!(gate::action_for(&m, path).is_some(), "{method} {path}");
                    seen += 1;
                }
            }
        }
        assert_eq!(
            seen,
            gate::ROUTES.len(),
            "the table lists exactly the routes"
        );
    }
}

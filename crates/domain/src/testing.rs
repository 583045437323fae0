//! Test helpers shared by the aggregates' tests.
//!
//! [`check_schema`]: each event's payload must match its JSON Schema in
//! `schemas/v1/<Type>.json` — a small checker for the subset of JSON Schema the files
//! use (`type`, `enum`, `oneOf`, `properties`, `required`, `additionalProperties`),
//! nested objects included, so a field added to an event without its schema (or the
//! reverse) fails a unit test.

use serde_json::{json, Value};

use crate::event::NewEvent;

/// The schema of `event_type`, version 1.
pub(crate) fn schema(event_type: &str) -> Value {
    let path = format!(
        "{}/../../schemas/v1/{event_type}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("no schema {path}"));
    serde_json::from_str(&text).expect("schema is JSON")
}

/// Asserts that `new`'s payload matches the schema of its type, and that it is v1.
pub(crate) fn check_schema(new: &NewEvent) {
    let name = new.event_type.as_str();
    let s = schema(name);
    assert_eq!(
        s["$id"],
        json!(format!("carelog/events/v1/{name}.json")),
        "{name}: $id"
    );
    assert_eq!(s["type"], json!("object"), "{name}");
    if let Err(problem) = matches(&s, &new.payload, name) {
        panic!("{problem}");
    }
    assert_eq!(new.schema_version.0, 1);
}

/// Asserts that the event types seen are exactly `known` (each once or more).
pub(crate) fn assert_covers(seen: impl IntoIterator<Item = String>, known: &[&str]) {
    let mut seen: Vec<String> = seen.into_iter().collect();
    seen.sort();
    seen.dedup();
    let mut known: Vec<String> = known.iter().map(|k| k.to_string()).collect();
    known.sort();
    assert_eq!(seen, known, "every known event type is covered");
}

/// Whether `value` matches `schema`; the error says where and why (never the value).
fn matches(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
        let ok = alternatives
            .iter()
            .filter(|alt| matches(alt, value, at).is_ok())
            .count();
        return if ok == 1 {
            Ok(())
        } else {
            Err(format!("{at}: matches {ok} of the oneOf alternatives"))
        };
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{at}: not one of the enum"));
        }
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => return Err(format!("{at}: malformed type")),
        };
        if !types.iter().any(|t| has_type(value, t)) {
            return Err(format!("{at}: not of type {types:?}"));
        }
    }
    if let (Some(props), Some(object)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        if schema.get("additionalProperties") != Some(&json!(false)) {
            return Err(format!("{at}: objects must set additionalProperties false"));
        }
        for (key, v) in object {
            let sub = props
                .get(key)
                .ok_or_else(|| format!("{at}: {key} is not in the schema"))?;
            matches(sub, v, &format!("{at}.{key}"))?;
        }
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let req = req.as_str().expect("required names are strings");
            if !object.contains_key(req) {
                return Err(format!("{at}: {req} missing"));
            }
        }
        for declared in props.keys() {
            let required = schema["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(declared)));
            if !required {
                return Err(format!(
                    "{at}: {declared} is optional in the schema, but events always carry every field"
                ));
            }
        }
    }
    Ok(())
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_nested_field_unknown_to_the_schema_when_checked_then_it_is_reported() {
        let s = schema("PatientUpdated");
        let mut payload = json!({
            "demographics": {
                "given_name": "A", "family_name": "B", "birth_date": "2000-01-01",
                "sex": "other", "phone": null, "email": null, "address": null,
                "national_id": null
            },
            "user_id": null
        });
        assert_eq!(matches(&s, &payload, "PatientUpdated"), Ok(()));
        payload["demographics"]["nickname"] = json!("x");
        let err = matches(&s, &payload, "PatientUpdated").unwrap_err();
        assert!(err.contains("demographics: nickname"), "{err}");
        payload["demographics"]
            .as_object_mut()
            .unwrap()
            .remove("nickname");
        payload["demographics"]["sex"] = json!("f");
        assert!(matches(&s, &payload, "PatientUpdated").is_err());
    }
}

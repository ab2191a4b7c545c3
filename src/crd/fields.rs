//! Schemas of the fields both resources declare the same way (display name, description,
//! external ID, tags), with the validation rules and messages the API server enforces, written
//! once (`#[schemars(schema_with = ...)]`).

use schemars::{Schema, SchemaGenerator};
use serde_json::json;

/// An optional string of `min..=max` characters with CEL `rules`.
fn text(generator: &mut SchemaGenerator, min: u32, max: u32, rules: serde_json::Value) -> Schema {
    let mut schema = generator.subschema_for::<Option<String>>();
    schema.insert("minLength".into(), json!(min));
    schema.insert("maxLength".into(), json!(max));
    schema.insert("x-kubernetes-validations".into(), rules);
    schema
}

fn no_control_characters(field: &str) -> serde_json::Value {
    json!([{
        "rule": "!self.matches('[[:cntrl:]]')",
        "message": format!("{field} must not contain control characters")
    }])
}

const EXTERNAL_ID_RULE: &str = "self.matches('^[a-zA-Z0-9_][a-zA-Z0-9_.:-]*[a-zA-Z0-9_]$')";

/// A SiteWise name (1 to 256 characters, no control characters).
pub fn name(generator: &mut SchemaGenerator) -> Schema {
    text(generator, 1, 256, no_control_characters("name"))
}

/// A SiteWise description (1 to 2048 characters, no control characters).
pub fn description(generator: &mut SchemaGenerator) -> Schema {
    text(generator, 1, 2048, no_control_characters("description"))
}

/// The resource's own external ID: the SiteWise pattern, and permanent once set.
pub fn external_id(generator: &mut SchemaGenerator) -> Schema {
    text(
        generator,
        2,
        128,
        json!([
            {
                "rule": EXTERNAL_ID_RULE,
                "message": "externalId must be 2-128 characters of letters, digits, '_', '-', '.', ':' that starts and ends with a letter, digit or '_' (no externalId: prefix here)"
            },
            {
                "rule": "self == oldSelf",
                "message": "externalId cannot be changed once set: SiteWise external IDs are permanent"
            }
        ]),
    )
}

/// The external ID of a model's property or hierarchy (the SiteWise pattern).
pub fn member_external_id(generator: &mut SchemaGenerator) -> Schema {
    text(
        generator,
        2,
        128,
        json!([{
            "rule": EXTERNAL_ID_RULE,
            "message": "externalId must be 2-128 characters of letters, digits, '_', '-', '.', ':' that starts and ends with a letter, digit or '_'"
        }]),
    )
}

/// Tags: at most 48 (SiteWise allows 50; the operator's claim takes two), none under the
/// operator's prefix.
pub fn tags(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<std::collections::BTreeMap<String, String>>();
    schema.insert("maxProperties".into(), json!(48));
    schema.insert(
        "x-kubernetes-validations".into(),
        json!([
            {
                "rule": "self.all(k, !k.startsWith('sitewise.operator.dev/'))",
                "message": "tag keys under sitewise.operator.dev/ are reserved for the operator's ownership claim"
            },
            {
                "rule": "self.all(k, size(k) >= 1 && size(k) <= 128 && size(self[k]) <= 256)",
                "message": "tag keys must be 1-128 characters and values at most 256"
            }
        ]),
    );
    schema
}

//! Field validation with the SiteWise model's rules (required, lengths, patterns, enums,
//! ranges). The SDKs check almost nothing client-side, so this is where bad input is caught;
//! every violation names the field in an InvalidRequestException.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

const ZERO_UUID: &str = "00000000-0000-0000-0000-000000000000";

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        .unwrap_or_else(|e| panic!("static regex: {e}"))
});
// The model's ExternalId pattern, anchored (Smithy patterns are unanchored, but the user
// guide's rule is about the whole value).
static EXTERNAL_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z0-9_][a-zA-Z_\-0-9.:]*[a-zA-Z0-9_]+$")
        .unwrap_or_else(|e| panic!("static regex: {e}"))
});
static BASE64: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9+/=]+$").unwrap_or_else(|e| panic!("static regex: {e}"))
});

fn length(field: &str, value: &str, min: usize, max: usize) -> ApiResult<()> {
    let n = value.chars().count();
    if n < min {
        return Err(ApiError::validation(
            field,
            value,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(ApiError::validation(
            field,
            value,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// `ID`: an own UUID supplied at creation (lowercase, not all zero).
pub fn id(field: &str, value: &str) -> ApiResult<()> {
    length(field, value, 36, 36)?;
    if !UUID.is_match(value) || value == ZERO_UUID {
        return Err(ApiError::validation(
            field,
            value,
            "Member must be a lowercase UUID other than 00000000-0000-0000-0000-000000000000",
        ));
    }
    Ok(())
}

/// `CustomID`: a UUID or `externalId:<external id>`.
pub fn custom_id(field: &str, value: &str) -> ApiResult<()> {
    length(field, value, 13, 139)?;
    match value.strip_prefix("externalId:") {
        Some(ext) if EXTERNAL_ID.is_match(ext) => Ok(()),
        None if UUID.is_match(value) && value != ZERO_UUID => Ok(()),
        _ => Err(ApiError::validation(
            field,
            value,
            "Member must be a lowercase UUID or externalId:<external id>",
        )),
    }
}

/// `ExternalId` as assigned (without the `externalId:` prefix).
pub fn external_id(field: &str, value: &str) -> ApiResult<()> {
    length(field, value, 2, 128)?;
    if !EXTERNAL_ID.is_match(value) {
        return Err(ApiError::validation(
            field,
            value,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_][a-zA-Z_\\-0-9.:]*[a-zA-Z0-9_]+",
        ));
    }
    Ok(())
}

/// `ClientToken`: 36 to 64 characters without white space (not necessarily a UUID).
pub fn client_token(value: &str) -> ApiResult<()> {
    length("clientToken", value, 36, 64)?;
    if value.chars().any(char::is_whitespace) {
        return Err(ApiError::validation(
            "clientToken",
            value,
            "Member must satisfy regular expression pattern: \\S{36,64}",
        ));
    }
    Ok(())
}

fn printable(field: &str, value: &str, max: usize) -> ApiResult<()> {
    length(field, value, 1, max)?;
    if value.chars().any(|c| c <= '\u{1f}' || c == '\u{7f}') {
        return Err(ApiError::validation(
            field,
            value,
            "Member must satisfy regular expression pattern: [^\\u0000-\\u001F\\u007F]+",
        ));
    }
    Ok(())
}

pub fn name(field: &str, value: &str) -> ApiResult<()> {
    printable(field, value, 256)
}

pub fn description(field: &str, value: &str) -> ApiResult<()> {
    printable(field, value, 2048)
}

pub fn max_results(value: Option<&str>) -> ApiResult<usize> {
    let Some(raw) = value else {
        return Ok(50);
    };
    match raw.parse::<usize>() {
        Ok(n) if (1..=250).contains(&n) => Ok(n),
        _ => Err(ApiError::validation(
            "maxResults",
            raw,
            "Member must be an integer between 1 and 250",
        )),
    }
}

pub fn next_token(value: &str) -> ApiResult<()> {
    length("nextToken", value, 1, 4096)?;
    if !BASE64.is_match(value) {
        return Err(ApiError::validation(
            "nextToken",
            value,
            "Member must satisfy regular expression pattern: [A-Za-z0-9+/=]+",
        ));
    }
    Ok(())
}

pub fn one_of<'a>(field: &str, value: &'a str, allowed: &[&str]) -> ApiResult<&'a str> {
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::validation(
            field,
            value,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ))
    }
}

/// A JSON body member that must be a string when present.
pub fn opt_str<'a>(body: &'a Value, field: &str) -> ApiResult<Option<&'a str>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::validation(
            field,
            &other.to_string(),
            "Member must be a string",
        )),
    }
}

/// An optional string member, checked with `check` when present.
pub fn opt_checked<'a>(
    body: &'a Value,
    field: &str,
    check: impl Fn(&str, &str) -> ApiResult<()>,
) -> ApiResult<Option<&'a str>> {
    let value = opt_str(body, field)?;
    if let Some(v) = value {
        check(field, v)?;
    }
    Ok(value)
}

pub fn req_str<'a>(body: &'a Value, field: &str) -> ApiResult<&'a str> {
    opt_str(body, field)?.ok_or_else(|| {
        ApiError::invalid(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// `TagMap`: 1 to 50 entries; keys 1-128, values 0-256 characters.
pub fn tags(value: &Value) -> ApiResult<Vec<(String, String)>> {
    let Some(map) = value.as_object() else {
        return Err(ApiError::validation(
            "tags",
            &value.to_string(),
            "Member must be a map",
        ));
    };
    length("tags", &"x".repeat(map.len()), 1, 50)
        .map_err(|_| ApiError::validation("tags", "…", "Map must have between 1 and 50 entries"))?;
    map.iter()
        .map(|(k, v)| {
            length("tags.key", k, 1, 128)?;
            let v = v.as_str().ok_or_else(|| {
                ApiError::validation(
                    &format!("tags.{k}"),
                    &v.to_string(),
                    "Member must be a string",
                )
            })?;
            length(&format!("tags.{k}"), v, 0, 256)?;
            Ok((k.clone(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_model() {
        assert!(id("assetId", "a1b2c3d4-0000-4000-8000-000000000001").is_ok());
        assert!(id("assetId", "A1B2C3D4-0000-4000-8000-000000000001").is_err());
        assert!(id("assetId", ZERO_UUID).is_err());
        assert!(custom_id("assetId", "externalId:line_1.a").is_ok());
        assert!(custom_id("assetId", "externalId:-bad").is_err());
        assert!(custom_id("assetId", "externalId:x").is_err(), "too short");
        assert!(custom_id("assetId", ZERO_UUID).is_err());
        let e = custom_id("hierarchyId", "nope-nope-nope").expect_err("invalid");
        assert!(e.message.contains("'hierarchyId'"), "{}", e.message);
    }

    #[test]
    fn tokens_need_length_not_uuid_shape() {
        assert!(client_token("77790aaf-a2fc-4382-ed11-822936d43f8e").is_ok());
        assert!(client_token(&"x".repeat(64)).is_ok());
        assert!(client_token(&"x".repeat(35)).is_err());
        assert!(client_token(&"x".repeat(65)).is_err());
        assert!(client_token(&format!("{} ", "x".repeat(40))).is_err());
    }

    #[test]
    fn names_refuse_control_characters_and_bounds() {
        assert!(name("assetName", "Press 1").is_ok());
        assert!(name("assetName", "").is_err());
        assert!(name("assetName", "a\tb").is_err());
        assert!(name("assetName", &"n".repeat(257)).is_err());
    }

    #[test]
    fn paging_parameters_are_checked() {
        assert_eq!(max_results(None).ok(), Some(50));
        assert!(max_results(Some("0")).is_err());
        assert!(max_results(Some("251")).is_err());
        assert!(next_token("not base64!").is_err());
    }
}

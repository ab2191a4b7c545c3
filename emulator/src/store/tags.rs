//! Tags: TagResource, UntagResource, ListTagsForResource.

use serde_json::{Value, json};

use super::*;

impl Store {
    // ---- tags -------------------------------------------------------------------------

    fn tags_of(&mut self, arn: &str) -> ApiResult<&mut BTreeMap<String, String>> {
        if arn.is_empty() || arn.len() > 1011 {
            return Err(ApiError::validation(
                "resourceArn",
                arn,
                "Member must have length between 1 and 1011",
            ));
        }
        if let Some(a) = self.assets.values_mut().find(|a| a.arn == arn) {
            return Ok(&mut a.tags);
        }
        if let Some(m) = self.models.values_mut().find(|m| m.arn == arn) {
            return Ok(&mut m.tags);
        }
        Err(ApiError::not_found(format!(
            "Resource {arn} does not exist"
        )))
    }

    pub fn tag_resource(&mut self, arn: &str, body: &Value) -> ApiResult<Reply> {
        let new_tags = validate::tags(body.get("tags").unwrap_or(&Value::Null))?;
        let tags = self.tags_of(arn)?;
        let mut merged = tags.clone();
        merged.extend(new_tags);
        if merged.len() > 50 {
            let mut err = ApiError::new(
                ErrorCode::TooManyTagsException,
                format!(
                    "A resource can have at most 50 tags; this request would leave {}",
                    merged.len()
                ),
            );
            err.members.insert("resourceName".into(), json!(arn));
            return Err(err);
        }
        *tags = merged;
        Ok(Reply::ok(json!({})))
    }

    pub fn untag_resource(&mut self, arn: &str, keys: &[String]) -> ApiResult<Reply> {
        if keys.len() > 200 {
            return Err(ApiError::validation(
                "tagKeys",
                &keys.len().to_string(),
                "Member must have length less than or equal to 200",
            ));
        }
        let tags = self.tags_of(arn)?;
        for key in keys {
            tags.remove(key);
        }
        Ok(Reply::ok(json!({})))
    }

    pub fn list_tags(&mut self, arn: &str) -> ApiResult<Reply> {
        let tags = self.tags_of(arn)?.clone();
        Ok(Reply::ok(json!({"tags": tags})))
    }
}

//! Hierarchy links: AssociateAssets, DisassociateAssets, ListAssociatedAssets.

use serde_json::Value;

use super::*;

impl Store {
    /// Parent, hierarchy and child of an association call, resolved and checked for state
    /// (no state check when `allowed_states` is empty).
    fn association_parties(
        &self,
        parent_ref: &str,
        body: &Value,
        allowed_states: &[&str],
    ) -> ApiResult<(Asset, Hierarchy, Asset)> {
        validate::custom_id("assetId", parent_ref)?;
        let hierarchy_ref = validate::req_str(body, "hierarchyId")?;
        validate::custom_id("hierarchyId", hierarchy_ref)?;
        let child_ref = validate::req_str(body, "childAssetId")?;
        validate::custom_id("childAssetId", child_ref)?;
        let parent = self.asset(parent_ref)?.clone();
        let child = self.asset(child_ref)?.clone();
        let hierarchy = self.hierarchy(&parent.model_id, hierarchy_ref)?;
        for asset in [&parent, &child] {
            if !allowed_states.is_empty() && !allowed_states.contains(&asset.state.as_str()) {
                return Err(rules::busy("asset", &asset.id, &asset.arn, &asset.state));
            }
        }
        Ok((parent, hierarchy, child))
    }

    pub fn associate_assets(&mut self, parent_ref: &str, body: &Value) -> ApiResult<Reply> {
        let (parent, hierarchy, child) = self.association_parties(parent_ref, body, &["ACTIVE"])?;
        if child.model_id != hierarchy.child_asset_model_id {
            return Err(ApiError::invalid(format!(
                "Asset {} is of model {}, but hierarchy {} takes assets of model {}",
                child.id, child.model_id, hierarchy.id, hierarchy.child_asset_model_id
            )));
        }
        if let Some(link) = self.links.get(&child.id) {
            return Err(ApiError::already_exists(
                format!(
                    "Asset {} is already associated with parent asset {} (hierarchy {})",
                    child.id, link.parent_id, link.hierarchy_id
                ),
                &child.id,
                &child.arn,
            ));
        }
        if parent.id == child.id || self.is_ancestor(&child.id, &parent.id) {
            return Err(ApiError::invalid(format!(
                "Associating asset {} under asset {} would create a cycle",
                child.id, parent.id
            )));
        }
        let quotas = &self.settings.quotas;
        let children = self.children_of(&parent.id, None).len();
        if children >= quotas.max_children_per_parent {
            return Err(ApiError::new(
                ErrorCode::LimitExceededException,
                format!(
                    "Asset {} already has {children} child assets, the maximum is {}",
                    parent.id, quotas.max_children_per_parent
                ),
            ));
        }
        let depth = self.depth(&parent.id) + self.height(&child.id);
        if depth > quotas.max_hierarchy_depth {
            return Err(ApiError::new(
                ErrorCode::LimitExceededException,
                format!(
                    "The hierarchy would be {depth} levels deep, the maximum is {}",
                    quotas.max_hierarchy_depth
                ),
            ));
        }
        self.links.insert(
            child.id.clone(),
            Link {
                parent_id: parent.id,
                hierarchy_id: hierarchy.id,
            },
        );
        Ok(Reply::empty())
    }

    pub fn disassociate_assets(&mut self, parent_ref: &str, body: &Value) -> ApiResult<Reply> {
        // A link that does not exist is reported as such whatever state the assets are in.
        let (parent, hierarchy, child) = self.association_parties(parent_ref, body, &[])?;
        let expected = Link {
            parent_id: parent.id.clone(),
            hierarchy_id: hierarchy.id.clone(),
        };
        if self.links.get(&child.id) != Some(&expected) {
            return Err(rules::association_missing(
                &parent.id,
                &hierarchy.id,
                &child.id,
            ));
        }
        self.association_parties(parent_ref, body, &["ACTIVE", "FAILED"])?;
        self.links.remove(&child.id);
        Ok(Reply::empty())
    }

    pub fn list_associated_assets(
        &self,
        reference: &str,
        query: &HashMap<String, String>,
    ) -> ApiResult<Reply> {
        validate::custom_id("assetId", reference)?;
        let direction = query
            .get("traversalDirection")
            .map(String::as_str)
            .unwrap_or("CHILD");
        validate::one_of("traversalDirection", direction, &["CHILD", "PARENT"])?;
        let hierarchy_ref = query.get("hierarchyId").map(String::as_str);
        if let Some(h) = hierarchy_ref {
            validate::custom_id("hierarchyId", h)?;
        }
        let max = validate::max_results(query.get("maxResults").map(String::as_str))?;
        let asset = self.asset(reference)?;
        let listed: Vec<&Asset> = if direction == "PARENT" {
            self.links
                .get(&asset.id)
                .and_then(|l| self.assets.get(&l.parent_id))
                .into_iter()
                .collect()
        } else {
            let hierarchy = match hierarchy_ref {
                Some(h) => Some(self.hierarchy(&asset.model_id, h)?.id),
                None => None,
            };
            self.children_of(&asset.id, hierarchy.as_deref())
        };
        let summaries: Vec<Value> = listed.iter().map(|a| self.summary(a)).collect();
        let listing = format!(
            "associated/{}/{direction}/{}",
            asset.id,
            hierarchy_ref.unwrap_or_default()
        );
        self.paged(&listing, &summaries, query, max)
    }
}

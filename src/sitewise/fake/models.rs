//! The asset-model calls of the in-memory fake, with the emulator's rules: a model is
//! created with the caller's ID (a replayed token has no second effect), changes need ACTIVE
//! and the current ETag, and a model with assets, or used by another model's hierarchy,
//! cannot be deleted.

use super::calls::call;
use super::{FakeModel, State, not_found};
use crate::sitewise::{
    AssetPage, AssetState, AssetSummary, CreatedAsset, ErrorKind, Hierarchy, ModelDefinition,
    ModelDescription, NewModel, Operation, Property, SiteWiseError, SiteWiseResult,
};

pub(super) fn model_arn(id: &str) -> String {
    format!("arn:aws:iotsitewise:us-east-1:123456789012:asset-model/{id}")
}

fn etag(id: &str, version: u64) -> String {
    format!("{:0>43}", format!("{}{version}", &id[..id.len().min(8)]))
}

fn refused(op: Operation, kind: ErrorKind, code: &str, message: String) -> SiteWiseError {
    SiteWiseError::new(op, kind, code, message)
}

/// Gives every property and hierarchy without an ID one (as SiteWise does).
fn with_ids(mut d: ModelDefinition, model_id: &str) -> ModelDefinition {
    for (i, p) in d.properties.iter_mut().enumerate() {
        p.id.get_or_insert_with(|| format!("{model_id}-p{i}-{}", p.name));
    }
    for (i, h) in d.hierarchies.iter_mut().enumerate() {
        h.id.get_or_insert_with(|| format!("{model_id}-h{i}-{}", h.name));
    }
    d
}

fn install(model: &mut FakeModel, d: ModelDefinition) {
    model.external_id = d.external_id.clone();
    model.hierarchies = d
        .hierarchies
        .iter()
        .map(|h| Hierarchy {
            id: h.id.clone().unwrap_or_default(),
            external_id: h.external_id.clone(),
            name: h.name.clone(),
        })
        .collect();
    model.properties = d
        .properties
        .iter()
        .map(|p| Property {
            id: p.id.clone().unwrap_or_default(),
            external_id: p.external_id.clone(),
            name: p.name.clone(),
            unit: p.unit.clone(),
            ..Property::default()
        })
        .collect();
    model.definition = d;
    model.version += 1;
}

impl State {
    pub(super) fn describe_model(&mut self, reference: &str) -> SiteWiseResult<ModelDescription> {
        let op = Operation::DescribeAssetModel;
        let entry = call(op, reference, None, None);
        self.record(entry);
        if let Some(err) = self.scripted_failure(op, reference) {
            return Err(err);
        }
        let id = self.resolve_model(op, reference)?;
        let model = self.models.get_mut(&id).ok_or_else(|| not_found(op, &id))?;
        if let Some(left) = model.polls_left {
            if left > 0 {
                model.polls_left = Some(left - 1);
            } else {
                model.polls_left = None;
                if model.state == AssetState::Deleting {
                    self.models.remove(&id);
                    return Err(not_found(op, &format!("Asset model {id}")));
                }
                model.state = AssetState::Active;
            }
        }
        let m = &self.models[&id];
        Ok(ModelDescription {
            id: id.clone(),
            arn: model_arn(&id),
            definition: m.definition.clone(),
            state: m.state.clone(),
            error: None,
            etag: Some(etag(&id, m.version)),
        })
    }

    pub(super) fn create_model(
        &mut self,
        model: &NewModel,
        token: &str,
    ) -> SiteWiseResult<CreatedAsset> {
        let op = Operation::CreateAssetModel;
        let entry = call(op, &model.model_id, None, Some(token));
        let fingerprint = format!("{op:?}{model:?}");
        let id = model.model_id.clone();
        let answer = CreatedAsset {
            id: id.clone(),
            arn: model_arn(&id),
            state: AssetState::Creating,
        };
        self.mutate(entry, |st| {
            st.idempotent(
                op,
                token,
                fingerprint,
                |_| answer.clone(),
                |st| {
                    let name = &model.definition.name;
                    if st.models.contains_key(&id)
                        || st.models.values().any(|m| m.definition.name == *name)
                    {
                        return Err(refused(
                            op,
                            ErrorKind::AlreadyExists,
                            "ResourceAlreadyExistsException",
                            format!("Asset model {id} or the name {name} already exists"),
                        ));
                    }
                    for h in &model.definition.hierarchies {
                        st.resolve_model(op, &h.child_model_id)?;
                    }
                    let mut fake = FakeModel {
                        state: AssetState::Creating,
                        polls_left: Some(st.transition_polls),
                        tags: model.tags.clone(),
                        ..FakeModel::default()
                    };
                    install(&mut fake, with_ids(model.definition.clone(), &id));
                    st.models.insert(id.clone(), fake);
                    Ok(answer.clone())
                },
            )
        })
    }

    fn stable_model(&self, op: Operation, id: &str, if_match: Option<&str>) -> SiteWiseResult<()> {
        let m = &self.models[id];
        if let Some(expected) = if_match
            && expected != etag(id, m.version)
        {
            return Err(refused(
                op,
                ErrorKind::PreconditionFailed,
                "PreconditionFailedException",
                format!("Asset model {id} has changed"),
            ));
        }
        if !m.state.is_stable() {
            return Err(refused(
                op,
                ErrorKind::Conflict,
                "ConflictingOperationException",
                format!("Asset model {id} is in state {}", m.state),
            ));
        }
        Ok(())
    }

    pub(super) fn update_model(
        &mut self,
        model_id: &str,
        definition: &ModelDefinition,
        if_match: &str,
        token: &str,
    ) -> SiteWiseResult<AssetState> {
        let op = Operation::UpdateAssetModel;
        let entry = call(op, model_id, None, Some(token));
        let fingerprint = format!("{op:?}{model_id}{definition:?}{if_match}");
        self.mutate(entry, |st| {
            st.idempotent(
                op,
                token,
                fingerprint,
                |_| AssetState::Updating,
                |st| {
                    let id = st.resolve_model(op, model_id)?;
                    st.stable_model(op, &id, Some(if_match))?;
                    let polls = st.transition_polls;
                    let d = with_ids(definition.clone(), &id);
                    if let Some(m) = st.models.get_mut(&id) {
                        install(m, d);
                        m.state = AssetState::Updating;
                        m.polls_left = Some(polls);
                    }
                    Ok(AssetState::Updating)
                },
            )
        })
    }

    pub(super) fn delete_model(
        &mut self,
        model_id: &str,
        if_match: Option<&str>,
        token: &str,
    ) -> SiteWiseResult<AssetState> {
        let op = Operation::DeleteAssetModel;
        let entry = call(op, model_id, None, Some(token));
        let fingerprint = format!("{op:?}{model_id}{if_match:?}");
        self.mutate(entry, |st| {
            st.idempotent(
                op,
                token,
                fingerprint,
                |_| AssetState::Deleting,
                |st| {
                    let id = st.resolve_model(op, model_id)?;
                    st.stable_model(op, &id, if_match)?;
                    let assets = st
                        .assets
                        .values()
                        .filter(|a| a.description.model_id == id)
                        .count();
                    let used = st.models.values().any(|m| {
                        m.definition
                            .hierarchies
                            .iter()
                            .any(|h| h.child_model_id == id)
                    });
                    if assets > 0 || used {
                        return Err(refused(
                            op,
                            ErrorKind::InvalidRequest,
                            "InvalidRequestException",
                            format!("Asset model {id} has {assets} asset(s) or is a child model"),
                        ));
                    }
                    let polls = st.transition_polls;
                    if let Some(m) = st.models.get_mut(&id) {
                        m.state = AssetState::Deleting;
                        m.polls_left = Some(polls);
                    }
                    Ok(AssetState::Deleting)
                },
            )
        })
    }

    pub(super) fn assets_page(
        &mut self,
        model_id: &str,
        next_token: Option<&str>,
    ) -> SiteWiseResult<AssetPage> {
        let op = Operation::ListAssets;
        let entry = call(op, model_id, None, None);
        self.record(entry);
        if let Some(err) = self.scripted_failure(op, model_id) {
            return Err(err);
        }
        let id = self.resolve_model(op, model_id)?;
        let mut assets: Vec<AssetSummary> = self
            .assets
            .values()
            .filter(|a| a.description.model_id == id)
            .map(|a| AssetSummary {
                id: a.description.id.clone(),
                name: a.description.name.clone(),
                state: a.description.state.clone(),
                description: a.description.description.clone(),
                external_id: a.description.external_id.clone(),
            })
            .collect();
        assets.sort_by(|a, b| a.id.cmp(&b.id));
        // The token is the index of the page's first asset.
        let start = next_token.and_then(|t| t.parse().ok()).unwrap_or(0);
        let size = if self.page_size == 0 {
            250
        } else {
            self.page_size
        };
        let end = assets.len().min(start + size);
        let next_token = (end < assets.len()).then(|| end.to_string());
        Ok(AssetPage {
            assets: assets.drain(start.min(end)..end).collect(),
            next_token,
        })
    }
}

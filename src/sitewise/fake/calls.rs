//! The SiteWise calls of the in-memory fake, with the emulator's rules: replays of a token
//! with the same parameters have no second effect, mutations need ACTIVE (or FAILED for
//! deletion and disassociation), links are single-parent, deletion needs no links.

use std::collections::BTreeMap;

use super::{Call, FakeAsset, FakeSiteWise, State, arn_of, not_found};
use crate::sitewise::{
    AssetDescription, AssetPage, AssetState, AssetUpdate, AssociatedAsset, CreatedAsset, Direction,
    ErrorKind, ModelDefinition, ModelDescription, NewAsset, NewModel, Operation, PropertySettings,
    SiteWise, SiteWiseError, SiteWiseResult,
};

impl State {
    /// Runs a mutating call: scripted failures, the call, the journal entry (effective when it
    /// changed state), and a lost answer when one is scripted. `run` answers
    /// `(changed state, value)`.
    pub(super) fn mutate<T>(
        &mut self,
        call: Call,
        run: impl FnOnce(&mut State) -> SiteWiseResult<(bool, T)>,
    ) -> SiteWiseResult<T> {
        let op = call.operation;
        let mut call = call;
        if let Some(err) = self.scripted_failure(op, &call.target) {
            self.record(call);
            return Err(err);
        }
        let result = run(self);
        call.effective = matches!(result, Ok((true, _)));
        self.record(call);
        if result.is_ok()
            && let Some(lost) = self.take_lost_response(op)
        {
            return Err(lost);
        }
        result.map(|(_, value)| value)
    }

    /// The replay check and the remembering of a token around a state change.
    pub(super) fn idempotent<T>(
        &mut self,
        op: Operation,
        token: &str,
        fingerprint: String,
        replay: impl FnOnce(&State) -> T,
        run: impl FnOnce(&mut State) -> SiteWiseResult<T>,
    ) -> SiteWiseResult<(bool, T)> {
        if self.replayed(op, token, &fingerprint)? {
            return Ok((false, replay(self)));
        }
        let value = run(self)?;
        self.remember(token, fingerprint);
        Ok((true, value))
    }

    fn require_stable(&self, op: Operation, ids: &[&String]) -> SiteWiseResult<()> {
        for id in ids {
            if !self.assets[*id].description.state.is_stable() {
                return Err(State::busy(op, &self.assets[*id]));
            }
        }
        Ok(())
    }

    /// The tags of the asset or model with `arn`.
    fn tags_by_arn(
        &mut self,
        op: Operation,
        arn: &str,
    ) -> SiteWiseResult<&mut BTreeMap<String, String>> {
        if let Some(asset) = self.assets.values_mut().find(|a| a.description.arn == arn) {
            return Ok(&mut asset.tags);
        }
        self.models
            .iter_mut()
            .find(|(id, _)| super::models::model_arn(id) == arn)
            .map(|(_, m)| &mut m.tags)
            .ok_or_else(|| not_found(op, &format!("Resource {arn}")))
    }
}

pub(super) fn call(op: Operation, target: &str, child: Option<&str>, token: Option<&str>) -> Call {
    Call {
        operation: op,
        target: target.into(),
        child: child.map(str::to_string),
        client_token: token.map(str::to_string),
        effective: false,
    }
}

impl SiteWise for FakeSiteWise {
    async fn describe_asset(&self, asset_id: &str) -> SiteWiseResult<AssetDescription> {
        let mut st = self.lock();
        let op = Operation::DescribeAsset;
        let id = st.begin_read(op, asset_id)?;
        let asset = st.assets.get_mut(&id).ok_or_else(|| not_found(op, &id))?;
        if let Some(left) = asset.polls_left {
            if left > 0 {
                asset.polls_left = Some(left - 1);
            } else {
                asset.polls_left = None;
                if asset.description.state == AssetState::Deleting {
                    st.assets.remove(&id);
                    return Err(not_found(op, &format!("Asset {id}")));
                }
                asset.description.state = AssetState::Active;
            }
        }
        Ok(st.assets[&id].description.clone())
    }

    async fn list_associated_assets(
        &self,
        asset_id: &str,
        direction: Direction,
        hierarchy_id: Option<&str>,
    ) -> SiteWiseResult<Vec<AssociatedAsset>> {
        let mut st = self.lock();
        let op = Operation::ListAssociatedAssets;
        let id = st.begin_read(op, asset_id)?;
        let ids: Vec<String> = st
            .links
            .iter()
            .filter(|(p, h, c)| match direction {
                Direction::Child => *p == id && hierarchy_id.is_none_or(|want| want == h),
                Direction::Parent => *c == id,
            })
            .map(|(p, _, c)| match direction {
                Direction::Child => c.clone(),
                Direction::Parent => p.clone(),
            })
            .collect();
        Ok(ids
            .into_iter()
            .map(|id| AssociatedAsset {
                hierarchy_ids: st
                    .assets
                    .get(&id)
                    .map(|a| a.description.hierarchy_ids().map(str::to_string).collect())
                    .unwrap_or_default(),
                id,
            })
            .collect())
    }

    async fn disassociate_assets(
        &self,
        parent_id: &str,
        hierarchy_id: &str,
        child_id: &str,
        client_token: &str,
    ) -> SiteWiseResult<()> {
        let op = Operation::DisassociateAssets;
        let c = call(op, parent_id, Some(child_id), Some(client_token));
        self.lock().mutate(c, |st| {
            let parent = st.resolve(op, parent_id)?;
            let child = st.resolve(op, child_id)?;
            let fingerprint = format!("Disassociate/{parent}/{hierarchy_id}/{child}");
            st.idempotent(
                op,
                client_token,
                fingerprint,
                |_| (),
                |st| {
                    st.require_stable(op, &[&parent, &child])?;
                    let before = st.links.len();
                    st.links
                        .retain(|(p, h, c)| !(*p == parent && h == hierarchy_id && *c == child));
                    if st.links.len() == before {
                        return Err(SiteWiseError::new(
                            op,
                            ErrorKind::NotFound,
                            "ResourceNotFoundException",
                            format!(
                                "Asset {child} is not associated with {parent} in {hierarchy_id}"
                            ),
                        ));
                    }
                    Ok(())
                },
            )
        })
    }

    async fn delete_asset(&self, asset_id: &str, client_token: &str) -> SiteWiseResult<AssetState> {
        let op = Operation::DeleteAsset;
        let c = call(op, asset_id, None, Some(client_token));
        self.lock().mutate(c, |st| {
            let id = st.resolve(op, asset_id)?;
            let fingerprint = format!("Delete/{id}");
            let replay = |st: &State| st.assets[&id].description.state.clone();
            if st.replayed(op, client_token, &fingerprint)? {
                return Ok((false, replay(st)));
            }
            if st.assets[&id].description.state == AssetState::Deleting {
                return Ok((false, AssetState::Deleting));
            }
            st.idempotent(op, client_token, fingerprint, replay, |st| {
                st.require_stable(op, &[&id])?;
                if st.links.iter().any(|(p, _, c)| *p == id || *c == id) {
                    return Err(SiteWiseError::new(
                        op,
                        ErrorKind::InvalidRequest,
                        "InvalidRequestException",
                        format!("Asset {id} is associated with other assets"),
                    ));
                }
                st.start_transition(&id, AssetState::Deleting);
                if let Some(asset) = st.assets.get_mut(&id) {
                    asset.description.error = None;
                }
                Ok(AssetState::Deleting)
            })
        })
    }

    async fn create_asset(
        &self,
        asset: &NewAsset,
        client_token: &str,
    ) -> SiteWiseResult<CreatedAsset> {
        let op = Operation::CreateAsset;
        let c = call(op, &asset.asset_id, None, Some(client_token));
        self.lock().mutate(c, |st| {
            let model_id = st.resolve_model(op, &asset.model_id)?;
            let fingerprint = format!("Create/{asset:?}");
            let id = asset.asset_id.clone();
            let answer = |state: AssetState| CreatedAsset {
                id: id.clone(),
                arn: arn_of(&id),
                state,
            };
            st.idempotent(
                op,
                client_token,
                fingerprint,
                |_| answer(AssetState::Creating),
                |st| {
                    let taken = st.assets.contains_key(&id)
                        || asset.external_id.as_ref().is_some_and(|ext| {
                            st.assets
                                .values()
                                .any(|a| a.description.external_id.as_ref() == Some(ext))
                        });
                    if taken {
                        return Err(SiteWiseError::new(
                            op,
                            ErrorKind::AlreadyExists,
                            "ResourceAlreadyExistsException",
                            format!("Asset {id} or its external ID already exists"),
                        ));
                    }
                    let model = st.models[&model_id].clone();
                    let description = AssetDescription {
                        id: id.clone(),
                        arn: arn_of(&id),
                        name: asset.name.clone(),
                        external_id: asset.external_id.clone(),
                        description: asset.description.clone(),
                        model_id,
                        state: AssetState::Creating,
                        error: None,
                        hierarchies: model.hierarchies,
                        properties: model.properties,
                        last_update: "0".into(),
                    };
                    st.assets.insert(
                        id.clone(),
                        FakeAsset {
                            description,
                            polls_left: None,
                            tags: asset.tags.clone(),
                        },
                    );
                    st.start_transition(&id, AssetState::Creating);
                    Ok(answer(AssetState::Creating))
                },
            )
        })
    }

    async fn update_asset(
        &self,
        asset_id: &str,
        update: &AssetUpdate,
        client_token: &str,
    ) -> SiteWiseResult<AssetState> {
        let op = Operation::UpdateAsset;
        let c = call(op, asset_id, None, Some(client_token));
        self.lock().mutate(c, |st| {
            let id = st.resolve(op, asset_id)?;
            let fingerprint = format!("Update/{id}/{update:?}");
            st.idempotent(
                op,
                client_token,
                fingerprint,
                |_| AssetState::Updating,
                |st| {
                    if st.assets[&id].description.state != AssetState::Active {
                        return Err(State::busy(op, &st.assets[&id]));
                    }
                    st.start_transition(&id, AssetState::Updating);
                    if let Some(asset) = st.assets.get_mut(&id) {
                        let d = &mut asset.description;
                        d.name = update.name.clone();
                        d.description = update.description.clone();
                        if update.external_id.is_some() {
                            d.external_id = update.external_id.clone();
                        }
                    }
                    Ok(AssetState::Updating)
                },
            )
        })
    }

    async fn update_asset_property(
        &self,
        asset_id: &str,
        property_id: &str,
        settings: &PropertySettings,
        client_token: &str,
    ) -> SiteWiseResult<()> {
        let op = Operation::UpdateAssetProperty;
        let c = call(op, asset_id, Some(property_id), Some(client_token));
        self.lock().mutate(c, |st| {
            let id = st.resolve(op, asset_id)?;
            let fingerprint = format!("UpdateProperty/{id}/{property_id}/{settings:?}");
            st.idempotent(
                op,
                client_token,
                fingerprint,
                |_| (),
                |st| {
                    if st.assets[&id].description.state != AssetState::Active {
                        return Err(State::busy(op, &st.assets[&id]));
                    }
                    let asset = st.assets.get_mut(&id).ok_or_else(|| not_found(op, &id))?;
                    let property = asset
                        .description
                        .properties
                        .iter_mut()
                        .find(|p| p.id == property_id)
                        .ok_or_else(|| not_found(op, &format!("Property {property_id}")))?;
                    property.alias = settings.alias.clone();
                    property.unit = settings.unit.clone();
                    property.notification_state = settings.notification_state.clone();
                    st.start_transition(&id, AssetState::Updating);
                    Ok(())
                },
            )
        })
    }

    async fn associate_assets(
        &self,
        parent_id: &str,
        hierarchy_id: &str,
        child_id: &str,
        client_token: &str,
    ) -> SiteWiseResult<()> {
        let op = Operation::AssociateAssets;
        let c = call(op, parent_id, Some(child_id), Some(client_token));
        self.lock().mutate(c, |st| {
            let parent = st.resolve(op, parent_id)?;
            let child = st.resolve(op, child_id)?;
            let fingerprint = format!("Associate/{parent}/{hierarchy_id}/{child}");
            st.idempotent(
                op,
                client_token,
                fingerprint,
                |_| (),
                |st| {
                    for id in [&parent, &child] {
                        if st.assets[id].description.state != AssetState::Active {
                            return Err(State::busy(op, &st.assets[id]));
                        }
                    }
                    if !st.assets[&parent]
                        .description
                        .hierarchy_ids()
                        .any(|h| h == hierarchy_id)
                    {
                        return Err(SiteWiseError::new(
                            op,
                            ErrorKind::InvalidRequest,
                            "InvalidRequestException",
                            format!(
                                "Hierarchy {hierarchy_id} is not defined in the parent's model"
                            ),
                        ));
                    }
                    if st.links.iter().any(|(_, _, c)| *c == child) {
                        return Err(SiteWiseError::new(
                            op,
                            ErrorKind::AlreadyExists,
                            "ResourceAlreadyExistsException",
                            format!("Asset {child} is already associated with a parent"),
                        ));
                    }
                    st.links.push((parent, hierarchy_id.to_string(), child));
                    Ok(())
                },
            )
        })
    }

    async fn list_tags(&self, arn: &str) -> SiteWiseResult<BTreeMap<String, String>> {
        let op = Operation::ListTagsForResource;
        let mut st = self.lock();
        st.record(call(op, arn, None, None));
        if let Some(err) = st.scripted_failure(op, arn) {
            return Err(err);
        }
        Ok(st.tags_by_arn(op, arn)?.clone())
    }

    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> SiteWiseResult<()> {
        let op = Operation::TagResource;
        self.lock().mutate(call(op, arn, None, None), |st| {
            st.tags_by_arn(op, arn)?.extend(tags.clone());
            Ok((true, ()))
        })
    }

    async fn untag_resource(&self, arn: &str, keys: &[String]) -> SiteWiseResult<()> {
        let op = Operation::UntagResource;
        self.lock().mutate(call(op, arn, None, None), |st| {
            let have = st.tags_by_arn(op, arn)?;
            for key in keys {
                have.remove(key);
            }
            Ok((true, ()))
        })
    }

    async fn describe_asset_model(&self, model_id: &str) -> SiteWiseResult<ModelDescription> {
        self.lock().describe_model(model_id)
    }

    async fn create_asset_model(
        &self,
        model: &NewModel,
        client_token: &str,
    ) -> SiteWiseResult<CreatedAsset> {
        self.lock().create_model(model, client_token)
    }

    async fn update_asset_model(
        &self,
        model_id: &str,
        definition: &ModelDefinition,
        if_match: &str,
        client_token: &str,
    ) -> SiteWiseResult<AssetState> {
        self.lock()
            .update_model(model_id, definition, if_match, client_token)
    }

    async fn delete_asset_model(
        &self,
        model_id: &str,
        if_match: Option<&str>,
        client_token: &str,
    ) -> SiteWiseResult<AssetState> {
        self.lock().delete_model(model_id, if_match, client_token)
    }

    async fn list_assets_page(
        &self,
        model_id: &str,
        next_token: Option<&str>,
    ) -> SiteWiseResult<AssetPage> {
        self.lock().assets_page(model_id, next_token)
    }
}

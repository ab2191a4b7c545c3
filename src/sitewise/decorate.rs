//! [`Decorate`]: wrappers around a [`SiteWise`] (rate limits, counters) get every call
//! forwarded through their own step, written once here.

use std::collections::BTreeMap;
use std::future::Future;

use super::*;

/// A wrapper around another [`SiteWise`] that runs its own step around every call (a rate
/// limit, a counter). Implementing it gives the wrapper every SiteWise call, forwarded.
pub trait Decorate: Send + Sync + 'static {
    type Inner: SiteWise;

    /// The implementation `operation` goes to (a wrapper that routes calls may refuse one).
    fn inner(
        &self,
        operation: Operation,
    ) -> SiteWiseResult<impl std::ops::Deref<Target = Self::Inner> + Send + '_>;

    /// Runs `call` (the wrapped implementation's answer to `operation`) with the wrapper's step.
    fn around<T: Send>(
        &self,
        operation: Operation,
        call: impl Future<Output = SiteWiseResult<T>> + Send,
    ) -> impl Future<Output = SiteWiseResult<T>> + Send;
}

impl<D: Decorate> SiteWise for D {
    async fn describe_asset(&self, asset_id: &str) -> SiteWiseResult<AssetDescription> {
        let inner = self.inner(Operation::DescribeAsset)?;
        let call = inner.describe_asset(asset_id);
        self.around(Operation::DescribeAsset, call).await
    }

    async fn list_associated_assets(
        &self,
        asset_id: &str,
        direction: Direction,
        hierarchy_id: Option<&str>,
    ) -> SiteWiseResult<Vec<AssociatedAsset>> {
        let inner = self.inner(Operation::ListAssociatedAssets)?;
        let call = inner.list_associated_assets(asset_id, direction, hierarchy_id);
        self.around(Operation::ListAssociatedAssets, call).await
    }

    async fn disassociate_assets(
        &self,
        parent_id: &str,
        hierarchy_id: &str,
        child_id: &str,
        client_token: &str,
    ) -> SiteWiseResult<()> {
        let inner = self.inner(Operation::DisassociateAssets)?;
        let call = inner.disassociate_assets(parent_id, hierarchy_id, child_id, client_token);
        self.around(Operation::DisassociateAssets, call).await
    }

    async fn delete_asset(&self, asset_id: &str, client_token: &str) -> SiteWiseResult<AssetState> {
        let inner = self.inner(Operation::DeleteAsset)?;
        let call = inner.delete_asset(asset_id, client_token);
        self.around(Operation::DeleteAsset, call).await
    }

    async fn create_asset(
        &self,
        asset: &NewAsset,
        client_token: &str,
    ) -> SiteWiseResult<CreatedAsset> {
        let inner = self.inner(Operation::CreateAsset)?;
        let call = inner.create_asset(asset, client_token);
        self.around(Operation::CreateAsset, call).await
    }

    async fn update_asset(
        &self,
        asset_id: &str,
        update: &AssetUpdate,
        client_token: &str,
    ) -> SiteWiseResult<AssetState> {
        let inner = self.inner(Operation::UpdateAsset)?;
        let call = inner.update_asset(asset_id, update, client_token);
        self.around(Operation::UpdateAsset, call).await
    }

    async fn update_asset_property(
        &self,
        asset_id: &str,
        property_id: &str,
        settings: &PropertySettings,
        client_token: &str,
    ) -> SiteWiseResult<()> {
        let inner = self.inner(Operation::UpdateAssetProperty)?;
        let call = inner.update_asset_property(asset_id, property_id, settings, client_token);
        self.around(Operation::UpdateAssetProperty, call).await
    }

    async fn associate_assets(
        &self,
        parent_id: &str,
        hierarchy_id: &str,
        child_id: &str,
        client_token: &str,
    ) -> SiteWiseResult<()> {
        let inner = self.inner(Operation::AssociateAssets)?;
        let call = inner.associate_assets(parent_id, hierarchy_id, child_id, client_token);
        self.around(Operation::AssociateAssets, call).await
    }

    async fn list_tags(&self, arn: &str) -> SiteWiseResult<BTreeMap<String, String>> {
        let inner = self.inner(Operation::ListTagsForResource)?;
        let call = inner.list_tags(arn);
        self.around(Operation::ListTagsForResource, call).await
    }

    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> SiteWiseResult<()> {
        let inner = self.inner(Operation::TagResource)?;
        let call = inner.tag_resource(arn, tags);
        self.around(Operation::TagResource, call).await
    }

    async fn untag_resource(&self, arn: &str, keys: &[String]) -> SiteWiseResult<()> {
        let inner = self.inner(Operation::UntagResource)?;
        let call = inner.untag_resource(arn, keys);
        self.around(Operation::UntagResource, call).await
    }

    async fn describe_asset_model(&self, model_id: &str) -> SiteWiseResult<ModelDescription> {
        let inner = self.inner(Operation::DescribeAssetModel)?;
        let call = inner.describe_asset_model(model_id);
        self.around(Operation::DescribeAssetModel, call).await
    }

    async fn create_asset_model(
        &self,
        model: &NewModel,
        client_token: &str,
    ) -> SiteWiseResult<CreatedAsset> {
        let inner = self.inner(Operation::CreateAssetModel)?;
        let call = inner.create_asset_model(model, client_token);
        self.around(Operation::CreateAssetModel, call).await
    }

    async fn update_asset_model(
        &self,
        model_id: &str,
        definition: &ModelDefinition,
        if_match: &str,
        client_token: &str,
    ) -> SiteWiseResult<AssetState> {
        let inner = self.inner(Operation::UpdateAssetModel)?;
        let call = inner.update_asset_model(model_id, definition, if_match, client_token);
        self.around(Operation::UpdateAssetModel, call).await
    }

    async fn delete_asset_model(
        &self,
        model_id: &str,
        if_match: Option<&str>,
        client_token: &str,
    ) -> SiteWiseResult<AssetState> {
        let inner = self.inner(Operation::DeleteAssetModel)?;
        let call = inner.delete_asset_model(model_id, if_match, client_token);
        self.around(Operation::DeleteAssetModel, call).await
    }

    async fn list_assets_page(
        &self,
        model_id: &str,
        next_token: Option<&str>,
    ) -> SiteWiseResult<AssetPage> {
        let inner = self.inner(Operation::ListAssets)?;
        let call = inner.list_assets_page(model_id, next_token);
        self.around(Operation::ListAssets, call).await
    }
}

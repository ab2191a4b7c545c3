//! The production [`SiteWise`] implementation on aws-sdk-iotsitewise: client construction from
//! the standard AWS credential chain, the endpoint override (with the SDK's `api.` host prefix
//! removed), the SDK retry/timeout settings, and the mapping of SDK errors to [`ErrorKind`]s.

mod models;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_iotsitewise::Client;
use aws_sdk_iotsitewise::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iotsitewise::types::TraversalDirection;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::leader::Fence;

use std::collections::BTreeMap;

use aws_sdk_iotsitewise::types::PropertyNotificationState;

use super::{
    AssetDescription, AssetPage, AssetState, AssetUpdate, AssociatedAsset, CreatedAsset, Direction,
    ErrorKind, Hierarchy, ModelDefinition, ModelDescription, NewAsset, NewModel, Operation,
    Property, PropertySettings, SiteWise, SiteWiseError, SiteWiseResult,
};

/// How the SDK client is built.
#[derive(Clone, Debug)]
pub struct SdkSettings {
    /// AWS region; `None` leaves it to the standard chain (AWS_REGION, profile, IMDS).
    pub region: Option<String>,
    /// Endpoint override, e.g. `http://127.0.0.1:4566` for the emulator.
    pub endpoint: Option<String>,
    /// Attempts the SDK makes per call before the operator's own backoff takes over.
    pub sdk_max_attempts: u32,
    /// Time limit of one HTTP attempt.
    pub attempt_timeout: Duration,
    /// Leader-election fence, checked right before a mutating request leaves the process.
    pub fence: Option<Fence>,
    /// The SDK's app name (`app/<name>` in the user agent, as CloudTrail records it): which
    /// replica made a call.
    pub app_name: Option<String>,
}

impl Default for SdkSettings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint: None,
            sdk_max_attempts: 1,
            attempt_timeout: Duration::from_secs(10),
            fence: None,
            app_name: None,
        }
    }
}

/// Builds an SDK client: credentials from the standard chain (environment, profile, IRSA web
/// identity, EKS Pod Identity, IMDS), the configured retry budget and timeouts, and, when an
/// endpoint override is set, an interceptor that keeps requests on that endpoint.
pub async fn sdk_client(settings: &SdkSettings) -> Client {
    let shared = shared_config(settings).await;
    client_from(&shared, settings)
}

/// The SDK's shared configuration (region, app name, credential chain) for `settings`.
pub async fn shared_config(settings: &SdkSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(name) = settings.app_name.as_deref().and_then(app_name) {
        loader = loader.app_name(name);
    }
    loader.load().await
}

/// A SiteWise client on `shared` (its region and credentials) with the retry budget, timeouts,
/// endpoint override and fence of `settings`. An endpoint `shared` carries (one meant for STS)
/// is not inherited.
pub fn client_from(shared: &aws_config::SdkConfig, settings: &SdkSettings) -> Client {
    let mut builder = aws_sdk_iotsitewise::config::Builder::from(shared);
    builder.set_endpoint_url(None);
    let mut builder = builder
        .retry_config(RetryConfig::standard().with_max_attempts(settings.sdk_max_attempts.max(1)))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(settings.attempt_timeout)
                .connect_timeout(Duration::from_secs(3))
                .build(),
        );
    if let Some(endpoint) = &settings.endpoint {
        builder = builder
            .endpoint_url(endpoint)
            .interceptor(KeepEndpointHost::new(endpoint));
    }
    let client = Client::from_conf(builder.build());
    match &settings.fence {
        Some(fence) => fenced(&client, fence.clone()),
        None => client,
    }
}

/// An SDK app name from a replica's identity: the characters the SDK allows, at most 50.
fn app_name(identity: &str) -> Option<aws_config::AppName> {
    let name: String = identity
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect();
    aws_config::AppName::new(name).ok()
}

/// The request was not sent: this replica's lease may have passed to another.
#[derive(Debug, thiserror::Error)]
#[error("not sent: this replica may no longer hold the leader lease")]
pub struct FenceClosed;

/// Checks the leader fence at the last moment a mutating request can still be held back:
/// after the rate limiter's wait, the SDK's retries and signing, right before transmission.
/// A replica frozen while requests waited (a paused VM, a throttled cgroup) and resumed after
/// another replica took the lease sends nothing. Reads (GET) pass.
#[derive(Debug)]
pub struct FenceBeforeTransmit(pub Fence);

impl Intercept for FenceBeforeTransmit {
    fn name(&self) -> &'static str {
        "FenceBeforeTransmit"
    }

    fn read_before_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let read = context.request().method() == "GET";
        if read || self.0.is_open() {
            Ok(())
        } else {
            Err(Box::new(FenceClosed))
        }
    }
}

/// A client for an emulator at `endpoint`: fixed region and dummy static credentials (the
/// emulator does not check signatures), no retries, so tests see every answer as sent.
pub fn emulator_client(endpoint: &str) -> Client {
    let config = aws_sdk_iotsitewise::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_iotsitewise::config::Credentials::new(
            "emulator", "emulator", None, None, "emulator",
        ))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .endpoint_url(endpoint)
        .interceptor(KeepEndpointHost::new(endpoint))
        .build();
    Client::from_conf(config)
}

/// `client` with the leader fence checked right before every mutating request is sent.
pub fn fenced(client: &Client, fence: Fence) -> Client {
    Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(FenceBeforeTransmit(fence))
            .build(),
    )
}

/// Every SiteWise control-plane operation carries the `api.` host prefix, and the SDK applies
/// it to a custom endpoint too (`http://127.0.0.1:4566` becomes `http://api.127.0.0.1:4566`,
/// which does not resolve). The AWS guide tells VPC-endpoint users to disable host-prefix
/// injection; the Rust SDK has no switch for it, so this interceptor undoes the prefix before
/// the request is signed (the signature then covers the host really used).
#[derive(Debug)]
pub struct KeepEndpointHost {
    endpoint: String,
    prefixed: String,
}

impl KeepEndpointHost {
    pub fn new(endpoint: &str) -> Self {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let prefixed = match endpoint.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://api.{rest}"),
            None => format!("api.{endpoint}"),
        };
        Self { endpoint, prefixed }
    }

    /// The URI with the prefix removed, or `None` when it does not carry it.
    pub fn rewrite(&self, uri: &str) -> Option<String> {
        let rest = uri.strip_prefix(&self.prefixed)?;
        (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
            .then(|| format!("{}{rest}", self.endpoint))
    }
}

impl Intercept for KeepEndpointHost {
    fn name(&self) -> &'static str {
        "KeepEndpointHost"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        if let Some(uri) = self.rewrite(request.uri()) {
            request.set_uri(uri)?;
        }
        Ok(())
    }
}

/// [`SiteWise`] over the AWS SDK.
#[derive(Clone, Debug)]
pub struct AwsSiteWise {
    client: Client,
}

impl AwsSiteWise {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// Maps an SDK failure to a classified [`SiteWiseError`].
pub fn classify<E>(operation: Operation, err: SdkError<E, HttpResponse>) -> SiteWiseError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if held_back(&err) {
        return SiteWiseError::new(
            operation,
            ErrorKind::Unavailable,
            "NotLeader",
            FenceClosed.to_string(),
        );
    }
    match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("UnknownError").to_string();
            let message = ctx
                .err()
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {status}"));
            let kind = SiteWiseError::kind_for(&code, Some(status));
            SiteWiseError::new(operation, kind, code, message)
        }
        SdkError::TimeoutError(_) => SiteWiseError::new(
            operation,
            ErrorKind::Unavailable,
            "Timeout",
            DisplayErrorContext(&err).to_string(),
        ),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => SiteWiseError::new(
            operation,
            ErrorKind::Unavailable,
            "ConnectionError",
            DisplayErrorContext(&err).to_string(),
        ),
        _ => SiteWiseError::new(
            operation,
            ErrorKind::Permanent,
            "ClientError",
            DisplayErrorContext(&err).to_string(),
        ),
    }
}

/// Whether the SDK failed the call because the fence held it back.
fn held_back(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<FenceClosed>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}

impl SiteWise for AwsSiteWise {
    async fn describe_asset(&self, asset_id: &str) -> SiteWiseResult<AssetDescription> {
        let out = self
            .client
            .describe_asset()
            .asset_id(asset_id)
            .exclude_properties(false)
            .send()
            .await
            .map_err(|e| classify(Operation::DescribeAsset, e))?;
        let status = out.asset_status();
        Ok(AssetDescription {
            id: out.asset_id().to_string(),
            arn: out.asset_arn().to_string(),
            name: out.asset_name().to_string(),
            external_id: out.asset_external_id().map(str::to_string),
            description: out.asset_description().map(str::to_string),
            model_id: out.asset_model_id().to_string(),
            state: status
                .map(|s| AssetState::parse(s.state().as_str()))
                .unwrap_or_else(|| AssetState::Other("UNKNOWN".into())),
            error: status
                .and_then(|s| s.error())
                .map(|e| (e.code().as_str().to_string(), e.message().to_string())),
            hierarchies: out
                .asset_hierarchies()
                .iter()
                .filter_map(|h| {
                    Some(Hierarchy {
                        id: h.id()?.to_string(),
                        external_id: h.external_id().map(str::to_string),
                        name: h.name().to_string(),
                    })
                })
                .collect(),
            properties: out
                .asset_properties()
                .iter()
                .map(|p| Property {
                    id: p.id().to_string(),
                    external_id: p.external_id().map(str::to_string),
                    name: p.name().to_string(),
                    alias: p.alias().map(str::to_string),
                    unit: p.unit().map(str::to_string),
                    notification_state: p.notification().map(|n| n.state().as_str().to_string()),
                })
                .collect(),
            last_update: out.asset_last_update_date().secs().to_string(),
        })
    }

    async fn list_associated_assets(
        &self,
        asset_id: &str,
        direction: Direction,
        hierarchy_id: Option<&str>,
    ) -> SiteWiseResult<Vec<AssociatedAsset>> {
        let direction = match direction {
            Direction::Child => TraversalDirection::Child,
            Direction::Parent => TraversalDirection::Parent,
        };
        let mut assets = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_associated_assets()
                .asset_id(asset_id)
                .traversal_direction(direction.clone())
                .set_hierarchy_id(hierarchy_id.map(str::to_string))
                .max_results(250)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| classify(Operation::ListAssociatedAssets, e))?;
            assets.extend(out.asset_summaries().iter().map(|s| {
                AssociatedAsset {
                    id: s.id().to_string(),
                    hierarchy_ids: s
                        .hierarchies()
                        .iter()
                        .filter_map(|h| h.id().map(str::to_string))
                        .collect(),
                }
            }));
            match out.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(assets),
            }
        }
    }

    async fn disassociate_assets(
        &self,
        parent_id: &str,
        hierarchy_id: &str,
        child_id: &str,
        client_token: &str,
    ) -> SiteWiseResult<()> {
        self.client
            .disassociate_assets()
            .asset_id(parent_id)
            .hierarchy_id(hierarchy_id)
            .child_asset_id(child_id)
            .client_token(client_token)
            .send()
            .await
            .map_err(|e| classify(Operation::DisassociateAssets, e))?;
        Ok(())
    }

    async fn delete_asset(&self, asset_id: &str, client_token: &str) -> SiteWiseResult<AssetState> {
        let out = self
            .client
            .delete_asset()
            .asset_id(asset_id)
            .client_token(client_token)
            .send()
            .await
            .map_err(|e| classify(Operation::DeleteAsset, e))?;
        Ok(out
            .asset_status()
            .map(|s| AssetState::parse(s.state().as_str()))
            .unwrap_or(AssetState::Deleting))
    }

    async fn create_asset(
        &self,
        asset: &NewAsset,
        client_token: &str,
    ) -> SiteWiseResult<CreatedAsset> {
        let out = self
            .client
            .create_asset()
            .asset_id(&asset.asset_id)
            .asset_model_id(&asset.model_id)
            .asset_name(&asset.name)
            .set_asset_description(asset.description.clone())
            .set_asset_external_id(asset.external_id.clone())
            .set_tags((!asset.tags.is_empty()).then(|| asset.tags.clone().into_iter().collect()))
            .client_token(client_token)
            .send()
            .await
            .map_err(|e| classify(Operation::CreateAsset, e))?;
        Ok(CreatedAsset {
            id: out.asset_id().to_string(),
            arn: out.asset_arn().to_string(),
            state: out
                .asset_status()
                .map(|s| AssetState::parse(s.state().as_str()))
                .unwrap_or(AssetState::Creating),
        })
    }

    async fn update_asset(
        &self,
        asset_id: &str,
        update: &AssetUpdate,
        client_token: &str,
    ) -> SiteWiseResult<AssetState> {
        let out = self
            .client
            .update_asset()
            .asset_id(asset_id)
            .asset_name(&update.name)
            .set_asset_description(update.description.clone())
            .set_asset_external_id(update.external_id.clone())
            .client_token(client_token)
            .send()
            .await
            .map_err(|e| classify(Operation::UpdateAsset, e))?;
        Ok(out
            .asset_status()
            .map(|s| AssetState::parse(s.state().as_str()))
            .unwrap_or(AssetState::Updating))
    }

    async fn update_asset_property(
        &self,
        asset_id: &str,
        property_id: &str,
        settings: &PropertySettings,
        client_token: &str,
    ) -> SiteWiseResult<()> {
        self.client
            .update_asset_property()
            .asset_id(asset_id)
            .property_id(property_id)
            .set_property_alias(settings.alias.clone())
            .set_property_unit(settings.unit.clone())
            .set_property_notification_state(
                settings
                    .notification_state
                    .as_deref()
                    .map(PropertyNotificationState::from),
            )
            .client_token(client_token)
            .send()
            .await
            .map_err(|e| classify(Operation::UpdateAssetProperty, e))?;
        Ok(())
    }

    async fn associate_assets(
        &self,
        parent_id: &str,
        hierarchy_id: &str,
        child_id: &str,
        client_token: &str,
    ) -> SiteWiseResult<()> {
        self.client
            .associate_assets()
            .asset_id(parent_id)
            .hierarchy_id(hierarchy_id)
            .child_asset_id(child_id)
            .client_token(client_token)
            .send()
            .await
            .map_err(|e| classify(Operation::AssociateAssets, e))?;
        Ok(())
    }

    async fn list_tags(&self, arn: &str) -> SiteWiseResult<BTreeMap<String, String>> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| classify(Operation::ListTagsForResource, e))?;
        Ok(out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> SiteWiseResult<()> {
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| classify(Operation::TagResource, e))?;
        Ok(())
    }

    async fn untag_resource(&self, arn: &str, keys: &[String]) -> SiteWiseResult<()> {
        self.client
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| classify(Operation::UntagResource, e))?;
        Ok(())
    }

    async fn describe_asset_model(&self, model_id: &str) -> SiteWiseResult<ModelDescription> {
        models::describe(&self.client, model_id).await
    }

    async fn create_asset_model(
        &self,
        model: &NewModel,
        client_token: &str,
    ) -> SiteWiseResult<CreatedAsset> {
        models::create(&self.client, model, client_token).await
    }

    async fn update_asset_model(
        &self,
        model_id: &str,
        definition: &ModelDefinition,
        if_match: &str,
        client_token: &str,
    ) -> SiteWiseResult<AssetState> {
        models::update(&self.client, model_id, definition, if_match, client_token).await
    }

    async fn delete_asset_model(
        &self,
        model_id: &str,
        if_match: Option<&str>,
        client_token: &str,
    ) -> SiteWiseResult<AssetState> {
        models::delete(&self.client, model_id, if_match, client_token).await
    }

    async fn list_assets_page(
        &self,
        model_id: &str,
        next_token: Option<&str>,
    ) -> SiteWiseResult<AssetPage> {
        models::list_assets_page(&self.client, model_id, next_token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_prefix_is_removed_only_from_the_override_host() {
        let keep = KeepEndpointHost::new("http://127.0.0.1:4566/");
        assert_eq!(
            keep.rewrite("http://api.127.0.0.1:4566/assets/x?clientToken=t")
                .as_deref(),
            Some("http://127.0.0.1:4566/assets/x?clientToken=t")
        );
        assert_eq!(
            keep.rewrite("http://api.127.0.0.1:4566").as_deref(),
            Some("http://127.0.0.1:4566")
        );
        assert_eq!(keep.rewrite("http://127.0.0.1:4566/assets"), None);
        // Another port that merely starts with the same digits is not ours.
        assert_eq!(keep.rewrite("http://api.127.0.0.1:45660/assets"), None);
    }
}

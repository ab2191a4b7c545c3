//! The asset-model calls over the AWS SDK: DescribeAssetModel (with its ETag),
//! CreateAssetModel, UpdateAssetModel and DeleteAssetModel with `If-Match`, and ListAssets of
//! one model.

use aws_sdk_iotsitewise::Client;
use aws_sdk_iotsitewise::types::{
    AssetModelHierarchy, AssetModelHierarchyDefinition, AssetModelProperty,
    AssetModelPropertyDefinition, Attribute, ListAssetsFilter, Measurement, PropertyDataType,
    PropertyType,
};

use super::classify;
use crate::sitewise::{
    AssetPage, AssetState, AssetSummary, CreatedAsset, ErrorKind, ModelDefinition,
    ModelDescription, ModelHierarchy, ModelProperty, NewModel, Operation, PropertyKind,
    SiteWiseError, SiteWiseResult,
};

pub async fn describe(client: &Client, model_id: &str) -> SiteWiseResult<ModelDescription> {
    let out = client
        .describe_asset_model()
        .asset_model_id(model_id)
        .send()
        .await
        .map_err(|e| classify(Operation::DescribeAssetModel, e))?;
    let status = out.asset_model_status();
    Ok(ModelDescription {
        id: out.asset_model_id().to_string(),
        arn: out.asset_model_arn().to_string(),
        definition: ModelDefinition {
            name: out.asset_model_name().to_string(),
            description: Some(out.asset_model_description().to_string()).filter(|d| !d.is_empty()),
            external_id: out.asset_model_external_id().map(str::to_string),
            properties: out.asset_model_properties().iter().map(property).collect(),
            hierarchies: out
                .asset_model_hierarchies()
                .iter()
                .map(|h| ModelHierarchy {
                    id: h.id().map(str::to_string),
                    name: h.name().to_string(),
                    external_id: h.external_id().map(str::to_string),
                    child_model_id: h.child_asset_model_id().to_string(),
                })
                .collect(),
        },
        state: status
            .map(|s| AssetState::parse(s.state().as_str()))
            .unwrap_or_default(),
        error: status
            .and_then(|s| s.error())
            .map(|e| (e.code().as_str().to_string(), e.message().to_string())),
        etag: out.e_tag().map(str::to_string),
    })
}

fn property(p: &AssetModelProperty) -> ModelProperty {
    let kind = match p.r#type() {
        Some(t) if t.attribute().is_some() => PropertyKind::Attribute {
            default_value: t
                .attribute()
                .and_then(|a| a.default_value())
                .map(str::to_string),
        },
        Some(t) if t.measurement().is_some() => PropertyKind::Measurement,
        Some(t) if t.transform().is_some() => PropertyKind::Other("transform".into()),
        Some(t) if t.metric().is_some() => PropertyKind::Other("metric".into()),
        _ => PropertyKind::Other("unknown".into()),
    };
    ModelProperty {
        id: p.id().map(str::to_string),
        name: p.name().to_string(),
        external_id: p.external_id().map(str::to_string),
        data_type: p.data_type().as_str().to_string(),
        unit: p.unit().map(str::to_string),
        kind,
    }
}

fn property_type(kind: &PropertyKind) -> PropertyType {
    match kind {
        PropertyKind::Attribute { default_value } => PropertyType::builder()
            .attribute(
                Attribute::builder()
                    .set_default_value(default_value.clone())
                    .build(),
            )
            .build(),
        PropertyKind::Measurement | PropertyKind::Other(_) => PropertyType::builder()
            .measurement(Measurement::builder().build())
            .build(),
    }
}

/// An SDK builder that refused its input: the operator built a request SiteWise would refuse.
fn invalid(operation: Operation, e: impl std::fmt::Display) -> SiteWiseError {
    SiteWiseError::new(
        operation,
        ErrorKind::InvalidRequest,
        "ClientValidation",
        e.to_string(),
    )
}

pub async fn create(
    client: &Client,
    model: &NewModel,
    client_token: &str,
) -> SiteWiseResult<CreatedAsset> {
    let op = Operation::CreateAssetModel;
    let d = &model.definition;
    let mut properties = Vec::new();
    for p in &d.properties {
        properties.push(
            AssetModelPropertyDefinition::builder()
                .name(&p.name)
                .set_external_id(p.external_id.clone())
                .data_type(PropertyDataType::from(p.data_type.as_str()))
                .set_unit(p.unit.clone())
                .r#type(property_type(&p.kind))
                .build()
                .map_err(|e| invalid(op, e))?,
        );
    }
    let mut hierarchies = Vec::new();
    for h in &d.hierarchies {
        hierarchies.push(
            AssetModelHierarchyDefinition::builder()
                .name(&h.name)
                .set_external_id(h.external_id.clone())
                .child_asset_model_id(&h.child_model_id)
                .build()
                .map_err(|e| invalid(op, e))?,
        );
    }
    let out = client
        .create_asset_model()
        .asset_model_id(&model.model_id)
        .asset_model_name(&d.name)
        .set_asset_model_description(d.description.clone())
        .set_asset_model_external_id(d.external_id.clone())
        // Empty lists and maps are left out: SiteWise refuses an empty `tags` map (1 to 50).
        .set_asset_model_properties(Some(properties).filter(|p| !p.is_empty()))
        .set_asset_model_hierarchies(Some(hierarchies).filter(|h| !h.is_empty()))
        .set_tags(
            Some(model.tags.clone().into_iter().collect())
                .filter(|t: &std::collections::HashMap<_, _>| !t.is_empty()),
        )
        .client_token(client_token)
        .send()
        .await
        .map_err(|e| classify(op, e))?;
    Ok(CreatedAsset {
        id: out.asset_model_id().to_string(),
        arn: out.asset_model_arn().to_string(),
        state: out
            .asset_model_status()
            .map(|s| AssetState::parse(s.state().as_str()))
            .unwrap_or(AssetState::Creating),
    })
}

pub async fn update(
    client: &Client,
    model_id: &str,
    d: &ModelDefinition,
    if_match: &str,
    client_token: &str,
) -> SiteWiseResult<AssetState> {
    let op = Operation::UpdateAssetModel;
    let mut properties = Vec::new();
    for p in &d.properties {
        properties.push(
            AssetModelProperty::builder()
                .set_id(p.id.clone())
                .name(&p.name)
                .set_external_id(p.external_id.clone())
                .data_type(PropertyDataType::from(p.data_type.as_str()))
                .set_unit(p.unit.clone())
                .r#type(property_type(&p.kind))
                .build()
                .map_err(|e| invalid(op, e))?,
        );
    }
    let mut hierarchies = Vec::new();
    for h in &d.hierarchies {
        hierarchies.push(
            AssetModelHierarchy::builder()
                .set_id(h.id.clone())
                .name(&h.name)
                .set_external_id(h.external_id.clone())
                .child_asset_model_id(&h.child_model_id)
                .build()
                .map_err(|e| invalid(op, e))?,
        );
    }
    let out = client
        .update_asset_model()
        .asset_model_id(model_id)
        .asset_model_name(&d.name)
        .set_asset_model_description(d.description.clone())
        .set_asset_model_external_id(d.external_id.clone())
        .set_asset_model_properties(Some(properties))
        .set_asset_model_hierarchies(Some(hierarchies))
        .if_match(if_match)
        .client_token(client_token)
        .send()
        .await
        .map_err(|e| classify(op, e))?;
    Ok(out
        .asset_model_status()
        .map(|s| AssetState::parse(s.state().as_str()))
        .unwrap_or(AssetState::Updating))
}

pub async fn delete(
    client: &Client,
    model_id: &str,
    if_match: Option<&str>,
    client_token: &str,
) -> SiteWiseResult<AssetState> {
    let out = client
        .delete_asset_model()
        .asset_model_id(model_id)
        .set_if_match(if_match.map(str::to_string))
        .client_token(client_token)
        .send()
        .await
        .map_err(|e| classify(Operation::DeleteAssetModel, e))?;
    Ok(out
        .asset_model_status()
        .map(|s| AssetState::parse(s.state().as_str()))
        .unwrap_or(AssetState::Deleting))
}

pub async fn list_assets_page(
    client: &Client,
    model_id: &str,
    next_token: Option<&str>,
) -> SiteWiseResult<AssetPage> {
    let out = client
        .list_assets()
        .asset_model_id(model_id)
        .filter(ListAssetsFilter::All)
        .max_results(250)
        .set_next_token(next_token.map(str::to_string))
        .send()
        .await
        .map_err(|e| classify(Operation::ListAssets, e))?;
    let assets = out
        .asset_summaries()
        .iter()
        .map(|a| AssetSummary {
            id: a.id().to_string(),
            name: a.name().to_string(),
            state: a
                .status()
                .map(|s| AssetState::parse(s.state().as_str()))
                .unwrap_or_default(),
            description: a.description().map(str::to_string),
            external_id: a.external_id().map(str::to_string),
        })
        .collect();
    Ok(AssetPage {
        assets,
        next_token: out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    })
}

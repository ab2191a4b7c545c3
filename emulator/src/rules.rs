//! The emulator's answers where the SiteWise reference leaves a question open. Each choice is
//! made here, once, and documented in the README ("Choices where the reference is silent").

use crate::error::{ApiError, ErrorCode};

/// DeleteAsset on an asset that still has a parent or a child. The API reference says such an
/// asset "can't" be deleted without naming the exception; a request that is refused as it
/// stands is an InvalidRequestException (400), like the other precondition failures SiteWise
/// models, so clients fix the request (disassociate) rather than retry it unchanged.
pub fn delete_asset_while_associated(
    asset_id: &str,
    children: usize,
    has_parent: bool,
) -> ApiError {
    let mut reasons = Vec::new();
    if children > 0 {
        reasons.push(format!("it has {children} associated child asset(s)"));
    }
    if has_parent {
        reasons.push("it is associated with a parent asset".to_string());
    }
    ApiError::new(
        ErrorCode::InvalidRequestException,
        format!(
            "Cannot delete asset {asset_id}: {}. Disassociate it first (DisassociateAssets).",
            reasons.join(" and ")
        ),
    )
}

/// DeleteAssetModel while assets of the model exist: the same choice as for assets.
pub fn delete_model_with_assets(model_id: &str, assets: usize) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequestException,
        format!(
            "Cannot delete asset model {model_id}: {assets} asset(s) were created from it. Delete them first."
        ),
    )
}

/// DisassociateAssets of a pair that is not associated through that hierarchy: the
/// association is the resource addressed, and it does not exist.
pub fn association_missing(parent: &str, hierarchy: &str, child: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFoundException,
        format!(
            "Asset {child} is not associated with asset {parent} through hierarchy {hierarchy}"
        ),
    )
}

/// A mutating call on an asset or model that is not ACTIVE (or FAILED, for deletion).
pub fn busy(kind: &str, id: &str, arn: &str, state: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ConflictingOperationException,
        format!("The {kind} {id} is in state {state}; wait until it is ACTIVE"),
    )
    .on_resource(id, arn)
}

/// The same clientToken with different parameters within the retention window. SiteWise
/// models no IdempotentParameterMismatch; InvalidRequestException is modeled on every
/// operation that takes a token, so SDKs decode it as a typed error.
pub fn token_reused(token: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequestException,
        format!("clientToken {token} was already used with different parameters"),
    )
}

/// A property alias already used by another property. Aliases identify data streams, so
/// SiteWise keeps them unique in an account and Region; UpdateAssetProperty models no
/// ResourceAlreadyExistsException, so the refusal is an InvalidRequestException.
pub fn alias_taken(alias: &str, asset_id: &str, property_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequestException,
        format!("The alias {alias} is already used by property {property_id} of asset {asset_id}"),
    )
}

/// The state UpdateAssetProperty puts the asset in: UPDATING (for the configured update delay),
/// like UpdateAsset. The reference is silent; a client that waits for ACTIVE after any change
/// works either way.
pub fn property_update_state() -> &'static str {
    "UPDATING"
}

/// The description an asset has after UpdateAsset: the one sent, or, when `assetDescription`
/// is omitted, the one it had (the reference says only that the field is "a description for
/// the asset"). The operator always sends the description it wants kept, so it works under
/// either reading.
pub fn description_after_update(current: Option<String>, sent: Option<&str>) -> Option<String> {
    sent.map(str::to_string).or(current)
}

/// The state UpdateAssetModel leaves a model in: PROPAGATING while it has assets (the user
/// guide: changes flow to the assets, which are UPDATING meanwhile), UPDATING when it has none
/// (the reference names both states without saying which a model without assets shows).
/// Clients that wait for ACTIVE after an update work either way.
pub fn model_update_state(has_assets: bool) -> &'static str {
    if has_assets {
        "PROPAGATING"
    } else {
        "UPDATING"
    }
}

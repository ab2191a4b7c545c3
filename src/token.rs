//! Deterministic SiteWise `clientToken`s.
//!
//! A token is the RFC 4122 name-based UUID (version 5, SHA-1) of the text
//! `sitewise-operator/v1/<resource UID>/<operation>/<target…>` in the namespace
//! [`TOKEN_NAMESPACE`]. The resource UID is assigned by Kubernetes and never reused; the
//! operation and target name the exact call, so:
//! - the same call gets the same token on every retry, after a restart and on any replica,
//!   and SiteWise recognises a replay instead of acting twice;
//! - two different calls (another operation, another child, another resource) never share one.
//!
//! When the asset's links are found restored after the operator removed them (someone
//! re-associated a child), the deletion's `round` is raised and appended (`/round-N`), so the
//! new disassociation is a new request rather than a replay; the same holds for a DeleteAsset
//! that SiteWise accepted and then failed, and for a parent link someone else removed.
//!
//! The asset a resource creates gets a derived ID too ([`created_asset_id`]), so a crash
//! between CreateAsset and the status write finds the asset instead of creating another.
//!
//! The hyphenated form is 36 characters without white space, which is what SiteWise accepts
//! (`\S{36,64}`).

use uuid::Uuid;

/// Namespace of every token this operator derives (a fixed random UUID; changing it would
/// change every token).
pub const TOKEN_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a57_93d4_4c1e_9b8a_51e2_0d7f_3c64);

/// Token for `DeleteAsset` of `asset_id` on behalf of the resource with UID `resource_uid`.
/// `round` counts deletions SiteWise accepted and then reported FAILED (see
/// `DeletionProgress::delete_round`); round 0 adds nothing to the name.
pub fn delete_asset(resource_uid: &str, asset_id: &str, round: u32) -> String {
    with_round(resource_uid, "DeleteAsset", vec![asset_id], "round", round)
}

/// The asset ID a resource creates its asset with: the name-based UUID of
/// `sitewise-operator/v1/<resource UID>/asset`. Known before CreateAsset is sent, so a
/// restart finds the asset by it instead of creating a second one.
pub fn created_asset_id(resource_uid: &str) -> String {
    derive(resource_uid, "asset", &[])
}

/// Token for `CreateAsset` of the resource's asset.
pub fn create_asset(resource_uid: &str, asset_id: &str) -> String {
    derive(resource_uid, "CreateAsset", &[asset_id])
}

/// Token for `UpdateAsset`: the target is the asset, the version of it that was observed
/// (`assetLastUpdateDate`) and the change. A retry of the same change to the same version is a
/// replay; the same change made again after someone else changed the asset is a new request.
pub fn update_asset(resource_uid: &str, asset_id: &str, version: &str, change: &str) -> String {
    derive(resource_uid, "UpdateAsset", &[asset_id, version, change])
}

/// Token for `UpdateAssetProperty`, derived like [`update_asset`] plus the property.
pub fn update_asset_property(
    resource_uid: &str,
    asset_id: &str,
    property_id: &str,
    version: &str,
    change: &str,
) -> String {
    derive(
        resource_uid,
        "UpdateAssetProperty",
        &[asset_id, property_id, version, change],
    )
}

/// Token for `AssociateAssets(parent, hierarchy, child)`. `round` counts how often the link
/// was found removed by someone else and made again (`ParentLinkStatus::round`).
pub fn associate_assets(
    resource_uid: &str,
    parent_id: &str,
    hierarchy_id: &str,
    child_id: &str,
    round: u32,
) -> String {
    with_round(
        resource_uid,
        "AssociateAssets",
        vec![parent_id, hierarchy_id, child_id],
        "round",
        round,
    )
}

/// Token for `DisassociateAssets` that moves the asset away from a parent it no longer
/// declares; distinct from the deletion's detach tokens, so a move followed by a deletion
/// under the same parent is never taken for a replay.
pub fn detach_to_move(
    resource_uid: &str,
    parent_id: &str,
    hierarchy_id: &str,
    child_id: &str,
    link_round: u32,
) -> String {
    let moved = format!("move-{link_round}");
    derive(
        resource_uid,
        "DisassociateAssets",
        &[parent_id, hierarchy_id, child_id, &moved],
    )
}

/// Token for `DisassociateAssets(parent, hierarchy, child)` on behalf of `resource_uid`.
/// `round` counts how often the links were found restored after being removed (see
/// `DeletionProgress::round`); round 0 adds nothing to the name.
pub fn disassociate_assets(
    resource_uid: &str,
    parent_id: &str,
    hierarchy_id: &str,
    child_id: &str,
    round: u32,
) -> String {
    with_round(
        resource_uid,
        "DisassociateAssets",
        vec![parent_id, hierarchy_id, child_id],
        "round",
        round,
    )
}

/// Round 0 adds nothing, so tokens of the first round are those of earlier releases.
/// The model ID a `SiteWiseAssetModel` creates its model with, derived like
/// [`created_asset_id`] (`…/<resource UID>/asset-model`).
pub fn created_model_id(resource_uid: &str) -> String {
    derive(resource_uid, "asset-model", &[])
}

/// Token for `CreateAssetModel` of the resource's model.
pub fn create_asset_model(resource_uid: &str, model_id: &str) -> String {
    derive(resource_uid, "CreateAssetModel", &[model_id])
}

/// Token for `UpdateAssetModel`: the model, the version it was read at (its ETag) and the
/// change, so a retry is a replay and the same change to a newer version is a new request.
pub fn update_asset_model(resource_uid: &str, model_id: &str, etag: &str, change: &str) -> String {
    derive(resource_uid, "UpdateAssetModel", &[model_id, etag, change])
}

/// Token for `DeleteAssetModel` of the resource's model.
pub fn delete_asset_model(resource_uid: &str, model_id: &str) -> String {
    derive(resource_uid, "DeleteAssetModel", &[model_id])
}

fn with_round(
    resource_uid: &str,
    operation: &str,
    targets: Vec<&str>,
    label: &str,
    round: u32,
) -> String {
    let suffix = format!("{label}-{round}");
    // A new vector, so it may borrow the suffix, which lives shorter than `targets`' items.
    let mut all: Vec<&str> = targets.into_iter().collect();
    if round > 0 {
        all.push(&suffix);
    }
    derive(resource_uid, operation, &all)
}

fn derive(resource_uid: &str, operation: &str, targets: &[&str]) -> String {
    let mut name = format!("sitewise-operator/v1/{resource_uid}/{operation}");
    for target in targets {
        name.push('/');
        name.push_str(target);
    }
    Uuid::new_v5(&TOKEN_NAMESPACE, name.as_bytes())
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    const UID: &str = "0b8f6a9e-8d3c-4f4e-9a57-1f0e2d3c4b5a";
    const ASSET: &str = "a1b2c3d4-0000-4000-8000-000000000001";
    const CHILD: &str = "a1b2c3d4-0000-4000-8000-000000000002";
    const HIER: &str = "a1b2c3d4-0000-4000-8000-0000000000f1";

    #[test]
    fn tokens_are_stable_across_calls_and_processes() {
        assert_eq!(delete_asset(UID, ASSET, 0), delete_asset(UID, ASSET, 0));
        // Pinned value: a change here changes every token in flight, which would let a
        // restarted operator repeat calls SiteWise already saw. Bump the `v1` on purpose only.
        assert_eq!(
            delete_asset(UID, ASSET, 0),
            Uuid::new_v5(
                &TOKEN_NAMESPACE,
                format!("sitewise-operator/v1/{UID}/DeleteAsset/{ASSET}").as_bytes()
            )
            .to_string()
        );
    }

    #[test]
    fn tokens_are_valid_sitewise_client_tokens() {
        let pattern = Regex::new(r"^\S{36,64}$").expect("valid regex");
        for token in [
            delete_asset(UID, ASSET, 0),
            delete_asset(UID, ASSET, 2),
            created_asset_id(UID),
            create_asset(UID, ASSET),
            update_asset(UID, ASSET, "1700000000", "name=press"),
            update_asset_property(UID, ASSET, CHILD, "1700000000", "alias=/a"),
            associate_assets(UID, ASSET, HIER, CHILD, 1),
            detach_to_move(UID, ASSET, HIER, CHILD, 0),
            disassociate_assets(UID, ASSET, HIER, CHILD, 0),
            disassociate_assets(UID, ASSET, HIER, CHILD, 3),
        ] {
            assert!(pattern.is_match(&token), "{token}");
            assert_eq!(token.len(), 36);
            assert_eq!(Uuid::parse_str(&token).map(|u| u.get_version_num()), Ok(5));
        }
    }

    #[test]
    fn tokens_differ_per_operation_target_and_resource() {
        let tokens = [
            delete_asset(UID, ASSET, 0),
            delete_asset(UID, ASSET, 1),
            delete_asset(UID, CHILD, 0),
            delete_asset("another-uid", ASSET, 0),
            created_asset_id(UID),
            created_asset_id("another-uid"),
            create_asset(UID, ASSET),
            update_asset(UID, ASSET, "1", "name=a"),
            update_asset(UID, ASSET, "2", "name=a"),
            update_asset(UID, ASSET, "1", "name=b"),
            update_asset_property(UID, ASSET, CHILD, "1", "alias=/a"),
            associate_assets(UID, ASSET, HIER, CHILD, 0),
            associate_assets(UID, ASSET, HIER, CHILD, 1),
            detach_to_move(UID, ASSET, HIER, CHILD, 0),
            disassociate_assets(UID, ASSET, HIER, CHILD, 0),
            disassociate_assets(UID, ASSET, HIER, CHILD, 1),
            disassociate_assets(UID, ASSET, HIER, ASSET, 0),
            disassociate_assets(UID, CHILD, HIER, ASSET, 0),
            disassociate_assets(UID, ASSET, CHILD, HIER, 0),
        ];
        let unique: std::collections::HashSet<_> = tokens.iter().collect();
        assert_eq!(unique.len(), tokens.len());
    }
}

//! What a deletion starts from: what status and the watch cache already know (the first pass
//! of a deletion whose asset, claim and parent link status records), or DescribeAsset
//! otherwise; plus what earlier passes of this deletion learned (links, a fresh claim) and the
//! children's fates, sorted with the watch cache.

use std::sync::Arc;
use std::time::Instant;

use super::super::Context;
use super::super::plan::{self, Links, Observation, ParentLink, Standing};
use super::family;
use crate::crd::{
    DeletionPhase, Mode, Ownership, ParentLinkStatus, SiteWiseAsset, SiteWiseAssetStatus,
};
use crate::error::{Error, Result};
use crate::sitewise::{AssetDescription, AssetState, ErrorKind, SiteWise};
use crate::token;

/// The asset to delete. The UUID pinned in status comes first: an external ID could have been
/// moved to another asset, which this resource must never touch. A created asset is found by
/// the ID derived for it even when its creation was never recorded.
pub fn reference(obj: &SiteWiseAsset, status: &SiteWiseAssetStatus, uid: &str) -> String {
    if let Some(pinned) = &status.asset_id {
        return pinned.clone();
    }
    match obj.mode() {
        Some(Mode::Adopt { reference }) => reference.to_string(),
        Some(Mode::Create { .. }) | None => token::created_asset_id(uid),
    }
}

/// The observation status allows without reading SiteWise, on the first pass of a deletion:
/// the asset is pinned and was ACTIVE, the resource holds the claim (it created the asset, or
/// adopted it and tagged it), and its parent link is known (recorded when the operator made
/// it, or none for a created asset that declares no parent). Children are those the watch
/// cache records as linked to it.
///
/// Every call that follows tolerates what status could not know: a link already gone counts
/// as removed, an asset already gone as deleted, and SiteWise refuses DeleteAsset while a link
/// remains (a child no resource manages, a parent linked by hand), which sends the deletion
/// back to reading SiteWise. Any later pass observes SiteWise.
pub fn from_status<S>(
    ctx: &Context<S>,
    obj: &SiteWiseAsset,
    before: &SiteWiseAssetStatus,
) -> Option<Observation> {
    if before.deletion.is_some() || before.state.as_deref() != Some("ACTIVE") {
        return None;
    }
    let asset_id = before.asset_id.clone()?;
    let parent = match (&before.parent_link, &obj.spec.parent, before.ownership) {
        (
            Some(ParentLinkStatus {
                parent_id,
                hierarchy_id,
                associated: true,
                ..
            }),
            _,
            Some(Ownership::Created | Ownership::Adopted),
        ) => Some(ParentLink::Linked {
            parent_id: parent_id.clone(),
            hierarchy_id: hierarchy_id.clone(),
        }),
        (None, None, Some(Ownership::Created)) => None,
        _ => return None,
    };
    let resources = ctx.resources.all();
    let in_grace = family::in_prune_grace(obj);
    let mut links = Links {
        children: family::known_children(&resources, &asset_id),
        awaiting: Vec::new(),
        parent,
    };
    sort(ctx, &resources, &asset_id, &mut links, in_grace, None);
    let uid = obj.metadata.uid.as_deref().unwrap_or_default();
    // What status says is remembered like something read: later passes start from it too.
    ctx.deletions
        .claim_confirmed(uid, &asset_id, Instant::now());
    ctx.deletions.set_links(uid, &asset_id, Some(links.clone()));
    Some(known(asset_id, links, 0))
}

/// A deletion waiting for children that detach themselves looks at the watch cache, not at
/// SiteWise, on each poll: it starts from the links it knows, as long as its claim is fresh.
pub fn from_memory<S>(
    ctx: &Context<S>,
    uid: &str,
    before: &SiteWiseAssetStatus,
    in_grace: bool,
) -> Option<Observation> {
    let deletion = before.deletion.as_ref()?;
    if deletion.phase != DeletionPhase::DisassociatingChildren {
        return None;
    }
    let asset_id = before.asset_id.clone()?;
    let mut links = ctx.deletions.links(uid, &asset_id)?;
    if links.awaiting.is_empty() || !ctx.deletions.claim_is_fresh(uid, &asset_id, Instant::now()) {
        return None;
    }
    let waiting = ctx.deletions.waited_since(uid, &asset_id);
    sort(
        ctx,
        &ctx.resources.all(),
        &asset_id,
        &mut links,
        in_grace,
        waiting,
    );
    Some(known(asset_id, links, deletion.delete_round))
}

/// Sorts `links`' children with the watch cache (`resources`, as it is now) and what this
/// process removed.
fn sort<S>(
    ctx: &Context<S>,
    resources: &[Arc<SiteWiseAsset>],
    asset_id: &str,
    links: &mut Links,
    in_grace: bool,
    waiting: Option<Instant>,
) {
    let now = Instant::now();
    let removed_here = |c: &str| ctx.deletions.was_link_removed(c, now);
    family::sort_children(
        resources,
        asset_id,
        links,
        &removed_here,
        in_grace,
        waiting,
        now,
    );
}

fn known(asset_id: String, links: Links, delete_round: u32) -> Observation {
    Observation::Present {
        asset_id,
        state: AssetState::Active,
        links: Some(links),
        standing: Standing {
            claim: Some(plan::ClaimState::Ours),
            may_claim: true,
            delete_round,
            ..Standing::default()
        },
    }
}

/// DescribeAsset (404 means gone), with what status says about the resource's standing.
pub async fn from_sitewise<S: SiteWise>(
    ctx: &Context<S>,
    reference: &str,
    before: &SiteWiseAssetStatus,
) -> Result<(Observation, Option<AssetDescription>)> {
    let ownership = before.ownership;
    let deletion = before.deletion.clone().unwrap_or_default();
    match ctx.sitewise.describe_asset(reference).await {
        Ok(description) => Ok((
            Observation::Present {
                asset_id: description.id.clone(),
                state: description.state.clone(),
                links: None,
                standing: Standing {
                    claim: None,
                    may_claim: matches!(ownership, Some(Ownership::Created | Ownership::Adopted))
                        || (ownership.is_none() && before.asset_id.is_some()),
                    recorded_not_owned: ownership == Some(Ownership::NotOwned),
                    // DeleteRequested is written before the call: whether SiteWise took it is
                    // unknown, and treating a FAILED asset as a failed deletion is safe either
                    // way (a new round uses a new token the first time).
                    delete_accepted: matches!(
                        deletion.phase,
                        DeletionPhase::DeleteRequested | DeletionPhase::AwaitingDeletion
                    ),
                    delete_round: deletion.delete_round,
                },
            },
            Some(description),
        )),
        Err(err) if err.kind == ErrorKind::NotFound => Ok((Observation::Gone, None)),
        Err(err) => Err(err.into()),
    }
}

pub fn described<'a>(
    description: &'a Option<AssetDescription>,
    reference: &str,
) -> Result<&'a AssetDescription> {
    description.as_ref().ok_or_else(|| Error::ObserveAgain {
        asset_id: reference.to_string(),
        detail: "the asset was not described".into(),
    })
}

/// Takes what earlier passes of this deletion learned: the links (their children sorted again
/// with the cache as it is now), and a fresh claim.
pub fn recall<S>(ctx: &Context<S>, uid: &str, in_grace: bool, observation: &mut Observation) {
    let Observation::Present {
        asset_id,
        links,
        standing,
        ..
    } = observation
    else {
        return;
    };
    if links.is_none() {
        *links = ctx.deletions.links(uid, asset_id);
        if let Some(links) = links.as_mut() {
            let waiting = ctx.deletions.waited_since(uid, asset_id);
            sort(
                ctx,
                &ctx.resources.all(),
                asset_id,
                links,
                in_grace,
                waiting,
            );
        }
    }
    if standing.claim.is_none() && ctx.deletions.claim_is_fresh(uid, asset_id, Instant::now()) {
        standing.claim = Some(plan::ClaimState::Ours);
    }
}

/// Links just read from SiteWise, their children sorted with the cache.
pub fn set_read_links<S>(
    ctx: &Context<S>,
    uid: &str,
    in_grace: bool,
    observation: &mut Observation,
    mut new_links: Links,
) {
    if let Observation::Present {
        asset_id, links, ..
    } = observation
    {
        let waiting = ctx.deletions.waited_since(uid, asset_id);
        sort(
            ctx,
            &ctx.resources.all(),
            asset_id,
            &mut new_links,
            in_grace,
            waiting,
        );
        *links = Some(new_links);
    }
    remember(ctx, uid, observation);
}

pub fn remember<S>(ctx: &Context<S>, uid: &str, observation: &Observation) {
    if let Observation::Present {
        asset_id, links, ..
    } = observation
    {
        ctx.deletions.set_links(uid, asset_id, links.clone());
    }
}

pub fn remember_nothing<S>(ctx: &Context<S>, uid: &str, observation: &Observation) {
    if let Observation::Present { asset_id, .. } = observation {
        ctx.deletions.set_links(uid, asset_id, None);
    }
}

pub fn asset_id_of(observation: &Observation) -> String {
    match observation {
        Observation::Present { asset_id, .. } => asset_id.clone(),
        Observation::Gone => String::new(),
    }
}

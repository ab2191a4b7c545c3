//! The pure function from the deletion policy, the resource's claim on the asset and what
//! SiteWise reports to the next deletion step. `cleanup` observes, asks [`next_step`], acts,
//! records the effect with [`Observation::record`] and asks again.

use crate::crd::{ChildPolicy, DeletionPhase, DeletionPolicy};
use crate::sitewise::AssetState;

/// A child linked under one of the asset's hierarchies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildLink {
    pub hierarchy_id: String,
    pub child_id: String,
}

/// The asset's parent, as far as it could be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParentLink {
    /// The parent and the hierarchy of the parent that lists the asset.
    Linked {
        parent_id: String,
        hierarchy_id: String,
    },
    /// `ListAssociatedAssets(PARENT)` named a parent, but none of its hierarchies lists the asset
    /// any more (the link changed between the two reads).
    Unresolved { parent_id: String },
}

/// The asset's links: read with `ListAssociatedAssets`, or known from status and the watch
/// cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links {
    /// Children this deletion disassociates.
    pub children: Vec<ChildLink>,
    /// Children whose own resources are being deleted and detach themselves: waited for, not
    /// raced (a prune removes each link once, from the child's side).
    pub awaiting: Vec<ChildLink>,
    pub parent: Option<ParentLink>,
}

/// What the resource's spec asks of its deletion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub asset: DeletionPolicy,
    pub children: ChildPolicy,
}

impl From<DeletionPolicy> for Policy {
    fn from(asset: DeletionPolicy) -> Self {
        Self {
            asset,
            children: ChildPolicy::Detach,
        }
    }
}

/// Deletions SiteWise may accept and then fail before the operator gives up and asks a person.
pub const MAX_DELETE_ROUNDS: u32 = 3;

/// Who claims the asset, read from its ownership tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimState {
    /// This resource's claim.
    Ours,
    /// No claim at all.
    Unclaimed,
    /// Another resource's claim (`holder` names it for people).
    Other { holder: String },
}

/// What the resource and its status say about its right to delete the asset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    /// The asset's claim, `None` until the tags were read.
    pub claim: Option<ClaimState>,
    /// Whether the resource may claim an unclaimed asset now: it created or adopted the asset,
    /// or an earlier release observed it (adopted before claims existed).
    pub may_claim: bool,
    /// Status records that another resource claims the asset: never touched again.
    pub recorded_not_owned: bool,
    /// SiteWise accepted DeleteAsset earlier (status was awaiting the deletion).
    pub delete_accepted: bool,
    /// Deletions accepted and then failed so far.
    pub delete_round: u32,
}

/// What is known about the asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// SiteWise answers 404: the asset does not exist (any more).
    Gone,
    Present {
        /// The asset's UUID.
        asset_id: String,
        state: AssetState,
        /// `None` until the links have been read.
        links: Option<Links>,
        standing: Standing,
    },
}

/// The next thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Remove the finalizer: the asset is retained by policy.
    ReleaseRetained,
    /// Remove the finalizer without touching SiteWise: a person asked for it (force-orphan).
    ReleaseOrphaned,
    /// Remove the finalizer: the asset is gone from SiteWise.
    ReleaseDeleted,
    /// Remove the finalizer without touching SiteWise: another resource claims the asset, or
    /// this one never adopted it.
    ReleaseNotOwned { holder: Option<String> },
    /// Read the asset's ownership tags.
    CheckClaim,
    /// Tag the asset with this resource's claim before changing it.
    Claim,
    /// SiteWise accepted DeleteAsset and then reported FAILED: start a new round (new token).
    RetryFailedDeletion,
    /// Deletion failed [`MAX_DELETE_ROUNDS`] times: a person must look.
    GiveUp { rounds: u32 },
    /// The asset is CREATING or UPDATING: poll until it is ACTIVE or FAILED.
    WaitUntilStable(AssetState),
    /// Read the children of every hierarchy and the parent link.
    ReadLinks,
    /// `DisassociateAssets(asset, hierarchy, child)`.
    DisassociateChild(ChildLink),
    /// `DisassociateAssets(parent, hierarchy, asset)`.
    DetachFromParent {
        parent_id: String,
        hierarchy_id: String,
    },
    /// The parent link changed while it was read: observe again after a short delay.
    RereadLinks { parent_id: String },
    /// `childPolicy: Block` and these children are linked: nothing is changed; look again
    /// later.
    BlockedByChildren { children: Vec<ChildLink> },
    /// Children are detaching themselves (their resources are being deleted too): wait,
    /// without calling SiteWise, until they are gone.
    AwaitChildren { remaining: u32 },
    /// `DeleteAsset(asset)`.
    DeleteAsset { asset_id: String },
    /// SiteWise reports DELETING: poll until DescribeAsset answers 404.
    AwaitGone { asset_id: String },
}

impl Step {
    /// The status phase shown while this step runs.
    pub fn phase(&self) -> DeletionPhase {
        match self {
            Self::ReleaseRetained
            | Self::ReleaseOrphaned
            | Self::ReleaseDeleted
            | Self::ReleaseNotOwned { .. } => DeletionPhase::Done,
            Self::WaitUntilStable(_) => DeletionPhase::WaitingForStableState,
            Self::BlockedByChildren { .. } => DeletionPhase::Blocked,
            Self::ReadLinks
            | Self::RereadLinks { .. }
            | Self::CheckClaim
            | Self::Claim
            | Self::RetryFailedDeletion
            | Self::GiveUp { .. } => DeletionPhase::Observing,
            Self::DisassociateChild(_) | Self::AwaitChildren { .. } => {
                DeletionPhase::DisassociatingChildren
            }
            Self::DetachFromParent { .. } => DeletionPhase::DetachingFromParent,
            Self::DeleteAsset { .. } => DeletionPhase::DeleteRequested,
            Self::AwaitGone { .. } => DeletionPhase::AwaitingDeletion,
        }
    }
}

/// The next deletion step for `policy` given `observation`.
///
/// Order: retained resources are released (their claim removed); a resource that does not own
/// the asset is released without touching it; a missing asset counts as deleted; DELETING is
/// awaited; CREATING/UPDATING assets are waited for (SiteWise refuses changes to them); the
/// claim is checked (and made, when the resource may) before anything changes; a deletion that
/// SiteWise failed is retried with a new token a bounded number of times; then every child is
/// disassociated (except those whose own resources are detaching them), the asset is detached
/// from its parent, the children detaching themselves are waited for, and only then is it
/// deleted. FAILED assets are deleted like ACTIVE ones. With `childPolicy: Block`, linked
/// children (other than those detaching themselves) stop the deletion before any change.
pub fn next_step(policy: impl Into<Policy>, observation: &Observation) -> Step {
    let policy = policy.into();
    if policy.asset == DeletionPolicy::Retain {
        return Step::ReleaseRetained;
    }
    let Observation::Present {
        asset_id,
        state,
        links,
        standing,
    } = observation
    else {
        return Step::ReleaseDeleted;
    };
    if standing.recorded_not_owned {
        return Step::ReleaseNotOwned { holder: None };
    }
    if *state == AssetState::Deleting {
        return Step::AwaitGone {
            asset_id: asset_id.clone(),
        };
    }
    if !state.is_stable() {
        return Step::WaitUntilStable(state.clone());
    }
    match &standing.claim {
        None => return Step::CheckClaim,
        Some(ClaimState::Other { holder }) => {
            return Step::ReleaseNotOwned {
                holder: Some(holder.clone()),
            };
        }
        Some(ClaimState::Unclaimed) if !standing.may_claim => {
            return Step::ReleaseNotOwned { holder: None };
        }
        Some(ClaimState::Unclaimed) => return Step::Claim,
        Some(ClaimState::Ours) => {}
    }
    if *state == AssetState::Failed && standing.delete_accepted {
        return if standing.delete_round + 1 >= MAX_DELETE_ROUNDS {
            Step::GiveUp {
                rounds: standing.delete_round + 1,
            }
        } else {
            Step::RetryFailedDeletion
        };
    }
    let Some(links) = links else {
        return Step::ReadLinks;
    };
    if policy.children == ChildPolicy::Block && !links.children.is_empty() {
        return Step::BlockedByChildren {
            children: links.children.clone(),
        };
    }
    if let Some(child) = links.children.first() {
        return Step::DisassociateChild(child.clone());
    }
    match &links.parent {
        Some(ParentLink::Linked {
            parent_id,
            hierarchy_id,
        }) => Step::DetachFromParent {
            parent_id: parent_id.clone(),
            hierarchy_id: hierarchy_id.clone(),
        },
        Some(ParentLink::Unresolved { parent_id }) => Step::RereadLinks {
            parent_id: parent_id.clone(),
        },
        None if !links.awaiting.is_empty() => Step::AwaitChildren {
            remaining: count(&links.awaiting),
        },
        None => Step::DeleteAsset {
            asset_id: asset_id.clone(),
        },
    }
}

fn count(links: &[ChildLink]) -> u32 {
    u32::try_from(links.len()).unwrap_or(u32::MAX)
}

impl Observation {
    /// Applies the effect of a step that SiteWise accepted, so the next decision needs no
    /// new read.
    pub fn record(&mut self, step: &Step, reported_state: Option<AssetState>) {
        let Observation::Present {
            state,
            links,
            standing,
            ..
        } = self
        else {
            return;
        };
        match step {
            Step::Claim => standing.claim = Some(ClaimState::Ours),
            Step::RetryFailedDeletion => {
                standing.delete_accepted = false;
                standing.delete_round += 1;
            }
            Step::DisassociateChild(done) => {
                if let Some(links) = links {
                    links.children.retain(|c| c != done);
                }
            }
            Step::DetachFromParent { .. } => {
                if let Some(links) = links {
                    links.parent = None;
                }
            }
            Step::DeleteAsset { .. } => {
                *state = reported_state.unwrap_or(AssetState::Deleting);
            }
            _ => {}
        }
    }

    pub fn children_remaining(&self) -> u32 {
        match self {
            Observation::Present {
                links: Some(links), ..
            } => count(&links.children).saturating_add(count(&links.awaiting)),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests;

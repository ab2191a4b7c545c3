//! The pure function from the deletion policy, the resource's claim on the asset and what
//! SiteWise reports to the next deletion step. `cleanup` observes, asks [`next_step`], acts,
//! records the effect with [`Observation::record`] and asks again.

use crate::crd::{DeletionPhase, DeletionPolicy};
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

/// The asset's links, read with `ListAssociatedAssets`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links {
    pub children: Vec<ChildLink>,
    pub parent: Option<ParentLink>,
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
            Self::ReadLinks
            | Self::RereadLinks { .. }
            | Self::CheckClaim
            | Self::Claim
            | Self::RetryFailedDeletion
            | Self::GiveUp { .. } => DeletionPhase::Observing,
            Self::DisassociateChild(_) => DeletionPhase::DisassociatingChildren,
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
/// disassociated, the asset is detached from its parent, and only then is it deleted. FAILED
/// assets are deleted like ACTIVE ones.
pub fn next_step(policy: DeletionPolicy, observation: &Observation) -> Step {
    if policy == DeletionPolicy::Retain {
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
        None => Step::DeleteAsset {
            asset_id: asset_id.clone(),
        },
    }
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
            } => u32::try_from(links.children.len()).unwrap_or(u32::MAX),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(state: AssetState, links: Option<Links>) -> Observation {
        with_standing(
            state,
            links,
            Standing {
                claim: Some(ClaimState::Ours),
                may_claim: true,
                ..Standing::default()
            },
        )
    }

    fn with_standing(state: AssetState, links: Option<Links>, standing: Standing) -> Observation {
        Observation::Present {
            asset_id: "asset".into(),
            state,
            links,
            standing,
        }
    }

    fn child(h: &str, c: &str) -> ChildLink {
        ChildLink {
            hierarchy_id: h.into(),
            child_id: c.into(),
        }
    }

    fn linked_parent() -> Option<ParentLink> {
        Some(ParentLink::Linked {
            parent_id: "parent".into(),
            hierarchy_id: "h-parent".into(),
        })
    }

    #[test]
    fn retain_releases_without_looking_at_sitewise() {
        for obs in [
            Observation::Gone,
            present(AssetState::Active, None),
            present(AssetState::Deleting, None),
            present(AssetState::Creating, None),
        ] {
            assert_eq!(
                next_step(DeletionPolicy::Retain, &obs),
                Step::ReleaseRetained
            );
        }
    }

    #[test]
    fn a_missing_asset_counts_as_deleted() {
        assert_eq!(
            next_step(DeletionPolicy::Delete, &Observation::Gone),
            Step::ReleaseDeleted
        );
    }

    #[test]
    fn deleting_is_awaited_even_when_links_are_unknown() {
        assert_eq!(
            next_step(DeletionPolicy::Delete, &present(AssetState::Deleting, None)),
            Step::AwaitGone {
                asset_id: "asset".into()
            }
        );
    }

    #[test]
    fn transitional_states_are_waited_for() {
        for state in [
            AssetState::Creating,
            AssetState::Updating,
            AssetState::Other("NEW_STATE".into()),
        ] {
            assert_eq!(
                next_step(DeletionPolicy::Delete, &present(state.clone(), None)),
                Step::WaitUntilStable(state)
            );
        }
    }

    #[test]
    fn links_are_read_before_any_change() {
        for state in [AssetState::Active, AssetState::Failed] {
            assert_eq!(
                next_step(DeletionPolicy::Delete, &present(state, None)),
                Step::ReadLinks
            );
        }
    }

    #[test]
    fn children_go_first_then_the_parent_then_the_asset() {
        let mut obs = present(
            AssetState::Active,
            Some(Links {
                children: vec![child("h1", "c1"), child("h2", "c2")],
                parent: linked_parent(),
            }),
        );
        let mut steps = Vec::new();
        loop {
            let step = next_step(DeletionPolicy::Delete, &obs);
            steps.push(step.clone());
            if matches!(step, Step::AwaitGone { .. }) {
                break;
            }
            obs.record(&step, None);
        }
        assert_eq!(
            steps,
            vec![
                Step::DisassociateChild(child("h1", "c1")),
                Step::DisassociateChild(child("h2", "c2")),
                Step::DetachFromParent {
                    parent_id: "parent".into(),
                    hierarchy_id: "h-parent".into()
                },
                Step::DeleteAsset {
                    asset_id: "asset".into()
                },
                Step::AwaitGone {
                    asset_id: "asset".into()
                },
            ]
        );
    }

    #[test]
    fn a_failed_asset_is_deleted() {
        let obs = present(AssetState::Failed, Some(Links::default()));
        assert_eq!(
            next_step(DeletionPolicy::Delete, &obs),
            Step::DeleteAsset {
                asset_id: "asset".into()
            }
        );
    }

    #[test]
    fn an_unresolved_parent_is_read_again_not_deleted_over() {
        let obs = present(
            AssetState::Active,
            Some(Links {
                children: vec![],
                parent: Some(ParentLink::Unresolved {
                    parent_id: "parent".into(),
                }),
            }),
        );
        assert_eq!(
            next_step(DeletionPolicy::Delete, &obs),
            Step::RereadLinks {
                parent_id: "parent".into()
            }
        );
    }

    #[test]
    fn delete_records_the_reported_state() {
        let mut obs = present(AssetState::Active, Some(Links::default()));
        let step = next_step(DeletionPolicy::Delete, &obs);
        obs.record(&step, Some(AssetState::Deleting));
        assert_eq!(obs, present(AssetState::Deleting, Some(Links::default())));
        assert_eq!(step.phase(), DeletionPhase::DeleteRequested);
    }

    #[test]
    fn children_remaining_follows_the_recorded_steps() {
        let mut obs = present(
            AssetState::Active,
            Some(Links {
                children: vec![child("h1", "c1"), child("h1", "c2")],
                parent: None,
            }),
        );
        assert_eq!(obs.children_remaining(), 2);
        obs.record(&Step::DisassociateChild(child("h1", "c1")), None);
        assert_eq!(obs.children_remaining(), 1);
        assert_eq!(Observation::Gone.children_remaining(), 0);
    }

    #[test]
    fn the_claim_is_read_before_anything_changes() {
        let obs = with_standing(AssetState::Active, None, Standing::default());
        assert_eq!(next_step(DeletionPolicy::Delete, &obs), Step::CheckClaim);
        // DELETING needs no claim: nothing is changed while it is awaited.
        let obs = with_standing(AssetState::Deleting, None, Standing::default());
        assert!(matches!(
            next_step(DeletionPolicy::Delete, &obs),
            Step::AwaitGone { .. }
        ));
    }

    #[test]
    fn an_asset_claimed_by_another_resource_is_released_untouched() {
        let other = Standing {
            claim: Some(ClaimState::Other {
                holder: "plant/site-a".into(),
            }),
            may_claim: true,
            ..Standing::default()
        };
        assert_eq!(
            next_step(
                DeletionPolicy::Delete,
                &with_standing(AssetState::Active, Some(Links::default()), other)
            ),
            Step::ReleaseNotOwned {
                holder: Some("plant/site-a".into())
            }
        );
        // Recorded as not owned: released without even reading SiteWise's answer further.
        let recorded = Standing {
            recorded_not_owned: true,
            ..Standing::default()
        };
        for state in [AssetState::Active, AssetState::Deleting, AssetState::Failed] {
            assert_eq!(
                next_step(
                    DeletionPolicy::Delete,
                    &with_standing(state, None, recorded.clone())
                ),
                Step::ReleaseNotOwned { holder: None }
            );
        }
    }

    #[test]
    fn an_unclaimed_asset_is_claimed_only_by_a_resource_that_holds_it() {
        let unclaimed = |may_claim| Standing {
            claim: Some(ClaimState::Unclaimed),
            may_claim,
            ..Standing::default()
        };
        let mut obs = with_standing(AssetState::Active, Some(Links::default()), unclaimed(true));
        let step = next_step(DeletionPolicy::Delete, &obs);
        assert_eq!(step, Step::Claim);
        obs.record(&step, None);
        assert!(matches!(
            next_step(DeletionPolicy::Delete, &obs),
            Step::DeleteAsset { .. }
        ));
        // Never adopted: released without touching the asset.
        let obs = with_standing(AssetState::Active, None, unclaimed(false));
        assert_eq!(
            next_step(DeletionPolicy::Delete, &obs),
            Step::ReleaseNotOwned { holder: None }
        );
    }

    #[test]
    fn a_deletion_sitewise_failed_is_retried_in_new_rounds_then_given_up() {
        let failed = |round| Standing {
            claim: Some(ClaimState::Ours),
            may_claim: true,
            delete_accepted: true,
            delete_round: round,
            ..Standing::default()
        };
        let mut obs = with_standing(AssetState::Failed, Some(Links::default()), failed(0));
        let step = next_step(DeletionPolicy::Delete, &obs);
        assert_eq!(step, Step::RetryFailedDeletion);
        obs.record(&step, None);
        assert!(matches!(
            next_step(DeletionPolicy::Delete, &obs),
            Step::DeleteAsset { .. }
        ));
        let last = with_standing(AssetState::Failed, None, failed(MAX_DELETE_ROUNDS - 1));
        assert_eq!(
            next_step(DeletionPolicy::Delete, &last),
            Step::GiveUp {
                rounds: MAX_DELETE_ROUNDS
            }
        );
        // FAILED without an accepted deletion (failed at creation) is simply deleted.
        let created_failed = with_standing(
            AssetState::Failed,
            Some(Links::default()),
            Standing {
                delete_accepted: false,
                ..failed(0)
            },
        );
        assert!(matches!(
            next_step(DeletionPolicy::Delete, &created_failed),
            Step::DeleteAsset { .. }
        ));
    }
}

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
            awaiting: vec![],
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
            awaiting: vec![],
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
            awaiting: vec![],
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

#[test]
fn children_detaching_themselves_are_awaited_after_the_parent_link_goes() {
    let mut obs = present(
        AssetState::Active,
        Some(Links {
            children: vec![child("h1", "retained")],
            awaiting: vec![child("h1", "pruned-1"), child("h1", "pruned-2")],
            parent: linked_parent(),
        }),
    );
    assert_eq!(obs.children_remaining(), 3);
    let first = next_step(DeletionPolicy::Delete, &obs);
    assert_eq!(first, Step::DisassociateChild(child("h1", "retained")));
    obs.record(&first, None);
    let second = next_step(DeletionPolicy::Delete, &obs);
    assert!(
        matches!(second, Step::DetachFromParent { .. }),
        "{second:?}"
    );
    obs.record(&second, None);
    // Never a call for a child that removes the link itself, and no DeleteAsset before it has.
    assert_eq!(
        next_step(DeletionPolicy::Delete, &obs),
        Step::AwaitChildren { remaining: 2 }
    );
    assert_eq!(
        Step::AwaitChildren { remaining: 2 }.phase(),
        DeletionPhase::DisassociatingChildren
    );
    let Observation::Present {
        links: Some(links), ..
    } = &mut obs
    else {
        unreachable!("present")
    };
    links.awaiting.clear();
    assert!(matches!(
        next_step(DeletionPolicy::Delete, &obs),
        Step::DeleteAsset { .. }
    ));
}

#[test]
fn block_stops_before_any_change_while_children_are_linked() {
    use crate::crd::ChildPolicy;
    let policy = |asset, children| Policy { asset, children };
    let block = policy(DeletionPolicy::Delete, ChildPolicy::Block);
    let child = ChildLink {
        hierarchy_id: "h".into(),
        child_id: "c".into(),
    };
    let linked = present(
        AssetState::Active,
        Some(links_of(vec![child.clone()], vec![])),
    );
    assert_eq!(
        next_step(block, &linked),
        Step::BlockedByChildren {
            children: vec![child.clone()]
        }
    );
    assert_eq!(
        Step::BlockedByChildren { children: vec![] }.phase(),
        DeletionPhase::Blocked
    );
    // Block decides on links read from SiteWise.
    assert_eq!(
        next_step(block, &present(AssetState::Active, None)),
        Step::ReadLinks
    );
    // Children detaching themselves do not block: the parent link goes, then they are awaited.
    let detaching = present(
        AssetState::Active,
        Some(links_of(vec![], vec![child.clone()])),
    );
    assert!(matches!(
        next_step(block, &detaching),
        Step::DetachFromParent { .. }
    ));
    // Detach (the default) disassociates the same child; Retain is never blocked.
    assert_eq!(
        next_step(DeletionPolicy::Delete, &linked),
        Step::DisassociateChild(child)
    );
    assert_eq!(
        next_step(policy(DeletionPolicy::Retain, ChildPolicy::Block), &linked),
        Step::ReleaseRetained
    );
}

fn links_of(children: Vec<ChildLink>, awaiting: Vec<ChildLink>) -> Links {
    Links {
        children,
        awaiting,
        parent: Some(ParentLink::Linked {
            parent_id: "p".into(),
            hierarchy_id: "ph".into(),
        }),
    }
}

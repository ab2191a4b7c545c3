use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::crd::{
    Condition, DeletionProgress, Ownership, ParentLinkStatus, SiteWiseAssetSpec,
    SiteWiseAssetStatus,
};

const PARENT: &str = "11111111-1111-1111-1111-111111111111";

/// A resource owning `asset`, linked to PARENT, deleted or not.
fn child(asset: &str, deleting: bool) -> SiteWiseAsset {
    let mut obj = SiteWiseAsset::new(asset, SiteWiseAssetSpec::default());
    obj.metadata.namespace = Some("plant".into());
    if deleting {
        obj.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
    }
    obj.status = Some(SiteWiseAssetStatus {
        asset_id: Some(asset.into()),
        ownership: Some(Ownership::Created),
        parent_link: Some(ParentLinkStatus {
            parent_id: PARENT.into(),
            hierarchy_id: "h".into(),
            associated: true,
            round: 0,
        }),
        ..SiteWiseAssetStatus::default()
    });
    obj
}

fn link(child_id: &str) -> ChildLink {
    ChildLink {
        hierarchy_id: "h".into(),
        child_id: child_id.into(),
    }
}

fn cache(objs: Vec<SiteWiseAsset>) -> Vec<Arc<SiteWiseAsset>> {
    objs.into_iter().map(Arc::new).collect()
}

fn with_status(mut obj: SiteWiseAsset, f: impl FnOnce(&mut SiteWiseAssetStatus)) -> SiteWiseAsset {
    if let Some(status) = obj.status.as_mut() {
        f(status);
    }
    obj
}

#[test]
fn a_child_being_deleted_detaches_itself_and_a_live_one_is_detached_by_the_parent() {
    let resources = cache(vec![child("pruned", true), child("live", false)]);
    assert_eq!(
        fate(owner_of(&resources, "pruned"), PARENT),
        ChildFate::DetachesItself
    );
    assert_eq!(fate(owner_of(&resources, "live"), PARENT), ChildFate::Live);
    // No resource: nobody else removes the link.
    assert_eq!(
        fate(owner_of(&resources, "unmanaged"), PARENT),
        ChildFate::ParentDetaches
    );
}

#[test]
fn children_that_will_not_remove_the_link_are_left_to_the_parent() {
    let mut retained = child("retained", true);
    retained.spec.deletion_policy = DeletionPolicy::Retain;
    let mut orphaned = child("orphaned", true);
    orphaned.metadata.annotations = Some(
        [(
            crate::crd::FORCE_ORPHAN_ANNOTATION.to_string(),
            "stuck".to_string(),
        )]
        .into(),
    );
    let not_owned = with_status(child("not-owned", true), |s| {
        s.ownership = Some(Ownership::NotOwned)
    });
    let terminal = with_status(child("terminal", true), |s| {
        s.conditions.push(Condition {
            type_: "Terminal".into(),
            status: "True".into(),
            reason: "PermanentError".into(),
            message: "access denied".into(),
            last_transition_time: String::new(),
            observed_generation: None,
        })
    });
    let elsewhere = with_status(child("elsewhere", true), |s| {
        if let Some(l) = s.parent_link.as_mut() {
            l.parent_id = "another-parent".into();
        }
    });
    let resources = cache(vec![retained, orphaned, not_owned, terminal, elsewhere]);
    for id in ["retained", "orphaned", "not-owned", "terminal", "elsewhere"] {
        assert_eq!(
            fate(owner_of(&resources, id), PARENT),
            ChildFate::ParentDetaches,
            "{id}"
        );
    }
}

#[test]
fn a_child_past_detaching_counts_as_detached() {
    let resources = cache(vec![with_status(child("gone", true), |s| {
        s.deletion = Some(Box::new(DeletionProgress {
            phase: DeletionPhase::DeleteRequested,
            ..DeletionProgress::default()
        }))
    })]);
    assert_eq!(
        fate(owner_of(&resources, "gone"), PARENT),
        ChildFate::Detached
    );
}

#[test]
fn known_children_are_the_owned_resources_linked_to_the_parent() {
    let unlinked = with_status(child("unlinked", false), |s| {
        if let Some(l) = s.parent_link.as_mut() {
            l.associated = false;
        }
    });
    let not_owned = with_status(child("not-owned", false), |s| {
        s.ownership = Some(Ownership::NotOwned)
    });
    let resources = cache(vec![
        child("b", true),
        child("a", false),
        unlinked,
        not_owned,
    ]);
    assert_eq!(
        known_children(&resources, PARENT),
        vec![link("a"), link("b")]
    );
    assert!(known_children(&resources, "someone-else").is_empty());
}

#[test]
fn sorting_waits_for_self_detaching_children_until_the_limit() {
    let detached = with_status(child("detached", true), |s| {
        s.deletion = Some(Box::new(DeletionProgress {
            phase: DeletionPhase::AwaitingDeletion,
            ..DeletionProgress::default()
        }))
    });
    // Marked a minute ago: the prune is no longer marking (see the next test).
    let resources: Vec<_> = [child("pruned", true), child("live", false), detached]
        .into_iter()
        .map(|mut r| {
            if r.metadata.deletion_timestamp.is_some() {
                r.metadata.deletion_timestamp = Some(Time(
                    jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60),
                ));
            }
            Arc::new(r)
        })
        .collect();
    let all = || Links {
        children: vec![link("pruned"), link("live"), link("detached")],
        awaiting: Vec::new(),
        parent: None,
    };
    let now = Instant::now();
    let mut links = all();
    sort_children(&resources, PARENT, &mut links, &|_| false, false, None, now);
    assert_eq!(links.children, vec![link("live")]);
    assert_eq!(links.awaiting, vec![link("pruned")]);
    // Waited too long: the parent removes the links itself.
    let mut late = all();
    let since = now.checked_sub(CHILD_WAIT_LIMIT).unwrap_or(now);
    sort_children(
        &resources,
        PARENT,
        &mut late,
        &|_| false,
        false,
        Some(since),
        now,
    );
    // A link this process saw removed is dropped whatever the cache says.
    let mut here = all();
    sort_children(
        &resources,
        PARENT,
        &mut here,
        &|c| c == "pruned",
        false,
        None,
        now,
    );
    // Just after the parent's deletion started, a live child may be joining the prune.
    let mut young = all();
    sort_children(&resources, PARENT, &mut young, &|_| false, true, None, now);
    assert_eq!(young.awaiting, vec![link("pruned"), link("live")]);
    assert!(here.awaiting.is_empty());
    assert_eq!(late.children, vec![link("pruned"), link("live")]);
    assert!(late.awaiting.is_empty());
}

#[test]
fn the_prune_grace_follows_the_parents_deletion_time() {
    let mut parent = child("parent", true);
    assert!(in_prune_grace(&parent));
    parent.metadata.deletion_timestamp = Some(Time(
        jiff::Timestamp::now() - jiff::SignedDuration::from_secs(11),
    ));
    assert!(!in_prune_grace(&parent));
    parent.metadata.deletion_timestamp = None;
    assert!(!in_prune_grace(&parent));
}

#[test]
fn a_live_child_is_waited_for_while_its_namespace_is_still_being_marked() {
    let ago = |secs| {
        Some(Time(
            jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs),
        ))
    };
    let mut marked = child("marked", true);
    let live = child("live", false);
    let now = Instant::now();
    let sort = |resources: &[Arc<SiteWiseAsset>], waiting_since| {
        let mut links = Links {
            children: vec![link("live")],
            awaiting: Vec::new(),
            parent: None,
        };
        sort_children(
            resources,
            PARENT,
            &mut links,
            &|_| false,
            false,
            waiting_since,
            now,
        );
        links
    };
    // Past the parent's grace, but the prune marked a resource of the child's namespace
    // a second ago: it is still marking, and the child is waited for.
    marked.metadata.deletion_timestamp = ago(1);
    let resources = cache(vec![marked.clone(), live.clone()]);
    assert!(still_marking(
        &resources,
        Some("plant"),
        jiff::Timestamp::now()
    ));
    assert_eq!(sort(&resources, None).awaiting, vec![link("live")]);
    // Not for ever: after the wait limit the parent detaches it.
    let long_ago = now.checked_sub(CHILD_WAIT_LIMIT);
    assert_eq!(sort(&resources, long_ago).children, vec![link("live")]);
    // A prune of another namespace says nothing about this one.
    let mut elsewhere = marked.clone();
    elsewhere.metadata.namespace = Some("other".into());
    let resources = cache(vec![elsewhere, live.clone()]);
    assert_eq!(sort(&resources, None).children, vec![link("live")]);
    // The last mark is older than the gap: the prune is over and the child stays.
    marked.metadata.deletion_timestamp = ago(30);
    let resources = cache(vec![marked, live]);
    assert!(!still_marking(
        &resources,
        Some("plant"),
        jiff::Timestamp::now()
    ));
    assert_eq!(sort(&resources, None).children, vec![link("live")]);
}

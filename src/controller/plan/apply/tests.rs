use super::*;
use crate::sitewise::AssetState;

fn found(id: &str) -> Lookup {
    Lookup::Found {
        asset_id: id.into(),
    }
}

#[test]
fn create_mode_creates_only_when_nothing_was_ever_held() {
    assert_eq!(
        identity(true, None, &Lookup::NotFound, None),
        Identity::Create
    );
    assert_eq!(
        identity(true, None, &found("a1"), None),
        Identity::Holds {
            asset_id: "a1".into()
        }
    );
    // Created, then deleted by someone else: never created again behind the user's back.
    assert_eq!(
        identity(true, Some("a1"), &Lookup::NotFound, None),
        Identity::DeletedOutside {
            asset_id: "a1".into()
        }
    );
}

#[test]
fn adopt_mode_pins_the_first_asset_and_never_follows_a_reused_external_id() {
    assert_eq!(
        identity(false, None, &Lookup::NotFound, None),
        Identity::Missing
    );
    assert_eq!(
        identity(false, Some("a1"), &found("a1"), None),
        Identity::Holds {
            asset_id: "a1".into()
        }
    );
    assert_eq!(
        identity(false, Some("a1"), &Lookup::NotFound, Some(&found("a2"))),
        Identity::Replaced {
            pinned: "a1".into(),
            now: "a2".into()
        }
    );
    assert_eq!(
        identity(
            false,
            Some("a1"),
            &Lookup::NotFound,
            Some(&Lookup::NotFound)
        ),
        Identity::DeletedOutside {
            asset_id: "a1".into()
        }
    );
}

#[test]
fn claims_are_kept_made_taken_over_from_gone_holders_or_respected() {
    assert_eq!(claim(&ClaimState::Ours, false), ClaimStep::Keep);
    assert_eq!(claim(&ClaimState::Unclaimed, false), ClaimStep::Claim);
    let other = ClaimState::Other {
        holder: "plant/site".into(),
    };
    assert_eq!(
        claim(&other, false),
        ClaimStep::NotOwned {
            holder: "plant/site".into()
        }
    );
    assert_eq!(
        claim(&other, true),
        ClaimStep::TakeOver {
            previous: "plant/site".into()
        }
    );
    assert_eq!(ownership(true, &ClaimStep::Keep), Ownership::Created);
    assert_eq!(ownership(false, &ClaimStep::Claim), Ownership::Adopted);
    assert_eq!(
        ownership(
            false,
            &ClaimStep::NotOwned {
                holder: String::new()
            }
        ),
        Ownership::NotOwned
    );
}

fn asset() -> AssetDescription {
    AssetDescription {
        id: "a1".into(),
        name: "press".into(),
        description: Some("old".into()),
        state: AssetState::Active,
        properties: vec![Property {
            id: "p1".into(),
            external_id: Some("temp".into()),
            name: "Temperature".into(),
            alias: Some("/old".into()),
            unit: Some("C".into()),
            notification_state: None,
        }],
        ..AssetDescription::default()
    }
}

#[test]
fn unset_fields_are_not_managed() {
    let tags = BTreeMap::from([("team".to_string(), "ops".to_string())]);
    assert_eq!(
        changes(&Desired::default(), &asset(), Some(&tags), &[]),
        Ok(vec![])
    );
}

#[test]
fn a_rename_keeps_the_description_it_does_not_manage() {
    let desired = Desired {
        name: Some("press-7".into()),
        ..Desired::default()
    };
    let got = changes(&desired, &asset(), None, &[]).expect("satisfiable");
    assert_eq!(
        got,
        vec![Change::Asset {
            update: AssetUpdate {
                name: "press-7".into(),
                description: Some("old".into()),
                external_id: None
            },
            what: "name \"press\" -> \"press-7\"".into()
        }]
    );
}

#[test]
fn property_updates_carry_every_setting_and_only_declared_ones_change() {
    let desired = Desired {
        properties: vec![PropertySpec {
            property: "externalId:temp".into(),
            alias: Some("/lyon/press/temp".into()),
            unit: None,
            notification_state: Some(NotificationState::Enabled),
        }],
        ..Desired::default()
    };
    let got = changes(&desired, &asset(), None, &[]).expect("satisfiable");
    let [
        Change::Property {
            property_id,
            settings,
            ..
        },
    ] = got.as_slice()
    else {
        panic!("one property change expected: {got:?}");
    };
    assert_eq!(property_id, "p1");
    assert_eq!(
        *settings,
        PropertySettings {
            alias: Some("/lyon/press/temp".into()),
            unit: Some("C".into()),
            notification_state: Some("ENABLED".into()),
        }
    );
    // By name too; an unknown property is a declaration the asset cannot satisfy.
    assert!(find_property(&asset().properties, "Temperature").is_some());
    let unknown = Desired {
        properties: vec![PropertySpec {
            property: "Pressure".into(),
            ..PropertySpec::default()
        }],
        ..Desired::default()
    };
    assert!(matches!(
        changes(&unknown, &asset(), None, &[]),
        Err(Unsatisfiable::UnknownProperty { .. })
    ));
}

#[test]
fn an_external_id_is_set_once_and_never_changed() {
    let desired = Desired {
        external_id: Some("press-7".into()),
        ..Desired::default()
    };
    let got = changes(&desired, &asset(), None, &[]).expect("satisfiable");
    assert!(
        matches!(&got[..], [Change::Asset { update, .. }] if update.external_id.as_deref() == Some("press-7"))
    );
    let mut with_ext = asset();
    with_ext.external_id = Some("other".into());
    assert!(matches!(
        changes(&desired, &with_ext, None, &[]),
        Err(Unsatisfiable::ExternalIdTaken { .. })
    ));
}

#[test]
fn tags_are_added_corrected_and_removed_only_when_this_resource_applied_them() {
    let desired = Desired {
        tags: BTreeMap::from([
            ("team".into(), "ops".into()),
            ("site".into(), "lyon".into()),
        ]),
        ..Desired::default()
    };
    let tags = BTreeMap::from([
        ("team".to_string(), "dev".to_string()),
        ("old".to_string(), "x".to_string()),
        ("foreign".to_string(), "y".to_string()),
    ]);
    let got = changes(&desired, &asset(), Some(&tags), &["old".into()]).expect("ok");
    assert_eq!(
        got,
        vec![
            Change::Tag(BTreeMap::from([
                ("site".into(), "lyon".into()),
                ("team".into(), "ops".into())
            ])),
            Change::Untag(vec!["old".into()])
        ]
    );
}

fn l(parent: &str, hierarchy: &str) -> Link {
    Link {
        parent_id: parent.into(),
        hierarchy_id: hierarchy.into(),
    }
}

fn rec(parent: &str, hierarchy: &str, associated: bool, round: u32) -> ParentLinkStatus {
    ParentLinkStatus {
        parent_id: parent.into(),
        hierarchy_id: hierarchy.into(),
        associated,
        round,
    }
}

#[test]
fn a_declared_parent_is_linked_and_a_link_in_place_is_left() {
    assert_eq!(
        link(Some(&l("p", "h")), None, None),
        LinkStep::Associate {
            link: l("p", "h"),
            round: 0
        }
    );
    assert_eq!(
        link(Some(&l("p", "h")), Some(&l("p", "h")), None),
        LinkStep::InPlace
    );
    // An attempt not known to have succeeded is retried with its own token.
    assert_eq!(
        link(Some(&l("p", "h")), None, Some(&rec("p", "h", false, 2))),
        LinkStep::Associate {
            link: l("p", "h"),
            round: 2
        }
    );
}

#[test]
fn a_link_removed_by_someone_else_is_made_again_with_a_new_token() {
    assert_eq!(
        link(Some(&l("p", "h")), None, Some(&rec("p", "h", true, 0))),
        LinkStep::Associate {
            link: l("p", "h"),
            round: 1
        }
    );
}

#[test]
fn a_new_parent_moves_the_asset_detach_first() {
    let recorded = rec("p", "h", true, 0);
    assert_eq!(
        link(Some(&l("q", "h2")), Some(&l("p", "h")), Some(&recorded)),
        LinkStep::Detach {
            link: l("p", "h"),
            round: 0
        }
    );
    // Detached: the association under the new parent gets the next round.
    assert_eq!(
        link(Some(&l("q", "h2")), None, Some(&recorded)),
        LinkStep::Associate {
            link: l("q", "h2"),
            round: 1
        }
    );
}

#[test]
fn removing_the_parent_detaches_only_a_link_this_resource_made() {
    let recorded = rec("p", "h", true, 3);
    assert_eq!(
        link(None, Some(&l("p", "h")), Some(&recorded)),
        LinkStep::Detach {
            link: l("p", "h"),
            round: 3
        }
    );
    assert_eq!(link(None, Some(&l("x", "h")), None), LinkStep::Unmanaged);
    assert_eq!(link(None, None, None), LinkStep::Unmanaged);
    assert_eq!(link(None, None, Some(&recorded)), LinkStep::Forget);
}

#[test]
fn hierarchies_resolve_by_id_external_id_or_name() {
    let hs = vec![Hierarchy {
        id: "h1".into(),
        external_id: Some("site-areas".into()),
        name: "Areas".into(),
    }];
    for reference in ["h1", "externalId:site-areas", "Areas"] {
        assert_eq!(
            find_hierarchy(&hs, reference).map(|h| h.id.as_str()),
            Some("h1")
        );
    }
    assert!(find_hierarchy(&hs, "Lines").is_none());
    assert!(find_hierarchy(&hs, "externalId:Areas").is_none());
}

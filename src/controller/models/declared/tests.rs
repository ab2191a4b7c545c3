use std::sync::Arc;

use kube::api::ObjectMeta;

use super::*;
use crate::crd::{
    Condition, ModelHierarchySpec, ModelPropertySpec, ModelRef, PropertyDataType,
    SiteWiseAssetModelSpec, SiteWiseAssetModelStatus,
};

fn model(name: &str, children: &[&str]) -> SiteWiseAssetModel {
    let mut obj = SiteWiseAssetModel::new(
        name,
        SiteWiseAssetModelSpec {
            hierarchies: children
                .iter()
                .map(|c| ModelHierarchySpec {
                    name: format!("to-{c}"),
                    external_id: None,
                    child_model: ModelRef {
                        name: Some(c.to_string()),
                        asset_model_id: None,
                    },
                })
                .collect(),
            ..SiteWiseAssetModelSpec::default()
        },
    );
    obj.metadata = ObjectMeta {
        name: Some(name.into()),
        namespace: Some("plant".into()),
        uid: Some(format!("uid-{name}")),
        ..Default::default()
    };
    obj
}

fn ready(mut obj: SiteWiseAssetModel, id: &str) -> SiteWiseAssetModel {
    obj.status = Some(SiteWiseAssetModelStatus {
        asset_model_id: Some(id.into()),
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "ModelReady".into(),
            message: String::new(),
            last_transition_time: String::new(),
            observed_generation: None,
        }],
        ..SiteWiseAssetModelStatus::default()
    });
    obj
}

fn cache(models: Vec<SiteWiseAssetModel>) -> Vec<Arc<SiteWiseAssetModel>> {
    models.into_iter().map(Arc::new).collect()
}

#[test]
fn children_are_known_missing_or_not_ready_from_the_cache() {
    let site = model("site", &["area", "line", "ghost"]);
    let models = cache(vec![
        ready(model("area", &[]), "area-id"),
        model("line", &[]),
    ]);
    assert_eq!(
        children(&site, &models),
        vec![
            Child::Known("area-id".into()),
            Child::NotReady("line".into()),
            Child::Missing("ghost".into()),
        ]
    );
}

#[test]
fn a_model_in_another_namespace_is_not_a_child() {
    let site = model("site", &["area"]);
    let mut elsewhere = ready(model("area", &[]), "area-id");
    elsewhere.metadata.namespace = Some("other".into());
    assert_eq!(
        children(&site, &cache(vec![elsewhere])),
        vec![Child::Missing("area".into())]
    );
}

#[test]
fn a_cycle_through_the_model_is_named_in_order() {
    let a = model("a", &["b"]);
    let models = cache(vec![model("b", &["c"]), model("c", &["a"])]);
    assert_eq!(
        cycle(&a, &models),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let selfish = model("self", &["self"]);
    assert_eq!(
        cycle(&selfish, &[]),
        Some(vec!["self".into(), "self".into()])
    );
}

#[test]
fn a_tree_or_a_diamond_is_not_a_cycle_nor_is_a_cycle_elsewhere() {
    let site = model("site", &["area", "line"]);
    let models = cache(vec![
        model("area", &["line"]),
        model("line", &["machine"]),
        model("machine", &[]),
        model("x", &["y"]),
        model("y", &["x"]),
    ]);
    assert_eq!(cycle(&site, &models), None);
}

fn with_properties(mut obj: SiteWiseAssetModel) -> SiteWiseAssetModel {
    obj.spec.properties = vec![
        ModelPropertySpec {
            name: "serial".into(),
            kind: crate::crd::ModelPropertyKind::Attribute,
            data_type: PropertyDataType::String,
            default_value: Some("unknown".into()),
            ..ModelPropertySpec::default()
        },
        ModelPropertySpec {
            name: "temperature".into(),
            external_id: Some("temp".into()),
            data_type: PropertyDataType::Double,
            unit: Some("Celsius".into()),
            ..ModelPropertySpec::default()
        },
    ];
    obj
}

#[test]
fn the_definition_keeps_the_ids_of_what_stays_and_names_the_model_after_its_resource() {
    let obj = with_properties(model("line", &["machine"]));
    let first = definition(&obj, &["machine-id".into()], None);
    assert_eq!(first.name, "plant-line");
    assert!(first.properties.iter().all(|p| p.id.is_none()));
    assert_eq!(first.hierarchies[0].child_model_id, "machine-id");
    // SiteWise gave IDs; the temperature was renamed in the console but keeps its external ID.
    let mut have = first.clone();
    have.properties[0].id = Some("p-serial".into());
    have.properties[1].id = Some("p-temp".into());
    have.properties[1].name = "temp (renamed)".into();
    have.hierarchies[0].id = Some("h-machines".into());
    let again = definition(&obj, &["machine-id".into()], Some(&have));
    assert_eq!(again.properties[0].id.as_deref(), Some("p-serial"));
    assert_eq!(again.properties[1].id.as_deref(), Some("p-temp"));
    assert_eq!(again.hierarchies[0].id.as_deref(), Some("h-machines"));
    assert_eq!(
        differences(&again, &have),
        vec!["change property temperature".to_string()]
    );
    have.properties[1].name = "temperature".into();
    assert!(differences(&again, &have).is_empty());
}

#[test]
fn differences_name_what_is_added_removed_and_changed() {
    let obj = with_properties(model("line", &[]));
    let mut have = definition(&obj, &[], None);
    have.properties[0].id = Some("p-serial".into());
    have.properties[1].id = Some("p-temp".into());
    have.description = Some("old".into());
    have.properties.push(ModelProperty {
        id: Some("p-console".into()),
        name: "added in the console".into(),
        data_type: "DOUBLE".into(),
        ..ModelProperty::default()
    });
    let mut spec = obj.clone();
    spec.spec.properties.remove(0);
    spec.spec.properties.push(ModelPropertySpec {
        name: "speed".into(),
        ..ModelPropertySpec::default()
    });
    let want = definition(&spec, &[], Some(&have));
    assert_eq!(
        differences(&want, &have),
        vec![
            "description".to_string(),
            "add property speed".into(),
            "remove property serial".into(),
            "remove property added in the console".into(),
        ]
    );
}

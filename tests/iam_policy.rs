//! The IAM policies in `deploy/` match the operator: the required policy allows every SiteWise
//! call it makes (and nothing else), and the optional one refuses destructive calls on assets
//! whose ownership claim does not name this cluster, using the tag key the operator writes.

use std::collections::BTreeSet;

use serde_json::Value;
use sitewise_operator::controller::claim::OWNER_TAG;
use sitewise_operator::sitewise::Operation;

fn policy(path: &str) -> Value {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn actions(statement: &Value) -> BTreeSet<String> {
    match &statement["Action"] {
        Value::String(a) => BTreeSet::from([a.clone()]),
        Value::Array(list) => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => BTreeSet::new(),
    }
}

#[test]
fn the_required_policy_allows_exactly_the_calls_the_operator_makes() {
    let doc = policy("deploy/iam-policy.json");
    let statements = doc["Statement"].as_array().expect("statements");
    let allowed: BTreeSet<String> = statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(actions)
        .collect();
    let made: BTreeSet<String> = Operation::ALL
        .iter()
        .map(|op| format!("iotsitewise:{}", op.as_str()))
        .collect();
    assert_eq!(allowed, made);
}

#[test]
fn the_optional_policy_denies_destruction_of_assets_not_claimed_by_this_cluster() {
    let doc = policy("deploy/iam-policy-owned-assets.json");
    let statement = &doc["Statement"][0];
    assert_eq!(statement["Effect"], "Deny");
    let denied = actions(statement);
    for action in ["iotsitewise:DeleteAsset", "iotsitewise:DisassociateAssets"] {
        assert!(denied.contains(action), "{action} must be covered");
    }
    let condition = &statement["Condition"]["StringNotLike"];
    let key = format!("aws:ResourceTag/{OWNER_TAG}");
    assert_eq!(condition[&key], "CLUSTER_ID/*", "{condition}");
}

#[test]
fn connection_roles_trust_the_operator_and_the_operator_may_assume_only_them() {
    let trust = policy("deploy/iam-trust-policy.json");
    let statement = &trust["Statement"][0];
    assert_eq!(statement["Effect"], "Allow");
    assert!(actions(statement).contains("sts:AssumeRole"));
    assert!(
        statement["Principal"]["AWS"]
            .as_str()
            .is_some_and(|p| p.starts_with("arn:aws:iam::") && p.contains(":role/")),
        "the principal is the operator's role"
    );
    assert!(
        statement["Condition"]["StringEquals"]["sts:ExternalId"].is_string(),
        "the external ID a SiteWiseConnection sends (spec.externalId) is required"
    );
    let assume = policy("deploy/iam-policy-assume-roles.json");
    let statement = &assume["Statement"][0];
    assert_eq!(
        actions(statement),
        BTreeSet::from(["sts:AssumeRole".to_string()])
    );
    assert_eq!(
        statement["Resource"],
        "arn:aws:iam::*:role/sitewise-operator-*"
    );
}

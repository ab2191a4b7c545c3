//! The `SiteWiseConnection` custom resource: one AWS account and region the operator reaches,
//! the IAM role it assumes there, that account's quotas, and the namespaces allowed to use it.
//!
//! It is cluster-scoped: a connection names an account and a role, which a platform team
//! owns and grants; teams' resources in their namespaces only name it (`spec.connectionRef`),
//! and may do so only where the connection allows their namespace.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// Annotation on a Namespace naming the connection its resources use when they name none.
pub const NAMESPACE_CONNECTION_ANNOTATION: &str = "sitewise.operator.dev/connection";

/// What `status.connection` records for resources served by the operator's own flags
/// (`--region`, the AWS credential chain). Not a valid resource name, so never a connection's.
pub const OPERATOR_CONNECTION: &str = "(operator)";

/// An AWS account and region reached with an assumed IAM role.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "sitewise.operator.dev",
    version = "v1alpha1",
    kind = "SiteWiseConnection",
    plural = "sitewiseconnections",
    singular = "sitewiseconnection",
    shortname = "swc",
    category = "sitewise",
    status = "SiteWiseConnectionStatus",
    printcolumn = r#"{"name":"Region","type":"string","jsonPath":".spec.region"}"#,
    printcolumn = r#"{"name":"Account","type":"string","jsonPath":".status.account"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Identity","type":"string","jsonPath":".status.identity","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SiteWiseConnectionSpec {
    /// The AWS Region, e.g. `eu-west-1`.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^[a-z]{2}(-[a-z]+)+-[0-9]+$')",
        "message": "region must be an AWS Region code such as eu-west-1"
    }]))]
    pub region: String,

    /// The IAM role to assume in the target account (on top of the operator's own identity:
    /// IRSA, EKS Pod Identity or the default chain). Without it, the operator's own identity is
    /// used in `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$')",
        "message": "roleArn must be an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>"
    }]))]
    pub role_arn: Option<String>,

    /// The external ID the role's trust policy requires (`sts:ExternalId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224))]
    pub external_id: Option<String>,

    /// The role session name, shown in CloudTrail. Default: `sitewise-operator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^[A-Za-z0-9+=,.@_-]{2,64}$')",
        "message": "sessionName must be 2-64 characters of letters, digits and +=,.@_-"
    }]))]
    pub session_name: Option<String>,

    /// SiteWise endpoint override (a VPC endpoint, or the emulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^https?://[^ ]+$')",
        "message": "endpoint must be an http:// or https:// URL"
    }]))]
    pub endpoint: Option<String>,

    /// STS endpoint override for this connection's AssumeRole and GetCallerIdentity (an STS
    /// VPC endpoint in that account's network); default: the operator's `--sts-endpoint`, else
    /// the Region's STS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.matches('^https?://[^ ]+$')",
        "message": "stsEndpoint must be an http:// or https:// URL"
    }]))]
    pub sts_endpoint: Option<String>,

    /// The request-rate quotas of this account and Region (SiteWise quotas are adjustable
    /// per account). Each connection has its own limiter, so a busy account never slows
    /// another.
    #[serde(default)]
    pub quotas: ConnectionQuotas,

    /// Namespaces whose resources may use this connection. Empty, with no
    /// `namespaceSelector`, means none may.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,

    /// Or the namespaces whose labels include all of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
}

/// Request rates of one account and Region, in requests per second.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionQuotas {
    /// Asset-API requests per second (published default: 30). 0 switches the limiter off.
    #[serde(default = "default_asset_rate")]
    #[schemars(range(max = 10000))]
    pub asset_rate: u32,
    /// DescribeAsset requests per second (published default: 100). 0 switches it off.
    #[serde(default = "default_describe_rate")]
    #[schemars(range(max = 10000))]
    pub describe_asset_rate: u32,
}

fn default_asset_rate() -> u32 {
    30
}

fn default_describe_rate() -> u32 {
    100
}

impl Default for ConnectionQuotas {
    fn default() -> Self {
        Self {
            asset_rate: default_asset_rate(),
            describe_asset_rate: default_describe_rate(),
        }
    }
}

/// Namespaces by label.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// Whether the connection works, and as whom.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteWiseConnectionStatus {
    /// The account the connection reaches (from STS GetCallerIdentity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The identity the connection acts as (the assumed-role session ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the identity was resolved), and the kstatus `Stalled` and `Reconciling`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl SiteWiseConnection {
    /// Whether resources of `namespace` (with these labels) may use this connection.
    pub fn allows(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.spec.namespaces.iter().any(|n| n == namespace)
            || self.spec.namespace_selector.as_ref().is_some_and(|s| {
                !s.match_labels.is_empty()
                    && s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
    }

    /// Whether the last check of the connection succeeded.
    pub fn is_ready(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    }
}

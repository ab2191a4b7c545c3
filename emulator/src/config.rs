//! Emulator settings: identity (region, account), state-machine timings, quotas, clientToken
//! retention and the initial faults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::faults::FaultConfig;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Timings {
    /// CREATING -> ACTIVE.
    #[serde(with = "duration_millis")]
    pub create: Duration,
    /// UPDATING -> ACTIVE.
    #[serde(with = "duration_millis")]
    pub update: Duration,
    /// DELETING -> gone (404).
    #[serde(with = "duration_millis")]
    pub delete: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            create: Duration::ZERO,
            update: Duration::ZERO,
            delete: Duration::ZERO,
        }
    }
}

/// Request-rate quotas (requests per second; 0 switches a bucket off) and resource limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Quotas {
    pub enabled: bool,
    /// Shared by the asset operations (CreateAsset, UpdateAsset, DeleteAsset, AssociateAssets,
    /// DisassociateAssets, ListAssociatedAssets, ListAssets) and the tag operations.
    pub asset_tps: f64,
    /// Shared by the model operations.
    pub model_tps: f64,
    /// DescribeAsset on its own.
    pub describe_asset_tps: f64,
    pub max_children_per_parent: usize,
    pub max_hierarchy_depth: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            enabled: true,
            asset_tps: 30.0,
            model_tps: 10.0,
            describe_asset_tps: 100.0,
            max_children_per_parent: 100,
            max_hierarchy_depth: 10,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub region: String,
    pub account_id: String,
    pub timings: Timings,
    pub quotas: Quotas,
    /// How long a clientToken is remembered.
    #[serde(with = "duration_millis")]
    pub token_retention: Duration,
    pub faults: FaultConfig,
    /// Access keys of other accounts (`key -> account`); requests signed with one are served
    /// by that account's state.
    pub account_keys: std::collections::BTreeMap<String, String>,
    /// STS endpoint asked for the account of an access key not listed in `account_keys`.
    pub sts_endpoint: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            timings: Timings::default(),
            quotas: Quotas::default(),
            token_retention: Duration::from_secs(8 * 3600),
            faults: FaultConfig::default(),
            account_keys: Default::default(),
            sts_endpoint: None,
        }
    }
}

/// Durations as whole milliseconds in JSON.
pub(crate) mod duration_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

//! Reaching one connection: its SDK configuration (Region, the assumed role on top of the
//! operator's own identity, endpoint override), the SiteWise client with that account's
//! quotas, and the STS GetCallerIdentity check that tells whether it works and as whom.

use std::num::NonZeroU32;
use std::sync::Arc;

use aws_config::Region;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_types::error::display::DisplayErrorContext;

use super::ConnClient;
use crate::crd::SiteWiseConnectionSpec;
use crate::metrics::{Instrumented, Metrics};
use crate::sitewise::aws::{AwsSiteWise, SdkSettings, client_from, shared_config};
use crate::sitewise::rate_limit::{RateLimited, Rates};

/// Regions where IoT SiteWise is offered. A connection to another is refused with a
/// condition rather than retried against an endpoint that does not exist.
pub const SITEWISE_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "cn-north-1",
    "us-gov-west-1",
];

/// The identity a connection resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub arn: String,
}

/// Why a connection does not work: the condition reason and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckError {
    pub reason: &'static str,
    pub message: String,
}

/// A connection's SiteWise client and its STS client (same credentials).
pub struct Reach {
    pub sitewise: Arc<ConnClient>,
    pub sts: aws_sdk_sts::Client,
    /// Reconciles that may run through this connection at once.
    pub slots: Option<Arc<tokio::sync::Semaphore>>,
}

/// A connection's share of the reconcile slots: half its asset rate, at least 2 (as the
/// operator's own concurrency follows its rate), so the resources of a slow account, waiting
/// for its quota, never hold the slots another account's resources need. `None` (no limit)
/// when its limiter is off.
pub fn slots(asset_rate: u32) -> Option<Arc<tokio::sync::Semaphore>> {
    (asset_rate > 0).then(|| {
        let n = asset_rate.div_ceil(2).max(2) as usize;
        Arc::new(tokio::sync::Semaphore::new(n))
    })
}

/// What decides how a connection is reached; a change rebuilds its clients.
pub fn fingerprint(spec: &SiteWiseConnectionSpec) -> String {
    format!(
        "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}",
        spec.region,
        spec.sts_endpoint,
        spec.role_arn,
        spec.external_id,
        spec.session_name,
        spec.endpoint,
        spec.quotas.asset_rate,
        spec.quotas.describe_asset_rate
    )
}

/// Builds the clients of connection `name`. `template` carries the operator's retry budget,
/// timeouts, fence and app name; `sts_endpoint` overrides STS (a VPC endpoint, or a test STS).
pub async fn reach(
    name: &str,
    spec: &SiteWiseConnectionSpec,
    template: &SdkSettings,
    sts_endpoint: Option<&str>,
    metrics: &Arc<Metrics>,
) -> Result<Reach, CheckError> {
    if !SITEWISE_REGIONS.contains(&spec.region.as_str()) {
        return Err(CheckError {
            reason: "UnknownRegion",
            message: format!(
                "IoT SiteWise is not offered in region {}; use one of {}",
                spec.region,
                SITEWISE_REGIONS.join(", ")
            ),
        });
    }
    let settings = SdkSettings {
        region: Some(spec.region.clone()),
        endpoint: spec.endpoint.clone(),
        ..template.clone()
    };
    let mut base = shared_config(&settings).await;
    if let Some(endpoint) = spec.sts_endpoint.as_deref().or(sts_endpoint) {
        base = base.into_builder().endpoint_url(endpoint).build();
    }
    if let Some(role) = &spec.role_arn {
        let mut provider = AssumeRoleProvider::builder(role)
            .region(Region::new(spec.region.clone()))
            .session_name(
                spec.session_name
                    .clone()
                    .unwrap_or_else(|| "sitewise-operator".into()),
            )
            .configure(&base);
        if let Some(external_id) = &spec.external_id {
            provider = provider.external_id(external_id);
        }
        let provider = provider.build().await;
        base = base
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
    }
    let sts = aws_sdk_sts::Client::new(&base);
    let rates = Rates {
        asset_operations: NonZeroU32::new(spec.quotas.asset_rate),
        describe_asset: NonZeroU32::new(spec.quotas.describe_asset_rate),
    };
    let sitewise = RateLimited::new(
        Instrumented::for_connection(
            AwsSiteWise::new(client_from(&base, &settings)),
            metrics.clone(),
            name,
        ),
        rates,
    );
    Ok(Reach {
        sitewise: Arc::new(sitewise),
        sts,
        slots: slots(spec.quotas.asset_rate),
    })
}

/// STS GetCallerIdentity with the connection's credentials (assuming its role first).
pub async fn identity(sts: &aws_sdk_sts::Client) -> Result<Identity, CheckError> {
    match sts.get_caller_identity().send().await {
        Ok(out) => Ok(Identity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        }),
        Err(e) => {
            let text = DisplayErrorContext(&e).to_string();
            Err(explain(&text))
        }
    }
}

/// A readable condition out of the SDK's error chain: the STS error code and message when
/// there is one (an AssumeRole refused surfaces as a credentials error of the call).
fn explain(text: &str) -> CheckError {
    // Decoded by the SDK (`code: Some("…")`), or only in the raw body it could not decode
    // (`<Code>…</Code>`, the query protocol's error document).
    let between = |open: &str, close: char| {
        text.split(open)
            .nth(1)
            .and_then(|rest| rest.split(close).next())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let field = |name: &str| {
        let tag = name[..1].to_uppercase() + &name[1..];
        between(&format!("{name}: Some(\""), '"').or_else(|| between(&format!("<{tag}>"), '<'))
    };
    let loading_credentials = text.contains("loading credentials");
    let reason = if loading_credentials {
        "AssumeRoleFailed"
    } else {
        "IdentityCheckFailed"
    };
    let message = match (field("code"), field("message")) {
        (Some(code), Some(message)) if loading_credentials => format!(
            "STS refused AssumeRole: {code}: {message}. Check that the operator's identity may assume the role and that the role's trust policy names it (deploy/iam-trust-policy.json)"
        ),
        (Some(code), Some(message)) => format!("STS GetCallerIdentity failed: {code}: {message}"),
        _ => text.to_string(),
    };
    CheckError { reason, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_gets_slots_in_proportion_to_its_rate() {
        let permits = |rate| slots(rate).map(|s| s.available_permits());
        assert_eq!(permits(5), Some(3));
        assert_eq!(permits(30), Some(15));
        assert_eq!(permits(1), Some(2));
        assert_eq!(permits(0), None);
    }

    #[test]
    fn a_refusal_only_in_the_raw_body_is_read_from_it() {
        let sdk = r#"an error occurred while loading credentials: service error: unhandled error: Error { aws_request_id: "x" } (body: b"<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole</Message></Error></Errors></ErrorResponse>")"#;
        let e = explain(sdk);
        assert_eq!(
            e.message.split(". Check").next(),
            Some("STS refused AssumeRole: AccessDenied: not authorized to perform: sts:AssumeRole")
        );
    }

    #[test]
    fn a_refused_assume_role_is_told_in_a_sentence() {
        let sdk = r#"dispatch failure: other: an error occurred while loading credentials: service error: unhandled error: Error { code: Some("AccessDenied"), message: Some("User: arn:aws:iam::123456789012:user/op is not authorized to perform: sts:AssumeRole"), aws_request_id: Some("x") }"#;
        let e = explain(sdk);
        assert_eq!(e.reason, "AssumeRoleFailed");
        assert!(e.message.starts_with("STS refused AssumeRole: AccessDenied: User: arn:aws:iam::123456789012:user/op is not authorized"), "{}", e.message);
        let other = explain("dispatch failure: io error: connection refused");
        assert_eq!(other.reason, "IdentityCheckFailed");
        assert!(other.message.contains("connection refused"));
    }
}

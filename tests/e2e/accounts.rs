//! Several AWS accounts and Regions from one operator, against a real STS (moto's server, from
//! PyPI) and the emulator serving one state per account and Region: assets created and deleted
//! through two connections that assume roles in two accounts; a namespace default; and the
//! refusals a person must see (a connection that cannot assume its role, a Region without
//! SiteWise, a namespace not allowed, a missing connection), with nothing sent anywhere.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use sitewise_emulator::ops::Op;
use sitewise_emulator::seed::Seed;
use sitewise_operator::crd::SiteWiseConnection;

use crate::harness::*;

const TENANCY: &str = "deploy/connection-tenancy.yaml";
const TENANCY_CHART: &str = "deploy/helm/sitewise-operator/templates/connection-tenancy.yaml";

/// In the STS that enforces IAM: a user that may assume only the two roles the plant's
/// connections use. Prints its access key and secret.
const SETUP: &str = r#"
import boto3, json, sys
iam = boto3.client("iam", region_name="us-east-1", endpoint_url=sys.argv[1],
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="sitewise-operator")
key = iam.create_access_key(UserName="sitewise-operator")["AccessKey"]
iam.put_user_policy(UserName="sitewise-operator", PolicyName="assume", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": [
        "arn:aws:iam::111111111111:role/sitewise-operator-plant-eu",
        "arn:aws:iam::222222222222:role/sitewise-operator-plant-us"]},
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}))
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;

pub async fn two_accounts_and_regions_through_assumed_roles(env: &Env) -> anyhow::Result<()> {
    let venv = venv()?;
    let open_sts = moto(&venv, None).await?;
    let strict_sts = moto(&venv, Some(3)).await?;
    let out = Command::new(format!("{venv}/bin/python"))
        .args(["-c", SETUP, &strict_sts.endpoint])
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = String::from_utf8_lossy(&out.stdout).to_string();
    let mut keys = keys.split_whitespace();
    let (key, secret) = (keys.next().context("key")?, keys.next().context("secret")?);

    let ns = env.namespace("e2e-accounts").await?;
    let mut settings = quiet();
    settings.sts_endpoint = Some(open_sts.endpoint.clone());
    let (emu, _) = emulator(settings, &Seed::default()).await?;
    let seed: Seed = serde_json::from_value(json!({"models": [
        {"name": "Machine", "externalId": "machine-model"}]}))?;
    for (account, region) in [("111111111111", "eu-west-1"), ("222222222222", "us-east-2")] {
        sitewise_emulator::seed::apply(
            &mut sitewise_emulator::lock(&emu.tenant(account, region)),
            &seed,
        )
        .map_err(|e| anyhow::anyhow!("seed: {}", e.message))?;
    }
    let _operator = Operator::start_with_env(
        env,
        &ns,
        &emu.endpoint(),
        "accounts",
        &["--sts-endpoint", &open_sts.endpoint, "--resync", "2s"],
        &[
            ("AWS_ACCESS_KEY_ID", key),
            ("AWS_SECRET_ACCESS_KEY", secret),
        ],
    )?;
    let endpoint = emu.endpoint();
    let connection = |name: &str, region: &str, role: &str, extra: &str| {
        format!(
            "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseConnection\nmetadata: {{name: {ns}-{name}}}\n\
             spec: {{region: {region}, roleArn: '{role}', endpoint: '{endpoint}', namespaces: [{ns}]{extra}}}\n---\n"
        )
    };
    let manifest = [
        connection("eu", "eu-west-1", "arn:aws:iam::111111111111:role/sitewise-operator-plant-eu", ""),
        connection("us", "us-east-2", "arn:aws:iam::222222222222:role/sitewise-operator-plant-us", ""),
        connection(
            "forbidden",
            "eu-central-1",
            "arn:aws:iam::333333333333:role/not-granted",
            &format!(", stsEndpoint: '{}'", strict_sts.endpoint),
        ),
        connection("nowhere", "xx-fake-1", "arn:aws:iam::111111111111:role/sitewise-operator-plant-eu", ""),
        format!(
            "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseConnection\nmetadata: {{name: {ns}-other-team}}\n\
             spec: {{region: eu-west-1, endpoint: '{endpoint}', namespaces: [someone-else]}}\n"
        ),
    ]
    .concat();
    kubectl_apply(env, &manifest)?;
    // The namespace's default: the US connection.
    kubectl(
        &env.plane.kubeconfig,
        &[
            "annotate",
            "namespace",
            &ns,
            &format!("sitewise.operator.dev/connection={ns}-us"),
        ],
    )?;

    let connections: Api<SiteWiseConnection> = Api::all(env.client.clone());
    for (name, wanted) in [
        (
            "eu",
            "Connected: Acting as arn:aws:sts::111111111111:assumed-role/sitewise-operator-plant-eu/",
        ),
        (
            "us",
            "Connected: Acting as arn:aws:sts::222222222222:assumed-role/sitewise-operator-plant-us/",
        ),
        (
            "forbidden",
            "AssumeRoleFailed: STS refused AssumeRole: AccessDenied: User: arn:aws:iam::123456789012:user/sitewise-operator is not authorized to perform: sts:AssumeRole",
        ),
        (
            "nowhere",
            "UnknownRegion: IoT SiteWise is not offered in region xx-fake-1",
        ),
    ] {
        let full = format!("{ns}-{name}");
        eventually(
            &format!("{full}: {wanted}"),
            Duration::from_secs(60),
            || async {
                connections
                    .get(&full)
                    .await
                    .ok()
                    .filter(|c| ready_text(c).starts_with(wanted))
            },
        )
        .await?;
    }
    let eu = connections.get(&format!("{ns}-eu")).await?;
    ensure!(eu.status.and_then(|s| s.account).as_deref() == Some("111111111111"));

    let asset = |name: &str, connection: Option<&str>| {
        let reference = connection
            .map(|c| format!(", connectionRef: {{name: {ns}-{c}}}"))
            .unwrap_or_default();
        format!(
            "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec: {{assetModelId: externalId:machine-model{reference}}}\n---\n"
        )
    };
    let manifest = [
        asset("press-eu", Some("eu")),
        asset("press-us", None),
        asset("press-forbidden", Some("forbidden")),
        asset("press-nowhere", Some("nowhere")),
        asset("press-other-team", Some("other-team")),
        asset("press-missing", Some("missing")),
        // A model of the EU account, an asset made from it there, and one of another
        // connection that names it.
        format!(
            "apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAssetModel\nmetadata: {{name: robot, namespace: {ns}}}\n\
             spec: {{connectionRef: {{name: {ns}-eu}}}}\n---\n\
             apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: robot-eu, namespace: {ns}}}\n\
             spec: {{assetModelRef: {{name: robot}}, connectionRef: {{name: {ns}-eu}}}}\n---\n\
             apiVersion: sitewise.operator.dev/v1alpha1\nkind: SiteWiseAsset\nmetadata: {{name: robot-us, namespace: {ns}}}\n\
             spec: {{assetModelRef: {{name: robot}}}}\n"
        ),
    ]
    .concat();
    kubectl_apply(env, &manifest)?;
    let api = env.assets(&ns);
    for (name, wanted) in [
        ("press-eu", "AssetReady"),
        ("press-us", "AssetReady"),
        (
            "press-forbidden",
            "ConnectionNotReady: SiteWiseConnection e2e-accounts-forbidden is not Ready (AssumeRoleFailed",
        ),
        ("press-nowhere", "ConnectionNotReady: SiteWiseConnection"),
        ("press-other-team", "ConnectionNotAllowed"),
        ("press-missing", "ConnectionNotFound"),
        ("robot-eu", "AssetReady"),
        (
            "robot-us",
            &*format!(
                "ModelInOtherConnection: SiteWiseAssetModel robot lives in connection {ns}-eu, this asset in {ns}-us"
            ),
        ),
    ] {
        eventually(
            &format!("{name}: {wanted}"),
            Duration::from_secs(60),
            || async {
                api.get(name)
                    .await
                    .ok()
                    .filter(|a| ready_text(a).starts_with(wanted))
            },
        )
        .await?;
    }
    let eu_asset = api.get("press-eu").await?.status.context("status")?;
    ensure!(
        eu_asset
            .asset_arn
            .as_deref()
            .is_some_and(|a| a.starts_with("arn:aws:iotsitewise:eu-west-1:111111111111:asset/")),
        "{:?}",
        eu_asset.asset_arn
    );
    ensure!(eu_asset.connection.as_deref() == Some(format!("{ns}-eu").as_str()));
    let us_asset = api.get("press-us").await?.status.context("status")?;
    ensure!(
        us_asset
            .asset_arn
            .as_deref()
            .is_some_and(|a| a.starts_with("arn:aws:iotsitewise:us-east-2:222222222222:asset/")),
        "{:?}",
        us_asset.asset_arn
    );
    // Nothing reached the emulator's own account, and each tenant holds exactly its asset.
    ensure!(
        emu.store().journal().is_empty(),
        "calls sent to the operator's own account"
    );
    let count = |account: &str, region: &str| {
        sitewise_emulator::lock(&emu.tenant(account, region)).snapshot()["assets"]
            .as_array()
            .map(Vec::len)
    };
    ensure!(count("111111111111", "eu-west-1") == Some(2));
    ensure!(count("222222222222", "us-east-2") == Some(1));
    // Sweeps list each account through its own connection, and never the operator's own.
    for (account, region) in [("111111111111", "eu-west-1"), ("222222222222", "us-east-2")] {
        eventually(
            "a sweep of each account",
            Duration::from_secs(20),
            || async {
                sitewise_emulator::lock(&emu.tenant(account, region))
                    .journal()
                    .iter()
                    .any(|e| e.operation == Op::ListAssets && e.status == 200)
                    .then_some(())
            },
        )
        .await?;
    }
    ensure!(
        emu.store().journal().is_empty(),
        "a sweep reached the operator's own account"
    );

    // The API server enforces the same tenancy before a resource exists.
    ensure!(
        crate::protection::documents(&std::fs::read_to_string(repo().join(TENANCY))?)?
            == crate::protection::documents(&std::fs::read_to_string(repo().join(TENANCY_CHART))?)?,
        "the chart's tenancy policy differs from {TENANCY}"
    );
    kubectl(&env.plane.kubeconfig, &["apply", "-f", TENANCY])?;
    let dry_run = |name: &str, connection: &str| {
        kubectl_output(
            &env.plane.kubeconfig,
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&asset(name, Some(connection))),
        )
    };
    let refused = eventually(
        "the tenancy policy is in force",
        Duration::from_secs(30),
        || async {
            dry_run("press-intruder", "other-team")
                .ok()
                .filter(|out| !out.status.success())
        },
    )
    .await?;
    let message = String::from_utf8_lossy(&refused.stderr).into_owned();
    ensure!(
        message.contains(&format!(
            "SiteWiseConnection {ns}-other-team does not allow namespace {ns}"
        )),
        "{message}"
    );
    ensure!(
        dry_run("press-eu-2", "eu")?.status.success(),
        "an allowed connection passes"
    );
    kubectl(&env.plane.kubeconfig, &["delete", "-f", TENANCY])?;

    // A resource never moves: changing the namespace default does not move press-us.
    kubectl(
        &env.plane.kubeconfig,
        &[
            "annotate",
            "--overwrite",
            "namespace",
            &ns,
            &format!("sitewise.operator.dev/connection={ns}-eu"),
        ],
    )?;
    api.patch(
        "press-us",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"touch": "1"}}})),
    )
    .await?;
    eventually(
        "press-us refuses to move",
        Duration::from_secs(60),
        || async {
            api.get("press-us")
                .await
                .ok()
                .filter(|a| ready_text(a).starts_with("ConnectionChanged"))
        },
    )
    .await?;
    kubectl(
        &env.plane.kubeconfig,
        &[
            "annotate",
            "--overwrite",
            "namespace",
            &ns,
            &format!("sitewise.operator.dev/connection={ns}-us"),
        ],
    )?;

    // Deleting everything: each asset is deleted once, in its own account; the refused
    // resources, which never reached SiteWise, are released.
    delete_all_assets(env, &ns)?;
    kubectl(
        &env.plane.kubeconfig,
        &[
            "delete",
            "sitewiseassetmodel",
            "robot",
            "-n",
            &ns,
            "--wait=false",
        ],
    )?;
    wait_all_gone(&api, Duration::from_secs(90)).await?;
    let models: Api<sitewise_operator::crd::SiteWiseAssetModel> =
        Api::namespaced(env.client.clone(), &ns);
    eventually("the model is gone", Duration::from_secs(60), || async {
        models.get_opt("robot").await.ok().filter(Option::is_none)
    })
    .await?;
    ensure!(
        sitewise_emulator::lock(&emu.tenant("111111111111", "eu-west-1")).snapshot()["models"]
            .as_array()
            .map(Vec::len)
            == Some(1),
        "only the seeded model is left in the EU account"
    );
    for (account, region, assets) in [
        ("111111111111", "eu-west-1", 2),
        ("222222222222", "us-east-2", 1),
    ] {
        let shared = emu.tenant(account, region);
        let tenant = sitewise_emulator::lock(&shared);
        ensure!(tenant.snapshot()["assets"].as_array().map(Vec::len) == Some(0));
        let deletes = tenant
            .journal()
            .iter()
            .filter(|e| e.operation == Op::DeleteAsset && e.status < 300 && !e.replay)
            .count();
        ensure!(deletes == assets, "{account}: {deletes} DeleteAsset");
    }
    ensure!(emu.store().journal().is_empty());
    for name in ["eu", "us", "forbidden", "nowhere", "other-team"] {
        kubectl(
            &env.plane.kubeconfig,
            &[
                "delete",
                "sitewiseconnection",
                &format!("{ns}-{name}"),
                "--wait=false",
            ],
        )?;
    }
    Ok(())
}

//! What every end-to-end case shares: one real control plane for the run (CRDs and the
//! operator's RBAC from `deploy/` installed, a real ServiceAccount token), and per case a
//! namespace, an in-process emulator and the real `sitewise-operator` binary started the way
//! users start it, authenticated as that ServiceAccount.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, PostParams};
use sitewise_emulator::Emulator;
use sitewise_emulator::config::Settings;
use sitewise_emulator::seed::{Seed, Seeded};
use sitewise_operator::crd::SiteWiseAsset;
use sitewise_testcluster::ControlPlane;

pub const OPERATOR_SA: &str = "system:serviceaccount:sitewise-system:sitewise-operator";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Env {
    pub plane: ControlPlane,
    pub client: kube::Client,
    /// Kubeconfig of the operator's ServiceAccount (real token, real RBAC).
    pub operator_kubeconfig: PathBuf,
}

impl Env {
    pub async fn start() -> anyhow::Result<Self> {
        let bins = sitewise_testcluster::binaries_dir(&repo())?;
        let plane = ControlPlane::start(&bins).await?;
        eprintln!(
            "[e2e] control plane ready in {:.1} s at {}",
            plane.startup.as_secs_f64(),
            plane.server
        );
        plane
            .install_crds(&std::fs::read_to_string(
                repo().join("crds/sitewise-crds.yaml"),
            )?)
            .await?;
        let env_kubeconfig = plane.kubeconfig.clone();
        kubectl(&env_kubeconfig, &["apply", "-f", "deploy/rbac.yaml"])?;
        let token = kubectl(
            &env_kubeconfig,
            &[
                "create",
                "token",
                "sitewise-operator",
                "-n",
                "sitewise-system",
                "--duration=6h",
            ],
        )?;
        let operator_kubeconfig = plane.dir().join("operator.kubeconfig");
        std::fs::write(
            &operator_kubeconfig,
            plane.kubeconfig_with_token(token.trim())?,
        )?;
        let client = plane.client().await?;
        let env = Self {
            plane,
            client,
            operator_kubeconfig,
        };
        // RBAC is read from informer caches: wait until the binding is effective.
        eventually(
            "operator RBAC effective",
            Duration::from_secs(30),
            || async {
                env.can_i(
                    "list",
                    "sitewiseassets",
                    "sitewise.operator.dev",
                    None,
                    "default",
                )
                .await
                .ok()
                .filter(|allowed| *allowed)
            },
        )
        .await?;
        Ok(env)
    }

    /// SubjectAccessReview for the operator's ServiceAccount.
    pub async fn can_i(
        &self,
        verb: &str,
        resource: &str,
        group: &str,
        subresource: Option<&str>,
        namespace: &str,
    ) -> anyhow::Result<bool> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(OPERATOR_SA.into()),
                groups: Some(vec![
                    "system:serviceaccounts".into(),
                    "system:serviceaccounts:sitewise-system".into(),
                    "system:authenticated".into(),
                ]),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    resource: Some(resource.into()),
                    group: Some(group.into()),
                    subresource: subresource.map(str::to_string),
                    namespace: Some(namespace.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api.create(&PostParams::default(), &review).await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }

    /// SubjectAccessReview of `get` on one Namespace object for the operator's ServiceAccount.
    pub async fn can_get_namespace(&self, name: &str) -> anyhow::Result<bool> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(OPERATOR_SA.into()),
                groups: Some(vec![
                    "system:serviceaccounts".into(),
                    "system:authenticated".into(),
                ]),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some("get".into()),
                    resource: Some("namespaces".into()),
                    name: Some(name.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api.create(&PostParams::default(), &review).await?;
        Ok(answer.status.is_some_and(|s| s.allowed))
    }

    pub async fn namespace(&self, name: &str) -> anyhow::Result<String> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
        }))?;
        api.create(&PostParams::default(), &ns).await?;
        Ok(name.to_string())
    }

    pub fn assets(&self, namespace: &str) -> Api<SiteWiseAsset> {
        Api::namespaced(self.client.clone(), namespace)
    }
}

/// Runs kubectl against `kubeconfig` from the repository root; returns stdout or fails with
/// stderr.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = kubectl_output(kubeconfig, args, None)?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn kubectl_output(
    kubeconfig: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> anyhow::Result<std::process::Output> {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .current_dir(repo())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running kubectl")?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())?;
    }
    Ok(child.wait_with_output()?)
}

pub use sitewise_testcluster::eventually;

/// The operator binary, running against one namespace and one emulator. Killed on drop.
pub struct Operator {
    child: Child,
    pub log: PathBuf,
}

impl Operator {
    pub fn start(
        env: &Env,
        namespace: &str,
        endpoint: &str,
        log_name: &str,
    ) -> anyhow::Result<Self> {
        Self::start_with(env, namespace, endpoint, log_name, &[])
    }

    pub fn start_with(
        env: &Env,
        namespace: &str,
        endpoint: &str,
        log_name: &str,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        Self::start_as(env, namespace, endpoint, log_name, extra_args, None)
    }

    /// Starts a replica with a known identity (`POD_NAME`): its leader-election identity and
    /// the app name in its SiteWise user agent, which the emulator's journal records.
    pub fn start_as(
        env: &Env,
        namespace: &str,
        endpoint: &str,
        log_name: &str,
        extra_args: &[&str],
        identity: Option<&str>,
    ) -> anyhow::Result<Self> {
        let debug = "info,sitewise_operator=debug,kube_client::client::builder=off";
        Self::start_logged(
            env, namespace, endpoint, log_name, extra_args, identity, debug,
        )
    }

    /// [`Operator::start_as`] with the log filter `rust_log` (benchmarks log as in production).
    pub fn start_logged(
        env: &Env,
        namespace: &str,
        endpoint: &str,
        log_name: &str,
        extra_args: &[&str],
        identity: Option<&str>,
        rust_log: &str,
    ) -> anyhow::Result<Self> {
        let debug = [("RUST_LOG", rust_log)];
        Self::spawn(
            env, namespace, endpoint, log_name, extra_args, identity, &debug,
        )
    }

    /// [`Operator::start_with`] with environment variables added or replaced (credentials).
    pub fn start_with_env(
        env: &Env,
        namespace: &str,
        endpoint: &str,
        log_name: &str,
        extra_args: &[&str],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut all = vec![(
            "RUST_LOG",
            "info,sitewise_operator=debug,kube_client::client::builder=off",
        )];
        all.extend_from_slice(envs);
        Self::spawn(env, namespace, endpoint, log_name, extra_args, None, &all)
    }

    fn spawn(
        env: &Env,
        namespace: &str,
        endpoint: &str,
        log_name: &str,
        extra_args: &[&str],
        identity: Option<&str>,
        envs: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-{log_name}.log"));
        // Each start has its own log file name; truncate what an earlier run left there.
        let file = std::fs::File::create(&log)?;
        let kubeconfig = env.operator_kubeconfig.to_string_lossy().into_owned();
        let defaults = [
            ("--kubeconfig", kubeconfig.as_str()),
            ("--namespace", namespace),
            ("--sitewise-endpoint", endpoint),
            ("--region", "us-east-1"),
            ("--admin-addr", "127.0.0.1:0"),
            ("--poll-interval", "300ms"),
            ("--backoff-base", "300ms"),
            ("--backoff-max", "3s"),
            ("--conflict-backoff-max", "2s"),
            ("--terminal-retry", "30s"),
            ("--resync", "60s"),
        ];
        // A flag given in `extra_args` replaces its default.
        let args: Vec<&str> = defaults
            .iter()
            .filter(|(flag, _)| !extra_args.contains(flag))
            .flat_map(|(flag, value)| [*flag, *value])
            .collect();
        let child = Command::new(env!("CARGO_BIN_EXE_sitewise-operator"))
            .arg("run")
            .args(args)
            .args(extra_args)
            .env("AWS_ACCESS_KEY_ID", "emulator")
            .env("AWS_SECRET_ACCESS_KEY", "emulator")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(envs.iter().copied())
            .envs(identity.map(|id| ("POD_NAME", id)))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .context("starting sitewise-operator")?;
        Ok(Self { child, log })
    }

    /// SIGSTOP (`pause`) and SIGCONT (`resume`): a frozen VM or a throttled cgroup.
    /// The operator's process ID (for its memory figures in the benchmarks).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill {signal} failed");
        Ok(())
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL, as a node failure or an OOM kill would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on the operator's admin server (its address read from its log).
pub async fn admin_get(operator: &Operator, path: &str) -> anyhow::Result<(u16, String)> {
    let log = operator.log_text();
    let addr = regex::Regex::new(r"admin server listening.*?addr=(127\.0\.0\.1:\d+)")?
        .captures(&log)
        .and_then(|c| c.get(1))
        .context("no admin address in the operator's log")?
        .as_str()
        .to_string();
    sitewise_testcluster::http_get(&addr, path).await
}

/// The value of one series in a Prometheus text exposition: `name` is the metric name, with
/// its labels as exposed when it has any (`family_total{outcome="current"}`).
pub fn metric_value(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

/// Emulator settings without request-rate quotas (cases about something else than quotas).
pub fn quiet() -> Settings {
    Settings {
        quotas: sitewise_emulator::config::Quotas {
            enabled: false,
            ..Default::default()
        },
        ..Settings::default()
    }
}

/// An emulator seeded with `seed`.
pub async fn emulator(settings: Settings, seed: &Seed) -> anyhow::Result<(Emulator, Seeded)> {
    let emu = Emulator::start_local(settings).await?;
    let seeded = sitewise_emulator::seed::apply(&mut emu.store(), seed)
        .map_err(|e| anyhow::anyhow!("seed: {}", e.message))?;
    Ok((emu, seeded))
}

/// A site with `areas` areas, each with `lines` lines, each with `machines` machines.
pub fn plant_seed(areas: usize, lines: usize, machines: usize) -> Seed {
    let mut v = serde_json::json!({
        "models": [
            {"name": "Machine", "externalId": "machine-model"},
            {"name": "Line", "externalId": "line-model", "hierarchies": [
                {"name": "Machines", "externalId": "line-machines", "childModel": "externalId:machine-model"}]},
            {"name": "Area", "externalId": "area-model", "hierarchies": [
                {"name": "Lines", "externalId": "area-lines", "childModel": "externalId:line-model"}]},
            {"name": "Site", "externalId": "site-model", "hierarchies": [
                {"name": "Areas", "externalId": "site-areas", "childModel": "externalId:area-model"}]},
        ],
        "assets": [{"name": "site", "externalId": "site", "model": "externalId:site-model"}]
    });
    let mut assets = Vec::new();
    for a in 0..areas {
        assets.push(serde_json::json!({"name": format!("area-{a}"), "externalId": format!("area-{a}"),
            "model": "externalId:area-model", "parent": "externalId:site", "hierarchy": "externalId:site-areas"}));
        for l in 0..lines {
            assets.push(serde_json::json!({"name": format!("line-{a}-{l}"), "externalId": format!("line-{a}-{l}"),
                "model": "externalId:line-model", "parent": format!("externalId:area-{a}"),
                "hierarchy": "externalId:area-lines"}));
            for m in 0..machines {
                assets.push(serde_json::json!({"name": format!("machine-{a}-{l}-{m}"),
                    "externalId": format!("machine-{a}-{l}-{m}"), "model": "externalId:machine-model",
                    "parent": format!("externalId:line-{a}-{l}"), "hierarchy": "externalId:line-machines"}));
            }
        }
    }
    if let Some(list) = v["assets"].as_array_mut() {
        list.extend(assets);
    }
    serde_json::from_value(v).unwrap_or_default()
}

/// A SiteWiseAsset named after the external ID it owns.
pub fn resource(external_id: &str, policy: &str) -> anyhow::Result<SiteWiseAsset> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "sitewise.operator.dev/v1alpha1",
        "kind": "SiteWiseAsset",
        "metadata": {"name": external_id},
        "spec": {"assetId": format!("externalId:{external_id}"), "deletionPolicy": policy}
    }))?)
}

pub async fn create_all(
    api: &Api<SiteWiseAsset>,
    names: &[String],
    policy: &str,
) -> anyhow::Result<()> {
    for name in names {
        api.create(&PostParams::default(), &resource(name, policy)?)
            .await?;
    }
    Ok(())
}

pub fn is_ready(obj: &SiteWiseAsset) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

pub async fn wait_all_ready(
    api: &Api<SiteWiseAsset>,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    eventually("all resources Ready", timeout, || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        (list.items.len() == count && list.items.iter().all(is_ready)).then_some(())
    })
    .await
}

/// `kubectl apply -f -` of `manifest`; fails with kubectl's message.
pub fn kubectl_apply(env: &Env, manifest: &str) -> anyhow::Result<()> {
    let out = kubectl_output(&env.plane.kubeconfig, &["apply", "-f", "-"], Some(manifest))?;
    ensure!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Deletes every SiteWiseAsset of `namespace` without waiting (as a prune would).
pub fn delete_all_assets(env: &Env, namespace: &str) -> anyhow::Result<()> {
    kubectl(
        &env.plane.kubeconfig,
        &[
            "delete",
            "sitewiseassets",
            "--all",
            "-n",
            namespace,
            "--wait=false",
        ],
    )?;
    Ok(())
}

/// `<reason>: <message>` of a condition of `conditions`, empty when absent.
pub fn condition_text(conditions: &[sitewise_operator::crd::Condition], type_: &str) -> String {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| format!("{}: {}", c.reason, c.message))
        .unwrap_or_default()
}

/// `reason: message` of the Ready condition of any of the operator's kinds (empty without one).
pub fn ready_text<K: sitewise_operator::controller::status::Tracked>(obj: &K) -> String {
    obj.status_of()
        .cloned()
        .map(|mut status| condition_text(K::conditions(&mut status), "Ready"))
        .unwrap_or_default()
}

/// Applies `manifest` with kubectl and waits until `count` resources of `namespace` are Ready.
pub async fn apply_ready(
    env: &Env,
    namespace: &str,
    manifest: &str,
    count: usize,
) -> anyhow::Result<Api<SiteWiseAsset>> {
    let out = kubectl_output(&env.plane.kubeconfig, &["apply", "-f", "-"], Some(manifest))?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = env.assets(namespace);
    wait_all_ready(&api, count, Duration::from_secs(60)).await?;
    Ok(api)
}

pub async fn wait_all_gone(api: &Api<SiteWiseAsset>, timeout: Duration) -> anyhow::Result<()> {
    // One object per poll: listing a thousand objects five times a second would load the API
    // server more than the operator does.
    eventually("all resources gone", timeout, || async {
        api.list(&ListParams::default().limit(1))
            .await
            .ok()
            .filter(|l| l.items.is_empty())
            .map(|_| ())
    })
    .await
}

/// Reasons of the events recorded about `name` in `namespace`.
pub async fn event_reasons(client: &kube::Client, namespace: &str, name: &str) -> Vec<String> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .filter_map(|e| e.reason)
                .collect()
        })
        .unwrap_or_default()
}

/// One recorded event: the resource it is about, its reason and type, and how many times it
/// happened (the recorder folds repeats into a series).
#[derive(Clone, Debug)]
pub struct SeenEvent {
    pub name: String,
    pub reason: String,
    pub warning: bool,
    pub count: i32,
}

pub async fn events_in(client: &kube::Client, namespace: &str) -> Vec<SeenEvent> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .map(|e| SeenEvent {
                    name: e
                        .regarding
                        .as_ref()
                        .and_then(|r| r.name.clone())
                        .unwrap_or_default(),
                    reason: e.reason.clone().unwrap_or_default(),
                    warning: e.type_.as_deref() == Some("Warning"),
                    count: e.series.as_ref().map(|s| s.count).unwrap_or(1),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reasons that end a resource's life: one per resource, whatever happened.
pub const RELEASE_REASONS: [&str; 5] = [
    "AssetDeleted",
    "AssetAlreadyGone",
    "AssetRetained",
    "AssetNotOwned",
    "AssetOrphaned",
];

/// moto's server on a free port; killed on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn venv() -> anyhow::Result<String> {
    let out = Command::new("bash")
        .arg(repo().join("scripts/python-env.sh"))
        .stderr(Stdio::inherit())
        .output()?;
    ensure!(out.status.success(), "python-env.sh failed");
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string())
}

/// Starts moto; with `auth_after`, IAM authorization is enforced after that many calls.
pub async fn moto(venv: &str, auth_after: Option<u32>) -> anyhow::Result<Moto> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut command = Command::new(format!("{venv}/bin/moto_server"));
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(n) = auth_after {
        command.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
    }
    let moto = Moto {
        child: command.spawn().context("starting moto_server")?,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    eventually("moto answers", Duration::from_secs(30), || async {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .await?;
    Ok(moto)
}

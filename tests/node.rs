//! The operator as a platform team runs it: a release built by `scripts/release.sh` (the images
//! as OCI archives and the chart packaged with their reference), the image loaded into a real
//! node's container runtime, the packaged chart installed with `helm install --wait` with two
//! replicas and leader election, deleting a plant through the pods, upgraded to a new image tag
//! with a rollout that completes, and failing over when the leader pod is deleted.
//!
//! The node is real: kubelet, kube-scheduler, containerd, runc and the bridge CNI plugin
//! (`sitewise_testcluster::node`). Needs root, like any kubelet. The emulator runs in this
//! process on the node's address, where the pods reach it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use sitewise_emulator::Emulator;
use sitewise_emulator::config::{Quotas, Settings};
use sitewise_emulator::ops::Op;
use sitewise_operator::crd::SiteWiseAsset;
use sitewise_testcluster::node::{NODE_ADDRESS, Node, PodNetwork};
use sitewise_testcluster::{ControlPlane, Options, eventually, http_get};

const NAMESPACE: &str = "sitewise-system";
const RELEASE: &str = "sitewise-operator";
const PLANT: &str = "plant";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn command(program: &Path, args: &[&str]) -> anyhow::Result<String> {
    let mut command = Command::new(program);
    // What `cargo test` adds to a test's environment (the package's CARGO_* variables, the
    // library path) makes a nested `cargo build --release` rebuild everything; the scripts run
    // with the environment a person's shell would give them.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let keep = ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_TERM_COLOR"];
        if (key.starts_with("CARGO") && !keep.contains(&key.as_ref())) || key == "LD_LIBRARY_PATH" {
            command.env_remove(key.as_ref());
        }
    }
    let out = command
        .args(args)
        .current_dir(repo())
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed:\n{}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A release, built by the script users run: the operator image's archive and the chart.
struct Release {
    operator_image: PathBuf,
    emulator_image: PathBuf,
    chart: PathBuf,
}

fn build_release(tag: &str) -> anyhow::Result<Release> {
    let out = command(
        Path::new("bash"),
        &[
            "scripts/release.sh",
            "--registry",
            "localhost",
            "--tag",
            tag,
        ],
    )?;
    let printed = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(PathBuf::from)
            .with_context(|| format!("release.sh printed no {key}"))
    };
    Ok(Release {
        operator_image: printed("operator-image")?,
        emulator_image: printed("emulator-image")?,
        chart: printed("chart")?,
    })
}

struct Cluster {
    // Drop order: the node stops its pods before the control plane goes away.
    node: Node,
    plane: ControlPlane,
    _network: PodNetwork,
    helm: PathBuf,
    kubectl: PathBuf,
}

impl Cluster {
    async fn start() -> anyhow::Result<Self> {
        let network = PodNetwork::create()?;
        let bins = sitewise_testcluster::binaries_dir(&repo())?;
        let options = Options {
            address: NODE_ADDRESS,
            workloads: true,
        };
        let plane = ControlPlane::start_with(&bins, &options).await?;
        let node_bins = sitewise_testcluster::node::binaries_dir(&repo())?;
        let node = Node::start(&plane, &node_bins).await?;
        eprintln!(
            "[node] control plane in {:.1} s, node Ready in {:.1} s",
            plane.startup.as_secs_f64(),
            node.startup.as_secs_f64()
        );
        let helm = sitewise_testcluster::built_tool("HELM_BIN", &repo(), "scripts/build-helm.sh")?;
        Ok(Self {
            node,
            plane,
            _network: network,
            helm,
            kubectl: PathBuf::from("kubectl"),
        })
    }

    fn kubeconfig(&self) -> String {
        self.plane.kubeconfig.to_string_lossy().into_owned()
    }

    fn helm(&self, args: &[&str]) -> anyhow::Result<String> {
        let kubeconfig = self.kubeconfig();
        let mut all = vec!["--kubeconfig", kubeconfig.as_str()];
        all.extend_from_slice(args);
        command(&self.helm, &all)
    }

    fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        let kubeconfig = self.kubeconfig();
        let mut all = vec!["--kubeconfig", kubeconfig.as_str()];
        all.extend_from_slice(args);
        command(&self.kubectl, &all)
    }

    /// Chart values for this cluster: the emulator's endpoint. The image comes from the
    /// packaged chart; the pods reach the API server through the `kubernetes` Service.
    fn values(&self, emulator: &str) -> anyhow::Result<PathBuf> {
        let path = self.plane.dir().join("values.yaml");
        let values = serde_json::json!({
            "replicaCount": 2,
            "sitewise": {"endpoint": emulator},
            "pollInterval": "500ms",
            "extraEnv": [
                {"name": "AWS_ACCESS_KEY_ID", "value": "emulator"},
                {"name": "AWS_SECRET_ACCESS_KEY", "value": "emulator"},
                {"name": "AWS_EC2_METADATA_DISABLED", "value": "true"},
            ],
        });
        std::fs::write(&path, serde_yaml::to_string(&values)?)?;
        Ok(path)
    }

    async fn lease_holder(&self) -> anyhow::Result<Option<String>> {
        let leases: Api<Lease> = Api::namespaced(self.plane.client().await?, NAMESPACE);
        Ok(leases
            .get_opt(RELEASE)
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty()))
    }
}

/// The user ID of each operator process running in the node's pods.
/// How an operator process runs in its container, as the kernel sees it.
#[derive(Debug, PartialEq)]
struct Confinement {
    uid: u32,
    effective_capabilities: String,
    root_read_only: bool,
}

/// The confinement of each operator process running in the node's pods.
fn operator_processes() -> Vec<Confinement> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            let cgroup = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
            comm.trim() == "sitewise-operat" && cgroup.contains("/sitewise-node/")
        })
        .filter_map(|e| {
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .map(str::to_string)
            };
            // The mount of "/" in the process's own mount namespace.
            let mounts = std::fs::read_to_string(e.path().join("mountinfo")).ok()?;
            let root = mounts.lines().find(|l| l.split(' ').nth(4) == Some("/"))?;
            let options = root.split(' ').nth(5)?;
            Some(Confinement {
                uid: field("Uid:")?.parse().ok()?,
                effective_capabilities: field("CapEff:")?,
                root_read_only: options.split(',').any(|o| o == "ro"),
            })
        })
        .collect()
}

async fn delete_plant_through_the_pods(
    cluster: &Cluster,
    emulator: &Emulator,
) -> anyhow::Result<()> {
    let seed = serde_json::from_str(&std::fs::read_to_string(
        repo().join("deploy/samples/plant-seed.json"),
    )?)?;
    let seeded = sitewise_emulator::seed::apply(&mut emulator.store(), &seed)
        .map_err(|e| anyhow::anyhow!("seed: {}", e.message))?;
    cluster.kubectl(&["create", "namespace", PLANT])?;
    cluster.kubectl(&[
        "apply",
        "-n",
        PLANT,
        "-f",
        "deploy/samples/plant-adopt.yaml",
    ])?;
    let api: Api<SiteWiseAsset> = Api::namespaced(cluster.plane.client().await?, PLANT);
    let count = seeded.assets.len();
    eventually("the plant is Ready", Duration::from_secs(120), || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        let ready = list.items.iter().filter(|o| is_ready(o)).count();
        (list.items.len() == count && ready == count).then_some(())
    })
    .await?;
    cluster.kubectl(&[
        "delete",
        "-n",
        PLANT,
        "-f",
        "deploy/samples/plant-adopt.yaml",
        "--wait=false",
    ])?;
    eventually("the plant is deleted", Duration::from_secs(120), || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        list.items.is_empty().then_some(())
    })
    .await?;
    let store = emulator.store();
    let deletes: Vec<_> = store
        .journal()
        .iter()
        .filter(|e| e.operation == Op::DeleteAsset && e.status < 300 && !e.replay)
        .filter_map(|e| e.resolved_id.clone())
        .collect();
    let mut unique = deletes.clone();
    unique.sort();
    unique.dedup();
    ensure!(
        deletes.len() == count && unique.len() == count,
        "{} effective DeleteAsset for {count} assets",
        deletes.len()
    );
    Ok(())
}

fn is_ready(obj: &SiteWiseAsset) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// The emulator image runs in the cluster from `deploy/emulator.yaml` (for users' demos and
/// CI) and answers through its Service, as kube-proxy routes it.
async fn emulator_runs_in_the_cluster(cluster: &Cluster, tag: &str) -> anyhow::Result<()> {
    let manifest = std::fs::read_to_string(repo().join("deploy/emulator.yaml"))?;
    ensure!(manifest.contains("image: sitewise-emulator:0.1.0"));
    let manifest = manifest.replace(
        "image: sitewise-emulator:0.1.0",
        &format!("image: localhost/sitewise-emulator:{tag}"),
    );
    let path = cluster.plane.dir().join("emulator.yaml");
    std::fs::write(&path, manifest)?;
    cluster.kubectl(&["apply", "-n", PLANT, "-f", &path.to_string_lossy()])?;
    cluster.kubectl(&[
        "rollout",
        "status",
        "-n",
        PLANT,
        "deployment/sitewise-emulator",
        "--timeout=60s",
    ])?;
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(cluster.plane.client().await?, PLANT);
    let ip = services
        .get("sitewise-emulator")
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .context("the Service has no cluster IP")?;
    let addr = format!("{ip}:4566");
    // Until the node routes the new Service, its IP goes out the default route, where the
    // machine's network may answer (a 426 from a proxy was seen): only a 200 is the emulator.
    eventually(
        "the emulator's health (200) through its Service",
        Duration::from_secs(30),
        || async {
            http_get(&addr, "/_emulator/health")
                .await
                .ok()
                .filter(|(code, _)| *code == 200)
        },
    )
    .await?;
    Ok(())
}

async fn pods(cluster: &Cluster) -> anyhow::Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(cluster.plane.client().await?, NAMESPACE);
    Ok(api.list(&ListParams::default()).await?.items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chart_on_a_real_node() -> anyhow::Result<()> {
    let first_tag = "0.1.0-node.1";
    let release = build_release(first_tag)?;
    let cluster = Cluster::start().await?;
    cluster.node.load_image(&release.operator_image)?;
    let settings = Settings {
        quotas: Quotas {
            enabled: false,
            ..Default::default()
        },
        ..Settings::default()
    };
    let emulator = Emulator::start((NODE_ADDRESS, 0).into(), settings).await?;
    let chart = release.chart.to_string_lossy();
    let chart = chart.as_ref();

    let started = Instant::now();
    let values = cluster.values(&emulator.endpoint())?;
    let values = values.to_string_lossy();
    cluster.helm(&[
        "install",
        RELEASE,
        chart,
        "-n",
        NAMESPACE,
        "--create-namespace",
        "-f",
        &values,
        "--wait",
        "--timeout",
        "180s",
    ])?;
    eprintln!(
        "[node] helm install --wait: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let deployments: Api<Deployment> = Api::namespaced(cluster.plane.client().await?, NAMESPACE);
    let available = deployments
        .get(RELEASE)
        .await?
        .status
        .and_then(|s| s.available_replicas);
    ensure!(available == Some(2), "available replicas: {available:?}");
    // The chart's securityContext holds: non-root, no capability, read-only root.
    let confined = Confinement {
        uid: 65532,
        effective_capabilities: "0000000000000000".into(),
        root_read_only: true,
    };
    let processes = operator_processes();
    ensure!(
        processes.len() == 2 && processes.iter().all(|p| *p == confined),
        "operator processes: {processes:?}"
    );

    delete_plant_through_the_pods(&cluster, &emulator).await?;
    cluster.node.load_image(&release.emulator_image)?;
    emulator_runs_in_the_cluster(&cluster, first_tag).await?;

    // A new image tag: a rolling update that completes because standbys are ready.
    let second_tag = "0.1.0-node.2";
    command(
        Path::new("ctr"),
        &[
            "--address",
            &cluster
                .node
                .dir()
                .join("containerd/containerd.sock")
                .to_string_lossy(),
            "-n",
            "k8s.io",
            "images",
            "tag",
            &format!("localhost/sitewise-operator:{first_tag}"),
            &format!("localhost/sitewise-operator:{second_tag}"),
        ],
    )?;
    let started = Instant::now();
    cluster.helm(&[
        "upgrade",
        RELEASE,
        chart,
        "-n",
        NAMESPACE,
        "-f",
        &values,
        "--set",
        &format!("image.tag={second_tag}"),
        "--wait",
        "--timeout",
        "180s",
    ])?;
    cluster.kubectl(&[
        "rollout",
        "status",
        "-n",
        NAMESPACE,
        &format!("deployment/{RELEASE}"),
        "--timeout=180s",
    ])?;
    eprintln!(
        "[node] helm upgrade + rollout: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let running: Vec<Pod> = pods(&cluster)
        .await?
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    ensure!(running.len() == 2);
    for pod in &running {
        let image = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone());
        ensure!(
            image.as_deref().is_some_and(|i| i.ends_with(second_tag)),
            "{image:?}"
        );
    }

    // Failover: the leader pod is deleted (SIGTERM); the standby takes the released Lease.
    let standbys: Vec<_> = running
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    // A pod of the old release may hold the Lease for a moment while it is stopped.
    let leader = eventually(
        "a leader of the new release",
        Duration::from_secs(60),
        || async {
            cluster
                .lease_holder()
                .await
                .ok()
                .flatten()
                .filter(|h| standbys.contains(h))
        },
    )
    .await?;
    // Both replicas are ready and serve /metrics on their pod address; the leader's gauge
    // says so, the standby's does not.
    for pod in &running {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .context("pod IP")?;
        let admin = format!("{ip}:8080");
        let (code, body) = http_get(&admin, "/readyz").await?;
        ensure!(code == 200, "{admin}/readyz: {code} {body}");
        let gauge = format!("sitewise_operator_leader {}", u8::from(name == leader));
        eventually(
            &format!("{name} reports {gauge}"),
            Duration::from_secs(10),
            || async {
                let (code, metrics) = http_get(&admin, "/metrics").await.ok()?;
                (code == 200 && metrics.lines().any(|l| l == gauge)).then_some(())
            },
        )
        .await?;
    }
    let pod_api: Api<Pod> = Api::namespaced(cluster.plane.client().await?, NAMESPACE);
    // The leader's own account of its shutdown, read while it stops.
    let leader_log = cluster.plane.dir().join("leader.log");
    let mut follow = Command::new(&cluster.kubectl)
        .args([
            "--kubeconfig",
            &cluster.kubeconfig(),
            "logs",
            "-f",
            "-n",
            NAMESPACE,
            &leader,
        ])
        .stdout(std::fs::File::create(&leader_log)?)
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deleted = Instant::now();
    pod_api.delete(&leader, &DeleteParams::default()).await?;
    let successor = eventually("a new leader", Duration::from_secs(60), || async {
        cluster
            .lease_holder()
            .await
            .ok()
            .flatten()
            .filter(|h| *h != leader)
    })
    .await?;
    eprintln!(
        "[node] failover after deleting the leader pod: {:.2} s (lease duration 15 s); {leader} -> {successor}",
        deleted.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = follow.kill();
    let _ = follow.wait();
    for line in std::fs::read_to_string(&leader_log)?.lines() {
        if ["shutdown", "released", "stopped", "lease"]
            .iter()
            .any(|w| line.contains(w))
        {
            eprintln!("[node] old leader: {line}");
        }
    }
    // The successor is a live pod of the release: the standby, or the leader's replacement
    // when it starts first (both try for the released Lease).
    let live: Vec<String> = pods(&cluster)
        .await?
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect();
    ensure!(
        live.contains(&successor),
        "{successor} took over; live pods: {live:?}"
    );
    Ok(())
}

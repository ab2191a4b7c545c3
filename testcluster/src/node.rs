//! A real node for the test control plane: containerd and runc (Debian's packages) as the
//! container runtime, the bridge CNI plugin for the pod network, and kubelet, kube-proxy and
//! kube-scheduler built from the same Kubernetes version as the API server
//! (`scripts/build-node.sh`).
//!
//! Needs root, as any kubelet does. Choices that fit these machines:
//! - The pod network is one Linux bridge, [`BRIDGE`], whose address [`NODE_ADDRESS`] is also
//!   where the API server listens (start it with [`crate::Options`]`{ address: NODE_ADDRESS }`):
//!   a loopback address cannot back a Service. kube-proxy (iptables mode) makes Services work,
//!   the `kubernetes` Service that in-cluster clients use among them; its rules are removed
//!   when the node stops.
//! - containerd restricts `oom_score_adj` to values it may set itself
//!   (`restrict_oom_score_adj`): lowering it needs CAP_SYS_RESOURCE, which these machines drop.
//! - Pods live under their own cgroup root ([`CGROUP_ROOT`]), so stopping the node kills
//!   exactly their processes.
//!
//! Dropping the [`Node`] stops every pod, the runtime and the node's daemons, unmounts what
//! they mounted and removes the bridge.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::api::Api;

use crate::{ControlPlane, Process};

pub const BRIDGE: &str = "swnode0";
pub const NODE_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 1);
pub const NODE_NAME: &str = "sitewise-node";
const POD_SUBNET: &str = "10.89.0.0/24";
const CGROUP_ROOT: &str = "sitewise-node";
/// The sandbox image, built FROM scratch from the pause binary and imported at start.
const PAUSE_IMAGE: &str = "localhost/pause:3.10";

/// Where the node binaries are: `SITEWISE_NODE_BINARIES`, or what `scripts/build-node.sh`
/// builds or finds in its cache.
pub fn binaries_dir(repo_root: &Path) -> anyhow::Result<PathBuf> {
    crate::built_tool("SITEWISE_NODE_BINARIES", repo_root, "scripts/build-node.sh")
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The pod network's bridge, with the node's address. Create it before the control plane,
/// which listens on that address. Removed on drop.
pub struct PodNetwork(());

impl PodNetwork {
    pub fn create() -> anyhow::Result<Self> {
        // A bridge left by a run that was killed is replaced.
        let _ = run("ip", &["link", "del", BRIDGE]);
        run("ip", &["link", "add", BRIDGE, "type", "bridge"])
            .context("creating the pod bridge (the node needs root)")?;
        run(
            "ip",
            &["addr", "add", &format!("{NODE_ADDRESS}/24"), "dev", BRIDGE],
        )?;
        run("ip", &["link", "set", BRIDGE, "up"])?;
        Ok(Self(()))
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", BRIDGE]);
    }
}

/// A running node registered with the control plane.
pub struct Node {
    // Field order is drop order: the scheduler and kubelet stop before the runtime.
    scheduler: Option<Process>,
    proxy: Option<Process>,
    proxy_bin: PathBuf,
    kubelet: Option<Process>,
    containerd: Option<Process>,
    dir: PathBuf,
    socket: PathBuf,
    /// Seconds from the start of containerd to a Ready node.
    pub startup: Duration,
}

impl Node {
    /// Starts containerd, kubelet and kube-scheduler against `plane` (started on
    /// [`NODE_ADDRESS`] with workloads) and waits until the node is Ready.
    pub async fn start(plane: &ControlPlane, bin_dir: &Path) -> anyhow::Result<Self> {
        let started = Instant::now();
        for bin in ["kubelet", "kube-proxy", "kube-scheduler", "pause"] {
            if !bin_dir.join(bin).is_file() {
                bail!(
                    "{bin} not found in {}; run scripts/build-node.sh",
                    bin_dir.display()
                );
            }
        }
        let dir = plane.dir().join("node");
        std::fs::create_dir_all(dir.join("cni"))?;
        let socket = dir.join("containerd/containerd.sock");
        create_cgroup_root()?;
        std::fs::write(dir.join("cni/10-sitewise-node.conflist"), cni_config(&dir))?;
        std::fs::write(
            dir.join("containerd.toml"),
            containerd_config(&dir, &socket),
        )?;
        let containerd = Process::spawn(
            "containerd",
            Path::new("containerd"),
            &[format!(
                "--config={}",
                dir.join("containerd.toml").display()
            )],
            &dir,
        )?;
        let mut node = Self {
            scheduler: None,
            proxy: None,
            proxy_bin: bin_dir.join("kube-proxy"),
            kubelet: None,
            containerd: Some(containerd),
            dir: dir.clone(),
            socket,
            startup: Duration::ZERO,
        };
        node.wait_for_runtime().await?;
        node.load_image(&pause_archive(bin_dir, &dir)?)?;

        std::fs::write(
            dir.join("kubelet.yaml"),
            kubelet_config(&node.socket, &dir)?,
        )?;
        node.kubelet = Some(Process::spawn(
            "kubelet",
            &bin_dir.join("kubelet"),
            &[
                format!("--config={}", dir.join("kubelet.yaml").display()),
                format!("--kubeconfig={}", plane.kubeconfig.display()),
                format!("--root-dir={}", dir.join("kubelet").display()),
                format!("--hostname-override={NODE_NAME}"),
                format!("--node-ip={NODE_ADDRESS}"),
            ],
            &dir,
        )?);
        let local = std::net::Ipv4Addr::LOCALHOST;
        node.proxy = Some(Process::spawn(
            "kube-proxy",
            &node.proxy_bin,
            &[
                format!("--kubeconfig={}", plane.kubeconfig.display()),
                format!("--hostname-override={NODE_NAME}"),
                format!("--cluster-cidr={POD_SUBNET}"),
                "--proxy-mode=iptables".into(),
                format!(
                    "--healthz-bind-address=127.0.0.1:{}",
                    crate::free_port(local)?
                ),
                format!(
                    "--metrics-bind-address=127.0.0.1:{}",
                    crate::free_port(local)?
                ),
                // Leave the machine's conntrack settings as they are.
                "--conntrack-max-per-core=0".into(),
                "--conntrack-tcp-timeout-established=0".into(),
                "--conntrack-tcp-timeout-close-wait=0".into(),
            ],
            &dir,
        )?);
        node.scheduler = Some(Process::spawn(
            "kube-scheduler",
            &bin_dir.join("kube-scheduler"),
            &[
                format!("--kubeconfig={}", plane.kubeconfig.display()),
                "--leader-elect=false".into(),
                "--secure-port=0".into(),
            ],
            &dir,
        )?);
        node.wait_ready(&plane.client().await?).await?;
        node.startup = started.elapsed();
        Ok(node)
    }

    /// Imports an OCI archive (`buildah push ... oci-archive:`) into the node's image store,
    /// where the kubelet finds it without pulling.
    pub fn load_image(&self, archive: &Path) -> anyhow::Result<()> {
        let socket = self.socket.to_string_lossy();
        let archive = archive.to_string_lossy();
        run(
            "ctr",
            &[
                "--address",
                &socket,
                "-n",
                "k8s.io",
                "images",
                "import",
                &archive,
            ],
        )?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    async fn wait_for_runtime(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.socket.exists() {
            if let Some(containerd) = self.containerd.as_mut() {
                containerd.check_alive()?;
            }
            if Instant::now() > deadline {
                bail!("containerd did not open {}", self.socket.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn wait_ready(&mut self, client: &kube::Client) -> anyhow::Result<()> {
        let nodes: Api<NodeObject> = Api::all(client.clone());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            for process in [
                &mut self.kubelet,
                &mut self.proxy,
                &mut self.scheduler,
                &mut self.containerd,
            ]
            .into_iter()
            .flatten()
            {
                process.check_alive()?;
            }
            let ready = nodes.get_opt(NODE_NAME).await?.is_some_and(|n| {
                n.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                let tail = self.kubelet.as_ref().map(Process::log_tail);
                bail!(
                    "node {NODE_NAME} not Ready in 120 s; kubelet log:\n{}",
                    tail.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.scheduler = None;
        if self.proxy.take().is_some() {
            // Removes the KUBE-* chains it wrote into the machine's iptables.
            let _ = Command::new(&self.proxy_bin)
                .arg("--cleanup")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        self.kubelet = None;
        remove_kubelet_iptables_chains();
        kill_cgroup_tree();
        self.containerd = None;
        // containerd's shims outlive it; their command line names its socket.
        kill_processes_naming(&self.socket.to_string_lossy());
        unmount_under(&self.dir);
        remove_cgroup_root();
    }
}

/// The chains every kubelet writes into the machine's iptables (a martian-packet guard and
/// canaries), which outlive it.
fn remove_kubelet_iptables_chains() {
    let rules: &[&[&str]] = &[
        &["-t", "filter", "-D", "INPUT", "-j", "KUBE-FIREWALL"],
        &["-t", "filter", "-D", "OUTPUT", "-j", "KUBE-FIREWALL"],
        &["-t", "filter", "-F", "KUBE-FIREWALL"],
        &["-t", "filter", "-X", "KUBE-FIREWALL"],
        &["-t", "filter", "-X", "KUBE-KUBELET-CANARY"],
        &["-t", "nat", "-X", "KUBE-KUBELET-CANARY"],
        &["-t", "mangle", "-X", "KUBE-KUBELET-CANARY"],
        &["-t", "mangle", "-X", "KUBE-IPTABLES-HINT"],
    ];
    for program in ["iptables", "ip6tables"] {
        for rule in rules {
            let _ = Command::new(program)
                .args(*rule)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

fn cni_config(dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "sitewise-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": dir.join("cni-ipam"),
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_ADDRESS.to_string()}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
    .to_string()
}

fn containerd_config(dir: &Path, socket: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
[grpc]
  address = "{socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
"#,
        socket = socket.display()
    )
}

fn kubelet_config(socket: &Path, dir: &Path) -> anyhow::Result<String> {
    let endpoint = format!("unix://{}", socket.display());
    let port = crate::free_port(NODE_ADDRESS)?;
    Ok(serde_json::json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        // Listens on the node's bridge address only; the API server calls it for logs.
        "authentication": {"anonymous": {"enabled": true}, "webhook": {"enabled": false}},
        "authorization": {"mode": "AlwaysAllow"},
        "address": NODE_ADDRESS.to_string(),
        "port": port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": format!("/{CGROUP_ROOT}"),
        "failSwapOn": false,
        "failCgroupV1": false,
        "containerRuntimeEndpoint": endpoint,
        "imageServiceEndpoint": endpoint,
        "enforceNodeAllocatable": [],
        "evictionHard": {},
        "localStorageCapacityIsolation": false,
        "resolvConf": "",
        "staticPodPath": "",
        "podLogsDir": dir.join("pod-logs"),
    })
    .to_string())
}

/// The pause binary as a FROM-scratch image archive (what containerd runs as each sandbox).
fn pause_archive(bin_dir: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let context = dir.join("pause-image");
    std::fs::create_dir_all(&context)?;
    std::fs::copy(bin_dir.join("pause"), context.join("pause"))?;
    std::fs::write(
        context.join("Containerfile"),
        "FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT [\"/pause\"]\n",
    )?;
    let storage = dir.join("buildah");
    let root = format!("--root={}", storage.join("root").display());
    let runroot = format!("--runroot={}", storage.join("run").display());
    let archive = dir.join("pause.tar");
    let buildah = |args: &[&str]| {
        let mut all = vec!["--storage-driver=vfs", root.as_str(), runroot.as_str()];
        all.extend_from_slice(args);
        run("buildah", &all)
    };
    buildah(&[
        "bud",
        "--quiet",
        "--layers=false",
        "-t",
        PAUSE_IMAGE,
        &context.to_string_lossy(),
    ])?;
    buildah(&[
        "push",
        "--quiet",
        PAUSE_IMAGE,
        &format!("oci-archive:{}:{PAUSE_IMAGE}", archive.display()),
    ])?;
    let _ = std::fs::remove_dir_all(&storage);
    Ok(archive)
}

/// The cgroup v1 hierarchies (or the v2 root) the node's pods live in.
fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").is_file() {
        return vec![base.join(CGROUP_ROOT)];
    }
    std::fs::read_dir(base)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.ends_with("unified"))
                .map(|p| p.join(CGROUP_ROOT))
                .collect()
        })
        .unwrap_or_default()
}

fn create_cgroup_root() -> anyhow::Result<()> {
    remove_cgroup_root();
    for root in cgroup_roots() {
        std::fs::create_dir_all(&root)
            .with_context(|| format!("creating cgroup {}", root.display()))?;
    }
    Ok(())
}

/// Every cgroup under the node's root, deepest first.
fn cgroup_tree() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&entry.path(), out);
                }
            }
        }
        out.push(dir.to_path_buf());
    }
    let mut out = Vec::new();
    for root in cgroup_roots() {
        if root.is_dir() {
            walk(&root, &mut out);
        }
    }
    out
}

fn kill(pid: &str) {
    let _ = Command::new("kill")
        .args(["-KILL", pid])
        .stderr(std::process::Stdio::null())
        .status();
}

fn kill_cgroup_tree() {
    for _ in 0..20 {
        let mut alive = false;
        for cgroup in cgroup_tree() {
            let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.split_whitespace() {
                alive = true;
                kill(pid);
            }
        }
        if !alive {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn remove_cgroup_root() {
    kill_cgroup_tree();
    for cgroup in cgroup_tree() {
        let _ = std::fs::remove_dir(&cgroup);
    }
}

fn kill_processes_naming(needle: &str) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            kill(pid);
        }
    }
}

/// Lazily unmounts every mount under `dir` (volumes, network namespaces, container roots),
/// deepest first, so that the directory can be removed.
fn unmount_under(dir: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Command::new("umount").args(["-l", point]).status();
    }
}

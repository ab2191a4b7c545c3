//! A real Kubernetes control plane for tests and the demo: etcd, kube-apiserver and
//! kube-controller-manager (namespace, garbage-collector, service-account and ClusterRole
//! aggregation controllers) on free loopback ports in a temporary directory.
//!
//! With [`Options::workloads`] the control plane also runs what pods need (the ServiceAccount
//! admission plugin, the Deployment, ReplicaSet, EndpointSlice, node-lifecycle and root-CA
//! publisher controllers, the `kubernetes` Service's endpoints), and [`node::Node`] adds a real node
//! (kubelet, containerd, CNI, kube-proxy, scheduler).
//!
//! Binaries come from `KUBEBUILDER_ASSETS` (the envtest convention) or, when unset, from
//! `scripts/build-control-plane.sh`, which builds them from the Go module proxy into a cache
//! under `$HOME`. Everything started is killed when the [`ControlPlane`] is dropped.

pub mod node;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use rand::Rng;

const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the control-plane binaries are.
pub fn binaries_dir(repo_root: &Path) -> anyhow::Result<PathBuf> {
    built_tool(
        "KUBEBUILDER_ASSETS",
        repo_root,
        "scripts/build-control-plane.sh",
    )
}

/// The path in `env_var` when set; otherwise the last line printed by the repository's
/// idempotent build script `script` (which builds into, or reuses, a cache under `$HOME`).
pub fn built_tool(env_var: &str, repo_root: &Path, script: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        return Ok(PathBuf::from(path));
    }
    let script = repo_root.join(script);
    eprintln!("[testcluster] locating {env_var} with {}", script.display());
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout
        .lines()
        .last()
        .with_context(|| format!("{} printed no path", script.display()))?;
    Ok(PathBuf::from(path.trim()))
}

fn free_port(address: Ipv4Addr) -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind((address, 0))?
        .local_addr()?
        .port())
}

/// How the control plane is started.
#[derive(Clone, Debug)]
pub struct Options {
    /// The API server's address (loopback by default; the node's bridge address when pods
    /// must reach it).
    pub address: Ipv4Addr,
    /// Run what Deployments and pods need, for a cluster with a [`node::Node`].
    pub workloads: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            address: Ipv4Addr::LOCALHOST,
            workloads: false,
        }
    }
}

/// A child process with its log file, killed on drop.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, bin: &Path, args: &[String], dir: &Path) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .args(args)
            .stdout(file.try_clone()?)
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Self { name, child, log })
    }

    /// Fails with the log tail if the process has exited.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); log tail:\n{}",
                self.name,
                self.log_tail()
            );
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running control plane.
pub struct ControlPlane {
    // Field order is drop order: controllers first, etcd last.
    _controller_manager: Process,
    /// `None` while stopped for an outage ([`ControlPlane::stop_apiserver`]).
    apiserver: Option<Process>,
    apiserver_bin: PathBuf,
    apiserver_args: Vec<String>,
    _etcd: Process,
    dir: tempfile::TempDir,
    pub server: String,
    pub kubeconfig: PathBuf,
    token: String,
    /// Seconds from spawn to a ready API server with the `default` namespace.
    pub startup: Duration,
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager and waits until they serve.
    pub async fn start(bin_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(bin_dir, &Options::default()).await
    }

    /// [`ControlPlane::start`] with `options`.
    pub async fn start_with(bin_dir: &Path, options: &Options) -> anyhow::Result<Self> {
        let started = Instant::now();
        for bin in ["etcd", "kube-apiserver", "kube-controller-manager"] {
            if !bin_dir.join(bin).is_file() {
                bail!(
                    "{bin} not found in {}; run scripts/build-control-plane.sh",
                    bin_dir.display()
                );
            }
        }
        let dir = tempfile::Builder::new().prefix("sitewise-cp-").tempdir()?;
        let root = dir.path().to_path_buf();
        let local = Ipv4Addr::LOCALHOST;
        let (etcd_port, peer_port) = (free_port(local)?, free_port(local)?);
        let api_port = free_port(options.address)?;
        let address = options.address;

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut etcd = Process::spawn(
            "etcd",
            &bin_dir.join("etcd"),
            &[
                "--name=default".into(),
                format!("--data-dir={}", root.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ],
            &root,
        )?;
        wait_for_etcd(&mut etcd, &etcd_url).await?;

        let token: String = {
            let mut rng = rand::rng();
            (0..32)
                .map(|_| format!("{:02x}", rng.random::<u8>()))
                .collect()
        };
        std::fs::write(
            root.join("tokens.csv"),
            format!("{token},admin,admin-uid,\"system:masters\"\n"),
        )?;
        let sa_key = root.join("sa.key");
        let status = Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(&sa_key)
            .status()
            .context("running openssl to create the service-account signing key")?;
        if !status.success() {
            bail!("openssl could not create {}", sa_key.display());
        }
        let pki = root.join("pki");
        std::fs::create_dir_all(&pki)?;
        let mut apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            format!("--bind-address={address}"),
            format!("--secure-port={api_port}"),
            format!("--advertise-address={address}"),
            format!("--cert-dir={}", pki.display()),
            format!("--token-auth-file={}", root.join("tokens.csv").display()),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            format!("--service-account-key-file={}", sa_key.display()),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--allow-privileged=true".into(),
            "--profiling=false".into(),
        ];
        if options.workloads {
            // The node has no DNS name; `kubectl logs` reaches its kubelet by address.
            apiserver_args.push("--kubelet-preferred-address-types=InternalIP".into());
        } else {
            // A loopback address cannot back the `kubernetes` Service's endpoints.
            apiserver_args.push("--endpoint-reconciler-type=none".into());
            // No pods run: nothing mounts ServiceAccount tokens.
            apiserver_args.push("--disable-admission-plugins=ServiceAccount".into());
        }
        let apiserver_bin = bin_dir.join("kube-apiserver");
        let mut apiserver =
            Process::spawn("kube-apiserver", &apiserver_bin, &apiserver_args, &root)?;
        let server = format!("https://{address}:{api_port}");
        let cert = pki.join("apiserver.crt");
        let deadline = Instant::now() + START_TIMEOUT;
        while !cert.is_file() {
            apiserver.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver wrote no certificate in time:\n{}",
                    apiserver.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The file may still be being written: wait until it has a whole certificate.
        let ca = loop {
            let pem = std::fs::read_to_string(&cert).unwrap_or_default();
            if pem.contains("END CERTIFICATE") {
                break pem;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let kubeconfig = root.join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(&server, &ca, &token, None))?;

        let plane_client = client_from(&kubeconfig).await?;
        wait_ready(&plane_client, &mut apiserver, deadline).await?;

        let mut controllers = vec![
            "namespace-controller",
            "garbage-collector-controller",
            "serviceaccount-controller",
            "clusterrole-aggregation-controller",
        ];
        let mut manager_args = vec![
            format!("--kubeconfig={}", kubeconfig.display()),
            "--leader-elect=false".into(),
            "--secure-port=0".into(),
            "--use-service-account-credentials=false".into(),
        ];
        if options.workloads {
            controllers.extend([
                "deployment-controller",
                "replicaset-controller",
                "endpointslice-controller",
                "node-lifecycle-controller",
                "root-ca-certificate-publisher-controller",
            ]);
            // Published to every namespace as kube-root-ca.crt, the CA pods trust.
            manager_args.push(format!("--root-ca-file={}", cert.display()));
        }
        manager_args.push(format!("--controllers={}", controllers.join(",")));
        let controller_manager = Process::spawn(
            "kube-controller-manager",
            &bin_dir.join("kube-controller-manager"),
            &manager_args,
            &root,
        )?;
        Ok(Self {
            _controller_manager: controller_manager,
            apiserver: Some(apiserver),
            apiserver_bin,
            apiserver_args,
            _etcd: etcd,
            dir,
            server,
            kubeconfig,
            token,
            startup: started.elapsed(),
        })
    }

    /// Stops kube-apiserver (SIGKILL): every client is refused until it is started again.
    pub fn stop_apiserver(&mut self) {
        self.apiserver = None;
    }

    /// Starts kube-apiserver again with the same port, certificates and etcd, and waits until
    /// it serves.
    pub async fn start_apiserver(&mut self) -> anyhow::Result<()> {
        let mut apiserver = Process::spawn(
            "kube-apiserver",
            &self.apiserver_bin,
            &self.apiserver_args,
            self.dir.path(),
        )?;
        let client = client_from(&self.kubeconfig).await?;
        wait_ready(&client, &mut apiserver, Instant::now() + START_TIMEOUT).await?;
        self.apiserver = Some(apiserver);
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the working directory (logs) after the control plane stops.
    pub fn keep_dir(&mut self) {
        self.dir.disable_cleanup(true);
    }

    /// An admin client (`system:masters`).
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        client_from(&self.kubeconfig).await
    }

    /// A kubeconfig that authenticates with `token` (e.g. a ServiceAccount token).
    pub fn kubeconfig_with_token(&self, token: &str) -> anyhow::Result<String> {
        let ca = std::fs::read_to_string(self.dir.path().join("pki/apiserver.crt"))?;
        Ok(kubeconfig_yaml(&self.server, &ca, token, None))
    }

    pub fn admin_token(&self) -> &str {
        &self.token
    }

    /// Applies the CustomResourceDefinitions in `yaml` (one or more documents) and waits until
    /// each is Established.
    pub async fn install_crds(&self, yaml: &str) -> anyhow::Result<()> {
        let client = self.client().await?;
        let api: Api<CustomResourceDefinition> = Api::all(client);
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let value =
                serde_json::to_value(<serde_yaml::Value as serde::Deserialize>::deserialize(doc)?)?;
            if value.is_null() {
                continue;
            }
            let crd: CustomResourceDefinition = serde_json::from_value(value)?;
            let name = crd.metadata.name.clone().context("CRD without a name")?;
            api.patch(
                &name,
                &PatchParams::apply("sitewise-testcluster").force(),
                &Patch::Apply(&crd),
            )
            .await?;
            tokio::time::timeout(
                Duration::from_secs(30),
                await_condition(api.clone(), &name, conditions::is_crd_established()),
            )
            .await
            .with_context(|| format!("CRD {name} not Established in 30 s"))??;
        }
        Ok(())
    }
}

fn kubeconfig_yaml(server: &str, ca_pem: &str, token: &str, namespace: Option<&str>) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let ns = namespace
        .map(|n| format!("\n    namespace: {n}"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: sitewise-test
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: user
  user:
    token: {token}
contexts:
- name: sitewise-test
  context:
    cluster: sitewise-test
    user: user{ns}
current-context: sitewise-test
"
    )
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET path` over plain HTTP on `addr` (`host:port`): the status code and the body.
pub async fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status line")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// A client from a kubeconfig file.
pub async fn client_from(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(path)?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

async fn wait_for_etcd(etcd: &mut Process, url: &str) -> anyhow::Result<()> {
    let host = url.trim_start_matches("http://");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        etcd.check_alive()?;
        if let Ok((_, body)) = http_get(host, "/health").await
            && body.contains("\"health\":\"true\"")
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("etcd not healthy within 20 s:\n{}", etcd.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_ready(
    client: &kube::Client,
    apiserver: &mut Process,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        apiserver.check_alive()?;
        let request = http::Request::get("/readyz").body(Vec::new())?;
        if let Ok(text) = client.request_text(request).await
            && text.trim() == "ok"
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "kube-apiserver not ready in time:\n{}",
                apiserver.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    while namespaces.get_opt("default").await?.is_none() {
        if Instant::now() > deadline {
            bail!("namespace default did not appear");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

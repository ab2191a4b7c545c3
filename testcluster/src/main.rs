//! `sitewise-testcluster up`: starts the control plane for the demo or a shell session, writes
//! its kubeconfig, installs CRDs, and runs until SIGINT/SIGTERM, then stops everything.

use std::path::PathBuf;

use clap::Parser;
use sitewise_testcluster::{ControlPlane, binaries_dir};

#[derive(Debug, Parser)]
#[command(
    name = "sitewise-testcluster",
    about = "A local etcd + kube-apiserver + kube-controller-manager"
)]
enum Cli {
    /// Start the control plane and keep it running until interrupted.
    Up {
        /// Where to write the admin kubeconfig.
        #[arg(long)]
        kubeconfig: PathBuf,
        /// CRD manifests to install once the API server is ready.
        #[arg(long)]
        crds: Vec<PathBuf>,
        /// Keep the working directory (logs, etcd data) after stopping.
        #[arg(long)]
        keep: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli::Up {
        kubeconfig,
        crds,
        keep,
    } = Cli::parse();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bins = binaries_dir(&repo)?;
    eprintln!("[testcluster] starting etcd, kube-apiserver and kube-controller-manager");
    let mut plane = ControlPlane::start(&bins).await?;
    if keep {
        plane.keep_dir();
    }
    for crd in &crds {
        plane.install_crds(&std::fs::read_to_string(crd)?).await?;
    }
    std::fs::copy(&plane.kubeconfig, &kubeconfig)?;
    eprintln!(
        "[testcluster] ready in {:.1} s at {} (logs in {}); kubeconfig: {}",
        plane.startup.as_secs_f64(),
        plane.server,
        plane.dir().display(),
        kubeconfig.display()
    );
    println!("ready");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("[testcluster] stopping");
    drop(plane);
    Ok(())
}

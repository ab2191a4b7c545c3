//! Shutdown on SIGTERM (what the kubelet sends) or SIGINT. The handlers are installed when the
//! process starts, so no signal is lost in a phase that would not listen for it (a container's
//! first process ignores signals it has no handler for). The first signal asks every phase to
//! stop gracefully (a standby exits, the leader lets running reconciles finish and releases its
//! Lease); a second one exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A handle on the shutdown request; cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Installs the signal handlers and starts listening. Call inside the Tokio runtime.
    pub fn listen() -> anyhow::Result<Self> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!(
                "shutdown requested; stopping gracefully (a second signal stops at once)"
            );
            let _ = tx.send(true);
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("second shutdown signal; exiting now");
            std::process::exit(1);
        });
        Ok(Self(rx))
    }

    /// Resolves once shutdown has been requested.
    pub async fn requested(mut self) {
        // An error means the listener is gone, which only happens when the process exits.
        let _ = self.0.wait_for(|requested| *requested).await;
    }
}

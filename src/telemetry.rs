//! Logging set-up: tracing with an `RUST_LOG`-style filter (default `info`), as text or JSON.
//! Every line of a reconcile carries the resource (span fields `namespace`, `name`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    // kube-client's HTTP trace layer logs every failed request at ERROR, which floods the log
    // during an API-server outage; the operator logs each failed attempt itself, with the
    // resource, so that layer is off unless RUST_LOG asks for it.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube_client::client::builder=off"));
    // Colours only on a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

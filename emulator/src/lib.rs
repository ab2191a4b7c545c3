//! sitewise-emulator: a local AWS IoT SiteWise control plane that speaks the SiteWise REST-JSON
//! wire protocol, for local development, demos and tests of sitewise-operator.
//!
//! Modules: [`api`] (SiteWise routes), [`admin`] (the `/_emulator/` control API), [`store`]
//! (state and operations), [`validate`] (field rules), [`error`] (errors on the wire),
//! [`rules`] (answers where the reference is silent), [`quota`], [`faults`], [`seed`],
//! [`config`].

pub mod admin;
pub mod api;
pub mod config;
pub mod error;
pub mod faults;
pub mod ops;
pub mod quota;
pub mod rules;
pub mod seed;
pub mod store;
pub mod tenants;
pub mod validate;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::http::HeaderValue;
use axum::response::Response;

pub use config::Settings;
pub use store::Store;

/// The emulator state shared by all requests.
pub type Shared = Arc<Mutex<Store>>;

/// Locks the store; a handler that panicked cannot leave it half-updated in a way later
/// requests must not see, so a poisoned lock is taken over.
pub fn lock(store: &Shared) -> MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}

async fn add_request_id(mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-RequestId", id);
    }
    response
}

/// The whole HTTP surface: SiteWise routes and the admin API, each request served by the
/// state of its tenant (account and Region).
pub fn router(store: Shared, tenants: Arc<tenants::Tenants>) -> Router {
    Router::new()
        .merge(api::routes())
        .nest(admin::PREFIX, admin::routes())
        .fallback(api::unknown_operation)
        .layer(axum::middleware::map_response(add_request_id))
        .layer(axum::middleware::from_fn(api::aws_shaped_refusals))
        .layer(axum::middleware::from_fn(api::with_client_app))
        .layer(axum::middleware::from_fn_with_state(
            tenants,
            tenants::with_tenant,
        ))
        .with_state(store)
}

/// A running emulator; stops when dropped.
pub struct Emulator {
    addr: SocketAddr,
    store: Shared,
    tenants: Arc<tenants::Tenants>,
    task: tokio::task::JoinHandle<()>,
}

impl Emulator {
    /// Starts on `addr` (port 0 for an ephemeral port) in the current tokio runtime.
    pub async fn start(addr: SocketAddr, settings: Settings) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let store: Shared = Arc::new(Mutex::new(Store::new(settings.clone())));
        let tenants = Arc::new(tenants::Tenants::new(store.clone(), &settings));
        let app = router(store.clone(), tenants.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "emulator server stopped");
            }
        });
        Ok(Self {
            addr,
            store,
            tenants,
            task,
        })
    }

    /// Starts on an ephemeral loopback port.
    pub async fn start_local(settings: Settings) -> std::io::Result<Self> {
        Self::start(SocketAddr::from(([127, 0, 0, 1], 0)), settings).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL to give clients, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// The state of `account` in `region` (the emulator's own for its account and Region).
    pub fn tenant(&self, account: &str, region: &str) -> Shared {
        self.tenants.store(account, region)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

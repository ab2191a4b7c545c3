//! Several accounts and Regions, as SiteWise keeps them apart: each request is served by the
//! state of the account its credentials belong to, in the Region it was signed for (both read
//! from the SigV4 `Authorization` header: `Credential=<access key>/<date>/<region>/...`). The
//! account of an access key comes from `--account-key KEY=ACCOUNT`, else from STS (with
//! `--sts-endpoint`, a GetCallerIdentity made with that key, as a real STS would answer it),
//! else it is the emulator's own account. ARNs carry the tenant's account and Region. The
//! admin API picks a tenant with `?account=&region=`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Settings, Shared, Store};

tokio::task_local! {
    static TENANT: Shared;
}

/// The state of the tenant being served, or `default` outside a request.
pub fn current(default: &Shared) -> Shared {
    TENANT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| default.clone())
}

/// Every tenant's state.
pub struct Tenants {
    default: Shared,
    /// The emulator's own account and Region (the default state's).
    account: String,
    region: String,
    stores: Mutex<HashMap<(String, String), Shared>>,
    /// Access key -> account, as configured or learned from STS.
    keys: Mutex<HashMap<String, String>>,
    sts_endpoint: Option<String>,
}

impl Tenants {
    pub fn new(default: Shared, settings: &Settings) -> Self {
        let keys = settings.account_keys.clone().into_iter().collect();
        let sts_endpoint = settings.sts_endpoint.clone();
        Self {
            default,
            account: settings.account_id.clone(),
            region: settings.region.clone(),
            stores: Mutex::new(HashMap::new()),
            keys: Mutex::new(keys),
            sts_endpoint,
        }
    }

    /// The state of `account` in `region` (created empty on first use).
    pub fn store(&self, account: &str, region: &str) -> Shared {
        if account == self.account && region == self.region {
            return self.default.clone();
        }
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        stores
            .entry((account.to_string(), region.to_string()))
            .or_insert_with(|| {
                let settings = Settings {
                    account_id: account.to_string(),
                    region: region.to_string(),
                    ..crate::lock(&self.default).settings.clone()
                };
                Arc::new(Mutex::new(Store::new(settings)))
            })
            .clone()
    }

    /// Every tenant created so far, default first: `(account, region)`.
    pub fn list(&self) -> Vec<(String, String)> {
        let mut out = vec![(self.account.clone(), self.region.clone())];
        let stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        out.extend(stores.keys().cloned());
        out
    }

    async fn account_of(&self, access_key: &str, region: &str) -> String {
        let known = self
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(access_key)
            .cloned();
        if let Some(account) = known {
            return account;
        }
        let Some(endpoint) = &self.sts_endpoint else {
            return self.account.clone();
        };
        match caller_account(endpoint, access_key, region).await {
            Ok(account) => {
                self.keys
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(access_key.to_string(), account.clone());
                account
            }
            Err(e) => {
                tracing::warn!(error = %e, access_key, "STS did not name the key's account; serving the emulator's own");
                self.account.clone()
            }
        }
    }
}

/// `(access key, region)` from a SigV4 `Authorization` header.
pub fn credential_scope(authorization: &str) -> Option<(String, String)> {
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    let mut parts = scope.split('/');
    let key = parts.next()?.to_string();
    let _date = parts.next()?;
    let region = parts.next()?.to_string();
    (!key.is_empty() && !region.is_empty()).then_some((key, region))
}

/// Serves the request with the state of its tenant.
pub async fn with_tenant(
    State(tenants): State<Arc<Tenants>>,
    request: Request,
    next: Next,
) -> Response {
    let admin = request.uri().path().starts_with(crate::admin::PREFIX);
    let store = if admin {
        let query: HashMap<String, String> = request
            .uri()
            .query()
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        match (query.get("account"), query.get("region")) {
            (None, None) => tenants.default.clone(),
            (account, region) => tenants.store(
                account.unwrap_or(&tenants.account),
                region.unwrap_or(&tenants.region),
            ),
        }
    } else {
        let scope = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(credential_scope);
        match scope {
            Some((key, region)) => {
                let account = tenants.account_of(&key, &region).await;
                tenants.store(&account, &region)
            }
            None => tenants.default.clone(),
        }
    };
    TENANT.scope(store, next.run(request)).await
}

/// STS GetCallerIdentity with `access_key` (the request names the key as a signed request
/// would; the STS used in tests reads the caller from it without checking the signature).
async fn caller_account(endpoint: &str, access_key: &str, region: &str) -> anyhow::Result<String> {
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={access_key}/20260101/{region}/sts/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::TcpStream::connect(&host),
    )
    .await??;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_string(&mut answer),
    )
    .await??;
    let account = answer
        .split("<Account>")
        .nth(1)
        .and_then(|rest| rest.split("</Account>").next())
        .filter(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()))
        .ok_or_else(|| anyhow::anyhow!("no account in STS's answer: {answer}"))?;
    Ok(account.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_scope_names_the_key_and_region() {
        let header = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261129/eu-west-1/iotsitewise/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(
            credential_scope(header),
            Some(("ASIAEXAMPLE".into(), "eu-west-1".into()))
        );
        assert_eq!(credential_scope("Bearer x"), None);
    }
}

//! An in-memory [`SiteWise`] for unit tests: assets, hierarchy links, an asynchronous
//! DELETING -> gone transition, clientToken replay, scripted failures and a journal of calls.
//! It follows the same rules as the emulator (see `emulator/src/rules.rs`) so that unit tests
//! and end-to-end tests agree on what SiteWise does.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    AssetDescription, AssetState, AssociatedAsset, Direction, ErrorKind, Operation, SiteWise,
    SiteWiseError, SiteWiseResult,
};

/// One call the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub operation: Operation,
    /// Asset the call addressed (path `assetId`).
    pub target: String,
    /// Child asset for association calls.
    pub child: Option<String>,
    pub client_token: Option<String>,
    /// True when the call changed state (false for reads, failures and token replays).
    pub effective: bool,
}

#[derive(Clone, Debug)]
struct FakeAsset {
    description: AssetDescription,
    external_id: Option<String>,
    /// Describes still answered with DELETING before the asset disappears.
    deleting_polls_left: u32,
}

#[derive(Default)]
struct State {
    assets: HashMap<String, FakeAsset>,
    /// (parent, hierarchy, child)
    links: Vec<(String, String, String)>,
    scripted: VecDeque<(Operation, Option<String>, SiteWiseError)>,
    seen_tokens: HashMap<String, String>,
    /// Operations whose next response is lost after the effect was applied.
    lost_responses: Vec<Operation>,
    /// Assets removed right before the next call of an operation is handled.
    vanish_on: Vec<(Operation, String)>,
    journal: Vec<Call>,
    deleting_polls: u32,
}

/// The in-memory SiteWise. Cloning shares the same state.
#[derive(Clone, Default)]
pub struct FakeSiteWise {
    state: Arc<Mutex<State>>,
}

impl FakeSiteWise {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the state from the assertions that follow.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of DescribeAsset calls that still see DELETING after a DeleteAsset.
    pub fn set_deleting_polls(&self, polls: u32) {
        self.lock().deleting_polls = polls;
    }

    /// Adds an ACTIVE asset with the given hierarchies.
    pub fn add_asset(&self, id: &str, external_id: Option<&str>, hierarchy_ids: &[&str]) {
        let description = AssetDescription {
            id: id.to_string(),
            arn: format!("arn:aws:iotsitewise:us-east-1:123456789012:asset/{id}"),
            name: format!("asset {id}"),
            model_id: "00000000-0000-4000-8000-00000000000m".to_string(),
            state: AssetState::Active,
            error: None,
            hierarchy_ids: hierarchy_ids.iter().map(|h| h.to_string()).collect(),
        };
        self.lock().assets.insert(
            id.to_string(),
            FakeAsset {
                description,
                external_id: external_id.map(str::to_string),
                deleting_polls_left: 0,
            },
        );
    }

    pub fn link(&self, parent: &str, hierarchy: &str, child: &str) {
        self.lock()
            .links
            .push((parent.into(), hierarchy.into(), child.into()));
    }

    pub fn set_state(&self, id: &str, state: AssetState) {
        if let Some(asset) = self.lock().assets.get_mut(id) {
            asset.description.state = state;
        }
    }

    /// Removes an asset and its links at once, as if someone else deleted it.
    pub fn vanish(&self, id: &str) {
        let mut st = self.lock();
        st.assets.remove(id);
        st.links.retain(|(p, _, c)| p != id && c != id);
    }

    /// The next call of `operation` (on `target`, or on any asset) fails with `kind`.
    pub fn fail_next(&self, operation: Operation, target: Option<&str>, kind: ErrorKind) {
        let code = match kind {
            ErrorKind::Throttled => "ThrottlingException",
            ErrorKind::Conflict => "ConflictingOperationException",
            ErrorKind::NotFound => "ResourceNotFoundException",
            ErrorKind::Unavailable => "InternalFailureException",
            ErrorKind::InvalidRequest => "InvalidRequestException",
            ErrorKind::Permanent => "AccessDeniedException",
        };
        let err = SiteWiseError::new(operation, kind, code, "scripted failure");
        self.lock()
            .scripted
            .push_back((operation, target.map(str::to_string), err));
    }

    /// The next successful call of `operation` takes effect but its answer is lost (the
    /// caller sees a 500), as when a connection drops or the operator dies mid-call.
    pub fn lose_next_response(&self, operation: Operation) {
        self.lock().lost_responses.push(operation);
    }

    /// Right before the next call of `operation` is handled, `id` disappears (as if its own
    /// resource deleted it concurrently).
    pub fn vanish_on_next(&self, operation: Operation, id: &str) {
        self.lock().vanish_on.push((operation, id.to_string()));
    }

    pub fn exists(&self, id: &str) -> bool {
        self.lock().assets.contains_key(id)
    }

    pub fn state_of(&self, id: &str) -> Option<AssetState> {
        self.lock()
            .assets
            .get(id)
            .map(|a| a.description.state.clone())
    }

    pub fn links(&self) -> Vec<(String, String, String)> {
        self.lock().links.clone()
    }

    pub fn journal(&self) -> Vec<Call> {
        self.lock().journal.clone()
    }

    /// Calls of `operation` that changed state.
    pub fn effective_calls(&self, operation: Operation) -> Vec<Call> {
        self.journal()
            .into_iter()
            .filter(|c| c.operation == operation && c.effective)
            .collect()
    }

    pub fn calls(&self, operation: Operation) -> usize {
        self.journal()
            .iter()
            .filter(|c| c.operation == operation)
            .count()
    }
}

impl State {
    fn resolve(&self, operation: Operation, reference: &str) -> SiteWiseResult<String> {
        let found = match reference.strip_prefix("externalId:") {
            Some(ext) => self
                .assets
                .iter()
                .find(|(_, a)| a.external_id.as_deref() == Some(ext))
                .map(|(id, _)| id.clone()),
            None => self
                .assets
                .contains_key(reference)
                .then(|| reference.into()),
        };
        found.ok_or_else(|| {
            SiteWiseError::new(
                operation,
                ErrorKind::NotFound,
                "ResourceNotFoundException",
                format!("Asset {reference} does not exist"),
            )
        })
    }

    fn scripted_failure(&mut self, operation: Operation, target: &str) -> Option<SiteWiseError> {
        if let Some(index) = self.vanish_on.iter().position(|(op, _)| *op == operation) {
            let (_, id) = self.vanish_on.remove(index);
            self.assets.remove(&id);
            self.links.retain(|(p, _, c)| *p != id && *c != id);
        }
        let index = self
            .scripted
            .iter()
            .position(|(op, t, _)| *op == operation && t.as_deref().is_none_or(|t| t == target))?;
        self.scripted.remove(index).map(|(_, _, err)| err)
    }

    /// Journals a read of `target`, applies scripted failures and resolves the asset.
    fn begin_read(&mut self, op: Operation, target: &str) -> SiteWiseResult<String> {
        self.record(Call {
            operation: op,
            target: target.into(),
            child: None,
            client_token: None,
            effective: false,
        });
        if let Some(err) = self.scripted_failure(op, target) {
            return Err(err);
        }
        self.resolve(op, target)
    }

    fn record(&mut self, call: Call) {
        self.journal.push(call);
    }

    /// True when `token` was already used for exactly `fingerprint` (a replay); an error when
    /// it was used with other parameters. Only successful calls are remembered (`remember`).
    fn replayed(&self, token: &str, fingerprint: &str) -> SiteWiseResult<bool> {
        match self.seen_tokens.get(token) {
            Some(seen) if seen == fingerprint => Ok(true),
            Some(_) => Err(SiteWiseError::new(
                Operation::DeleteAsset,
                ErrorKind::InvalidRequest,
                "InvalidRequestException",
                "clientToken reused with different parameters",
            )),
            None => Ok(false),
        }
    }

    fn remember(&mut self, token: &str, fingerprint: String) {
        self.seen_tokens.insert(token.to_string(), fingerprint);
    }

    fn take_lost_response(&mut self, operation: Operation) -> Option<SiteWiseError> {
        let index = self.lost_responses.iter().position(|op| *op == operation)?;
        self.lost_responses.remove(index);
        Some(SiteWiseError::new(
            operation,
            ErrorKind::Unavailable,
            "InternalFailureException",
            "response lost",
        ))
    }

    fn busy(operation: Operation, asset: &FakeAsset) -> SiteWiseError {
        SiteWiseError::new(
            operation,
            ErrorKind::Conflict,
            "ConflictingOperationException",
            format!(
                "Asset {} is in state {}",
                asset.description.id, asset.description.state
            ),
        )
    }
}

impl SiteWise for FakeSiteWise {
    async fn describe_asset(&self, asset_id: &str) -> SiteWiseResult<AssetDescription> {
        let mut st = self.lock();
        let op = Operation::DescribeAsset;
        let id = st.begin_read(op, asset_id)?;
        let gone = {
            let asset = st.assets.get_mut(&id).ok_or_else(|| {
                SiteWiseError::new(op, ErrorKind::NotFound, "ResourceNotFoundException", "gone")
            })?;
            if asset.description.state == AssetState::Deleting {
                if asset.deleting_polls_left == 0 {
                    true
                } else {
                    asset.deleting_polls_left -= 1;
                    false
                }
            } else {
                false
            }
        };
        if gone {
            st.assets.remove(&id);
            return Err(SiteWiseError::new(
                op,
                ErrorKind::NotFound,
                "ResourceNotFoundException",
                format!("Asset {id} does not exist"),
            ));
        }
        Ok(st.assets[&id].description.clone())
    }

    async fn list_associated_assets(
        &self,
        asset_id: &str,
        direction: Direction,
        hierarchy_id: Option<&str>,
    ) -> SiteWiseResult<Vec<AssociatedAsset>> {
        let mut st = self.lock();
        let op = Operation::ListAssociatedAssets;
        let id = st.begin_read(op, asset_id)?;
        let ids: Vec<String> = st
            .links
            .iter()
            .filter(|(p, h, c)| match direction {
                Direction::Child => *p == id && hierarchy_id.is_none_or(|want| want == h),
                Direction::Parent => *c == id,
            })
            .map(|(p, _, c)| match direction {
                Direction::Child => c.clone(),
                Direction::Parent => p.clone(),
            })
            .collect();
        Ok(ids
            .into_iter()
            .map(|id| AssociatedAsset {
                hierarchy_ids: st
                    .assets
                    .get(&id)
                    .map(|a| a.description.hierarchy_ids.clone())
                    .unwrap_or_default(),
                id,
            })
            .collect())
    }

    async fn disassociate_assets(
        &self,
        parent_id: &str,
        hierarchy_id: &str,
        child_id: &str,
        client_token: &str,
    ) -> SiteWiseResult<()> {
        let mut st = self.lock();
        let op = Operation::DisassociateAssets;
        let mut call = Call {
            operation: op,
            target: parent_id.into(),
            child: Some(child_id.into()),
            client_token: Some(client_token.into()),
            effective: false,
        };
        if let Some(err) = st.scripted_failure(op, parent_id) {
            st.record(call);
            return Err(err);
        }
        let result = (|| {
            let parent = st.resolve(op, parent_id)?;
            let child = st.resolve(op, child_id)?;
            let fingerprint = format!("Disassociate/{parent}/{hierarchy_id}/{child}");
            if st.replayed(client_token, &fingerprint)? {
                return Ok(false);
            }
            for id in [&parent, &child] {
                if !st.assets[id].description.state.is_stable() {
                    return Err(State::busy(op, &st.assets[id]));
                }
            }
            let before = st.links.len();
            st.links
                .retain(|(p, h, c)| !(*p == parent && h == hierarchy_id && *c == child));
            if st.links.len() == before {
                return Err(SiteWiseError::new(
                    op,
                    ErrorKind::NotFound,
                    "ResourceNotFoundException",
                    format!("Asset {child} is not associated with {parent} in {hierarchy_id}"),
                ));
            }
            st.remember(client_token, fingerprint);
            Ok(true)
        })();
        call.effective = matches!(result, Ok(true));
        st.record(call);
        if result.is_ok()
            && let Some(lost) = st.take_lost_response(op)
        {
            return Err(lost);
        }
        result.map(|_| ())
    }

    async fn delete_asset(&self, asset_id: &str, client_token: &str) -> SiteWiseResult<AssetState> {
        let mut st = self.lock();
        let op = Operation::DeleteAsset;
        let mut call = Call {
            operation: op,
            target: asset_id.into(),
            child: None,
            client_token: Some(client_token.into()),
            effective: false,
        };
        if let Some(err) = st.scripted_failure(op, asset_id) {
            st.record(call);
            return Err(err);
        }
        let polls = st.deleting_polls;
        let result = (|| {
            let id = st.resolve(op, asset_id)?;
            let fingerprint = format!("Delete/{id}");
            if st.replayed(client_token, &fingerprint)? {
                return Ok((false, st.assets[&id].description.state.clone()));
            }
            let linked = st.links.iter().any(|(p, _, c)| *p == id || *c == id);
            let asset = &st.assets[&id];
            if asset.description.state == AssetState::Deleting {
                return Ok((false, AssetState::Deleting));
            }
            if !asset.description.state.is_stable() {
                return Err(State::busy(op, asset));
            }
            if linked {
                return Err(SiteWiseError::new(
                    op,
                    ErrorKind::InvalidRequest,
                    "InvalidRequestException",
                    format!("Asset {id} is associated with other assets"),
                ));
            }
            let asset = st.assets.get_mut(&id).ok_or_else(|| {
                SiteWiseError::new(op, ErrorKind::NotFound, "ResourceNotFoundException", "gone")
            })?;
            asset.description.state = AssetState::Deleting;
            asset.deleting_polls_left = polls;
            st.remember(client_token, fingerprint);
            Ok((true, AssetState::Deleting))
        })();
        call.effective = matches!(result, Ok((true, _)));
        st.record(call);
        if result.is_ok()
            && let Some(lost) = st.take_lost_response(op)
        {
            return Err(lost);
        }
        result.map(|(_, state)| state)
    }
}

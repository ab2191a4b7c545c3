//! An in-memory [`SiteWise`] for unit tests: models, assets, hierarchy links, tags,
//! asynchronous CREATING/UPDATING -> ACTIVE and DELETING -> gone transitions, clientToken
//! replay, scripted failures and a journal of calls. The calls themselves are in [`calls`].
//! It follows the same rules as the emulator (see `emulator/src/rules.rs`) so that unit tests
//! and end-to-end tests agree on what SiteWise does.

mod calls;
mod models;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    AssetDescription, AssetState, ErrorKind, Hierarchy, Operation, Property, SiteWiseError,
    SiteWiseResult,
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
    /// Describes still answered with the transitional state (CREATING, UPDATING, DELETING)
    /// before the transition a call started completes; `None` when no call started one.
    polls_left: Option<u32>,
    tags: BTreeMap<String, String>,
}

/// A model: the hierarchies and properties its assets get; for models made through
/// CreateAssetModel, also their definition, state and version (the ETag).
#[derive(Clone, Debug, Default)]
struct FakeModel {
    external_id: Option<String>,
    hierarchies: Vec<Hierarchy>,
    properties: Vec<Property>,
    definition: super::ModelDefinition,
    state: AssetState,
    polls_left: Option<u32>,
    version: u64,
    tags: BTreeMap<String, String>,
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
    /// Polls a new transition (create, update, delete) stays in its transitional state.
    transition_polls: u32,
    models: HashMap<String, FakeModel>,
    /// Asset updates counted for `last_update`.
    updates: u64,
    /// Assets per page of ListAssets; 0 pages as SiteWise does, at 250.
    page_size: usize,
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

    /// Number of DescribeAsset calls that still see the transitional state (CREATING,
    /// UPDATING, DELETING) after a call that starts one.
    pub fn set_deleting_polls(&self, polls: u32) {
        self.lock().transition_polls = polls;
    }

    /// Assets per page of ListAssets.
    pub fn set_page_size(&self, size: usize) {
        self.lock().page_size = size;
    }

    /// Adds a model whose assets get `hierarchies` and `properties` (`(id, name)` pairs; the
    /// external ID of each is its name).
    pub fn add_model(
        &self,
        id: &str,
        external_id: Option<&str>,
        hierarchies: &[(&str, &str)],
        properties: &[(&str, &str)],
    ) {
        let model = FakeModel {
            state: AssetState::Active,
            external_id: external_id.map(str::to_string),
            hierarchies: hierarchies
                .iter()
                .map(|(id, name)| Hierarchy {
                    id: id.to_string(),
                    external_id: Some(name.to_string()),
                    name: name.to_string(),
                })
                .collect(),
            properties: properties
                .iter()
                .map(|(id, name)| Property {
                    id: id.to_string(),
                    external_id: Some(name.to_string()),
                    name: name.to_string(),
                    ..Property::default()
                })
                .collect(),
            ..FakeModel::default()
        };
        self.lock().models.insert(id.to_string(), model);
    }

    /// Adds an ACTIVE asset with the given hierarchies.
    pub fn add_asset(&self, id: &str, external_id: Option<&str>, hierarchy_ids: &[&str]) {
        let description = AssetDescription {
            id: id.to_string(),
            arn: arn_of(id),
            name: format!("asset {id}"),
            external_id: external_id.map(str::to_string),
            model_id: "00000000-0000-4000-8000-00000000000m".to_string(),
            state: AssetState::Active,
            hierarchies: hierarchy_ids
                .iter()
                .map(|h| Hierarchy {
                    id: h.to_string(),
                    external_id: None,
                    name: h.to_string(),
                })
                .collect(),
            last_update: "0".into(),
            ..AssetDescription::default()
        };
        self.lock().assets.insert(
            id.to_string(),
            FakeAsset {
                description,
                polls_left: None,
                tags: BTreeMap::new(),
            },
        );
    }

    /// The asset as SiteWise would describe it now (no call is journaled).
    pub fn asset(&self, id: &str) -> Option<AssetDescription> {
        self.lock().assets.get(id).map(|a| a.description.clone())
    }

    /// Changes an asset out of band (as a person in the console would).
    pub fn edit(&self, id: &str, edit: impl FnOnce(&mut AssetDescription)) {
        let mut st = self.lock();
        st.updates += 1;
        let version = st.updates.to_string();
        if let Some(asset) = st.assets.get_mut(id) {
            edit(&mut asset.description);
            asset.description.last_update = version;
        }
    }

    pub fn tags(&self, id: &str) -> BTreeMap<String, String> {
        self.lock()
            .assets
            .get(id)
            .map(|a| a.tags.clone())
            .unwrap_or_default()
    }

    pub fn set_tags(&self, id: &str, tags: &[(&str, &str)]) {
        if let Some(asset) = self.lock().assets.get_mut(id) {
            asset.tags = tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
    }

    /// Puts an asset in FAILED with error details (as SiteWise does when a change fails).
    pub fn fail(&self, id: &str, code: &str, message: &str) {
        if let Some(asset) = self.lock().assets.get_mut(id) {
            asset.description.state = AssetState::Failed;
            asset.description.error = Some((code.into(), message.into()));
            asset.polls_left = None;
        }
    }

    pub fn link(&self, parent: &str, hierarchy: &str, child: &str) {
        self.lock()
            .links
            .push((parent.into(), hierarchy.into(), child.into()));
    }

    /// Removes every link under which `child` is associated (someone detached it).
    pub fn unlink(&self, child: &str) {
        self.lock().links.retain(|(_, _, c)| c != child);
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
            ErrorKind::AlreadyExists => "ResourceAlreadyExistsException",
            ErrorKind::Unavailable => "InternalFailureException",
            ErrorKind::InvalidRequest => "InvalidRequestException",
            ErrorKind::PreconditionFailed => "PreconditionFailedException",
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

    /// Whether the model exists (in any state).
    pub fn model_exists(&self, id: &str) -> bool {
        self.lock().models.contains_key(id)
    }

    /// Changes a model out of band (as a person in the console would): a new version, so a
    /// new ETag.
    pub fn edit_model(&self, id: &str, edit: impl FnOnce(&mut super::ModelDefinition)) {
        if let Some(model) = self.lock().models.get_mut(id) {
            edit(&mut model.definition);
            model.version += 1;
        }
    }

    /// The tags a model was created with.
    pub fn model_tags(&self, id: &str) -> BTreeMap<String, String> {
        self.lock()
            .models
            .get(id)
            .map(|m| m.tags.clone())
            .unwrap_or_default()
    }

    /// The model's definition as the fake holds it.
    pub fn model_definition(&self, id: &str) -> Option<super::ModelDefinition> {
        self.lock().models.get(id).map(|m| m.definition.clone())
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

pub(crate) fn arn_of(id: &str) -> String {
    format!("arn:aws:iotsitewise:us-east-1:123456789012:asset/{id}")
}

fn not_found(operation: Operation, what: &str) -> SiteWiseError {
    SiteWiseError::new(
        operation,
        ErrorKind::NotFound,
        "ResourceNotFoundException",
        format!("{what} does not exist"),
    )
}

impl State {
    fn resolve(&self, operation: Operation, reference: &str) -> SiteWiseResult<String> {
        let found = match reference.strip_prefix("externalId:") {
            Some(ext) => self
                .assets
                .iter()
                .find(|(_, a)| a.description.external_id.as_deref() == Some(ext))
                .map(|(id, _)| id.clone()),
            None => self
                .assets
                .contains_key(reference)
                .then(|| reference.into()),
        };
        found.ok_or_else(|| not_found(operation, &format!("Asset {reference}")))
    }

    fn resolve_model(&self, operation: Operation, reference: &str) -> SiteWiseResult<String> {
        let found = match reference.strip_prefix("externalId:") {
            Some(ext) => self
                .models
                .iter()
                .find(|(_, m)| m.external_id.as_deref() == Some(ext))
                .map(|(id, _)| id.clone()),
            None => self
                .models
                .contains_key(reference)
                .then(|| reference.into()),
        };
        found.ok_or_else(|| not_found(operation, &format!("Asset model {reference}")))
    }

    /// Starts a transition of `id` to `state`, completed after the configured polls.
    fn start_transition(&mut self, id: &str, state: AssetState) {
        self.updates += 1;
        let version = self.updates.to_string();
        let polls = self.transition_polls;
        if let Some(asset) = self.assets.get_mut(id) {
            asset.description.state = state;
            asset.description.last_update = version;
            asset.polls_left = Some(polls);
        }
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
    fn replayed(&self, op: Operation, token: &str, fingerprint: &str) -> SiteWiseResult<bool> {
        match self.seen_tokens.get(token) {
            Some(seen) if seen == fingerprint => Ok(true),
            Some(_) => Err(SiteWiseError::new(
                op,
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

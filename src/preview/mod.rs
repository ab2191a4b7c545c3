//! `plan`: what deleting some resources would do, without doing it; and `tree`, the SiteWise
//! hierarchy beside the resources.
//!
//! The plan reads the cluster and SiteWise (DescribeAsset, ListTagsForResource and
//! ListAssociatedAssets only), copies the assets involved (each asset to delete, its parent
//! and its children, or its whole subtree with `childPolicy: Cascade`, with their tags and
//! links) into the in-memory SiteWise, marks the
//! resources as deleted in an in-memory cache of every resource, and runs the operator's own
//! deletion flow against that copy until each resource is released, blocked or stuck. What the
//! plan prints is what that flow did: the same decisions the operator will make, not a second
//! description of them that could drift.

mod render;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::ResourceExt;

use crate::controller::claim::MemoryResources;
use crate::controller::cleanup::{cleanup, read_links};
use crate::controller::plan::ChildLink;
use crate::controller::status::{Events, RecordedEvent, StatusWriter};
use crate::controller::{Context, Settings, settle};
use crate::crd::{ChildPolicy, DeletionPhase, SiteWiseAsset};
use crate::error::ErrorClass;
use crate::metrics::Metrics;
#[cfg(test)]
use crate::sitewise::Operation;
use crate::sitewise::fake::FakeSiteWise;
use crate::sitewise::{AssetDescription, ErrorKind, SiteWise};

pub use render::render;
pub use tree::{Node, render_tree, tree};

/// Reconciles per resource before a deletion that has not finished counts as stuck.
const MAX_PASSES: usize = 200;

/// What would become of one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The asset is deleted (`AssetDeleted`), or was already gone.
    Deleted,
    AlreadyGone,
    /// `deletionPolicy: Retain`: the asset stays, the claim is removed.
    Retained,
    /// Another resource (or nobody, for a resource that never adopted it) holds the asset:
    /// released without touching it.
    NotOwned,
    /// `force-orphan`: released without touching SiteWise.
    Orphaned,
    /// `childPolicy: Block` with these children linked.
    Blocked(Vec<String>),
    /// The deletion could not finish (the last error).
    Stuck(String),
    /// The resource has no asset in SiteWise yet.
    NoAsset,
}

/// The plan for one resource.
#[derive(Clone, Debug)]
pub struct ResourcePlan {
    pub namespace: String,
    pub name: String,
    pub asset: Option<AssetDescription>,
    pub outcome: Outcome,
    /// What the resource's deletion reported, in order (reason, note).
    pub events: Vec<(String, String)>,
}

/// The plan for a set of resources.
#[derive(Clone, Debug)]
pub struct Plan {
    pub resources: Vec<ResourcePlan>,
    /// SiteWise calls the deletions make, by operation (the reads are the ones of this run of
    /// the flow: polls depend on how long SiteWise takes).
    pub calls: BTreeMap<&'static str, usize>,
    /// The account's asset-operation and DescribeAsset rates the time estimate uses.
    pub rates: (u32, u32),
}

impl Plan {
    /// The least time the calls take at the configured rates.
    pub fn minimum_time(&self) -> Duration {
        let reads = self.calls.get("DescribeAsset").copied().unwrap_or(0);
        let others: usize = self
            .calls
            .iter()
            .filter(|(op, _)| **op != "DescribeAsset")
            .map(|(_, n)| n)
            .sum();
        let at = |calls: usize, rate: u32| {
            if rate == 0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(calls as f64 / f64::from(rate))
            }
        };
        at(others, self.rates.0).max(at(reads, self.rates.1))
    }
}

/// Reads what the deletion of `targets` involves from `sitewise` (read-only) and runs the
/// deletion flow on a copy. `all` is every resource of the cluster (owners of children).
pub async fn plan<S: SiteWise>(
    sitewise: &S,
    targets: &[SiteWiseAsset],
    all: &[SiteWiseAsset],
    cluster_id: &str,
    rates: (u32, u32),
) -> anyhow::Result<Plan> {
    let copy = FakeSiteWise::new();
    copy.set_deleting_polls(0);
    let mut loaded = BTreeSet::new();
    let mut assets = BTreeMap::new();
    // A link is met from both ends when a parent and its child are both deleted.
    let mut linked = BTreeSet::new();
    let mut link = |parent: &str, hierarchy: &str, child: &str| {
        if linked.insert((parent.to_string(), hierarchy.to_string(), child.to_string())) {
            copy.link(parent, hierarchy, child);
        }
    };
    for obj in targets {
        let Some(id) = obj.status.as_ref().and_then(|s| s.asset_id.clone()) else {
            continue;
        };
        let recorded = obj.status.as_ref().and_then(|s| s.parent_link.clone());
        if let Some(asset) = load(sitewise, &copy, &mut loaded, &id).await? {
            let links = read_links(sitewise, &asset, recorded.as_ref()).await?;
            // Cascade deletes below the children too: the whole subtree is copied.
            let cascade = obj.spec.child_policy == ChildPolicy::Cascade;
            let mut below: Vec<(String, ChildLink)> = links
                .children
                .iter()
                .map(|c| (asset.id.clone(), c.clone()))
                .collect();
            while let Some((parent, child)) = below.pop() {
                let copied = load(sitewise, &copy, &mut loaded, &child.child_id).await?;
                link(&parent, &child.hierarchy_id, &child.child_id);
                if let Some(copied) = copied.filter(|_| cascade) {
                    for grandchild in read_links(sitewise, &copied, None).await?.children {
                        below.push((copied.id.clone(), grandchild));
                    }
                }
            }
            if let Some(crate::controller::plan::ParentLink::Linked {
                parent_id,
                hierarchy_id,
            }) = &links.parent
            {
                load(sitewise, &copy, &mut loaded, parent_id).await?;
                link(parent_id, hierarchy_id, &asset.id);
            }
            assets.insert(obj.uid().unwrap_or_default(), asset);
        }
    }
    // Copying does not go through the copy's API: its journal holds the simulated calls only.
    let resources = simulate(&copy, targets, all, cluster_id, &assets).await;
    let mut calls = BTreeMap::new();
    for call in copy.journal() {
        *calls.entry(call.operation.as_str()).or_insert(0) += 1;
    }
    Ok(Plan {
        resources,
        calls,
        rates,
    })
}

/// Copies asset `id` (description and tags) into `copy`, once.
async fn load<S: SiteWise>(
    sitewise: &S,
    copy: &FakeSiteWise,
    loaded: &mut BTreeSet<String>,
    id: &str,
) -> anyhow::Result<Option<AssetDescription>> {
    if !loaded.insert(id.to_string()) {
        return Ok(copy.asset(id));
    }
    let asset = match sitewise.describe_asset(id).await {
        Ok(asset) => asset,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let tags = sitewise.list_tags(&asset.arn).await?;
    copy.add_asset(&asset.id, asset.external_id.as_deref(), &[]);
    copy.edit(&asset.id, |d| *d = asset.clone());
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    copy.set_tags(&asset.id, &tags);
    Ok(Some(asset))
}

/// Runs the deletion of every target against `copy`, round after round (as the controller
/// interleaves them), until each is released, blocked or out of passes.
async fn simulate(
    copy: &FakeSiteWise,
    targets: &[SiteWiseAsset],
    all: &[SiteWiseAsset],
    cluster_id: &str,
    assets: &BTreeMap<String, AssetDescription>,
) -> Vec<ResourcePlan> {
    let now = jiff::Timestamp::now();
    // Past the prune grace: the plan shows where the deletion ends up, not its first seconds.
    let marked = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        now.checked_sub(jiff::SignedDuration::from_secs(60))
            .unwrap_or(now),
    );
    let target_uids: BTreeSet<String> = targets.iter().filter_map(|t| t.uid()).collect();
    let mut deleting: Vec<SiteWiseAsset> = targets.to_vec();
    for obj in &mut deleting {
        obj.metadata.deletion_timestamp = Some(marked.clone());
    }
    let mut cache: Vec<SiteWiseAsset> = all
        .iter()
        .filter(|o| o.uid().is_none_or(|u| !target_uids.contains(&u)))
        .cloned()
        .collect();
    cache.extend(deleting.iter().cloned());
    let cache = Arc::new(MemoryResources(Mutex::new(cache), Mutex::default()));
    let settings = Settings {
        poll_interval: Duration::from_millis(1),
        ..Settings::default()
    };
    let ctx = Context::new(copy.clone(), settings, Arc::new(Metrics::default()))
        .with_cluster_id(cluster_id)
        .with_resources(cache.clone());
    let mut plans: Vec<ResourcePlan> = deleting
        .iter()
        .map(|obj| ResourcePlan {
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            asset: obj.uid().and_then(|u| assets.get(&u).cloned()),
            outcome: Outcome::NoAsset,
            events: Vec::new(),
        })
        .collect();
    let mut open: Vec<usize> = (0..deleting.len()).collect();
    for _ in 0..MAX_PASSES {
        if open.is_empty() {
            break;
        }
        let mut still_open = Vec::new();
        for i in open {
            let obj = &deleting[i];
            let status = StatusWriter::in_memory(obj);
            let events = Events::in_memory();
            let result = cleanup(obj, &ctx, &status, &events).await;
            let result = settle(obj, &ctx, &status, &events, result).await;
            let snapshot = status.snapshot();
            record_events(&mut plans[i], events.recorded());
            let blocked = snapshot
                .deletion
                .as_ref()
                .filter(|d| d.phase == DeletionPhase::Blocked)
                .map(|d| d.blocked_by.clone());
            match (result, blocked) {
                (Ok(_), _) => {
                    plans[i].outcome = released_as(&plans[i].events);
                    cache
                        .0
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .retain(|o| o.uid() != obj.uid());
                    continue;
                }
                (Err(_), Some(children)) => plans[i].outcome = Outcome::Blocked(children),
                (Err(e), None) if e.class() == ErrorClass::Terminal => {
                    plans[i].outcome = Outcome::Stuck(e.root().to_string());
                }
                (Err(e), None) => {
                    plans[i].outcome = Outcome::Stuck(e.root().to_string());
                    still_open.push(i);
                }
            }
            let mut updated = obj.clone();
            updated.status = Some(snapshot);
            cache.upsert(&updated);
            deleting[i] = updated;
        }
        open = still_open;
    }
    plans
}

fn record_events(plan: &mut ResourcePlan, recorded: Vec<RecordedEvent>) {
    for event in recorded {
        let entry = (event.reason, event.note);
        if plan.events.last() != Some(&entry) {
            plan.events.push(entry);
        }
    }
}

fn released_as(events: &[(String, String)]) -> Outcome {
    let reasons: Vec<&str> = events.iter().map(|(r, _)| r.as_str()).collect();
    let has = |reason| reasons.contains(&reason);
    if has("AssetDeleted") {
        Outcome::Deleted
    } else if has("AssetAlreadyGone") {
        Outcome::AlreadyGone
    } else if has("AssetRetained") {
        Outcome::Retained
    } else if has("AssetOrphaned") {
        Outcome::Orphaned
    } else if has("AssetNotOwned") {
        Outcome::NotOwned
    } else {
        Outcome::NoAsset
    }
}

#[cfg(test)]
mod tests;

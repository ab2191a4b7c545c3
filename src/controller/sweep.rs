//! The sweep: every resync interval, the settled resources of each connection are checked
//! against bulk listings instead of a DescribeAsset (and a lookup of the parent) each:
//! `ListAssets` of every model their assets use, 250 assets per call, and
//! `ListAssociatedAssets` of each parent hierarchy they are linked under. A resource the
//! listings show as declared costs nothing more and writes nothing; any other is reconciled
//! on its own ([`plan::sweep`] says which). Each resource is still reconciled on its own once
//! per full resync, for what no listing shows.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::channel::mpsc::UnboundedSender;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::plan::sweep as plan;
use super::{App, Context};
use crate::backoff::jittered;
use crate::crd::{ParentTarget, SiteWiseAsset};
use crate::sitewise::{Direction, ErrorKind, SiteWise, SiteWiseResult, each_asset_of_model};

/// The models whose assets each connection has described, so a sweep knows what to list.
/// Filled by apply; an asset of a model not noted yet is simply not listed, and the
/// reconcile that follows notes it.
#[derive(Default)]
pub struct Models(Mutex<BTreeMap<String, BTreeSet<String>>>);

impl Models {
    pub fn note(&self, connection: &str, model_id: &str) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Every reconcile notes its model: allocate only for a new one.
        if seen.get(connection).is_some_and(|m| m.contains(model_id)) {
            return;
        }
        seen.entry(connection.to_string())
            .or_default()
            .insert(model_id.to_string());
    }

    fn of(&self, connection: &str) -> Vec<String> {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(connection)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The connection a resource's status records (empty before the first call, and when
/// connections are not in use).
pub fn connection_of(obj: &SiteWiseAsset) -> &str {
    obj.status
        .as_ref()
        .and_then(|s| s.connection.as_deref())
        .unwrap_or_default()
}

/// One resource the sweep found not as declared, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub resource: ObjectRef<SiteWiseAsset>,
    pub reason: &'static str,
}

/// What one sweep of a connection found: how many resources it vouched for, and the others.
#[derive(Debug, Default)]
pub struct Sweep {
    pub current: usize,
    pub findings: Vec<Finding>,
}

/// How far a sweep got with one settled resource.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    NotListed,
    Listed,
    Reported,
}

/// Checks the settled resources of `connection` among `objects` against the listings of
/// `models` and of their parents' hierarchies. `parent_asset` gives the asset of a parent
/// resource (namespace, name) as the cache shows it. It runs beside the cache of every
/// resource, so it holds little: the settled resources sorted by asset (found by binary
/// search) and one byte each for what the listings showed.
pub async fn sweep<S: SiteWise>(
    sitewise: &S,
    objects: &[Arc<SiteWiseAsset>],
    connection: &str,
    models: &[String],
    parent_asset: impl Fn(&str, &str) -> Option<String>,
) -> SiteWiseResult<Sweep> {
    let mut settled: Vec<(&str, &SiteWiseAsset)> = objects
        .iter()
        .filter(|o| connection_of(o) == connection)
        .filter_map(|o| plan::settled_asset(o).map(|id| (id, o.as_ref())))
        .collect();
    settled.sort_unstable_by_key(|(id, _)| *id);
    let mut seen = vec![Seen::NotListed; settled.len()];
    let mut out = Sweep::default();
    for model in models {
        let visited = each_asset_of_model(sitewise, model, |summary| {
            let Ok(i) = settled.binary_search_by_key(&summary.id.as_str(), |(id, _)| id) else {
                return;
            };
            let obj = settled[i].1;
            seen[i] = match plan::fields_reason(obj, &summary) {
                Some(reason) => {
                    out.findings.push(finding(obj, reason));
                    Seen::Reported
                }
                None => Seen::Listed,
            };
        })
        .await;
        match visited {
            Ok(()) => {}
            // A model deleted since: its assets are gone too, and show as not listed.
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let mut under: HashMap<(&str, &str), Vec<(&str, &SiteWiseAsset)>> = HashMap::new();
    for (&(id, obj), seen) in settled.iter().zip(&seen) {
        match seen {
            Seen::Reported => {}
            Seen::NotListed => out.findings.push(finding(obj, "not listed")),
            Seen::Listed => match plan::recorded_link(obj) {
                Some(link) => under.entry(link).or_default().push((id, obj)),
                None => judge_link(&mut out, obj, None, &parent_asset),
            },
        }
    }
    for ((parent_id, hierarchy_id), children) in under {
        let listed: HashSet<String> = match sitewise
            .list_associated_assets(parent_id, Direction::Child, Some(hierarchy_id))
            .await
        {
            Ok(assets) => assets.into_iter().map(|a| a.id).collect(),
            Err(e) if e.kind == ErrorKind::NotFound => HashSet::new(),
            Err(e) => return Err(e),
        };
        for (id, obj) in children {
            judge_link(&mut out, obj, Some(listed.contains(id)), &parent_asset);
        }
    }
    Ok(out)
}

fn judge_link(
    out: &mut Sweep,
    obj: &SiteWiseAsset,
    listed: Option<bool>,
    parent_asset: &impl Fn(&str, &str) -> Option<String>,
) {
    let parent_now = match obj.spec.parent.as_ref().and_then(|p| p.target()) {
        Some(ParentTarget::Resource(name)) => {
            parent_asset(&obj.namespace().unwrap_or_default(), name)
        }
        _ => None,
    };
    match plan::link_reason(obj, parent_now.as_deref(), listed) {
        Some(reason) => out.findings.push(finding(obj, reason)),
        None => out.current += 1,
    }
}

fn finding(obj: &SiteWiseAsset, reason: &'static str) -> Finding {
    Finding {
        resource: ObjectRef::from_obj(obj),
        reason,
    }
}

/// Sweeps every connection once per resync interval, while this replica leads, and sends
/// each resource found not as declared to the controller.
pub(super) async fn run<S: SiteWise>(
    app: Arc<App<S>>,
    store: Store<SiteWiseAsset>,
    reconcile: UnboundedSender<ObjectRef<SiteWiseAsset>>,
    shutdown: crate::shutdown::Shutdown,
) {
    if store.wait_until_ready().await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(jittered(app.ctx.settings.resync)) => {}
            () = shutdown.clone().requested() => return,
        }
        if !app.ctx.fence.is_open() {
            continue;
        }
        let objects = store.state();
        let connections: BTreeSet<&str> = objects
            .iter()
            .filter(|o| plan::settled_asset(o).is_some())
            .map(|o| connection_of(o))
            .collect();
        for connection in connections {
            sweep_connection(&app, connection, &objects, &reconcile).await;
        }
    }
}

async fn sweep_connection<S: SiteWise>(
    app: &App<S>,
    connection: &str,
    objects: &[Arc<SiteWiseAsset>],
    reconcile: &UnboundedSender<ObjectRef<SiteWiseAsset>>,
) {
    let ctx: &Context<S> = &app.ctx;
    let models = ctx.models.of(connection);
    let parent_asset = |namespace: &str, name: &str| {
        ctx.resources
            .get(namespace, name)
            .and_then(|p| p.status.as_ref()?.asset_id.clone())
    };
    let work = sweep(&ctx.sitewise, objects, connection, &models, parent_asset);
    let swept = match super::route::in_connection(app.routing.as_ref(), connection, work).await {
        Some(swept) => swept,
        None => {
            tracing::debug!(connection, "connection not ready; not swept");
            return;
        }
    };
    match swept {
        Ok(swept) => {
            ctx.metrics.swept("current", swept.current);
            for f in &swept.findings {
                ctx.metrics.swept(f.reason, 1);
                tracing::info!(namespace = ?f.resource.namespace, name = %f.resource.name, reason = f.reason, "sweep: not as declared; reconciling");
                // Closed only when the controller stopped; nothing is left to tell.
                let _ = reconcile.unbounded_send(f.resource.clone());
            }
            tracing::debug!(
                connection,
                current = swept.current,
                findings = swept.findings.len(),
                "swept"
            );
        }
        Err(e) => {
            let settled = objects
                .iter()
                .filter(|o| connection_of(o) == connection && plan::settled_asset(o).is_some())
                .count();
            ctx.metrics.swept("failed", settled);
            tracing::warn!(connection, error = %e, "sweep failed; the next one tries again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::plan::sweep::tests::settled_as;
    use crate::crd::{ParentLinkStatus, ParentRef, SiteWiseAssetSpec};
    use crate::sitewise::Operation;
    use crate::sitewise::fake::FakeSiteWise;

    const MODEL: &str = "00000000-0000-4000-8000-00000000000m";
    const LINE: &str = "10000000-0000-4000-8000-000000000001";
    const MACHINES: &str = "20000000-0000-4000-8000-000000000001";

    fn machine(i: u32) -> String {
        format!("10000000-0000-4000-8000-00000000010{i}")
    }

    /// An adopted machine under the line resource, linked as recorded.
    fn machine_resource(i: u32) -> Arc<SiteWiseAsset> {
        let spec = SiteWiseAssetSpec {
            asset_id: Some(machine(i)),
            parent: Some(Box::new(ParentRef {
                name: Some("line".into()),
                hierarchy: "Machines".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let mut obj = settled_as(&format!("m{i}"), &machine(i), spec);
        if let Some(s) = obj.status.as_mut() {
            s.parent_link = Some(ParentLinkStatus {
                parent_id: LINE.into(),
                hierarchy_id: MACHINES.into(),
                associated: true,
                round: 0,
            });
        }
        Arc::new(obj)
    }

    fn line_resource() -> Arc<SiteWiseAsset> {
        let spec = SiteWiseAssetSpec {
            asset_id: Some(LINE.into()),
            name: Some(format!("asset {LINE}")),
            ..Default::default()
        };
        Arc::new(settled_as("line", LINE, spec))
    }

    fn line_with_machines(machines: u32) -> FakeSiteWise {
        let fake = FakeSiteWise::new();
        fake.add_model(MODEL, None, &[(MACHINES, "Machines")], &[]);
        fake.add_asset(LINE, None, &[MACHINES]);
        for i in 1..=machines {
            fake.add_asset(&machine(i), None, &[]);
            fake.link(LINE, MACHINES, &machine(i));
        }
        fake.set_page_size(2);
        fake
    }

    fn line_asset(namespace: &str, name: &str) -> Option<String> {
        (namespace == "plant" && name == "line").then(|| LINE.to_string())
    }

    fn found(swept: &Sweep) -> Vec<(String, &'static str)> {
        let mut found: Vec<(String, &'static str)> = swept
            .findings
            .iter()
            .map(|f| (f.resource.name.clone(), f.reason))
            .collect();
        found.sort();
        found
    }

    #[tokio::test]
    async fn a_plant_as_declared_costs_a_listing_per_page_and_per_parent() {
        let fake = line_with_machines(3);
        // One more resource, of another connection: swept with that one, not here.
        let mut elsewhere = (*machine_resource(9)).clone();
        if let Some(s) = elsewhere.status.as_mut() {
            s.connection = Some("north".into());
        }
        let objects = vec![
            line_resource(),
            machine_resource(1),
            machine_resource(2),
            machine_resource(3),
            Arc::new(elsewhere),
        ];
        let swept = sweep(&fake, &objects, "", &[MODEL.into()], line_asset)
            .await
            .expect("sweep");
        assert_eq!(found(&swept), vec![]);
        assert_eq!(swept.current, 4);
        assert_eq!(fake.calls(Operation::ListAssets), 2, "4 assets, 2 per page");
        assert_eq!(
            fake.calls(Operation::ListAssociatedAssets),
            1,
            "one parent hierarchy"
        );
        assert_eq!(fake.calls(Operation::DescribeAsset), 0);
    }

    #[tokio::test]
    async fn changes_made_outside_kubernetes_are_found_and_nothing_else() {
        let fake = line_with_machines(4);
        let mut objects = vec![
            line_resource(),
            machine_resource(1),
            machine_resource(2),
            machine_resource(3),
            machine_resource(4),
        ];
        // Renamed while adopted with a declared name; detached; deleted; and one still busy.
        let mut named = (*machine_resource(1)).clone();
        named.spec.name = Some(format!("asset {}", machine(1)));
        objects[1] = Arc::new(named);
        fake.edit(&machine(1), |a| a.name = "Renamed in the console".into());
        fake.unlink(&machine(2));
        fake.vanish(&machine(3));
        fake.set_state(&machine(4), crate::sitewise::AssetState::Updating);
        let swept = sweep(&fake, &objects, "", &[MODEL.into()], line_asset)
            .await
            .expect("sweep");
        assert_eq!(
            found(&swept),
            vec![
                ("m1".to_string(), "fields"),
                ("m2".to_string(), "link"),
                ("m3".to_string(), "not listed"),
                ("m4".to_string(), "state"),
            ]
        );
        assert_eq!(swept.current, 1);
    }

    #[tokio::test]
    async fn a_parent_resource_holding_another_asset_is_found() {
        let fake = line_with_machines(1);
        let objects = vec![machine_resource(1)];
        let replaced = |_: &str, _: &str| Some("10000000-0000-4000-8000-000000000999".to_string());
        let swept = sweep(&fake, &objects, "", &[MODEL.into()], replaced)
            .await
            .expect("sweep");
        assert_eq!(found(&swept), vec![("m1".to_string(), "parent changed")]);
    }

    #[tokio::test]
    async fn a_failed_listing_fails_the_sweep_and_a_model_gone_lists_nothing() {
        let fake = line_with_machines(1);
        let objects = vec![line_resource(), machine_resource(1)];
        fake.fail_next(
            Operation::ListAssets,
            None,
            crate::sitewise::ErrorKind::Throttled,
        );
        let failed = sweep(&fake, &objects, "", &[MODEL.into()], line_asset).await;
        assert!(failed.is_err());
        let unknown = "00000000-0000-4000-8000-0000000000aa".to_string();
        let swept = sweep(&fake, &objects, "", &[unknown], line_asset)
            .await
            .expect("sweep");
        assert_eq!(
            found(&swept),
            vec![
                ("line".to_string(), "not listed"),
                ("m1".to_string(), "not listed")
            ]
        );
    }

    #[test]
    fn models_are_kept_per_connection() {
        let models = Models::default();
        models.note("north", MODEL);
        models.note("north", MODEL);
        models.note("(operator)", "other");
        assert_eq!(models.of("north"), vec![MODEL.to_string()]);
        assert_eq!(models.of("south"), Vec::<String>::new());
    }
}

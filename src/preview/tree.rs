//! `tree`: the SiteWise hierarchy under the selected resources' assets, each asset beside the
//! resource that owns it and that resource's state. Read-only (DescribeAsset and
//! ListAssociatedAssets).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;

use kube::ResourceExt;

use crate::crd::SiteWiseAsset;
use crate::sitewise::{Direction, ErrorKind, SiteWise};

/// One asset of the hierarchy.
#[derive(Clone, Debug)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub state: String,
    /// The name of the parent's hierarchy that links this asset.
    pub via: Option<String>,
    /// `namespace/name (state)` of the resource that owns the asset.
    pub owner: Option<String>,
    pub children: Vec<Node>,
}

/// The hierarchies under the assets of `targets`, down to `max_depth` levels. A target whose
/// asset lies under another target's asset appears in that tree, not as a tree of its own.
pub async fn tree<S: SiteWise>(
    sitewise: &S,
    targets: &[SiteWiseAsset],
    all: &[SiteWiseAsset],
    max_depth: usize,
) -> anyhow::Result<Vec<Node>> {
    let mut trees = Vec::new();
    for obj in targets {
        let Some(id) = obj.status.as_ref().and_then(|s| s.asset_id.clone()) else {
            continue;
        };
        if let Some(node) = subtree(sitewise, id, None, all, max_depth).await? {
            trees.push(node);
        }
    }
    let mut inner = BTreeSet::new();
    for node in &trees {
        for child in &node.children {
            collect_ids(child, &mut inner);
        }
    }
    trees.retain(|t| !inner.contains(&t.id));
    let mut seen = BTreeSet::new();
    trees.retain(|t| seen.insert(t.id.clone()));
    Ok(trees)
}

fn collect_ids(node: &Node, ids: &mut BTreeSet<String>) {
    ids.insert(node.id.clone());
    for child in &node.children {
        collect_ids(child, ids);
    }
}

type Subtree<'a> = Pin<Box<dyn Future<Output = anyhow::Result<Option<Node>>> + Send + 'a>>;

fn subtree<'a, S: SiteWise>(
    sitewise: &'a S,
    id: String,
    via: Option<String>,
    all: &'a [SiteWiseAsset],
    depth: usize,
) -> Subtree<'a> {
    Box::pin(async move {
        let asset = match sitewise.describe_asset(&id).await {
            Ok(asset) => asset,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut children = Vec::new();
        if depth > 0 {
            for hierarchy in &asset.hierarchies {
                let listed = sitewise
                    .list_associated_assets(&asset.id, Direction::Child, Some(&hierarchy.id))
                    .await?;
                for child in listed {
                    let name = Some(hierarchy.name.clone());
                    if let Some(node) = subtree(sitewise, child.id, name, all, depth - 1).await? {
                        children.push(node);
                    }
                }
            }
        }
        Ok(Some(Node {
            owner: owner(all, &asset.id),
            id: asset.id,
            name: asset.name,
            state: asset.state.to_string(),
            via,
            children,
        }))
    })
}

/// The resource that owns `asset_id` and its state, for people.
fn owner(all: &[SiteWiseAsset], asset_id: &str) -> Option<String> {
    let obj = all.iter().find(|o| o.holds(asset_id))?;
    let status = obj.status.as_ref()?;
    let state = match (&status.deletion, obj.metadata.deletion_timestamp.is_some()) {
        (Some(deletion), true) => format!("deleting: {:?}", deletion.phase),
        (_, true) => "deleting".into(),
        _ => status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| {
                if c.status == "True" {
                    "Ready".to_string()
                } else {
                    format!("not ready: {}", c.reason)
                }
            })
            .unwrap_or_else(|| "observing".into()),
    };
    Some(format!(
        "{}/{} ({state})",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    ))
}

/// The trees as text: one line per asset, `[hierarchy]`, name, ID, state, and the owning
/// resource after an arrow (`no resource` when none owns it).
pub fn render_tree(trees: &[Node]) -> String {
    let mut out = String::new();
    for tree in trees {
        line(&mut out, tree, "", "");
        draw(&mut out, &tree.children, "");
        out.push('\n');
    }
    if trees.is_empty() {
        out.push_str("No asset in SiteWise for the selected resources.\n");
    }
    out
}

fn draw(out: &mut String, children: &[Node], prefix: &str) {
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let (branch, next) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        line(out, child, prefix, branch);
        draw(out, &child.children, &format!("{prefix}{next}"));
    }
}

fn line(out: &mut String, node: &Node, prefix: &str, branch: &str) {
    let via = node
        .via
        .as_ref()
        .map(|v| format!("[{v}] "))
        .unwrap_or_default();
    let owner = node.owner.as_deref().unwrap_or("no resource");
    let _ = writeln!(
        out,
        "{prefix}{branch}{via}\"{}\" {} {}  <- {owner}",
        node.name, node.id, node.state
    );
}

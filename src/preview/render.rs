//! The plan as text for people: each resource with what becomes of its asset and the steps
//! its deletion takes (the notes of the events it would publish), then the SiteWise calls and
//! the least time they take at the account's rates.

use std::fmt::Write as _;

use super::{Outcome, Plan};

pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let n = plan.resources.len();
    let _ = writeln!(out, "Deleting {n} SiteWiseAsset(s) would:\n");
    for resource in &plan.resources {
        let asset = resource
            .asset
            .as_ref()
            .map(|a| format!("asset {} \"{}\"", a.id, a.name))
            .unwrap_or_else(|| "no asset".into());
        let _ = writeln!(
            out,
            "{}/{}  {asset}\n  => {}",
            resource.namespace,
            resource.name,
            verdict(&resource.outcome)
        );
        for (reason, note) in &resource.events {
            let _ = writeln!(out, "     {reason}: {note}");
        }
        out.push('\n');
    }
    let calls: Vec<String> = plan
        .calls
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "SiteWise calls: {}",
        if calls.is_empty() {
            "none".into()
        } else {
            calls.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "At {} asset-operation and {} DescribeAsset requests per second: at least {:.1} s of calls, plus SiteWise's own time to delete each asset.",
        plan.rates.0,
        plan.rates.1,
        plan.minimum_time().as_secs_f64()
    );
    let _ = writeln!(
        out,
        "Nothing was changed: this ran the operator's deletion flow on a copy of the assets."
    );
    out
}

fn verdict(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Deleted => "DELETED in SiteWise".into(),
        Outcome::AlreadyGone => "released: the asset is already gone".into(),
        Outcome::Retained => "RETAINED: the asset stays in SiteWise, the claim is removed".into(),
        Outcome::NotOwned => {
            "released without touching the asset (this resource does not own it)".into()
        }
        Outcome::Orphaned => "released without touching SiteWise (force-orphan)".into(),
        Outcome::Blocked(children) => format!(
            "BLOCKED (childPolicy: Block) by {} linked child(ren): {}",
            children.len(),
            children.join("; ")
        ),
        Outcome::Stuck(error) => format!("would not finish: {error}"),
        Outcome::NoAsset => "released: no asset in SiteWise".into(),
    }
}

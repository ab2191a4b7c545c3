//! End-to-end tests against a real kube-apiserver, etcd and kube-controller-manager, the
//! emulator and the real operator binary. One control plane serves the whole run and is
//! stopped when the run ends; each case works in its own namespace.
//!
//! Run with `cargo test --test e2e`; the control-plane binaries are built (or reused) by
//! `scripts/build-control-plane.sh`. If the control plane cannot start, every case fails.

mod accounts;
mod cases;
mod hardening;
mod harness;
mod models;
mod ownership;
mod plan;
mod protection;
mod shipping;

use std::future::Future;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

type Case =
    fn(Arc<harness::Env>) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

macro_rules! case {
    ($name:ident) => {
        case!(cases::$name)
    };
    ($module:ident::$name:ident) => {
        (
            stringify!($name),
            (|env: Arc<harness::Env>| Box::pin(async move { $module::$name(&env).await })) as Case,
        )
    };
}

fn main() {
    let args = Arguments::from_args();
    let cases: Vec<(&str, Case)> = vec![
        case!(ready_with_finalizer),
        case!(delete_parent),
        case!(gitops_prune_of_a_tree),
        case!(namespace_teardown),
        case!(retain_policy),
        case!(throttling_and_conflicts),
        case!(restart_mid_deletion),
        case!(force_orphan_releases_a_stuck_deletion),
        case!(leader_election_fails_over),
        case!(malformed_asset_id_is_refused),
        case!(rbac_is_least_privilege),
        case!(helm_chart_is_valid_and_matches_deploy),
        case!(ownership::plant_created_from_spec_then_pruned),
        case!(ownership::two_resources_on_one_asset),
        case!(ownership::reused_external_id_is_never_followed),
        case!(ownership::crash_between_create_and_status_write),
        case!(ownership::drift_is_found_by_sweeps_and_corrected),
        case!(ownership::reparent_moves_the_child),
        case!(ownership::failed_deletion_is_retried_with_a_new_token),
        case!(ownership::bad_input_is_refused_or_explained),
        case!(hardening::paused_leader_sends_nothing_after_resume),
        case!(hardening::api_server_outage_is_recovered_within_a_few_polls),
        case!(shipping::standby_is_ready_and_shutdown_releases_the_lease),
        case!(shipping::gitops_health_verdicts),
        case!(protection::deletion_protection_is_enforced_by_the_api_server),
        case!(protection::block_holds_a_site_until_its_children_are_gone),
        case!(protection::cascade_deletes_the_unmanaged_subtree),
        case!(plan::plan_shows_what_a_deletion_would_do),
        case!(plan::plan_matches_the_deletion_that_follows),
        case!(models::plant_from_models_applied_in_any_order_then_pruned),
        case!(models::model_changes_and_bad_hierarchies),
        case!(accounts::two_accounts_and_regions_through_assumed_roles),
    ];
    let selected = cases
        .iter()
        .any(|(name, _)| args.filter.as_deref().is_none_or(|f| name.contains(f)) && !args.list);
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}")),
    );
    // Start the control plane only when a case will run; a failure fails every case.
    let env: Result<Arc<harness::Env>, String> = if selected {
        runtime
            .block_on(harness::Env::start())
            .map(Arc::new)
            .map_err(|e| format!("the control plane did not start: {e:#}"))
    } else {
        Err("not started".into())
    };
    let trials = cases
        .into_iter()
        .map(|(name, case)| {
            let runtime = runtime.clone();
            let env = env.clone();
            Trial::test(name, move || {
                let env = env.map_err(Failed::from)?;
                runtime
                    .block_on(case(env))
                    .map_err(|e| Failed::from(format!("{e:#}")))
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // The trials are gone: this is the last handle, and dropping it stops the control plane.
    drop(env);
    conclusion.exit();
}

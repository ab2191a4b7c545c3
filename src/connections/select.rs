//! Which connection a resource uses, decided without calling anyone: the one it names, else
//! its namespace's default, else the operator's own; never another than the one it was first
//! reached through; and only a connection that exists, allows the namespace and works.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::crd::{OPERATOR_CONNECTION, SiteWiseConnection};

/// A resource's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The operator's own region and identity.
    Operator,
    Named(String),
}

impl Choice {
    /// The value `status.connection` records.
    pub fn pin(&self) -> &str {
        match self {
            Self::Operator => OPERATOR_CONNECTION,
            Self::Named(name) => name,
        }
    }

    pub fn from_pin(pin: &str) -> Self {
        if pin == OPERATOR_CONNECTION {
            Self::Operator
        } else {
            Self::Named(pin.to_string())
        }
    }
}

/// Why a resource cannot use a connection now; each becomes a condition a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The resource was first reached through `pinned`; it now asks for `wanted`.
    Changed {
        pinned: String,
        wanted: String,
    },
    Missing(String),
    NotAllowed {
        name: String,
        namespace: String,
    },
    NotReady {
        name: String,
        reason: String,
    },
}

impl Refusal {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Changed { .. } => "ConnectionChanged",
            Self::Missing(_) => "ConnectionNotFound",
            Self::NotAllowed { .. } => "ConnectionNotAllowed",
            Self::NotReady { .. } => "ConnectionNotReady",
        }
    }

    /// The condition message: what happened and what to do.
    pub fn message(&self) -> String {
        match self {
            Self::Changed { pinned, wanted } => format!(
                "This resource's asset lives in connection {pinned}; it now resolves to {wanted} (the namespace's default changed?). Nothing is sent to either until it resolves to {pinned} again; to use {wanted}, create a new resource"
            ),
            Self::Missing(name) => format!(
                "SiteWiseConnection {name} does not exist; create it or fix spec.connectionRef (or the namespace's sitewise.operator.dev/connection annotation)"
            ),
            Self::NotAllowed { name, namespace } => format!(
                "SiteWiseConnection {name} does not allow namespace {namespace}: add it to the connection's spec.namespaces or namespaceSelector, or use another connection"
            ),
            Self::NotReady { name, reason } => {
                format!("SiteWiseConnection {name} is not Ready ({reason}); see its status")
            }
        }
    }
}

/// The connection a resource asks for: its own reference, else its namespace's default.
pub fn wanted(reference: Option<&str>, namespace_default: Option<&str>) -> Choice {
    match reference.or(namespace_default).filter(|n| !n.is_empty()) {
        Some(name) => Choice::Named(name.to_string()),
        None => Choice::Operator,
    }
}

/// The connection to use, given what the resource asks for, what it was first reached
/// through (`pinned`), the connections that exist, and the namespace with its labels.
pub fn decide(
    wanted: Choice,
    pinned: Option<&str>,
    connections: &[Arc<SiteWiseConnection>],
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> Result<Choice, Refusal> {
    if let Some(pinned) = pinned
        && Choice::from_pin(pinned) != wanted
    {
        return Err(Refusal::Changed {
            pinned: pinned.to_string(),
            wanted: wanted.pin().to_string(),
        });
    }
    let Choice::Named(name) = &wanted else {
        return Ok(Choice::Operator);
    };
    let Some(connection) = connections
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
    else {
        return Err(Refusal::Missing(name.clone()));
    };
    if !connection.allows(namespace, labels) {
        return Err(Refusal::NotAllowed {
            name: name.clone(),
            namespace: namespace.to_string(),
        });
    }
    if !connection.is_ready() {
        let reason = connection
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .map(|c| format!("{}: {}", c.reason, c.message))
            .unwrap_or_else(|| "not checked yet".into());
        return Err(Refusal::NotReady {
            name: name.clone(),
            reason,
        });
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Condition, SiteWiseConnectionSpec, SiteWiseConnectionStatus};

    fn connection(name: &str, namespaces: &[&str], ready: bool) -> Arc<SiteWiseConnection> {
        let mut c = SiteWiseConnection::new(
            name,
            SiteWiseConnectionSpec {
                region: "eu-west-1".into(),
                namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
                ..SiteWiseConnectionSpec::default()
            },
        );
        c.status = Some(SiteWiseConnectionStatus {
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                reason: if ready {
                    "Connected"
                } else {
                    "AssumeRoleFailed"
                }
                .into(),
                message: "AccessDenied".into(),
                last_transition_time: String::new(),
                observed_generation: None,
            }],
            ..SiteWiseConnectionStatus::default()
        });
        Arc::new(c)
    }

    #[test]
    fn the_reference_wins_over_the_namespace_default_which_wins_over_the_operator() {
        assert_eq!(wanted(Some("eu"), Some("us")), Choice::Named("eu".into()));
        assert_eq!(wanted(None, Some("us")), Choice::Named("us".into()));
        assert_eq!(wanted(None, None), Choice::Operator);
        assert_eq!(wanted(None, Some("")), Choice::Operator);
    }

    #[test]
    fn a_connection_is_used_only_if_it_exists_allows_the_namespace_and_works() {
        let all = [
            connection("eu", &["plant-a"], true),
            connection("broken", &["plant-a"], false),
        ];
        let labels = BTreeMap::new();
        let named = |n: &str| Choice::Named(n.into());
        assert_eq!(
            decide(named("eu"), None, &all, "plant-a", &labels),
            Ok(named("eu"))
        );
        assert_eq!(
            decide(named("eu"), None, &all, "plant-b", &labels),
            Err(Refusal::NotAllowed {
                name: "eu".into(),
                namespace: "plant-b".into()
            })
        );
        assert_eq!(
            decide(named("gone"), None, &all, "plant-a", &labels),
            Err(Refusal::Missing("gone".into()))
        );
        let refused = decide(named("broken"), None, &all, "plant-a", &labels);
        assert!(
            matches!(&refused, Err(Refusal::NotReady { reason, .. }) if reason.contains("AccessDenied")),
            "{refused:?}"
        );
        assert_eq!(
            decide(Choice::Operator, None, &all, "plant-b", &labels),
            Ok(Choice::Operator)
        );
    }

    #[test]
    fn a_resource_never_moves_from_the_connection_it_was_first_reached_through() {
        let all = [connection("eu", &["plant-a"], true)];
        let labels = BTreeMap::new();
        let moved = decide(
            Choice::Named("eu".into()),
            Some(OPERATOR_CONNECTION),
            &all,
            "plant-a",
            &labels,
        );
        assert_eq!(
            moved,
            Err(Refusal::Changed {
                pinned: OPERATOR_CONNECTION.into(),
                wanted: "eu".into()
            })
        );
        assert!(
            moved
                .expect_err("moved")
                .message()
                .contains("create a new resource")
        );
        assert_eq!(
            decide(
                Choice::Named("eu".into()),
                Some("eu"),
                &all,
                "plant-a",
                &labels
            ),
            Ok(Choice::Named("eu".into()))
        );
    }

    #[test]
    fn a_namespace_selector_allows_namespaces_with_all_its_labels() {
        let mut c = SiteWiseConnection::new("eu", SiteWiseConnectionSpec::default());
        c.spec.namespace_selector = Some(crate::crd::NamespaceSelector {
            match_labels: [("team".to_string(), "welding".to_string())].into(),
        });
        let welding = [("team".to_string(), "welding".to_string())].into();
        let paint = [("team".to_string(), "paint".to_string())].into();
        assert!(c.allows("any", &welding));
        assert!(!c.allows("any", &paint));
        assert!(!c.allows("any", &BTreeMap::new()));
        let nobody = SiteWiseConnection::new("none", SiteWiseConnectionSpec::default());
        assert!(
            !nobody.allows("plant-a", &BTreeMap::new()),
            "empty allows none"
        );
    }
}

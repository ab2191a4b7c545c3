//! The checked-in CRDs (crds/ and the Helm chart's copy) must be exactly what the Rust types
//! generate.

#[test]
fn checked_in_crds_match_the_rust_types() {
    let generated = sitewise_operator::crd_yaml().expect("CRD serialises");
    for path in [
        "crds/sitewise-crds.yaml",
        "deploy/helm/sitewise-operator/crds/sitewise-crds.yaml",
    ] {
        let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
        let checked_in = std::fs::read_to_string(&full).unwrap_or_default();
        assert!(
            generated == checked_in,
            "{path} is out of date; regenerate it with\n  \
             cargo run -- crd > crds/sitewise-crds.yaml && \
             cp crds/sitewise-crds.yaml deploy/helm/sitewise-operator/crds/"
        );
    }
}

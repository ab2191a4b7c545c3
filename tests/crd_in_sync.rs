//! The checked-in CRD must be exactly what the Rust types generate.

#[test]
fn checked_in_crd_matches_the_rust_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/sitewiseasset.yaml");
    let generated = sitewise_operator::crd_yaml().expect("CRD serialises");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == checked_in,
        "crds/sitewiseasset.yaml is out of date; regenerate it with\n  \
         cargo run -- crd > crds/sitewiseasset.yaml"
    );
}

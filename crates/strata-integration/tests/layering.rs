//! The workspace's layering, checked on every test run.
//!
//! `docs/architecture.md` draws the crates and the arrows between them. This
//! test reads the workspace's manifests through `cargo metadata` and fails
//! when a crate depends (normally or in its tests) on a strata crate its row
//! of that table forbids.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// The backends: only composing crates may name one.
const BACKENDS: &[&str] = &["strata-log", "strata-postgres"];

/// The kind of dependency, as `cargo metadata` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Normal,
    Dev,
    Build,
}

/// Every workspace crate's strata dependencies, by kind.
fn workspace_edges() -> BTreeMap<String, BTreeSet<(String, Kind)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .args(["--manifest-path", manifest])
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let mut edges = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_owned();
        let mut deps = BTreeSet::new();
        for dep in package["dependencies"].as_array().expect("dependencies") {
            let dep_name = dep["name"].as_str().expect("dependency name");
            if !dep_name.starts_with("strata") {
                continue;
            }
            let kind = match dep["kind"].as_str() {
                None => Kind::Normal,
                Some("dev") => Kind::Dev,
                Some(_) => Kind::Build,
            };
            deps.insert((dep_name.to_owned(), kind));
        }
        edges.insert(name, deps);
    }
    edges
}

/// The strata crates `krate` may depend on with `kind`, or `None` when it
/// may depend on any of them.
fn allowed(krate: &str, kind: Kind) -> Option<&'static [&'static str]> {
    let allowed: &'static [&'static str] = match (krate, kind) {
        ("strata-core", _) => &[],
        ("strata-testkit", _) => &["strata-core"],
        ("strata", _) => &["strata-core"],
        ("strata-log" | "strata-postgres", Kind::Normal | Kind::Build) => &["strata-core"],
        // A backend's tests run the conformance suite.
        ("strata-log" | "strata-postgres", Kind::Dev) => &["strata-core", "strata-testkit"],
        ("strata-wire", _) => &["strata-core"],
        ("strata-server", _) => &["strata-core", "strata-wire"],
        ("strata-client", Kind::Normal | Kind::Build) => &["strata-core", "strata-wire"],
        // The client's tests run against a real server.
        ("strata-client", Kind::Dev) => &["strata-core", "strata-wire", "strata-server"],
        ("strata-grpc", _) => &["strata-core", "strata-server"],
        // Its tests run the clients against memory stores; its bench
        // composes a durable log store (tests and benches only).
        ("strata-interop", _) => &[
            "strata-core",
            "strata-grpc",
            "strata-server",
            "strata-stores",
            "strata-log",
        ],
        ("strata-stores", _) => &["strata-core", "strata-log", "strata-postgres"],
        ("strata-scenarios", Kind::Normal | Kind::Build) => &["strata-core", "strata"],
        // The scenarios' examples and tests run on the durable stores.
        ("strata-scenarios", Kind::Dev) => {
            &["strata-core", "strata", "strata-log", "strata-postgres"]
        }
        ("strata-bench" | "strata-integration" | "strata-cli", _) => return None,
        (other, _) => panic!(
            "crate `{other}` has no row in docs/architecture.md's table; add it there and here"
        ),
    };
    Some(allowed)
}

#[test]
fn every_crate_depends_only_on_what_its_layer_allows() {
    let edges = workspace_edges();
    assert!(edges.contains_key("strata-core"), "the workspace was read");
    let mut violations = Vec::new();
    for (krate, deps) in &edges {
        for (dep, kind) in deps {
            // A crate may name itself (a dev-dependency enabling test features).
            if dep == krate {
                continue;
            }
            if let Some(allowed) = allowed(krate, *kind) {
                if !allowed.contains(&dep.as_str()) {
                    violations.push(format!("{krate} -> {dep} ({kind:?})"));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dependencies the layering forbids (see docs/architecture.md):\n{}",
        violations.join("\n")
    );
}

#[test]
fn only_composing_crates_name_a_backend() {
    let composing = [
        "strata-cli",
        "strata-stores",
        "strata-bench",
        "strata-integration",
        "strata-scenarios",
        "strata-interop",
    ];
    let edges = workspace_edges();
    for (krate, deps) in &edges {
        if composing.contains(&krate.as_str()) || BACKENDS.contains(&krate.as_str()) {
            continue;
        }
        for (dep, kind) in deps {
            assert!(
                !BACKENDS.contains(&dep.as_str()),
                "{krate} names the backend {dep} ({kind:?}); only composing crates may"
            );
        }
    }
    // The scenarios library itself names none: only its examples and tests do.
    let scenarios = &edges["strata-scenarios"];
    for backend in BACKENDS {
        assert!(
            !scenarios.contains(&(backend.to_string(), Kind::Normal)),
            "strata-scenarios' library names {backend}"
        );
    }
}

#[test]
fn the_core_depends_on_no_strata_crate() {
    let edges = workspace_edges();
    assert_eq!(edges["strata-core"], BTreeSet::new());
}

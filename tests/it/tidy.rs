//! Project rules as tests: the dependency arrows between our crates (ARCHITECTURE.md), the
//! domain's purity, and the `//!` header every source file opens with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Our crates, and which of our crates each may depend on (normal dependencies).
const ALLOWED_ARROWS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("store", &[]),
    ("projections", &["domain", "store"]),
    ("sla-scheduler", &["domain", "store"]),
    ("routing", &["domain", "projections", "store"]),
    ("automation", &["domain", "store", "sla-scheduler"]),
    (
        "api",
        &[
            "domain",
            "projections",
            "store",
            "sla-scheduler",
            "automation",
            "routing",
        ],
    ),
    (
        "docket",
        &[
            "domain",
            "store",
            "projections",
            "api",
            "sla-scheduler",
            "routing",
            "automation",
        ],
    ),
    (
        "tests",
        &[
            "domain",
            "store",
            "projections",
            "api",
            "sla-scheduler",
            "automation",
            "routing",
        ],
    ),
];

/// Third-party crates the pure domain may use: no runtime, database, HTTP, logging or clock.
const DOMAIN_THIRD_PARTY: &[&str] = &[
    "jiff",
    "schemars",
    "serde",
    "serde_json",
    "thiserror",
    "toml",
    "uuid",
];

/// Calls that read a clock, make ids or do I/O: never in the domain's sources.
const DOMAIN_FORBIDDEN_CALLS: &[&str] = &[
    "Timestamp::now",
    "now_v7",
    "new_v4",
    "SystemTime",
    "Instant::now",
    "std::fs",
    "std::net",
    "println!",
    "eprintln!",
    "tokio",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `package name -> [(dependency name, kind)]` for every workspace member, from cargo itself.
fn dependencies() -> BTreeMap<String, Vec<(String, Option<String>)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|dep| {
                    (
                        dep["name"].as_str().unwrap().to_owned(),
                        dep["kind"].as_str().map(str::to_owned),
                    )
                })
                .collect();
            (package["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn dependency_arrows_follow_the_architecture() {
    let packages = dependencies();
    let ours: Vec<&str> = ALLOWED_ARROWS.iter().map(|(name, _)| *name).collect();
    for (package, deps) in &packages {
        let allowed = ALLOWED_ARROWS
            .iter()
            .find(|(name, _)| name == package)
            .unwrap_or_else(|| panic!("crate {package} is not in ARCHITECTURE.md's codemap (add it to ALLOWED_ARROWS)"))
            .1;
        for (dep, kind) in deps {
            let normal = kind.is_none();
            if ours.contains(&dep.as_str()) && normal {
                assert!(
                    allowed.contains(&dep.as_str()),
                    "{package} depends on {dep}: not an arrow in ARCHITECTURE.md"
                );
            }
            if package == "domain" && normal {
                assert!(
                    DOMAIN_THIRD_PARTY.contains(&dep.as_str()),
                    "domain depends on {dep}: the domain stays pure (allowed: {DOMAIN_THIRD_PARTY:?})"
                );
            }
            assert_ne!(dep, "tests", "{package} depends on tests: nothing may");
        }
    }
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn the_domain_reads_no_clock_and_does_no_io() {
    let mut files = Vec::new();
    rust_files(&workspace_root().join("crates/domain/src"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for call in DOMAIN_FORBIDDEN_CALLS {
            assert!(
                !text.contains(call),
                "{} uses {call}: the domain is pure",
                file.display()
            );
        }
    }
}

#[test]
fn every_source_file_says_what_it_owns() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must open with a //! comment saying what it owns",
            file.display()
        );
    }
}

//! Project rules as tests: every source file of the crate says what it owns in a `//!` line.

use std::path::Path;

fn rust_files(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_file_opens_with_a_module_comment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|path| !std::fs::read_to_string(path).unwrap().starts_with("//!"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` opening: {missing:?}"
    );
}

#[test]
fn the_domain_reads_no_clock_and_no_randomness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let forbidden = [
        "now_v7",
        "new_v4",
        "Timestamp::now",
        "SystemTime",
        "Instant::now",
        "println!",
        "eprintln!",
    ];
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        for needle in forbidden {
            assert!(!source.contains(needle), "{} uses {needle}", path.display());
        }
    }
}

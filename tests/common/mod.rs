//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// The shared datasets folder (`$CIRCSNN_DATA`, else `../shared/datasets`)
/// holding `marker` (a path inside it), if there is one; tests that need it
/// are skipped, with a notice, on machines without it.
pub fn shared_datasets_with(marker: &str) -> Option<PathBuf> {
    let candidates = std::env::var_os("CIRCSNN_DATA")
        .map(PathBuf::from)
        .into_iter()
        .chain([Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets")]);
    for dir in candidates {
        if dir.join(marker).exists() {
            return Some(dir);
        }
    }
    eprintln!(
        "skipping: no shared datasets folder with {marker} ($CIRCSNN_DATA or ../shared/datasets)"
    );
    None
}

/// The shared datasets folder with `mnist/`.
#[allow(dead_code)] // not every test file uses both helpers
pub fn shared_datasets() -> Option<PathBuf> {
    shared_datasets_with("mnist")
}

//! The fixture cache's entries of things built here from source (the
//! minimal kernel, the loader tools): one directory per key under a root,
//! each there whole or not at all. Owns the protocol that keeps it so when
//! several processes ask at once or a builder is killed: the look before
//! the lock, the file lock (`<root>/.build.lock`), the look again under it,
//! the sweep of work directories (`.build-<pid>-*`) whose builder is gone,
//! the work directory of a new build, and the lookup by an entry's `inputs`
//! file for a host without a toolchain. It must not know what an entry
//! holds, how it is built or how its key is made.

use std::path::{Path, PathBuf};

/// A filesystem failure at `path` while looking up or locking an entry.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct CacheIoError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What the system said.
    pub source: std::io::Error,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheIoError + '_ {
    move |source| CacheIoError {
        path: path.to_path_buf(),
        source,
    }
}

/// The entry `<root>/<key>` as `load` reads it, built first by `build` if
/// `load` finds nothing. `build` runs under the root's file lock, after a
/// second look (another process may have built it while this one waited)
/// and after the work directories of killed builds are swept; it must
/// leave the entry renamed into place whole (see [`work_dir`]). An entry
/// that `load` still cannot read after a successful build is an error.
pub fn load_or_build<T, E>(
    root: &Path,
    key: &str,
    load: impl Fn(&Path) -> Option<T>,
    build: impl FnOnce() -> Result<(), E>,
) -> Result<T, E>
where
    E: From<CacheIoError>,
{
    let dir = root.join(key);
    if let Some(t) = load(&dir) {
        return Ok(t);
    }
    std::fs::create_dir_all(root).map_err(io_err(root))?;
    let lock_path = root.join(".build.lock");
    let guard = std::fs::File::create(&lock_path).map_err(io_err(&lock_path))?;
    guard.lock().map_err(io_err(&lock_path))?;
    if let Some(t) = load(&dir) {
        return Ok(t);
    }
    sweep_stale_builds(root);
    build()?;
    load(&dir).ok_or_else(|| {
        CacheIoError {
            path: dir.clone(),
            source: std::io::Error::other("the finished build is incomplete"),
        }
        .into()
    })
}

/// A new work directory `<root>/.build-<pid>-*` for one build, removed when
/// dropped; one left by a killed process is swept by the next build.
pub fn work_dir(root: &Path) -> Result<tempfile::TempDir, CacheIoError> {
    tempfile::Builder::new()
        .prefix(&format!(".build-{}-", std::process::id()))
        .tempdir_in(root)
        .map_err(io_err(root))
}

/// An entry under `root` whose `inputs` file says `inputs` (whatever the
/// toolchain of its key), as `load` reads it: for a host that has a cache
/// but no compiler.
pub fn find_by_inputs<T>(
    root: &Path,
    inputs: &str,
    load: impl Fn(&Path) -> Option<T>,
) -> Option<T> {
    std::fs::read_dir(root)
        .ok()?
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| {
            std::fs::read_to_string(e.path().join("inputs")).is_ok_and(|t| t.trim() == inputs)
        })
        .find_map(|e| load(&e.path()))
}

/// Removes the work directories under `root` whose builder is gone.
fn sweep_stale_builds(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(".build-")
            .and_then(|r| r.split_once('-'))
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !crate::atomic::process_alive(pid) {
            tracing::info!(dir = %e.path().display(), pid, "removing a killed build");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum TestError {
        Io,
        Build,
    }
    impl From<CacheIoError> for TestError {
        fn from(_: CacheIoError) -> Self {
            TestError::Io
        }
    }

    fn load(dir: &Path) -> Option<String> {
        std::fs::read_to_string(dir.join("done")).ok()
    }

    #[test]
    fn builds_of_dead_processes_are_swept_and_live_ones_and_entries_kept() {
        let d = tempfile::tempdir().unwrap();
        let live = d.path().join(format!(".build-{}-abc", std::process::id()));
        let dead = d.path().join(".build-999999999-abc");
        let entry = d.path().join("0123456789abcdef");
        for p in [&live, &dead, &entry] {
            std::fs::create_dir_all(p).unwrap();
        }
        sweep_stale_builds(d.path());
        assert!(live.is_dir());
        assert!(!dead.exists());
        assert!(entry.is_dir());
    }

    #[test]
    fn an_entry_is_built_once_then_loaded_and_a_killed_build_is_swept_first() {
        let d = tempfile::tempdir().unwrap();
        let dead = d.path().join(".build-999999999-x");
        std::fs::create_dir_all(&dead).unwrap();
        let mut builds = 0;
        let got: String = load_or_build(d.path(), "k1", load, || -> Result<(), TestError> {
            builds += 1;
            assert!(
                !dead.exists(),
                "the killed build's directory is swept before building"
            );
            let w = work_dir(d.path()).unwrap();
            let out = w.path().join("out");
            std::fs::create_dir_all(&out).unwrap();
            std::fs::write(out.join("done"), "built").unwrap();
            std::fs::rename(&out, d.path().join("k1")).unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!((got.as_str(), builds), ("built", 1));
        let again: String = load_or_build(d.path(), "k1", load, || -> Result<(), TestError> {
            panic!("a complete entry is not built again")
        })
        .unwrap();
        assert_eq!(again, "built");
    }

    #[test]
    fn a_build_that_leaves_no_entry_is_an_error_and_a_failed_one_passes_its_error() {
        let d = tempfile::tempdir().unwrap();
        let r: Result<String, TestError> = load_or_build(d.path(), "k", load, || Ok(()));
        assert!(matches!(r, Err(TestError::Io)), "{r:?}");
        let r: Result<String, TestError> =
            load_or_build(d.path(), "k", load, || Err(TestError::Build));
        assert!(matches!(r, Err(TestError::Build)), "{r:?}");
    }

    #[test]
    fn an_entry_is_found_by_its_inputs_whatever_its_key() {
        let d = tempfile::tempdir().unwrap();
        for (key, inputs, done) in [
            ("a", "other", true),
            ("b", "want", false),
            ("c", "want", true),
        ] {
            let dir = d.path().join(key);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("inputs"), format!("{inputs}\n")).unwrap();
            if done {
                std::fs::write(dir.join("done"), key).unwrap();
            }
        }
        std::fs::create_dir_all(d.path().join(".build-1-want")).unwrap();
        assert_eq!(find_by_inputs(d.path(), "want", load).as_deref(), Some("c"));
        assert_eq!(find_by_inputs(d.path(), "none", load), None);
    }
}

//! The library's error type. Every variant names the thing that failed (a
//! file, a scenario key, a QEMU step) so a message is actionable on its own.
//! It owns no behaviour; console-expectation failures carry their own richer
//! report in [`crate::runner::ScenarioFailure`].

use std::path::PathBuf;

/// Every way the harness itself (as opposed to a guest) can fail.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A file or directory operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the harness was doing.
        what: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A scenario file is invalid.
    #[error("scenario {}{}: {message}", path.display(), at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Scenario {
        /// The scenario file.
        path: PathBuf,
        /// Line and column (1-based) of the offending key, when known.
        at: Option<(usize, usize)>,
        /// What is wrong, naming the key.
        message: String,
    },
    /// `qemu-system-s390x` is missing or unusable.
    #[error("qemu: {0}")]
    Qemu(String),
    /// An environment variable has a value the harness cannot use.
    #[error("{var}={value}: {message}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        message: String,
    },
    /// A payload could not be built.
    #[error("building payload {name}: {message}")]
    Payload {
        /// The payload name (e.g. `@pxelinux`).
        name: String,
        /// What went wrong.
        message: String,
    },
    /// The fixtures could not be obtained (boxed: the error is large).
    #[error(transparent)]
    Fixtures(Box<s390_pxelinux::fixtures::FixtureError>),
    /// An external tool (mke2fs) failed.
    #[error("{tool}: {message}")]
    Tool {
        /// The tool's name.
        tool: &'static str,
        /// Its error output or the spawn error.
        message: String,
    },
}

impl From<s390_pxelinux::fixtures::FixtureError> for HarnessError {
    fn from(e: s390_pxelinux::fixtures::FixtureError) -> Self {
        HarnessError::Fixtures(Box::new(e))
    }
}

impl HarnessError {
    /// Shorthand for [`HarnessError::Io`].
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        HarnessError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

//! A scenario file as written: the serde types of its TOML, unknown keys
//! rejected, nothing defaulted or checked beyond what serde does. Turning
//! this into a [`super::Scenario`] is [`super::validate`]'s job; this
//! module must not check values or resolve anything.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub description: String,
    #[serde(default)]
    pub slow: bool,
    #[serde(default)]
    pub timeout: Option<f64>,
    #[serde(default)]
    pub total_timeout: Option<f64>,
    #[serde(default)]
    pub kernels: RawKernels,
    #[serde(default)]
    pub machine: RawMachine,
    #[serde(default)]
    pub network: Option<crate::network::Section>,
    #[serde(default)]
    pub direct: Option<RawDirect>,
    #[serde(default)]
    pub tftp: BTreeMap<String, RawSource>,
    #[serde(default)]
    pub disk: Vec<RawSource>,
    #[serde(default)]
    pub step: Vec<RawStep>,
    #[serde(default)]
    pub forbid: Vec<String>,
    #[serde(default)]
    pub http: Option<crate::http::HttpConfig>,
    #[serde(default)]
    pub ftp: Option<crate::ftp::FtpConfig>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKernels {
    pub pxelinux: Option<String>,
    pub pxelinux_cmdline: Option<String>,
    pub target: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMachine {
    pub mac: Option<String>,
    pub uuid: Option<String>,
    pub memory: Option<u32>,
    pub tb_size: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDirect {
    pub kernel: RawSource,
    #[serde(default)]
    pub initrd: Vec<RawSource>,
    #[serde(default)]
    pub append: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawSource {
    Plain(String),
    Table(RawSourceTable),
}

/// What serde says when a [`RawSource`] is neither form, and what a
/// reader is told instead.
pub(super) const UNTAGGED_SOURCE_MESSAGE: (&str, &str) = (
    "data did not match any variant of untagged enum RawSource",
    "expected a string or a table with one of `text`, `file`, `payload`",
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSourceTable {
    pub text: Option<String>,
    pub file: Option<PathBuf>,
    /// `payload = "name"`; `artifact` is the older spelling, still read.
    #[serde(alias = "artifact")]
    pub payload: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub expect: String,
    pub timeout: Option<f64>,
    pub send: Option<String>,
}

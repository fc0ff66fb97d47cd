//! netboot-harness: boots s390x network-boot scenarios in `qemu-system-s390x`
//! and checks what the guests print on their console.
//!
//! The library owns everything between a scenario file and a verdict:
//! parsing scenarios ([`scenario`]), building and caching the guest payloads
//! the scenarios refer to ([`payload`]), laying out the per-scenario artifact
//! directory ([`artifacts`]) and the TFTP tree ([`tree`]), driving QEMU ([`qemu`], [`qmp`],
//! [`reaper`]), reading and matching the console ([`console`]), attaching the
//! network ([`network`], [`inprocess`], [`dnsmasq`], the run's HTTP server [`http`]), running a scenario end to end ([`runner`]), repeating runs to find flakes and leaks ([`soak`]) and measuring this process's resources ([`resources`]). It
//! never builds pxelinux.0 itself (it asks the `s390_pxelinux` crate) and it
//! never leaves a QEMU process behind.

pub mod accel;
pub mod artifacts;
pub mod bench;
pub mod console;
pub mod dnsmasq;
pub mod error;
pub mod ftp;
pub mod http;
pub mod inprocess;
pub mod junit;
pub mod markers;
pub mod network;
pub mod payload;
pub mod qemu;
pub mod qmp;
pub mod reaper;
pub mod report;
pub mod resources;
pub mod runner;
pub mod scenario;
pub mod soak;
pub mod terminal;
pub mod tree;

pub use error::HarnessError;

/// Multiplier applied to every timeout, read from `NETBOOT_TIMEOUT_SCALE`
/// (a positive number; default 1). Slow CI machines set e.g. `3`.
pub fn timeout_scale() -> f64 {
    std::env::var("NETBOOT_TIMEOUT_SCALE")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite() && *f > 0.0)
        .unwrap_or(1.0)
}

/// Scales `secs` by [`timeout_scale`].
pub fn scaled(secs: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(secs * timeout_scale())
}

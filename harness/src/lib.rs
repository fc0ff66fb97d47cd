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

/// The variable that multiplies every timeout.
pub const TIMEOUT_SCALE_ENV: &str = "NETBOOT_TIMEOUT_SCALE";

/// Parses a [`TIMEOUT_SCALE_ENV`] value: a positive, finite number
/// (surrounding blanks ignored; empty = 1).
pub fn parse_timeout_scale(value: &str) -> Result<f64, HarnessError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(1.0);
    }
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(HarnessError::Env {
            var: TIMEOUT_SCALE_ENV,
            value: value.to_string(),
            message: "expected a positive number (the factor every timeout is multiplied by)"
                .into(),
        }),
    }
}

/// Reads [`TIMEOUT_SCALE_ENV`] (unset = 1); a value that is not a
/// positive number is an error naming the variable. [`runner::Harness::new`]
/// calls it, so a run never starts with a value it would ignore.
pub fn timeout_scale_from_env() -> Result<f64, HarnessError> {
    env_setting(TIMEOUT_SCALE_ENV, 1.0, parse_timeout_scale)
}

/// The harness setting in the environment variable `var`, read by `parse`;
/// `default` when it is unset. A value that is not UTF-8 is an error naming
/// the variable, as `parse` makes one for a value it refuses.
pub fn env_setting<T>(
    var: &'static str,
    default: T,
    parse: impl FnOnce(&str) -> Result<T, HarnessError>,
) -> Result<T, HarnessError> {
    match std::env::var(var) {
        Ok(v) => parse(&v),
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(v)) => Err(HarnessError::Env {
            var,
            value: v.to_string_lossy().into_owned(),
            message: "not valid UTF-8".into(),
        }),
    }
}

/// Multiplier applied to every timeout, from [`TIMEOUT_SCALE_ENV`]
/// (default 1). Slow CI machines set e.g. `3`. A bad value counts as 1
/// here; the harness refuses it before any run
/// ([`timeout_scale_from_env`]).
pub fn timeout_scale() -> f64 {
    timeout_scale_from_env().unwrap_or(1.0)
}

/// Scales `secs` by [`timeout_scale`].
pub fn scaled(secs: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(secs * timeout_scale())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_scale_is_a_positive_number_and_anything_else_is_named() {
        assert_eq!(parse_timeout_scale("").unwrap(), 1.0);
        assert_eq!(parse_timeout_scale(" 3 ").unwrap(), 3.0);
        assert_eq!(parse_timeout_scale("0.5").unwrap(), 0.5);
        for bad in ["0", "-2", "three", "inf", "NaN", "1e999"] {
            let e = parse_timeout_scale(bad).expect_err(bad).to_string();
            assert!(
                e.starts_with(&format!(
                    "NETBOOT_TIMEOUT_SCALE={bad}: expected a positive number"
                )),
                "{e}"
            );
        }
    }
}

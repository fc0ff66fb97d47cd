//! Which QEMU accelerator runs the guests: `NETBOOT_ACCEL=auto|tcg|kvm`
//! (default `auto`). `auto` picks KVM on an s390x host whose `/dev/kvm`
//! opens read-write and TCG everywhere else; `kvm` insists on KVM and fails
//! with the reason when the host cannot give it. This module only decides;
//! it must not start QEMU or build its command line beyond the `-accel`
//! value ([`Accel::qemu_arg`]), which [`crate::qemu::build_args`] uses.

use crate::HarnessError;
use std::path::Path;

/// The environment variable choosing the accelerator.
pub const ACCEL_ENV: &str = "NETBOOT_ACCEL";

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM when the host can run it, else TCG.
    Auto,
    /// Always TCG (emulation).
    Tcg,
    /// Always KVM; an error when the host has none.
    Kvm,
}

impl AccelChoice {
    /// Parses a `NETBOOT_ACCEL` value (case-insensitive, surrounding blanks
    /// ignored; empty = `auto`).
    pub fn parse(value: &str) -> Result<AccelChoice, HarnessError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(AccelChoice::Auto),
            "tcg" => Ok(AccelChoice::Tcg),
            "kvm" => Ok(AccelChoice::Kvm),
            _ => Err(HarnessError::Env {
                var: ACCEL_ENV,
                value: value.to_string(),
                message: "expected auto, tcg or kvm".into(),
            }),
        }
    }

    /// Reads [`ACCEL_ENV`] (unset = `auto`).
    pub fn from_env() -> Result<AccelChoice, HarnessError> {
        crate::env_setting(ACCEL_ENV, AccelChoice::Auto, AccelChoice::parse)
    }
}

/// The accelerator a machine runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// QEMU's emulator; `tb_size_mb` sets its translation buffer.
    #[default]
    Tcg,
    /// Hardware virtualisation (s390x host with `/dev/kvm`).
    Kvm,
}

impl Accel {
    /// The value of QEMU's `-accel` option. TCG-only settings (the
    /// translation-buffer size) are dropped under KVM, which has no such
    /// property.
    pub fn qemu_arg(self, tcg_tb_size_mb: Option<u32>) -> String {
        match (self, tcg_tb_size_mb) {
            (Accel::Kvm, _) => "kvm".to_string(),
            (Accel::Tcg, Some(tb)) => format!("tcg,tb-size={tb}"),
            (Accel::Tcg, None) => "tcg".to_string(),
        }
    }

    /// Short name (`tcg`, `kvm`) for logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// Whether this host can run an s390x guest under KVM, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmSupport {
    /// s390x host and `/dev/kvm` opens read-write.
    Usable,
    /// The reason it cannot (wrong architecture, no `/dev/kvm`, no access).
    Unusable(String),
}

/// Probes the running host: its architecture and `/dev/kvm`.
pub fn probe_host() -> KvmSupport {
    probe(std::env::consts::ARCH, Path::new("/dev/kvm"))
}

/// Probes a host of architecture `arch` whose KVM device is `dev`.
pub fn probe(arch: &str, dev: &Path) -> KvmSupport {
    if arch != "s390x" {
        return KvmSupport::Unusable(format!(
            "host is {arch}; KVM runs s390x guests only on s390x hosts"
        ));
    }
    match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        Ok(_) => KvmSupport::Usable,
        Err(e) => KvmSupport::Unusable(format!("{}: {e}", dev.display())),
    }
}

/// Resolves the user's choice against what the host supports.
pub fn resolve(choice: AccelChoice, host: &KvmSupport) -> Result<Accel, HarnessError> {
    match (choice, host) {
        (AccelChoice::Tcg, _) => Ok(Accel::Tcg),
        (AccelChoice::Auto, KvmSupport::Usable) | (AccelChoice::Kvm, KvmSupport::Usable) => {
            Ok(Accel::Kvm)
        }
        (AccelChoice::Auto, KvmSupport::Unusable(why)) => {
            tracing::debug!(reason = %why, "KVM not usable; using TCG");
            Ok(Accel::Tcg)
        }
        (AccelChoice::Kvm, KvmSupport::Unusable(why)) => Err(HarnessError::Env {
            var: ACCEL_ENV,
            value: "kvm".into(),
            message: format!("KVM is not usable here: {why}"),
        }),
    }
}

/// The accelerator for this process: [`ACCEL_ENV`] resolved against the host.
pub fn from_env() -> Result<Accel, HarnessError> {
    resolve(AccelChoice::from_env()?, &probe_host())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_choices_and_rejects_others() {
        assert_eq!(AccelChoice::parse("").unwrap(), AccelChoice::Auto);
        assert_eq!(AccelChoice::parse(" AUTO ").unwrap(), AccelChoice::Auto);
        assert_eq!(AccelChoice::parse("tcg").unwrap(), AccelChoice::Tcg);
        assert_eq!(AccelChoice::parse("KVM").unwrap(), AccelChoice::Kvm);
        let e = AccelChoice::parse("hvf").unwrap_err();
        match &e {
            HarnessError::Env { var, value, .. } => {
                assert_eq!(*var, ACCEL_ENV);
                assert_eq!(value, "hvf");
            }
            other => panic!("wrong error {other:?}"),
        }
        assert!(e.to_string().contains("NETBOOT_ACCEL=hvf"), "{e}");
    }

    #[test]
    fn auto_follows_the_host() {
        assert_eq!(
            resolve(AccelChoice::Auto, &KvmSupport::Usable).unwrap(),
            Accel::Kvm
        );
        assert_eq!(
            resolve(AccelChoice::Auto, &KvmSupport::Unusable("x".into())).unwrap(),
            Accel::Tcg
        );
        assert_eq!(
            resolve(AccelChoice::Tcg, &KvmSupport::Usable).unwrap(),
            Accel::Tcg
        );
    }

    #[test]
    fn kvm_without_kvm_is_an_error_with_the_reason() {
        let e = resolve(
            AccelChoice::Kvm,
            &KvmSupport::Unusable("/dev/kvm: No such file".into()),
        )
        .unwrap_err();
        assert!(e.to_string().contains("/dev/kvm: No such file"), "{e}");
    }

    #[test]
    fn probe_needs_s390x_and_a_device() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("kvm");
        assert!(matches!(
            probe("x86_64", &dev),
            KvmSupport::Unusable(why) if why.contains("x86_64")
        ));
        assert!(matches!(
            probe("s390x", &dev),
            KvmSupport::Unusable(why) if why.contains("kvm")
        ));
        std::fs::write(&dev, b"").unwrap();
        assert_eq!(probe("s390x", &dev), KvmSupport::Usable);
    }

    #[test]
    fn tcg_options_only_under_tcg() {
        assert_eq!(Accel::Tcg.qemu_arg(Some(32)), "tcg,tb-size=32");
        assert_eq!(Accel::Tcg.qemu_arg(None), "tcg");
        assert_eq!(Accel::Kvm.qemu_arg(Some(32)), "kvm");
        assert_eq!(Accel::Kvm.qemu_arg(None), "kvm");
    }
}

#[cfg(test)]
mod argv_tests {
    use super::Accel;
    use crate::qemu::{build_args, MachineSpec, Wiring};

    fn argv(accel: Accel, tb: Option<u32>) -> Vec<String> {
        let spec = MachineSpec {
            accel,
            tcg_tb_size_mb: tb,
            ..MachineSpec::default()
        };
        build_args(&spec, Wiring::Terminal)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn accel_values(args: &[String]) -> Vec<&str> {
        args.windows(2)
            .filter(|w| w[0] == "-accel")
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn tcg_argv_has_one_accel_with_tb_size() {
        let a = argv(Accel::Tcg, Some(32));
        assert_eq!(accel_values(&a), ["tcg,tb-size=32"]);
        assert_eq!(accel_values(&argv(Accel::Tcg, None)), ["tcg"]);
    }

    #[test]
    fn kvm_argv_has_kvm_and_no_tcg_option() {
        let a = argv(Accel::Kvm, Some(32));
        assert_eq!(accel_values(&a), ["kvm"]);
        assert!(
            !a.iter().any(|x| x.contains("tb-size") || x.contains("tcg")),
            "{a:?}"
        );
        // The rest of the machine is the same under both.
        let strip = |v: Vec<String>| -> Vec<String> {
            let mut out = Vec::new();
            let mut it = v.into_iter();
            while let Some(x) = it.next() {
                if x == "-accel" {
                    it.next();
                } else {
                    out.push(x);
                }
            }
            out
        };
        assert_eq!(strip(a), strip(argv(Accel::Tcg, Some(32))));
    }
}

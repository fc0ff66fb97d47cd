//! `s390-pxelinux build`: maps command-line inputs (or the defaults) to a
//! [`s390_pxelinux::build::BuildSpec`] and reports the result.

use anyhow::{bail, Result};
use s390_pxelinux::build::{
    self, BuildSpec, DEFAULT_CMDLINE, DEFAULT_LOADER_KERNEL, DEFAULT_MODULES,
};
use s390_pxelinux::compress::Compression;
use std::path::{Path, PathBuf};

/// Arguments of `build`. Inputs not given come from the defaults (pinned
/// fixtures on non-s390x hosts, the running system on s390x).
#[derive(clap::Args)]
pub struct BuildArgs {
    /// Output file.
    #[arg(short, long, default_value = "pxelinux.0")]
    output: PathBuf,
    /// s390 kernel image (vmlinuz/image).
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// lib/modules/<version> tree matching the kernel.
    #[arg(long)]
    modules: Option<PathBuf>,
    /// Static s390x busybox.
    #[arg(long)]
    busybox: Option<PathBuf>,
    /// s390x kexec binary.
    #[arg(long, requires = "sysroot")]
    kexec: Option<PathBuf>,
    /// Tree in which kexec's (and --tftp-client's) interpreter and libraries are found.
    #[arg(long)]
    sysroot: Option<PathBuf>,
    /// s390x atftp for the guest's transfers (checks the server's tsize, uses
    /// windowsize); default: the fixtures' atftp unless --sysroot is given.
    #[arg(long, requires = "sysroot", conflicts_with = "no_tftp_client")]
    tftp_client: Option<PathBuf>,
    /// Leave atftp out: the guest then uses busybox tftp (no tsize check).
    #[arg(long)]
    no_tftp_client: bool,
    /// Module to include with its dependencies (repeatable; default: virtio_net, virtio_blk, af_packet where modular).
    #[arg(long = "module", value_name = "NAME")]
    module: Vec<String>,
    /// Kernel command line of the first stage.
    #[arg(long, default_value = DEFAULT_CMDLINE)]
    cmdline: String,
    /// Initramfs compression: gzip, xz (smallest), zstd, lz4 (legacy frame: unpacks fastest, larger) or none.
    #[arg(long, default_value = "zstd")]
    compression: Compression,
    /// Extra file SRC:DEST (repeatable).
    #[arg(long = "add", value_name = "SRC:DEST")]
    add: Vec<String>,
    /// Loader (first-stage) kernel when --kernel is not given: `6.1`
    /// (Debian's, the default) or `minimal` (built from Debian's kernel source
    /// by `s390-pxelinux kernel build`, everything built in, no modules; it
    /// needs the s390x cross compiler). Debian's 6.12 has no kexec.
    #[arg(long, visible_alias = "fixture-kernel", value_name = "KERNEL", default_value = DEFAULT_LOADER_KERNEL)]
    loader: String,
    /// Print the build report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `build`.
pub fn run(args: BuildArgs, cache: &Path) -> Result<()> {
    let add = args
        .add
        .iter()
        .map(|a| build::parse_add(a))
        .collect::<Result<Vec<_>, _>>()?;
    let all_given = args.kernel.is_some() && args.busybox.is_some() && args.kexec.is_some();
    let defaults = if all_given {
        None
    } else {
        Some(build::default_inputs(cache, &args.loader)?)
    };
    let pick = |given: Option<PathBuf>, default: Option<PathBuf>, what: &str| -> Result<PathBuf> {
        match given.or(default) {
            Some(p) => Ok(p),
            None => bail!("{what} is required"),
        }
    };
    let d = defaults.as_ref();
    let kernel_given = args.kernel.is_some();
    let spec = BuildSpec {
        kernel: pick(args.kernel, d.map(|d| d.kernel.clone()), "--kernel")?,
        // A user-given kernel never silently gets the fixture's modules.
        modules: args.modules.or_else(|| {
            if kernel_given {
                None
            } else {
                d.and_then(|d| d.modules.clone())
            }
        }),
        busybox: pick(args.busybox, d.map(|d| d.busybox.clone()), "--busybox")?,
        kexec: pick(args.kexec, d.map(|d| d.kexec.clone()), "--kexec")?,
        // The default atftp lives in the fixtures' sysroot: it goes with it.
        tftp_client: if args.no_tftp_client {
            None
        } else if args.tftp_client.is_some() || args.sysroot.is_some() {
            args.tftp_client
        } else {
            d.and_then(|d| d.tftp_client.clone())
        },
        sysroot: pick(args.sysroot, d.map(|d| d.sysroot.clone()), "--sysroot")?,
        default_modules: args.module.is_empty(),
        module_names: if args.module.is_empty() {
            DEFAULT_MODULES.iter().map(|s| s.to_string()).collect()
        } else {
            args.module
        },
        cmdline: args.cmdline,
        compression: args.compression,
        add,
    };
    let report = build::build_to_file(&spec, &args.output, Some(cache))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        eprintln!(
            "wrote {} ({} bytes): kernel {}, initramfs {} bytes {} ({} uncompressed, {} entries), modules: {}",
            args.output.display(),
            report.image_bytes,
            report.kernel_release,
            report.initramfs_bytes,
            report.compression,
            report.initramfs_raw_bytes,
            report.entries,
            if report.modules.is_empty() { "none".to_string() } else { report.modules.join(" ") }
        );
    }
    Ok(())
}

//! Benchmark (not a test): warm build time of the default pxelinux.0 and the
//! sizes of the image and its initramfs for each compression. Run with
//! `cargo bench -p s390-pxelinux --bench build [-- --runs N]`.

use s390_pxelinux::build::{
    build_image_cached, default_inputs, BuildSpec, DEFAULT_CMDLINE, DEFAULT_LOADER_KERNEL,
    DEFAULT_MODULES,
};
use s390_pxelinux::compress::Compression;
use s390_pxelinux::fixtures::default_cache_dir;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let inputs = default_inputs(&default_cache_dir(), DEFAULT_LOADER_KERNEL)?;
    let cache = tempfile::tempdir()?;
    println!("build of the default pxelinux.0: cold = first build (compresses), warm = median of {runs} later builds (compressed initramfs cached)");
    println!(
        "{:<6} {:>8} {:>8} {:>14} {:>16} {:>14}",
        "codec", "cold ms", "warm ms", "image bytes", "initramfs bytes", "raw bytes"
    );
    for compression in [Compression::Gzip, Compression::Xz, Compression::Zstd] {
        let spec = BuildSpec {
            kernel: inputs.kernel.clone(),
            modules: inputs.modules.clone(),
            busybox: inputs.busybox.clone(),
            kexec: inputs.kexec.clone(),
            sysroot: inputs.sysroot.clone(),
            tftp_client: inputs.tftp_client.clone(),
            module_names: DEFAULT_MODULES.iter().map(|s| s.to_string()).collect(),
            default_modules: true,
            cmdline: DEFAULT_CMDLINE.to_string(),
            compression,
            add: Vec::new(),
        };
        let t = Instant::now();
        build_image_cached(&spec, Some(cache.path()))?;
        let cold = t.elapsed().as_secs_f64() * 1000.0;
        let mut times = Vec::new();
        let mut report = None;
        for _ in 0..runs {
            let t = Instant::now();
            let (_, r) = build_image_cached(&spec, Some(cache.path()))?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            report = Some(r);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let median = times[times.len() / 2];
        if let Some(r) = report {
            println!(
                "{:<6} {:>8.0} {:>8.0} {:>14} {:>16} {:>14}",
                compression.to_string(),
                cold,
                median,
                r.image_bytes,
                r.initramfs_bytes,
                r.initramfs_raw_bytes
            );
        }
    }
    Ok(())
}

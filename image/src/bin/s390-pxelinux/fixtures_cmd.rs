//! `s390-pxelinux fixtures fetch|update`.

use anyhow::{Context, Result};
use s390_pxelinux::fixtures::{self, lock::Lock};
use std::path::{Path, PathBuf};

/// What to do with the fixtures.
#[derive(clap::Subcommand)]
pub enum FixturesAction {
    /// Fetch (if missing) and unpack every pinned package (the kernel source
    /// too, which `build` alone never fetches) and fetch the pinned source
    /// tarballs; print their paths.
    Fetch {
        /// Lock file to use instead of the one embedded in the binary.
        #[arg(long)]
        lock: Option<PathBuf>,
    },
    /// Re-resolve the newest versions from the mirror and rewrite the lock file.
    Update {
        /// Lock file to write.
        #[arg(long, default_value = "fixtures/packages.lock")]
        lock: PathBuf,
    },
}

/// Runs a fixtures action.
pub fn run(action: FixturesAction, cache: &Path) -> Result<()> {
    match action {
        FixturesAction::Fetch { lock } => {
            let lock = match lock {
                Some(p) => Lock::load(&p)?,
                None => Lock::embedded()?,
            };
            let set = fixtures::ensure(&lock, cache)?;
            let (source, _) = fixtures::ensure_kernel_source(&lock, cache)?;
            for (id, k) in &set.kernels {
                println!("kernel {id}: {} ({})", k.image.display(), k.release);
                println!("modules {id}: {}", k.modules.display());
            }
            println!("busybox: {}", set.busybox.display());
            println!("kexec: {}", set.kexec.display());
            println!("sysroot: {}", set.sysroot.display());
            println!("kernel source: {}", source.display());
            for s in &lock.sources {
                let path = fixtures::ensure_source(&lock, cache, &s.name)?;
                println!("source {}: {}", s.name, path.display());
            }
        }
        FixturesAction::Update { lock } => {
            let current = if lock.is_file() {
                Lock::load(&lock)?
            } else {
                Lock::embedded()?
            };
            let (new, warnings) = fixtures::resolve_newest(cache, current.sources)
                .context("re-resolving fixtures")?;
            new.save(&lock)?;
            for p in &new.packages {
                println!("{:?}: {} {}", p.role, p.name, p.version);
            }
            for s in &new.sources {
                println!("source (kept): {} {} {}", s.name, s.version, s.file);
            }
            for w in &warnings {
                eprintln!("s390-pxelinux: fixtures update: warning: {w}");
            }
            println!("wrote {}", lock.display());
        }
    }
    Ok(())
}

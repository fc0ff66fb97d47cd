//! The `s390-pxelinux` command: build, inspect, resolve and fixture management.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use s390_pxelinux::fixtures::{self, lock::Lock};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "s390-pxelinux", version, about = "Build and inspect PXELINUX-style netboot images for s390x KVM guests")]
struct Cli {
    /// Fixture cache directory (default: $S390_PXELINUX_CACHE, $XDG_CACHE_HOME/s390-pxelinux, ~/.cache/s390-pxelinux).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the pinned s390x fixtures.
    Fixtures {
        #[command(subcommand)]
        action: FixturesAction,
    },
}

#[derive(Subcommand)]
enum FixturesAction {
    /// Fetch (if missing) and unpack every pinned package; print their paths.
    Fetch {
        /// Lock file to use instead of the embedded one.
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

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("S390_PXELINUX_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s390-pxelinux: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let cache = cli.cache_dir.unwrap_or_else(fixtures::default_cache_dir);
    match cli.command {
        Command::Fixtures { action } => match action {
            FixturesAction::Fetch { lock } => {
                let lock = match lock {
                    Some(p) => Lock::load(&p)?,
                    None => Lock::embedded()?,
                };
                let set = fixtures::ensure(&lock, &cache)?;
                for (id, k) in &set.kernels {
                    println!("kernel {id}: {} ({})", k.image.display(), k.release);
                    println!("modules {id}: {}", k.modules.display());
                }
                println!("busybox: {}", set.busybox.display());
                println!("kexec: {}", set.kexec.display());
                println!("sysroot: {}", set.sysroot.display());
            }
            FixturesAction::Update { lock } => {
                let new = fixtures::resolve_newest(&cache).context("re-resolving fixtures")?;
                new.save(&lock)?;
                for p in &new.packages {
                    println!("{:?}: {} {}", p.role, p.name, p.version);
                }
                println!("wrote {}", lock.display());
            }
        },
    }
    Ok(())
}

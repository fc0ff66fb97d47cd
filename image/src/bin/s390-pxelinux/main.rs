//! The `s390-pxelinux` command: build, inspect, resolve, the minimal kernel
//! and fixture management. Argument parsing and reporting only; the work is in the library.

mod build_cmd;
mod fixtures_cmd;
mod inspect_cmd;
mod kernel_cmd;
mod resolve_cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "s390-pxelinux",
    version,
    about = "Build and inspect PXELINUX-style netboot images (pxelinux.0) for s390x KVM guests"
)]
struct Cli {
    /// Fixture cache directory (default: $S390_PXELINUX_CACHE, else
    /// $XDG_CACHE_HOME/s390-pxelinux, else ~/.cache/s390-pxelinux).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build pxelinux.0 (with no inputs: from the pinned fixtures, or the running system on s390x).
    Build(Box<build_cmd::BuildArgs>),
    /// Describe an s390 boot file: kernel, command line, initrd and its contents.
    Inspect(inspect_cmd::InspectArgs),
    /// Dry-run the guest's PXELINUX client against a TFTP tree: paths tried, config, boot entry.
    Resolve(Box<resolve_cmd::ResolveArgs>),
    /// The minimal s390x kernel built from Debian's kernel source (loader and test target).
    Kernel {
        #[command(subcommand)]
        action: kernel_cmd::KernelAction,
    },
    /// Manage the pinned s390x fixtures.
    Fixtures {
        #[command(subcommand)]
        action: fixtures_cmd::FixturesAction,
    },
}

/// Writes `text` to standard output. A reader that went away early (`| head`)
/// is not an error: the command ends quietly, with success.
pub(crate) fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("S390_PXELINUX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let cache = cli
        .cache_dir
        .unwrap_or_else(s390_pxelinux::fixtures::default_cache_dir);
    let result = match cli.command {
        Command::Build(args) => build_cmd::run(*args, &cache),
        Command::Inspect(args) => inspect_cmd::run(args),
        Command::Resolve(args) => resolve_cmd::run(*args),
        Command::Kernel { action } => kernel_cmd::run(action, &cache),
        Command::Fixtures { action } => fixtures_cmd::run(action, &cache),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s390-pxelinux: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! `s390-pxelinux inspect FILE [--json]`.

use anyhow::{Context, Result};
use std::path::PathBuf;

/// Arguments of `inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// The boot file (pxelinux.0 or any s390 kernel image).
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `inspect`.
pub fn run(args: InspectArgs) -> Result<()> {
    let data = std::fs::read(&args.file).with_context(|| format!("{}", args.file.display()))?;
    let i = s390_pxelinux::inspect::inspect(&data)
        .with_context(|| format!("{}", args.file.display()))?;
    if args.json {
        crate::print_out(&format!("{}\n", serde_json::to_string_pretty(&i)?))
    } else {
        crate::print_out(&s390_pxelinux::inspect::render(&i))
    }
}

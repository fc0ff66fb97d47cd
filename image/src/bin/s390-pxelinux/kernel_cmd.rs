//! `s390-pxelinux kernel build`: builds (or finds in the cache) the minimal
//! kernel and the minimal loader's static kexec and atftp, and reports, or
//! copies out, their files. Argument parsing and reporting only; the builds
//! are [`s390_pxelinux::minimal_kernel`] and [`s390_pxelinux::loader_tools`].

use anyhow::{Context, Result};
use s390_pxelinux::fixtures::lock::Lock;
use s390_pxelinux::minimal_kernel;
use std::path::{Path, PathBuf};

/// What to do with the minimal kernel.
#[derive(clap::Subcommand)]
pub enum KernelAction {
    /// Build the minimal s390x kernel from the pinned linux-source-6.12 with
    /// tinyconfig + image/minimal-kernel/fragment.config, and the minimal
    /// loader's static kexec and atftp from their pinned sources (cached: a
    /// second run returns at once); print the paths of the kernel's image,
    /// .config, System.map and modules.builtin and of kexec and atftp.
    Build {
        /// Also copy the six files into this directory (created if needed).
        #[arg(short, long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// Print the paths as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a kernel action.
pub fn run(action: KernelAction, cache: &Path) -> Result<()> {
    match action {
        KernelAction::Build { output_dir, json } => {
            let lock = Lock::embedded()?;
            let k = minimal_kernel::ensure(&lock, cache)?;
            let tools = s390_pxelinux::loader_tools::ensure(&lock, cache)?;
            let files = [
                ("image", &k.kernel.image),
                ("config", &k.config),
                ("system_map", &k.system_map),
                ("modules_builtin", &k.modules_builtin),
                ("kexec", &tools.kexec),
                ("atftp", &tools.atftp),
            ];
            let mut shown: Vec<(&str, PathBuf)> =
                files.iter().map(|(n, p)| (*n, p.to_path_buf())).collect();
            if let Some(dir) = output_dir {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("--output-dir {}", dir.display()))?;
                for (_, path) in shown.iter_mut() {
                    let name = path.file_name().unwrap_or_default();
                    let dest = dir.join(name);
                    let data = std::fs::read(&*path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    s390_pxelinux::atomic::write_atomically(&dest, |w| w.write_all(&data))?
                        .with_context(|| format!("--output-dir: writing {}", dest.display()))?;
                    *path = dest;
                }
            }
            if json {
                let mut map = serde_json::Map::new();
                map.insert("release".into(), k.kernel.release.clone().into());
                for (n, p) in &shown {
                    map.insert((*n).into(), p.display().to_string().into());
                }
                println!("{}", serde_json::to_string_pretty(&map)?);
            } else {
                println!("release: {}", k.kernel.release);
                for (n, p) in &shown {
                    println!("{n}: {}", p.display());
                }
            }
        }
    }
    Ok(())
}

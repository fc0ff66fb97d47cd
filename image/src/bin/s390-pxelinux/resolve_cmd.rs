//! `s390-pxelinux resolve`: a dry run of the guest's PXELINUX client against a
//! local TFTP tree. Prints every config path tried, the config chosen and the
//! entry the guest would boot (or its error outcome), as text or JSON. Owns
//! only argument handling and printing; the model is `s390_pxelinux::pxelinux`.

use anyhow::{Context, Result};
use s390_pxelinux::pxelinux::{self, Outcome, Request, TreeSource};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Arguments of `s390-pxelinux resolve`.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// TFTP root directory (serves every server and URL in the model).
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    /// MAC address of the booting interface.
    #[arg(long)]
    pub mac: String,
    /// Client IPv4 address from the lease.
    #[arg(long)]
    pub ip: Ipv4Addr,
    /// Client UUID (as QEMU `-uuid` sets it).
    #[arg(long)]
    pub uuid: Option<String>,
    /// Boot file name (DHCP option 67 or the header file field).
    #[arg(long)]
    pub bootfile: Option<String>,
    /// DHCP option 209 (config file).
    #[arg(long)]
    pub opt209: Option<String>,
    /// DHCP option 210 (path prefix).
    #[arg(long)]
    pub opt210: Option<String>,
    /// DHCP option 211 (reboot time, seconds).
    #[arg(long)]
    pub opt211: Option<u32>,
    /// Boot server (option 66, else siaddr, else server id); used by IPAPPEND 1.
    #[arg(long, default_value = "")]
    pub server: String,
    /// Default gateway; used by IPAPPEND 1.
    #[arg(long, default_value = "")]
    pub gateway: String,
    /// Netmask; used by IPAPPEND 1.
    #[arg(long, default_value = "255.255.255.0")]
    pub netmask: String,
    /// The line typed at the PROMPT (empty = Enter); default: nobody types.
    #[arg(long)]
    pub label: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: ResolveArgs) -> Result<()> {
    let req = Request {
        mac: args.mac,
        ip: Some(args.ip),
        uuid: args.uuid,
        bootfile: args.bootfile,
        opt209: args.opt209,
        opt210: args.opt210,
        opt211: args.opt211,
        server: args.server,
        gateway: args.gateway,
        netmask: args.netmask,
        answer: args.label,
    };
    let source = TreeSource { root: args.root };
    let r = pxelinux::resolve(&source, &req).context("resolving")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("server: {}", r.server);
    println!("prefix: {}", r.prefix);
    for a in &r.tried {
        println!("try {} ... {}", a.path, a.result);
    }
    match &r.config {
        Some(c) => println!("config: {c}"),
        None => println!("config: none"),
    }
    for a in &r.includes {
        println!("include {} ... {}", a.path, a.result);
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
    for s in &r.say {
        println!("say: {s}");
    }
    if let Some(p) = &r.prompt {
        println!("prompt: labels {}", p.labels.join(" "));
        match (p.answered, p.timeout_seconds) {
            (true, _) => println!("prompt: answered"),
            (false, Some(t)) => println!("prompt: timeout after {t}s"),
            (false, None) => println!("prompt: waits forever; modelled as a timeout"),
        }
    } else if req.answer.is_some() {
        println!("note: PROMPT is 0, the guest does not ask; --label ignored");
    }
    for e in &r.errors {
        println!("error: {e}");
    }
    match &r.outcome {
        Outcome::Boot(t) => {
            println!(
                "boot label: {}{}",
                t.label,
                if t.via_onerror { " (ONERROR)" } else { "" }
            );
            println!("kernel: {}", t.kernel);
            println!("initrd: {}", t.initrd.join(","));
            println!("cmdline: {}", t.cmdline);
        }
        Outcome::Rescue { reason } => println!("rescue: {reason}"),
        Outcome::Reboot { after_seconds } => println!("reboot after {after_seconds}s"),
    }
    Ok(())
}

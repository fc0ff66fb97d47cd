//! `s390-pxelinux resolve`: a dry run of the guest's PXELINUX client against a
//! local TFTP tree. Prints every config path tried, the config chosen and the
//! entry the guest would boot (or its error outcome), as text or JSON. Owns
//! only argument handling and printing; the model is `s390_pxelinux::pxelinux`.

use anyhow::{Context, Result};
use s390_pxelinux::pxelinux::config::wait_text;
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
    /// The line typed at the prompt (empty = Enter); default: nobody types.
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
        return crate::print_out(&format!("{}\n", serde_json::to_string_pretty(&r)?));
    }
    crate::print_out(&render(&r, req.answer.is_some()))
}

/// The text report: one line per fact, in the order the guest prints them.
fn render(r: &pxelinux::Resolution, answer_given: bool) -> String {
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line(format!("server: {}", r.server));
    line(format!("prefix: {}", r.prefix));
    for a in &r.tried {
        line(format!("try {} ... {}", a.path, a.result));
    }
    match &r.config {
        Some(c) => line(format!("config: {c}")),
        None => line("config: none".to_string()),
    }
    for a in &r.includes {
        line(format!("include {} ... {}", a.path, a.result));
    }
    for w in &r.warnings {
        line(format!("warning: {w}"));
    }
    for s in &r.say {
        line(format!("say: {s}"));
    }
    if let Some(p) = &r.prompt {
        line(format!("prompt: labels {}", p.labels.join(" ")));
        line(format!("prompt: wait {}", wait_text(p.timeout_tenths)));
        match (p.answered, p.timeout_tenths) {
            (true, _) => line("prompt: answered".to_string()),
            (false, Some(_)) => line("prompt: nobody types; timeout".to_string()),
            (false, None) => line("prompt: waits forever; modelled as a timeout".to_string()),
        }
    } else if answer_given {
        line("note: the guest does not prompt (PROMPT 0, no menu); --label ignored".to_string());
    }
    for e in &r.errors {
        line(format!("error: {e}"));
    }
    match &r.outcome {
        Outcome::Boot(t) => {
            line(format!(
                "boot label: {}{}",
                t.label,
                if t.via_onerror { " (ONERROR)" } else { "" }
            ));
            line(format!("kernel: {}", t.kernel));
            line(format!("initrd: {}", t.initrd.join(",")));
            line(format!("cmdline: {}", t.cmdline));
        }
        Outcome::Rescue { reason } => line(format!("rescue: {reason}")),
        Outcome::Reboot { after_seconds } => line(format!("reboot after {after_seconds}s")),
    }
    o
}

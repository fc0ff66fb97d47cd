//! The dnsmasq configuration of the `dnsmasq` network mode: the template
//! `docs/deploy.md` shows ([`TEMPLATE`], `dnsmasq.conf` next to this file; a
//! test keeps the two equal), the `[network.dnsmasq]` keys, their defaults
//! (slirp's addresses) and validation, and the file one run writes. Pure
//! text and address arithmetic: it must not start processes or touch
//! namespaces.

use crate::network::Addressing;
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::Path;

/// The dnsmasq configuration this mode runs, with `@NAME@` placeholders
/// (see [`ConfValues`]); `docs/deploy.md` shows it with example values.
pub const TEMPLATE: &str = include_str!("dnsmasq.conf");
/// The tap device's name inside the namespace (the namespace isolates it).
pub const TAP: &str = "nbh0";

/// `[network.dnsmasq]`: the PXELINUX options dnsmasq sends (each one a
/// `dhcp-option-force=tag:s390x,<code>,<value>` line after the template).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsmasqConfig {
    /// Option 209 (PXELINUX configuration file).
    pub opt209: Option<String>,
    /// Option 210 (PXELINUX path prefix).
    pub opt210: Option<String>,
}

/// The settings of one dnsmasq network, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Boot file (`dhcp-boot`).
    pub bootfile: String,
    /// The tap's (server's) address: `net` + 2, as in slirp.
    pub server_ip: Ipv4Addr,
    /// Network prefix length.
    pub prefix: u8,
    /// The one address of the DHCP pool: `dhcpstart`, else `net` + 15 (so
    /// a scenario sees the same lease as under slirp).
    pub client_ip: Ipv4Addr,
    /// Option 209.
    pub opt209: Option<String>,
    /// Option 210.
    pub opt210: Option<String>,
}

/// A value dnsmasq takes as a plain string in `dhcp-option-force` (it
/// would read digits as a number and a dotted quad as an address).
/// An `http://` URL, or the run's HTTP server `${http}` (which the harness
/// replaces by one, [`crate::network::HTTP_PLACEHOLDER`]), may also contain `:`.
fn option_string(key: &str, v: &str) -> Result<String, String> {
    let url = v.replacen(crate::network::HTTP_PLACEHOLDER, "http://", 1);
    let extra = if url.starts_with("http://") { ":" } else { "" };
    let ok = !v.is_empty()
        && url
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c) || extra.contains(c))
        && url.chars().any(|c| c.is_ascii_alphabetic() || c == '/');
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "{key} {v:?}: expected a path of letters, digits and . _ / - (with a letter or /), or an http:// URL"
        ))
    }
}

impl DnsmasqConfig {
    /// Fills in the defaults from the shared `[network]` keys and
    /// validates; errors name the key.
    pub fn resolve(
        &self,
        bootfile: &str,
        net: Option<&str>,
        dhcpstart: Option<&str>,
    ) -> Result<Settings, String> {
        let a = Addressing::resolve(net, dhcpstart, 27)?;
        let (client_ip, server_ip, prefix) = (a.client, a.server, a.prefix);
        if !a.contains(client_ip) || client_ip == server_ip {
            return Err(format!(
                "dhcpstart {client_ip}: must lie in {}/{prefix} and differ from the server address {server_ip}",
                a.network
            ));
        }
        if bootfile.is_empty() || bootfile.contains([',', '\n']) {
            return Err(format!(
                "bootfile {bootfile:?}: empty or contains , or a newline"
            ));
        }
        Ok(Settings {
            bootfile: bootfile.to_string(),
            server_ip,
            prefix,
            client_ip,
            opt209: self
                .opt209
                .as_deref()
                .map(|v| option_string("opt209", v))
                .transpose()?,
            opt210: self
                .opt210
                .as_deref()
                .map(|v| option_string("opt210", v))
                .transpose()?,
        })
    }
}

/// The values substituted into [`TEMPLATE`].
#[derive(Debug, Clone)]
pub struct ConfValues<'a> {
    /// `@INTERFACE@`.
    pub interface: &'a str,
    /// `@RANGE_START@`.
    pub range_start: Ipv4Addr,
    /// `@RANGE_END@`.
    pub range_end: Ipv4Addr,
    /// `@NETMASK@`.
    pub netmask: Ipv4Addr,
    /// `@TFTP_ROOT@`.
    pub tftp_root: &'a Path,
    /// `@BOOTFILE@`.
    pub bootfile: &'a str,
}

/// [`TEMPLATE`] with `v` filled in.
pub fn render(v: &ConfValues<'_>) -> String {
    TEMPLATE
        .replace("@INTERFACE@", v.interface)
        .replace("@RANGE_START@", &v.range_start.to_string())
        .replace("@RANGE_END@", &v.range_end.to_string())
        .replace("@NETMASK@", &v.netmask.to_string())
        .replace("@TFTP_ROOT@", &v.tftp_root.display().to_string())
        .replace("@BOOTFILE@", v.bootfile)
}

/// The line sending PXELINUX option `code` (as `docs/deploy.md` shows it).
pub fn option_line(code: u8, value: &str) -> String {
    format!("dhcp-option-force=tag:s390x,{code},{value}")
}

impl Settings {
    /// The netmask of `prefix`.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX << (32 - self.prefix))
    }

    /// The whole configuration file for one run: the template for the tap
    /// and `tftp_root` (a one-address pool: one guest per run, and a fixed
    /// lease keeps the IP-hex config names of the scenarios), then the
    /// options asked for.
    pub fn config_file(&self, tftp_root: &Path) -> String {
        let mut s = render(&ConfValues {
            interface: TAP,
            range_start: self.client_ip,
            range_end: self.client_ip,
            netmask: self.netmask(),
            tftp_root,
            bootfile: &self.bootfile,
        });
        for (code, v) in [(209, &self.opt209), (210, &self.opt210)] {
            if let Some(v) = v {
                s.push_str(&option_line(code, v));
                s.push('\n');
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/deploy.md shows the template with these values.
    fn doc_example() -> String {
        render(&ConfValues {
            interface: "br-netboot",
            range_start: Ipv4Addr::new(192, 168, 100, 10),
            range_end: Ipv4Addr::new(192, 168, 100, 50),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            tftp_root: Path::new("/srv/tftp"),
            bootfile: "pxelinux.0",
        })
    }

    #[test]
    fn deploy_doc_shows_the_tested_config() {
        let doc = include_str!("../../../docs/deploy.md");
        let example = doc_example();
        assert!(
            doc.contains(&example),
            "docs/deploy.md must contain the dnsmasq config the harness tests \
             (harness/src/dnsmasq.conf rendered with the doc's values):\n{example}"
        );
        for code in [209, 210] {
            let line = option_line(code, "");
            assert!(
                doc.contains(&line),
                "docs/deploy.md must show {line:?} (the form the harness sends)"
            );
        }
    }

    #[test]
    fn defaults_are_slirps_addresses() {
        let s = DnsmasqConfig::default()
            .resolve("pxelinux.0", None, None)
            .expect("defaults");
        assert_eq!(s.server_ip, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(s.client_ip, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(s.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        let conf = s.config_file(Path::new("/t"));
        assert!(conf.contains("dhcp-range=10.0.2.15,10.0.2.15,255.255.255.0,1h\n"));
        assert!(conf.contains("interface=nbh0\n"));
        assert!(conf.contains("tftp-root=/t\n"));
        assert!(!conf.contains("209"));
    }

    #[test]
    fn options_and_errors() {
        let c = DnsmasqConfig {
            opt209: Some("configs/a.cfg".into()),
            opt210: Some("s390x".into()),
        };
        let s = c
            .resolve("pxelinux.0", Some("192.168.76.0/24"), Some("192.168.76.50"))
            .expect("valid");
        assert_eq!(s.server_ip, Ipv4Addr::new(192, 168, 76, 2));
        let conf = s.config_file(Path::new("/t"));
        assert!(conf.contains("dhcp-option-force=tag:s390x,209,configs/a.cfg\n"));
        assert!(conf.contains("dhcp-option-force=tag:s390x,210,s390x\n"));
        let bad = DnsmasqConfig {
            opt209: Some("30".into()),
            opt210: None,
        };
        let e = bad.resolve("pxelinux.0", None, None).unwrap_err();
        assert!(e.contains("opt209 \"30\""), "{e}");
        let e = DnsmasqConfig::default()
            .resolve("pxelinux.0", None, Some("10.0.3.15"))
            .unwrap_err();
        assert!(e.contains("dhcpstart 10.0.3.15"), "{e}");
    }
}

//! Fuzz target: the in-process network's packet handling — Ethernet/ARP/IPv4/
//! UDP classification, the DHCP server and the TFTP packet helpers — on
//! arbitrary frames and payloads. Must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| s390_pxelinux_fuzz::network_packets(data));

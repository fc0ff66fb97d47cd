//! Fuzz target: the PXELINUX config language on arbitrary bytes — normalise,
//! evaluate, pick the default/timeout/typed choices and select the entry,
//! plus path resolution against a prefix. Must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| s390_pxelinux_fuzz::pxelinux_config(data));

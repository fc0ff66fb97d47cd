//! Fuzz target: `inspect` (kernel header, initrd bounds, decompression, cpio
//! listing) on arbitrary bytes. Must return an error, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| s390_pxelinux_fuzz::inspect(data));

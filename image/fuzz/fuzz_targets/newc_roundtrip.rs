//! Fuzz target: the newc writer round trip. Entries derived from the input
//! are added to an archive; whatever is accepted must be written and listed
//! back with the same paths, in sorted order.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| s390_pxelinux_fuzz::newc_roundtrip(data));

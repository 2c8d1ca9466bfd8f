//! Fuzz the token parser: any bytes, as a token string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_identity::host::HostVerifier;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = rampart_identity::token::verify(token, &HostVerifier::new("aws", "us-west-2"), 1_682_640_000);
    }
});

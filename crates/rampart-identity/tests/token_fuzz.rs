//! The token parser on arbitrary input: it answers Ok or a typed error, never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use base64::Engine as _;
use proptest::prelude::*;
use rampart_identity::host::HostVerifier;
use rampart_identity::token::{PREFIX, verify};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_tokens(raw in ".{0,300}") {
        let _ = verify(&raw, &HostVerifier::new("aws", ""), 0);
    }

    #[test]
    fn arbitrary_urls(url in "(https?://)?[a-zA-Z0-9.:@%/?&=;+_-]{0,200}") {
        let token = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url));
        let _ = verify(&token, &HostVerifier::new("aws", "us-west-2"), 1_682_640_000);
    }
}

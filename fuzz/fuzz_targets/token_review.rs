//! Any bytes as a TokenReview body, read as the authentication endpoint reads it, and its
//! token verified (signature URL, host, expiry) as an aws-iam-authenticator token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_identity::host::HostVerifier;

fuzz_target!(|data: &[u8]| {
    if let Ok(review) = serde_json::from_slice::<serde_json::Value>(data)
        && let Some(token) = review.pointer("/spec/token").and_then(|t| t.as_str())
    {
        let _ = rampart_identity::token::verify(token, &HostVerifier::new("aws", "us-west-2"), 1_682_640_000);
    }
});

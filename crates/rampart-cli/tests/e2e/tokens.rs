//! IRSA with the apiserver's own tokens: `kubectl create token SA --audience sts.amazonaws.com`
//! verifies against the JWKS `rampart serve --oidc-issuer` publishes for this apiserver's
//! signing key, and the AWS CLI exchanges it at moto's STS for the role's credentials.

use std::process::Command;

use crate::shared;

#[test]
fn irsa_tokens_from_the_apiserver_verify_against_rampart_s_jwks_and_assume_the_role() {
    let (_gate, c) = shared();
    c.namespace("e2e-tokens");
    c.admin().run(&["create", "serviceaccount", "s3-reader", "-n", "e2e-tokens"]).ok();
    let token = c
        .admin()
        .run(&["create", "token", "s3-reader", "-n", "e2e-tokens", "--audience", "sts.amazonaws.com"])
        .ok()
        .trim()
        .to_owned();

    // The discovery document and JWKS, as STS would fetch them.
    let get = |path: &str| -> serde_json::Value {
        serde_json::from_str(&c.rampart_get(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let discovery = get("/.well-known/openid-configuration");
    assert_eq!(discovery["issuer"], "https://kubernetes.default.svc");
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(get("/openid/v1/jwks")).unwrap();

    // The apiserver's token names a key of that JWKS, and its signature verifies with it.
    let header = jsonwebtoken::decode_header(&token).unwrap();
    let kid = header.kid.clone().expect("the apiserver sets kid");
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} not in Rampart's JWKS"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["sts.amazonaws.com"]);
    validation.set_issuer(&["https://kubernetes.default.svc"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap().claims;
    assert_eq!(claims["sub"], "system:serviceaccount:e2e-tokens:s3-reader");
    // A token for another audience is refused by the same check.
    let other =
        c.admin().run(&["create", "token", "s3-reader", "-n", "e2e-tokens", "--audience", "vault"]).ok();
    assert!(jsonwebtoken::decode::<serde_json::Value>(other.trim(), &key, &validation).is_err());

    // The AWS CLI exchanges the token at STS (moto) for the role's credentials.
    let aws = crate::iam::aws_bin();
    let out = Command::new(&aws)
        .args([
            "sts",
            "assume-role-with-web-identity",
            "--role-arn",
            "arn:aws:iam::123456789012:role/s3-reader",
        ])
        .args(["--role-session-name", "irsa-e2e", "--web-identity-token", &token])
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "unused")
        .env("AWS_SECRET_ACCESS_KEY", "unused")
        .env("AWS_ENDPOINT_URL", c.var("RAMPART_E2E_MOTO"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["AssumedRoleUser"]["Arn"], "arn:aws:sts::123456789012:assumed-role/s3-reader/irsa-e2e");
    assert!(answer["Credentials"]["AccessKeyId"].as_str().is_some_and(|k| !k.is_empty()));
}

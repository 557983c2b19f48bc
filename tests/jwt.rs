//! `jwt` and its `jwt_secrets` credentials, with tokens signed by PyJWT (an independent signer,
//! `tests/data/jwt_tokens.py`): HS256/HS512, RS256, PS256, ES256 and EdDSA; tokens in the
//! `Authorization` header, the query, a cookie or another header; Kong's 401 bodies and
//! `WWW-Authenticate` challenges; `exp`/`nbf`, `maximum_expiration`, `leeway`, `key_claim_name`,
//! `secret_is_base64`, `anonymous`; credentials in the declarative file and through Kong's
//! documented Admin API calls, run with curl. Both drivers.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use support::*;

/// Signs each `(alg, claims, headers, secret)` with PyJWT; key pairs land in `dir`.
fn sign(dir: &Path, specs: &[Value]) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jwt_tokens.py");
    let mut child = python::python()
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let request = json!({"dir": dir, "tokens": specs});
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        request.to_string().as_bytes(),
    )
    .expect("write");
    let out = child.wait_with_output().expect("signs");
    assert!(out.status.success(), "PyJWT could not sign the tokens");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("json");
    answer["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t.as_str().expect("token").to_string())
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn hs(claims: Value, secret: &str) -> Value {
    json!({"alg": "HS256", "claims": claims, "secret": secret})
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> String {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// YAML for a PEM block, indented under a key.
fn pem_yaml(path: &Path) -> String {
    let pem = std::fs::read_to_string(path).expect("pem");
    format!(
        "|\n{}",
        pem.lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    )
}

fn config(mock: &MockLambda, dir: &Path) -> String {
    let b64_secret = "c2VjcmV0LWZvci1jYXJvbA"; // base64url of "secret-for-carol", no padding
    format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  custom_id: a-1
  keyauth_credentials: [{{id: 0b7d6c1e-3f2a-4e8b-9c5d-1a2b3c4d5e6f, key: alice-api-key}}]
  jwt_secrets:
  - {{id: 5d3c0a94-27c5-4f0e-b1c3-2a9d7e0f4b11, key: alice-key, secret: alice-secret}}
  - key: rsa-key
    algorithm: RS256
    rsa_public_key: {rsa}
  - key: ps-key
    algorithm: PS256
    rsa_public_key: {rsa}
  - key: ec-key
    algorithm: ES256
    rsa_public_key: {ec}
  - key: ed-key
    algorithm: EdDSA
    rsa_public_key: {ed}
- username: carol
- username: guest
jwt_secrets:
- {{consumer: carol, key: carol-key, secret: {b64_secret}}}
plugins:
- {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: "{SECRET_KEY}", aws_region: us-east-1, function_name: echo, host: localhost, port: {port}, forward_request_headers: true, forward_request_uri: true}}}}
routes:
- name: plain
  paths: [/j]
  plugins: [{{name: jwt}}]
- name: claims
  paths: [/claims]
  plugins: [{{name: jwt, config: {{claims_to_verify: [exp, nbf]}}}}]
- name: skew
  paths: [/skew]
  plugins: [{{name: jwt, config: {{claims_to_verify: [exp, nbf], leeway: 60}}}}]
- name: capped
  paths: [/capped]
  plugins: [{{name: jwt, config: {{claims_to_verify: [exp], maximum_expiration: 60}}}}]
- name: custom
  paths: [/custom]
  plugins: [{{name: jwt, config: {{key_claim_name: kid, uri_param_names: [], cookie_names: [session], header_names: [x-auth], realm: api}}}}]
- name: b64
  paths: [/b64]
  plugins: [{{name: jwt, config: {{secret_is_base64: true}}}}]
- name: both
  paths: [/both]
  plugins: [{{name: key-auth}}, {{name: jwt}}]
- name: event-v2
  paths: [/event-v2]
  plugins: [{{name: jwt}}, {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: "{SECRET_KEY}", aws_region: us-east-1, function_name: echo, host: localhost, port: {port}, awsgateway_compatible: true, awsgateway_compatible_payload_version: "2.0"}}}}]
- name: event-v1
  paths: [/event-v1]
  plugins: [{{name: key-auth}}, {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: "{SECRET_KEY}", aws_region: us-east-1, function_name: echo, host: localhost, port: {port}, awsgateway_compatible: true}}}}]
- name: anon
  paths: [/anon]
  plugins: [{{name: jwt, config: {{anonymous: guest}}}}]
"#,
        port = mock.addr.port(),
        rsa = pem_yaml(&dir.join("rsa.pub")),
        ec = pem_yaml(&dir.join("ec.pub")),
        ed = pem_yaml(&dir.join("ed.pub")),
    )
}

#[test]
fn jwt_identifies_the_consumer_with_kongs_answers() {
    let dir = TempDir::new("jwt");
    let t = now();
    let alice = |claims: Value| hs(claims, "alice-secret");
    let tokens = sign(
        &dir.path,
        &[
            alice(json!({"iss": "alice-key", "sub": "x"})), // 0 good
            hs(json!({"iss": "alice-key"}), "not-the-secret"), // 1 forged
            json!({"alg": "HS512", "claims": {"iss": "alice-key"}, "secret": "alice-secret"}), // 2 wrong alg
            alice(json!({"iss": "nobody"})), // 3 unknown key
            alice(json!({"sub": "x"})),      // 4 no iss
            alice(json!({"iss": "alice-key", "exp": t - 30, "nbf": t - 60})), // 5 expired 30 s ago
            alice(json!({"iss": "alice-key", "exp": t + 600, "nbf": t + 30})), // 6 not yet valid
            alice(json!({"iss": "alice-key", "exp": t + 600, "nbf": t - 1})), // 7 valid times
            alice(json!({"iss": "alice-key", "exp": t + 3600})), // 8 too long for /capped
            json!({"alg": "RS256", "claims": {"iss": "rsa-key"}}), // 9
            json!({"alg": "PS256", "claims": {"iss": "ps-key"}}), // 10
            json!({"alg": "ES256", "claims": {"iss": "ec-key"}}), // 11
            json!({"alg": "EdDSA", "claims": {"iss": "ed-key"}}), // 12
            json!({"alg": "RS256", "claims": {"iss": "ec-key"}}), // 13 alg is not the key's
            json!({"alg": "HS256", "claims": {"x": 1}, "headers": {"kid": "alice-key"}, "secret": "alice-secret"}), // 14 kid
            hs(json!({"iss": "carol-key"}), "secret-for-carol"), // 15 base64 secret
            alice(json!({"iss": ""})),                           // 16 empty iss
            alice(json!({"iss": "alice-key", "scope": "read write"})), // 17 with scopes
        ],
    );
    let tok = |i: usize| tokens[i].as_str();
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let gw = Gateway::start(&mock, &config(&mock, &dir.path), driver);
        let refused = |r: &Response, body: &str, challenge: &str| {
            assert_eq!((r.status, r.text()), (401, body.to_string()));
            assert_eq!(r.header("www-authenticate"), Some(challenge));
        };
        let invalid = r#"Bearer error="invalid_token""#;

        refused(
            &gw.send(&get("/j")),
            r#"{"message":"Unauthorized"}"#,
            "Bearer",
        );
        let r = gw.send(&get_with("/j", &[("Authorization", "Bearer not.a.token")]));
        refused(&r, r#"{"message":"Bad token; invalid JSON"}"#, invalid);
        let with = |path: &str, token: &str| {
            gw.send(&get_with(path, &[("Authorization", &bearer(token))]))
        };
        refused(
            &with("/j", tok(1)),
            r#"{"message":"Invalid signature"}"#,
            invalid,
        );
        refused(
            &with("/j", tok(2)),
            r#"{"message":"Invalid algorithm"}"#,
            invalid,
        );
        refused(
            &with("/j", tok(13)),
            r#"{"message":"Invalid algorithm"}"#,
            invalid,
        );
        refused(
            &with("/j", tok(3)),
            r#"{"message":"No credentials found for given 'iss'"}"#,
            invalid,
        );
        refused(
            &with("/j", tok(4)),
            r#"{"message":"No mandatory 'iss' in claims"}"#,
            invalid,
        );
        refused(
            &with("/j", tok(16)),
            r#"{"message":"Invalid 'iss' in claims"}"#,
            invalid,
        );
        let r = gw.send(&get_with(
            &format!("/j?jwt={}", tok(7)),
            &[("Authorization", &bearer(tok(0)))],
        ));
        refused(&r, r#"{"message":"Multiple tokens provided"}"#, invalid);
        refused(
            &gw.send(&get("/j?jwt")),
            r#"{"message":"Unrecognizable token"}"#,
            invalid,
        );
        // Thousands of distinct tokens: one answer, at once.
        let many: Vec<String> = (0..3000).map(|i| format!("jwt=t{i}")).collect();
        let started = std::time::Instant::now();
        let r = gw.send(&get(&format!("/j?{}", many.join("&"))));
        refused(&r, r#"{"message":"Multiple tokens provided"}"#, invalid);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(
            mock.requests().len(),
            0,
            "refused requests never reach Lambda"
        );

        // A good token: the consumer and the credential's key are told to the function, a
        // client's own X-Consumer-* replaced; the same token twice is one token.
        let r = gw.send(&get_with(
            &format!("/j?jwt={}", tok(0)),
            &[
                ("Authorization", &bearer(tok(0))),
                ("X-Consumer-Username", "mallory"),
            ],
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        let seen = r.json()["request_headers"].clone();
        assert_eq!(seen["x-consumer-username"], "alice");
        assert_eq!(seen["x-consumer-custom-id"], "a-1");
        assert_eq!(seen["x-credential-identifier"], "alice-key");
        assert_eq!(seen.get("x-anonymous-consumer"), None);
        assert_eq!(gw.send(&get(&format!("/j?jwt={}", tok(0)))).status, 200);
        // Claims are not checked unless asked.
        assert_eq!(with("/j", tok(5)).status, 200);

        // Every public-key algorithm, signed by PyJWT.
        for i in 9..=12 {
            let r = with("/j", tok(i));
            assert_eq!(r.status, 200, "token {i}: {}", r.text());
            assert_eq!(r.json()["request_headers"]["x-consumer-username"], "alice");
        }

        // exp and nbf, Kong's per-claim errors; leeway allows for clock skew.
        refused(
            &with("/claims", tok(5)),
            r#"{"exp":"token expired"}"#,
            invalid,
        );
        refused(
            &with("/claims", tok(6)),
            r#"{"nbf":"token not valid yet"}"#,
            invalid,
        );
        refused(
            &with("/claims", tok(0)),
            r#"{"exp":"must be a number","nbf":"must be a number"}"#,
            invalid,
        );
        assert_eq!(with("/claims", tok(7)).status, 200);
        assert_eq!(with("/skew", tok(5)).status, 200, "30 s late, 60 s allowed");
        assert_eq!(
            with("/skew", tok(6)).status,
            200,
            "30 s early, 60 s allowed"
        );
        refused(
            &with("/capped", tok(8)),
            r#"{"exp":"exceeds maximum allowed expiration"}"#,
            invalid,
        );
        assert_eq!(with("/capped", tok(7)).status, 401, "exp 600 s away > 60");

        // key_claim_name from the token's header; a cookie; another header; a realm.
        refused(
            &gw.send(&get("/custom")),
            r#"{"message":"Unauthorized"}"#,
            r#"Bearer realm="api""#,
        );
        let r = gw.send(&get_with(
            "/custom",
            &[("Cookie", &format!("a=1; session={}", tok(14)))],
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        let r = gw.send(&get_with("/custom", &[("X-Auth", &bearer(tok(14)))]));
        assert_eq!(r.status, 200, "{}", r.text());
        let r = gw.send(&get(&format!("/custom?jwt={}", tok(14))));
        assert_eq!(r.status, 401, "uri_param_names is empty here");
        assert_eq!(r.header("www-authenticate"), Some(r#"Bearer realm="api""#));

        // secret_is_base64: carol's secret is stored encoded.
        let r = with("/b64", tok(15));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["request_headers"]["x-consumer-username"], "carol");
        assert_eq!(
            with("/j", tok(15)).status,
            401,
            "read as text it is another secret"
        );

        // Written after key-auth, jwt (1450) still runs first; both must pass.
        refused(
            &gw.send(&get("/both")),
            r#"{"message":"Unauthorized"}"#,
            "Bearer",
        );
        let r = with("/both", tok(0));
        assert_eq!(
            (r.status, r.text()),
            (401, r#"{"message":"No API key found in request"}"#.into())
        );
        let r = gw.send(&get_with(
            "/both",
            &[
                ("Authorization", &bearer(tok(0))),
                ("apikey", "alice-api-key"),
            ],
        ));
        assert_eq!(r.status, 200, "{}", r.text());

        // API Gateway events: the consumer where API Gateway puts an authorizer's context, the
        // token's claims where its JWT authorizer puts them, an API key's id in `identity`.
        let r = with("/event-v2", tok(17));
        assert_eq!(r.status, 200, "{}", r.text());
        let authorizer = r.json()["requestContext"]["authorizer"].clone();
        assert_eq!(
            authorizer["jwt"]["claims"],
            json!({"iss": "alice-key", "scope": "read write"})
        );
        assert_eq!(authorizer["jwt"]["scopes"], json!(["read", "write"]));
        assert_eq!(
            authorizer["lambda"],
            json!({"principalId": "alice", "consumerId": authorizer["lambda"]["consumerId"], "consumerUsername": "alice",
                   "consumerCustomId": "a-1", "credentialIdentifier": "5d3c0a94-27c5-4f0e-b1c3-2a9d7e0f4b11"})
        );
        let r = gw.send(&get_with("/event-v1", &[("apikey", "alice-api-key")]));
        assert_eq!(r.status, 200, "{}", r.text());
        let context = r.json()["requestContext"].clone();
        assert_eq!(
            context["identity"]["apiKeyId"],
            "0b7d6c1e-3f2a-4e8b-9c5d-1a2b3c4d5e6f"
        );
        assert_eq!(context["authorizer"]["principalId"], "alice");
        assert_eq!(context["authorizer"]["integrationLatency"], 0);
        assert_eq!(context["authorizer"].get("claims"), None);

        // anonymous: no token, or a bad one, is the guest.
        for r in [gw.send(&get("/anon")), with("/anon", tok(1))] {
            assert_eq!(r.status, 200, "{}", r.text());
            let seen = r.json()["request_headers"].clone();
            assert_eq!(seen["x-consumer-username"], "guest");
            assert_eq!(seen["x-anonymous-consumer"], "true");
        }
        mock.assert_all_signatures_valid();
    }
}

/// Runs curl; answers (status, body).
fn curl(args: &[&str]) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    let status = status.trim().parse().expect("status");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn kongs_jwt_admin_examples_work_with_curl() {
    if !installed("curl", "curl") {
        return;
    }
    let keys = TempDir::new("jwt-admin-keys");
    // Generates the key pairs; the tokens are signed below once the secrets are known.
    sign(&keys.path, &[]);
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("jwt-admin");
        let gw = Gateway::start_admin_with(&mock, &one_route_config(&mock), driver, &dir);
        let path = gw.config_path.clone();
        let admin = format!("http://{}", gw.admin.expect("admin"));
        // Kong's documented calls, as written.
        let (status, _) = curl(&[
            "-X",
            "POST",
            &format!("{admin}/routes/r/plugins"),
            "--data",
            "name=jwt",
        ]);
        assert_eq!(status, 201);
        let (status, consumer) = curl(&[
            "-d",
            "username=user123&custom_id=SOME_CUSTOM_ID",
            &format!("{admin}/consumers/"),
        ]);
        assert_eq!(status, 201, "{consumer}");
        let (status, created) = curl(&[
            "-X",
            "POST",
            &format!("{admin}/consumers/user123/jwt"),
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
        ]);
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["algorithm"], "HS256");
        assert_eq!(created["consumer"]["id"], consumer["id"]);
        let (key, secret) = (
            created["key"].as_str().expect("key"),
            created["secret"].as_str().expect("secret"),
        );
        assert_eq!((key.len(), secret.len()), (32, 32), "made up as Kong does");
        let pub_arg = format!("rsa_public_key=@{}", keys.path.join("rsa.pub").display());
        let (status, rs) = curl(&[
            "-X",
            "POST",
            &format!("{admin}/consumers/user123/jwt"),
            "-F",
            &pub_arg,
            "-F",
            "algorithm=RS256",
        ]);
        assert_eq!(status, 201, "{rs}");
        let rs_key = rs["key"].as_str().expect("key");
        let (status, bad) = curl(&[
            "-X",
            "POST",
            &format!("{admin}/consumers/user123/jwt"),
            "--data",
            "algorithm=RS256&rsa_public_key=nonsense",
        ]);
        assert_eq!(status, 400, "{bad}");
        assert!(bad.to_string().contains("rsa_public_key"), "{bad}");

        // Tokens for both credentials: PyJWT with the secret Kong's answer gave; the RSA pair
        // whose public half was uploaded.
        let tokens = sign(
            &keys.path,
            &[
                hs(json!({"iss": key}), secret),
                json!({"alg": "RS256", "claims": {"iss": rs_key}}),
            ],
        );
        let proxy = format!("http://{}", gw.addr);
        let (status, seen) = curl(&[
            &format!("{proxy}/r"),
            "-H",
            &format!("Authorization: Bearer {}", tokens[0]),
        ]);
        assert_eq!(status, 200, "{seen}");
        let (status, _) = curl(&[&format!("{proxy}/r?jwt={}", tokens[1])]);
        assert_eq!(status, 200);
        let (status, _) = curl(&[&format!("{proxy}/r")]);
        assert_eq!(status, 401);

        let (status, list) = curl(&[&format!("{admin}/consumers/user123/jwt")]);
        assert_eq!(
            (status, list["data"].as_array().map(Vec::len)),
            (200, Some(2))
        );
        let (status, all) = curl(&[&format!("{admin}/jwts")]);
        assert_eq!(
            (status, all["data"].as_array().map(Vec::len)),
            (200, Some(2))
        );
        // Deleting a credential: its tokens stop working at once.
        let (status, _) = curl(&[
            "-X",
            "DELETE",
            &format!("{admin}/consumers/user123/jwt/{key}"),
        ]);
        assert_eq!(status, 204);
        let r = gw.send(&get_with("/r", &[("Authorization", &bearer(&tokens[0]))]));
        assert_eq!(
            (r.status, r.text()),
            (
                401,
                r#"{"message":"No credentials found for given 'iss'"}"#.to_string()
            )
        );
        assert!(!std::fs::read_to_string(&path).expect("file").contains(key));
    }
}

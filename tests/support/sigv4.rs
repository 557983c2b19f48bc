//! An independent SigV4 verifier: aws-sigv4's own full `sign()` over exactly the headers a
//! request says it signed, compared with what it sent.

use super::lambda::Recorded;
use super::{
    aws, ACCESS_KEY, ENV_ACCESS_KEY, ENV_SECRET_KEY, ENV_SESSION_TOKEN, SECRET_KEY,
    SEED_ACCESS_KEY, SEED_SECRET_KEY,
};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Recomputes an invoke's signature with aws-sigv4's full `sign()` over exactly the headers
/// the request says it signed, and compares.
pub(super) fn verify_signature(req: &Recorded) -> Result<(), String> {
    verify_sigv4(req, "lambda")
}

/// The secret (and the session token it must come with) of an access key the mocks know: the
/// fixed test keys, or keys a mock credential provider issued.
fn known_secret(key: &str) -> Option<(String, Option<String>)> {
    let fixed = match key {
        ACCESS_KEY => Some(SECRET_KEY),
        ENV_ACCESS_KEY => Some(ENV_SECRET_KEY),
        "AKIDDEMO" => Some("demo-secret"),
        SEED_ACCESS_KEY => Some(SEED_SECRET_KEY),
        _ => None,
    };
    match fixed {
        Some(secret) => {
            let token = (key == ENV_ACCESS_KEY).then(|| ENV_SESSION_TOKEN.to_string());
            Some((secret.to_string(), token))
        }
        None => aws::issued(key),
    }
}

/// Verifies a request signed for `service` (`lambda`, `sts`) with aws-sigv4.
pub fn verify_sigv4(req: &Recorded, service: &str) -> Result<(), String> {
    let auth = req
        .header("authorization")
        .ok_or("no Authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(", ") {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (credential, signed, signature) = (
        credential.ok_or("no Credential")?,
        signed.ok_or("no SignedHeaders")?,
        signature.ok_or("no Signature")?,
    );
    // The access key is everything before the last four parts (the seed's test key has a '/').
    let scope: Vec<&str> = credential.rsplitn(5, '/').collect();
    if scope.len() != 5 || scope[1] != service || scope[0] != "aws4_request" {
        return Err(format!("bad credential scope {credential}"));
    }
    let (key, date_part, region) = (scope[4], scope[3], scope[2]);
    let (secret, expected_token) =
        known_secret(key).ok_or_else(|| format!("unknown access key {key}"))?;
    let token = req.header("x-amz-security-token").map(str::to_string);
    if expected_token.is_some() && token != expected_token {
        return Err("temporary credentials without their session token".into());
    }
    let date = req.header("x-amz-date").ok_or("no X-Amz-Date")?;
    if !date.starts_with(date_part) {
        return Err("X-Amz-Date does not match the credential scope".into());
    }
    let time = parse_amz_date(date).ok_or("bad X-Amz-Date")?;
    let signed_names: Vec<&str> = signed.split(';').collect();
    let required: &[&str] = if service == "lambda" {
        &["host", "x-amz-date", "content-type", "content-length"]
    } else {
        &["host", "x-amz-date"]
    };
    for &required in required {
        if !signed_names.contains(&required) {
            return Err(format!("{required} is not signed"));
        }
    }
    // Every header sent (but Authorization) must be signed; for other services (STS), every
    // `x-amz-*` header and the body's type and length, as AWS requires of what it may change.
    // `X-Amzn-Trace-Id` is the exception: the AWS SDKs never sign it (aws-sigv4's default
    // `excluded_headers`: X-Ray's header "changes based on the request from the client").
    for (name, _) in &req.headers {
        let must_sign = (service == "lambda" && name != "x-amzn-trace-id")
            || name.starts_with("x-amz-")
            || name == "content-type"
            || name == "content-length";
        if must_sign && name != "authorization" && !signed_names.contains(&name.as_str()) {
            return Err(format!("header {name} is sent but not signed"));
        }
    }
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(n, _)| {
            signed_names.contains(&n.as_str()) && n != "x-amz-date" && n != "x-amz-security-token"
        })
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let creds = aws_credential_types::Credentials::new(key, secret, token, None, "test");
    let identity: aws_smithy_runtime_api::client::identity::Identity = creds.into();
    let mut settings = aws_sigv4::http_request::SigningSettings::default();
    settings.excluded_headers = Some(vec![]);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = aws_sigv4::http_request::SignableRequest::new(
        &req.method,
        req.target.clone(),
        headers.into_iter(),
        // The payload hash by ring (assembly even in debug builds, so a 6 MiB body costs
        // milliseconds); aws-sigv4 still builds and signs the canonical request itself.
        aws_sigv4::http_request::SignableBody::Precomputed(hex(ring::digest::digest(
            &ring::digest::SHA256,
            &req.body,
        )
        .as_ref())),
    )
    .map_err(|e| e.to_string())?;
    let out = aws_sigv4::http_request::sign(signable, &params).map_err(|e| e.to_string())?;
    if out.signature() != signature {
        return Err(format!(
            "signature {signature} but aws-sigv4 computes {}",
            out.signature()
        ));
    }
    Ok(())
}

fn parse_amz_date(s: &str) -> Option<SystemTime> {
    if s.len() != 16 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d, hh, mm, ss) = (
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(9..11)?,
        n(11..13)?,
        n(13..15)?,
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(UNIX_EPOCH + Duration::from_secs((days * 86_400 + hh * 3600 + mm * 60 + ss) as u64))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

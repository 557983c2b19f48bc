//! SigV4 for one Lambda invoke: our signer (cached signing key, per-request hashing and one
//! HMAC) against aws-sigv4's full `sign()` of the same request, in the same run.
//!
//! Run: `cargo bench --bench sign`

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use lambda_gateway::aws::credentials::Credentials;
use lambda_gateway::aws::sigv4::{InvokeSigner, InvokeTemplate};
use lambda_gateway::aws::time::AmzDate;
use lambda_gateway::lambda::config::Secret;
use std::time::{Duration, UNIX_EPOCH};

fn main() {
    divan::main();
}

const PATH: &str = "/2015-03-31/functions/MyLambda/invocations";
const HOST: &str = "lambda.us-east-1.amazonaws.com";

fn payload() -> Vec<u8> {
    let mut p = br#"{"key1":""#.to_vec();
    p.resize(1024 - 2, b'a');
    p.extend_from_slice(b"\"}");
    p
}

fn creds() -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
        session_token: None,
    }
}

/// Ours: what the gateway does per request once the key is cached.
#[divan::bench]
fn gateway_cached_key(bencher: divan::Bencher) {
    let template = InvokeTemplate::new(
        PATH,
        HOST.into(),
        "us-east-1".into(),
        "RequestResponse",
        "Tail",
    );
    let creds = creds();
    let payload = payload();
    let date = AmzDate::from_unix(1_732_406_400);
    let mut signer = InvokeSigner::default();
    let mut auth = Vec::with_capacity(256);
    signer.sign(&template, &creds, &date, &payload, &mut auth);
    bencher.bench_local(|| {
        signer.sign(
            &template,
            &creds,
            &date,
            divan::black_box(&payload),
            &mut auth,
        );
        divan::black_box(&auth);
    });
}

/// The baseline: aws-sigv4's full `sign()` of the same request and headers.
#[divan::bench]
fn aws_sigv4_full_sign(bencher: divan::Bencher) {
    let identity = aws_credential_types::Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        None,
        None,
        "bench",
    )
    .into();
    let time = UNIX_EPOCH + Duration::from_secs(1_732_406_400);
    let payload = payload();
    let len = payload.len().to_string();
    bencher.bench_local(|| {
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("lambda")
            .time(divan::black_box(time))
            .settings(SigningSettings::default())
            .build()
            .map(Into::into);
        let Ok(params) = params else { return };
        let headers = [
            ("host", HOST),
            ("content-type", "application/json"),
            ("content-length", len.as_str()),
            ("x-amz-invocation-type", "RequestResponse"),
            ("x-amz-log-type", "Tail"),
        ];
        if let Ok(req) = SignableRequest::new(
            "POST",
            PATH,
            headers.into_iter(),
            SignableBody::Bytes(&payload),
        ) {
            divan::black_box(sign(req, &params).map(|o| o.into_parts()).ok());
        }
    });
}

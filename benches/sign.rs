//! SigV4 for one Lambda invoke: our signer (cached signing key, per-request hashing and one
//! HMAC) against aws-sigv4's full `sign()` of the same request, in the same run; once with the
//! 1 KiB payload hashed by each signer, once with its hash precomputed for both.
//!
//! Run: `cargo bench --bench sign`

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_smithy_runtime_api::client::identity::Identity;
use lambda_gateway::aws::credentials::Credentials;
use lambda_gateway::aws::sigv4::{sha256_hex, InvokeSigner, InvokeTemplate};
use lambda_gateway::aws::time::AmzDate;
use lambda_gateway::lambda::config::Secret;
use std::time::{Duration, UNIX_EPOCH};

fn main() {
    divan::main();
}

const PATH: &str = "/2015-03-31/functions/MyLambda/invocations";
const HOST: &str = "lambda.us-east-1.amazonaws.com";
const KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const EPOCH_SECONDS: u64 = 1_732_406_400;

fn payload() -> Vec<u8> {
    let mut p = br#"{"key1":""#.to_vec();
    p.resize(1024 - 2, b'a');
    p.extend_from_slice(b"\"}");
    p
}

/// Ours, as the gateway runs it per request once the key is cached.
fn gateway(bencher: divan::Bencher, prehashed: bool) {
    let template = InvokeTemplate::new(
        PATH,
        HOST.into(),
        "us-east-1".into(),
        "RequestResponse",
        "Tail",
    );
    let creds = Credentials {
        access_key_id: KEY.into(),
        secret_access_key: Secret(SECRET.into()),
        session_token: None,
    };
    let payload = payload();
    let hash = sha256_hex(&payload);
    let date = AmzDate::from_unix(EPOCH_SECONDS);
    let mut signer = InvokeSigner::default();
    let mut auth = Vec::with_capacity(256);
    signer.sign(&template, &creds, &date, &payload, &mut auth);
    bencher.bench_local(|| {
        if prehashed {
            signer.sign_prehashed(
                &template,
                &creds,
                &date,
                payload.len(),
                divan::black_box(&hash),
                &mut auth,
            );
        } else {
            signer.sign(
                &template,
                &creds,
                &date,
                divan::black_box(&payload),
                &mut auth,
            );
        }
        divan::black_box(&auth);
    });
}

/// The baseline: aws-sigv4's full `sign()` of the same request and headers.
fn aws_sigv4(bencher: divan::Bencher, prehashed: bool) {
    let identity: Identity =
        aws_credential_types::Credentials::new(KEY, SECRET, None, None, "bench").into();
    let time = UNIX_EPOCH + Duration::from_secs(EPOCH_SECONDS);
    let payload = payload();
    let hash = String::from_utf8_lossy(&sha256_hex(&payload)).into_owned();
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
        let body = if prehashed {
            SignableBody::Precomputed(hash.clone())
        } else {
            SignableBody::Bytes(&payload)
        };
        if let Ok(req) = SignableRequest::new("POST", PATH, headers.into_iter(), body) {
            divan::black_box(sign(req, &params).map(|o| o.into_parts()).ok());
        }
    });
}

#[divan::bench]
fn gateway_cached_key(bencher: divan::Bencher) {
    gateway(bencher, false);
}

#[divan::bench]
fn aws_sigv4_full_sign(bencher: divan::Bencher) {
    aws_sigv4(bencher, false);
}

/// Signing proper: the payload's hash computed beforehand, for both signers.
#[divan::bench]
fn gateway_cached_key_prehashed(bencher: divan::Bencher) {
    gateway(bencher, true);
}

#[divan::bench]
fn aws_sigv4_full_sign_prehashed(bencher: divan::Bencher) {
    aws_sigv4(bencher, true);
}

/// The part of both signers that no cache can remove: SHA-256 of the 1 KiB payload.
#[divan::bench]
fn payload_hash_only(bencher: divan::Bencher) {
    let payload = payload();
    bencher.bench_local(|| divan::black_box(sha256_hex(divan::black_box(&payload))));
}

/// The payload hash of a 1 MiB invoke, the floor of large-body signing: hashed from a buffer
/// pushed out of the caches, right after copying it in (as the encoder leaves it), and in 32 KiB
/// steps interleaved with the copy (hashing "as it is produced"). SHA-256 is compute-bound
/// here, so where the bytes are matters little.
mod payload_hash_1mib {
    const MIB: usize = 1 << 20;

    fn evict_caches() -> Vec<u8> {
        vec![1u8; 64 * MIB]
    }

    #[divan::bench(sample_count = 20, sample_size = 1)]
    fn cold(bencher: divan::Bencher) {
        let payload = vec![b'x'; MIB];
        bencher
            .with_inputs(evict_caches)
            .bench_local_values(|evicted| {
                let h = ring::digest::digest(&ring::digest::SHA256, &payload);
                (evicted, h)
            });
    }

    #[divan::bench(sample_count = 20, sample_size = 1)]
    fn copied_then_hashed(bencher: divan::Bencher) {
        let source = vec![b'x'; MIB];
        let mut out = vec![0u8; MIB];
        bencher
            .with_inputs(evict_caches)
            .bench_local_values(|evicted| {
                out.copy_from_slice(&source);
                (evicted, ring::digest::digest(&ring::digest::SHA256, &out))
            });
    }

    #[divan::bench(sample_count = 20, sample_size = 1)]
    fn hashed_while_copied(bencher: divan::Bencher) {
        let source = vec![b'x'; MIB];
        let mut out = vec![0u8; MIB];
        bencher
            .with_inputs(evict_caches)
            .bench_local_values(|evicted| {
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
                for (o, s) in out.chunks_mut(32 * 1024).zip(source.chunks(32 * 1024)) {
                    o.copy_from_slice(s);
                    ctx.update(o);
                }
                (evicted, ctx.finish())
            });
    }
}

//! The jwt plugin on arbitrary tokens, placed where the plugin looks for them (the
//! `Authorization` header, the query, a cookie): decoding, the credential lookup, signature
//! checks (HS256 and ES256 credentials) and claim checks never panic; a refusal is a 401 with a
//! JSON body, and a request let through names the credential's consumer.
#![no_main]

use lambda_gateway::access::jwt::{self, JwtCredential, Verifier};
use lambda_gateway::access::{configure, Plugin};
use lambda_gateway::access::{AccessContext, ConsumerInfo, Identities, RequestEdits, Verdict};
use lambda_gateway::http::encode::Response;
use lambda_gateway::http::head::{self, RequestHead};
use lambda_gateway::http::request::Request;
use lambda_gateway::http::Limits;
use lambda_gateway::schema::check::Checker;
use libfuzzer_sys::fuzz_target;
use std::future::Future;
use std::sync::{Arc, LazyLock};

const EC_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYDEt+AdZugyHbfmHAAqt7cq6od67
Q+fNeoSX+LMorTjjzh5FlHCpQHj/wq4Rm6+FAvGKFD/v678r8MQV1wDqbg==
-----END PUBLIC KEY-----
";

struct Known {
    consumer: ConsumerInfo,
    hs: JwtCredential,
    es: JwtCredential,
}

impl Identities for Known {
    fn key_auth(&self, _: &[u8]) -> Option<(&str, &ConsumerInfo)> {
        None
    }
    fn jwt(&self, key: &str) -> Option<(&JwtCredential, &ConsumerInfo)> {
        [&self.hs, &self.es]
            .into_iter()
            .find(|c| c.key == key)
            .map(|c| (c, &self.consumer))
    }
    fn consumer(&self, _: &str) -> Option<&ConsumerInfo> {
        None
    }
    fn groups(&self, _: &ConsumerInfo) -> &[String] {
        &[]
    }
}

static KNOWN: LazyLock<Known> = LazyLock::new(|| {
    let credential = |key: &str, verifier: Verifier| JwtCredential {
        id: format!("{key}-id"),
        key: key.into(),
        verifier: Arc::new(verifier),
    };
    Known {
        consumer: ConsumerInfo {
            index: 0,
            id: "c".into(),
            username: Some("u".into()),
            custom_id: None,
        },
        hs: credential("k", Verifier::new("HS256", "s", None).expect("hs")),
        es: credential(
            "e",
            Verifier::new("ES256", "", Some(EC_PUBLIC_KEY)).expect("es"),
        ),
    }
});

fn config(claims: bool) -> jwt::Jwt {
    let value = if claims {
        serde_json::json!({"claims_to_verify": ["exp", "nbf"], "cookie_names": ["t"]})
    } else {
        serde_json::json!({"cookie_names": ["t"], "key_claim_name": "kid"})
    };
    configure::<jwt::Jwt>(&mut Checker::default(), &value, "fuzz").expect("valid config")
}

static CONFIGS: LazyLock<[jwt::Jwt; 2]> = LazyLock::new(|| [config(true), config(false)]);

fuzz_target!(|data: &[u8]| {
    let Some((&sel, token)) = data.split_first() else {
        return;
    };
    let token: Vec<u8> = token
        .iter()
        .copied()
        .filter(|&b| b > b' ' && b < 0x7f && b != b';')
        .collect();
    let mut raw = b"GET /".to_vec();
    match sel % 3 {
        0 => raw.extend_from_slice(b"x HTTP/1.1\r\nAuthorization: Bearer "),
        1 => {
            raw.extend_from_slice(b"x?jwt=");
            raw.extend(token.iter().copied().filter(|&b| b != b'#'));
            raw.extend_from_slice(b" HTTP/1.1\r\nX: ");
        }
        _ => raw.extend_from_slice(b"x HTTP/1.1\r\nCookie: a=b; t="),
    }
    raw.extend_from_slice(&token);
    raw.extend_from_slice(b"\r\nHost: h\r\n\r\n");
    let mut h = RequestHead::default();
    if head::parse(&raw, &Limits::default(), &mut h) != Ok(true) {
        return;
    }
    let req = Request {
        peer: None,
        secure: false,
        buf: &raw,
        head: &h,
        body: &[],
    };
    let mut edits = RequestEdits::default();
    let mut ctx = AccessContext {
        identities: &*KNOWN,
        consumer: None,
        authenticated: false,
        credential: None,
        edits: &mut edits,
        service: None,
        route: None,
        jwt_claims: None,
        uri_captures: &|_| None,
        arrived: std::time::Instant::now(),
        access_started: None,
        trace: None,
    };
    let mut resp = Response::default();
    // The jwt plugin decides in one poll: it waits on nothing.
    let access = std::pin::pin!(CONFIGS[(sel as usize / 3) % 2].access(&req, &mut ctx, &mut resp))
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    let std::task::Poll::Ready(verdict) = access else {
        panic!("the jwt plugin waited");
    };
    match verdict {
        Verdict::Answered => {
            assert_eq!(resp.status, 401);
            let _: serde_json::Value = serde_json::from_slice(&resp.body).expect("a JSON body");
        }
        Verdict::Continue => {
            assert!(ctx.authenticated);
            assert_eq!(ctx.consumer.map(|c| c.id.as_str()), Some("c"));
        }
        // Only a missing `anonymous` consumer fails, and none is configured.
        Verdict::Failed(why) => panic!("the jwt plugin failed: {why}"),
    }
});

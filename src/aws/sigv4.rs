//! AWS Signature Version 4.
//!
//! Two layers:
//! - the general algorithm ([`canonical_uri`], [`canonical_query`], [`canonical_request`],
//!   [`string_to_sign`]), checked against the AWS SigV4 test suite in `tests/sigv4_suite.rs`;
//! - [`InvokeSigner`], the hot path for one Lambda invoke: the canonical URI and query are
//!   computed once per plugin with the general code, the signing key is derived once per
//!   (credentials, date, region) and cached in the worker, and only the per-request parts
//!   (payload hash, timestamp, canonical-request hash, final HMAC) are computed at send time.

use super::credentials::Credentials;
use super::time::AmzDate;
use crate::hexdigits::hex32;
use ring::{digest, hmac};

/// The only algorithm this module implements.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> [u8; 64] {
    hex32(digest::digest(&digest::SHA256, data).as_ref())
}

/// Derives `kSigning` = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
pub fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut k_secret = Vec::with_capacity(4 + secret.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let k_date = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &k_secret),
        date.as_bytes(),
    );
    let k_region = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, k_date.as_ref()),
        region.as_bytes(),
    );
    let k_service = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, k_region.as_ref()),
        service.as_bytes(),
    );
    let k_signing = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, k_service.as_ref()),
        b"aws4_request",
    );
    hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
}

/// The canonical URI of a path as sent on the wire. With `normalize`, dot segments and empty
/// segments are removed (RFC 3986 §5.2.4 as AWS applies it). With `double_encode` (every service
/// but S3), the already-encoded path is encoded once more, so `%3A` becomes `%253A`.
pub fn canonical_uri(out: &mut Vec<u8>, path: &[u8], normalize: bool, double_encode: bool) {
    let start = out.len();
    if normalize {
        let mut segments: Vec<&[u8]> = Vec::new();
        for seg in path.split(|&b| b == b'/') {
            match seg {
                b"" | b"." => {}
                b".." => {
                    segments.pop();
                }
                s => segments.push(s),
            }
        }
        out.push(b'/');
        for (i, seg) in segments.iter().enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            encode_segment(out, seg, double_encode);
        }
        if path.len() > 1 && path.ends_with(b"/") && !segments.is_empty() {
            out.push(b'/');
        }
    } else {
        encode_segment(out, path, double_encode);
    }
    if out.len() == start {
        out.push(b'/');
    }
}

fn encode_segment(out: &mut Vec<u8>, seg: &[u8], double_encode: bool) {
    if double_encode {
        super::uri::encode_path_bytes(out, seg);
    } else {
        // Encode what is not yet encoded: decode first, then encode once.
        let mut decoded = Vec::with_capacity(seg.len());
        crate::http::percent::percent_decode_into(&mut decoded, seg, false);
        super::uri::encode_path_bytes(out, &decoded);
    }
}

/// The canonical query string: each name and value percent-decoded then encoded the AWS way,
/// sorted by name then value, joined with `&`; a name without `=` gets an empty value.
pub fn canonical_query(out: &mut Vec<u8>, query: &[u8]) {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for part in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match memchr::memchr(b'=', part) {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        let mut dn = Vec::new();
        let mut dv = Vec::new();
        crate::http::percent::percent_decode_into(&mut dn, name, false);
        crate::http::percent::percent_decode_into(&mut dv, value, false);
        let mut en = Vec::new();
        let mut ev = Vec::new();
        super::uri::encode_query_bytes(&mut en, &dn);
        super::uri::encode_query_bytes(&mut ev, &dv);
        pairs.push((en, ev));
    }
    pairs.sort();
    for (i, (n, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(n);
        out.push(b'=');
        out.extend_from_slice(v);
    }
}

/// Trims a header value and folds each run of whitespace inside it into one space.
pub fn canonical_header_value(out: &mut Vec<u8>, value: &[u8]) {
    let mut pending_space = false;
    let mut wrote = false;
    for &b in value {
        if b == b' ' || b == b'\t' || b == b'\n' || b == b'\r' {
            pending_space = wrote;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(b);
            wrote = true;
        }
    }
}

/// Builds the canonical request for a general request. `headers` are (name, value) as sent;
/// every header is signed. Returns the signed-headers list (`a;b;c`).
pub fn canonical_request(
    out: &mut Vec<u8>,
    method: &str,
    canonical_uri: &[u8],
    canonical_query: &[u8],
    headers: &[(&str, &[u8])],
    payload_hash: &str,
) -> String {
    let mut lower: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let mut v = Vec::new();
        canonical_header_value(&mut v, value);
        match lower.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(b',');
                existing.extend_from_slice(&v);
            }
            None => lower.push((name, v)),
        }
    }
    lower.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri);
    out.push(b'\n');
    out.extend_from_slice(canonical_query);
    out.push(b'\n');
    for (n, v) in &lower {
        out.extend_from_slice(n.as_bytes());
        out.push(b':');
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out.push(b'\n');
    let signed: Vec<&str> = lower.iter().map(|(n, _)| n.as_str()).collect();
    let signed = signed.join(";");
    out.extend_from_slice(signed.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    signed
}

/// The string to sign for a canonical request.
pub fn string_to_sign(
    out: &mut Vec<u8>,
    date: &AmzDate,
    region: &str,
    service: &str,
    canonical_request: &[u8],
) {
    out.extend_from_slice(ALGORITHM.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&date.timestamp);
    out.push(b'\n');
    push_scope(out, date, region, service);
    out.push(b'\n');
    out.extend_from_slice(&sha256_hex(canonical_request));
}

fn push_scope(out: &mut Vec<u8>, date: &AmzDate, region: &str, service: &str) {
    out.extend_from_slice(date.date_str().as_bytes());
    out.push(b'/');
    out.extend_from_slice(region.as_bytes());
    out.push(b'/');
    out.extend_from_slice(service.as_bytes());
    out.extend_from_slice(b"/aws4_request");
}

/// Hex signature of `string_to_sign` under `key`.
pub fn signature_hex(key: &hmac::Key, string_to_sign: &[u8]) -> [u8; 64] {
    hex32(hmac::sign(key, string_to_sign).as_ref())
}

/// One cached signing key.
struct CachedKey {
    access_key_id: String,
    secret: String,
    region: String,
    date: [u8; 8],
    key: hmac::Key,
}

/// Most signing keys a worker keeps: one per (credentials, region) in use today.
const MAX_CACHED_KEYS: usize = 16;

/// A worker's cache of derived signing keys, keyed by (credentials, date, region) for service
/// `lambda`. A handful of entries at most, so a linear scan beats hashing.
#[derive(Default)]
pub struct KeyCache {
    entries: Vec<CachedKey>,
    /// How many keys were derived (for tests and metrics).
    pub derivations: u64,
}

impl KeyCache {
    /// The signing key for these credentials, the date of `date`, and `region`.
    pub fn key(&mut self, creds: &Credentials, date: &AmzDate, region: &str) -> &hmac::Key {
        let day: [u8; 8] = date.timestamp[..8].try_into().unwrap_or([b'0'; 8]);
        let found = self.entries.iter().position(|e| {
            e.date == day
                && e.region == region
                && e.access_key_id == creds.access_key_id
                && e.secret == creds.secret_access_key.0
        });
        let index = match found {
            Some(i) => i,
            None => {
                // Keys of past days are useless: drop them before adding today's.
                self.entries.retain(|e| e.date == day);
                // Rotated credentials add a key each: keep the newest few.
                if self.entries.len() >= MAX_CACHED_KEYS {
                    self.entries.remove(0);
                }
                self.derivations += 1;
                self.entries.push(CachedKey {
                    access_key_id: creds.access_key_id.clone(),
                    secret: creds.secret_access_key.0.clone(),
                    region: region.to_string(),
                    date: day,
                    key: derive_signing_key(
                        &creds.secret_access_key.0,
                        date.date_str(),
                        region,
                        "lambda",
                    ),
                });
                self.entries.len() - 1
            }
        };
        &self.entries[index].key
    }
}

/// What is fixed for one plugin's invokes: computed once when the config is loaded.
#[derive(Clone, Debug)]
pub struct InvokeTemplate {
    /// Canonical URI of the invoke path (double-encoded).
    pub canonical_uri: Vec<u8>,
    /// Canonical query (`Qualifier=…` or empty).
    pub canonical_query: Vec<u8>,
    /// `Host` header value.
    pub host: String,
    /// Region used in the credential scope.
    pub region: String,
    /// `X-Amz-Invocation-Type` value.
    pub invocation_type: &'static str,
    /// `X-Amz-Log-Type` value.
    pub log_type: &'static str,
}

impl InvokeTemplate {
    /// Derives the canonical parts from the path and query as they will be sent.
    pub fn new(
        path_and_query: &str,
        host: String,
        region: String,
        invocation_type: &'static str,
        log_type: &'static str,
    ) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, q),
            None => (path_and_query, ""),
        };
        let mut canonical_uri_buf = Vec::new();
        canonical_uri(&mut canonical_uri_buf, path.as_bytes(), true, true);
        let mut canonical_query_buf = Vec::new();
        canonical_query(&mut canonical_query_buf, query.as_bytes());
        InvokeTemplate {
            canonical_uri: canonical_uri_buf,
            canonical_query: canonical_query_buf,
            host,
            region,
            invocation_type,
            log_type,
        }
    }
}

/// Signs invokes; owns the scratch buffers so signing allocates nothing in steady state.
#[derive(Default)]
pub struct InvokeSigner {
    /// The signing-key cache.
    pub keys: KeyCache,
    canonical: Vec<u8>,
    to_sign: Vec<u8>,
}

impl InvokeSigner {
    /// Signs an invoke of `payload` (sent with `Content-Type: application/json`) at `date`,
    /// writing the `Authorization` value into `authorization`.
    pub fn sign(
        &mut self,
        t: &InvokeTemplate,
        creds: &Credentials,
        date: &AmzDate,
        payload: &[u8],
        authorization: &mut Vec<u8>,
    ) {
        let hash = sha256_hex(payload);
        self.sign_prehashed(t, creds, date, payload.len(), &hash, authorization);
    }

    /// [`InvokeSigner::sign`] for a payload whose length and hex SHA-256 are already known.
    pub fn sign_prehashed(
        &mut self,
        t: &InvokeTemplate,
        creds: &Credentials,
        date: &AmzDate,
        payload_len: usize,
        payload_hash: &[u8; 64],
        authorization: &mut Vec<u8>,
    ) {
        let c = &mut self.canonical;
        c.clear();
        c.extend_from_slice(b"POST\n");
        c.extend_from_slice(&t.canonical_uri);
        c.push(b'\n');
        c.extend_from_slice(&t.canonical_query);
        c.extend_from_slice(b"\ncontent-length:");
        crate::json::write_u64(c, payload_len as u64);
        c.extend_from_slice(b"\ncontent-type:application/json\nhost:");
        c.extend_from_slice(t.host.as_bytes());
        c.extend_from_slice(b"\nx-amz-date:");
        c.extend_from_slice(&date.timestamp);
        c.extend_from_slice(b"\nx-amz-invocation-type:");
        c.extend_from_slice(t.invocation_type.as_bytes());
        c.extend_from_slice(b"\nx-amz-log-type:");
        c.extend_from_slice(t.log_type.as_bytes());
        if let Some(token) = &creds.session_token {
            c.extend_from_slice(b"\nx-amz-security-token:");
            canonical_header_value(c, token.0.as_bytes());
        }
        c.extend_from_slice(b"\n\n");
        let signed = signed_headers(creds.session_token.is_some());
        c.extend_from_slice(signed.as_bytes());
        c.push(b'\n');
        c.extend_from_slice(payload_hash);

        self.to_sign.clear();
        string_to_sign(
            &mut self.to_sign,
            date,
            &t.region,
            "lambda",
            &self.canonical,
        );
        let key = self.keys.key(creds, date, &t.region);
        let sig = signature_hex(key, &self.to_sign);

        authorization.clear();
        authorization.extend_from_slice(ALGORITHM.as_bytes());
        authorization.extend_from_slice(b" Credential=");
        authorization.extend_from_slice(creds.access_key_id.as_bytes());
        authorization.push(b'/');
        push_scope(authorization, date, &t.region, "lambda");
        authorization.extend_from_slice(b", SignedHeaders=");
        authorization.extend_from_slice(signed.as_bytes());
        authorization.extend_from_slice(b", Signature=");
        authorization.extend_from_slice(&sig);
    }
}

/// The `Authorization` value of a request to another AWS service (STS): `headers` are every
/// header sent but `Authorization`, `Host` and `X-Amz-Date` included; all of them are signed.
/// Off the hot path, so it derives its key each time.
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    creds: &Credentials,
    date: &AmzDate,
    region: &str,
    service: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    payload: &[u8],
) -> String {
    let mut uri = Vec::new();
    canonical_uri(&mut uri, path.as_bytes(), true, true);
    let mut canonical = Vec::new();
    let hash = sha256_hex(payload);
    let signed = canonical_request(
        &mut canonical,
        method,
        &uri,
        b"",
        headers,
        std::str::from_utf8(&hash).unwrap_or_default(),
    );
    let mut to_sign = Vec::new();
    string_to_sign(&mut to_sign, date, region, service, &canonical);
    let key = derive_signing_key(&creds.secret_access_key.0, date.date_str(), region, service);
    let signature = signature_hex(&key, &to_sign);
    let mut scope = Vec::new();
    push_scope(&mut scope, date, region, service);
    format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed}, Signature={}",
        creds.access_key_id,
        String::from_utf8_lossy(&scope),
        String::from_utf8_lossy(&signature)
    )
}

/// The signed-headers list of an invoke: every header sent except `Authorization`.
pub fn signed_headers(with_token: bool) -> &'static str {
    if with_token {
        "content-length;content-type;host;x-amz-date;x-amz-invocation-type;x-amz-log-type;x-amz-security-token"
    } else {
        "content-length;content-type;host;x-amz-date;x-amz-invocation-type;x-amz-log-type"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda::config::Secret;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
            session_token: token.map(|t| Secret(t.into())),
        }
    }

    /// The fast invoke path must produce exactly what the general algorithm produces.
    #[test]
    fn invoke_signer_matches_the_general_algorithm() {
        for token in [None, Some("tok  en")] {
            let t = InvokeTemplate::new(
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/invocations?Qualifier=v1",
                "lambda.us-east-1.amazonaws.com".into(),
                "us-east-1".into(),
                "RequestResponse",
                "Tail",
            );
            let date = AmzDate::from_unix(1_440_938_160);
            let payload = br#"{"a":1}"#;
            let mut auth = Vec::new();
            let mut signer = InvokeSigner::default();
            let c = creds(token);
            signer.sign(&t, &c, &date, payload, &mut auth);

            let mut headers: Vec<(&str, &[u8])> = vec![
                ("Host", t.host.as_bytes()),
                ("Content-Type", b"application/json"),
                ("Content-Length", b"7"),
                ("X-Amz-Invocation-Type", b"RequestResponse"),
                ("X-Amz-Log-Type", b"Tail"),
                ("X-Amz-Date", &date.timestamp),
            ];
            if let Some(tok) = token {
                headers.push(("X-Amz-Security-Token", tok.as_bytes()));
            }
            let mut creq = Vec::new();
            let hash = sha256_hex(payload);
            let signed = canonical_request(
                &mut creq,
                "POST",
                &t.canonical_uri,
                &t.canonical_query,
                &headers,
                std::str::from_utf8(&hash).unwrap_or(""),
            );
            assert_eq!(signed, signed_headers(token.is_some()));
            let mut sts = Vec::new();
            string_to_sign(&mut sts, &date, "us-east-1", "lambda", &creq);
            let key = derive_signing_key(&c.secret_access_key.0, "20150830", "us-east-1", "lambda");
            let sig = signature_hex(&key, &sts);
            let auth = String::from_utf8(auth).unwrap_or_default();
            assert!(
                auth.ends_with(std::str::from_utf8(&sig).unwrap_or("?")),
                "{auth}"
            );
            assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, SignedHeaders="));
            assert_eq!(t.canonical_uri, b"/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A1%253Afunction%253Af/invocations");
        }
    }

    #[test]
    fn keys_are_derived_once_per_day_and_region() {
        let mut cache = KeyCache::default();
        let c = creds(None);
        let d1 = AmzDate::from_unix(1_440_938_160);
        let d1_later = AmzDate::from_unix(1_440_938_160 + 3600);
        let d2 = AmzDate::from_unix(1_440_938_160 + 86_400);
        cache.key(&c, &d1, "us-east-1");
        cache.key(&c, &d1_later, "us-east-1");
        assert_eq!(cache.derivations, 1);
        cache.key(&c, &d1, "eu-west-1");
        assert_eq!(cache.derivations, 2);
        cache.key(&c, &d2, "us-east-1");
        assert_eq!(cache.derivations, 3);
        assert_eq!(cache.entries.len(), 1, "old days are evicted");
    }
}

//! Kong's `jwt` (priority 1450): a signed token in a query argument (`uri_param_names`), a
//! cookie (`cookie_names`) or a `Bearer` header (`header_names`) names its credential in the
//! `key_claim_name` claim (or header field); the credential's consumer is the caller once the
//! signature checks with the credential's algorithm and secret or public key, and the claims in
//! `claims_to_verify` hold. Kong's answers are 401s with `WWW-Authenticate: Bearer` (plus
//! `error="invalid_token"` once a token was found): `{"message":"Unauthorized"}`,
//! `{"message":"Multiple tokens provided"}`, `{"message":"Bad token; invalid JSON"}`,
//! `{"message":"No credentials found for given 'iss'"}`, `{"message":"Invalid algorithm"}`,
//! `{"message":"Invalid signature"}`, `{"exp":"token expired"}` ….
//!
//! Signatures are checked by the jsonwebtoken crate (on ring); the token's parts are decoded
//! here because Kong looks the credential up before it knows the key, accepts padded and
//! standard-alphabet base64, and words each failure its own way.

use super::key_auth::{as_anonymous, identify, needed};
use super::{AccessContext, Plugin, Verdict};
use crate::http::answers;
use crate::http::encode::Response;
use crate::http::request::Request;
use crate::json;
use crate::schema::check::Checker;
use crate::schema::{Default, Field, Schema, Type};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

/// The plugin as configured.
#[derive(Debug)]
pub struct Jwt {
    /// `uri_param_names`: query arguments holding a token.
    pub uri_param_names: Vec<String>,
    /// `cookie_names`: cookies holding a token.
    pub cookie_names: Vec<String>,
    /// `header_names`: headers holding `Bearer <token>`.
    pub header_names: Vec<String>,
    /// `key_claim_name`: the claim (or header field) naming the credential's `key`.
    pub key_claim_name: String,
    /// `secret_is_base64`: HMAC secrets are stored base64-encoded.
    pub secret_is_base64: bool,
    /// `claims_to_verify`, in the order given.
    pub claims_to_verify: Vec<Claim>,
    /// `anonymous`: the consumer (id or username) to use when authentication fails.
    pub anonymous: Option<String>,
    /// `run_on_preflight`.
    pub run_on_preflight: bool,
    /// `maximum_expiration` in seconds (0: none).
    pub maximum_expiration: f64,
    /// `realm` for `WWW-Authenticate`.
    pub realm: Option<String>,
    /// `leeway` in seconds: how far `exp` and `nbf` may be off to allow for clock skew
    /// (lambda-gateway's addition; Kong's plugin allows none).
    pub leeway: f64,
}

/// A registered claim the plugin can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// `exp`: the token is refused from this time on.
    Exp,
    /// `nbf`: the token is refused before this time.
    Nbf,
}

impl Claim {
    fn name(self) -> &'static str {
        match self {
            Claim::Exp => "exp",
            Claim::Nbf => "nbf",
        }
    }
}

crate::settings! {
    /// Kong's fields.
    pub struct Settings, schema SCHEMA = "jwt" {
        /// Query arguments holding a token.
        uri_param_names: Vec<String> = Field::of(Type::Texts(None))
            .default(Default::Texts(&["jwt"])),
        /// Cookies holding a token.
        cookie_names: Vec<String> = Field::of(Type::Texts(None)).default(Default::Texts(&[])),
        /// Headers holding `Bearer <token>`.
        header_names: Vec<String> = Field::of(Type::Texts(Some(super::check_header_name)))
            .default(Default::Texts(&["authorization"])),
        /// The claim (or header field) naming the credential's `key`.
        key_claim_name: String = Field::of(Type::Text(Some(check_not_empty)))
            .default(Default::Text("iss")),
        /// HMAC secrets are stored base64-encoded.
        secret_is_base64: bool = Field::of(Type::Boolean).default(Default::Bool(false)),
        /// `exp`, `nbf`.
        claims_to_verify: Vec<String> = Field::of(Type::TextsOneOf(&["exp", "nbf"])),
        /// The consumer (id or username) to use when authentication fails.
        anonymous: Option<String> = Field::of(Type::Text(None)),
        /// Authenticate CORS preflights too.
        run_on_preflight: bool = Field::of(Type::Boolean).default(Default::Bool(true)),
        /// Seconds a token may live at most (0: no limit).
        maximum_expiration: i64 = Field::of(Type::Integer { min: 0, max: 31_536_000 })
            .default(Default::Int(0)),
        /// `realm` of the `WWW-Authenticate` challenge.
        realm: Option<String> = Field::of(Type::Text(None)),
        /// Seconds `exp` and `nbf` may be off (clock skew): lambda-gateway's addition.
        leeway: i64 = Field::of(Type::Integer { min: 0, max: 3600 }).default(Default::Int(0)),
    }
}

fn check_not_empty(s: &str) -> Result<(), String> {
    if s.is_empty() {
        Err("length must be at least 1".into())
    } else {
        Ok(())
    }
}

pub use crate::schema::entities::JWT_ALGORITHMS as ALGORITHMS;

/// How one `jwt_secrets` credential checks signatures: its algorithm and key, parsed once
/// when the configuration is loaded.
pub struct Verifier {
    /// The credential's `algorithm`.
    pub algorithm: Algorithm,
    key: DecodingKey,
    /// An HMAC secret read as base64 (for `secret_is_base64`), when it is base64.
    base64_secret: Option<DecodingKey>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Verifier")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// The verifier for a credential: `secret` for the HMAC algorithms, the PEM public key
    /// (`rsa_public_key`, also for EC and EdDSA keys, as Kong names it) for the others.
    pub fn new(
        algorithm: &str,
        secret: &str,
        public_key: Option<&str>,
    ) -> Result<Verifier, String> {
        let alg: Algorithm = algorithm
            .parse()
            .ok()
            .filter(|_| ALGORITHMS.contains(&algorithm))
            .ok_or_else(|| format!("expected one of: {}", ALGORITHMS.join(", ")))?;
        let pem = || {
            public_key
                .map(str::as_bytes)
                .ok_or_else(|| format!("rsa_public_key: required field missing for {algorithm}"))
        };
        let invalid = |e: jsonwebtoken::errors::Error| format!("rsa_public_key: invalid key ({e})");
        let (key, base64_secret) = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => (
                DecodingKey::from_secret(secret.as_bytes()),
                lenient_base64(secret.as_bytes()).map(|s| DecodingKey::from_secret(&s)),
            ),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => (DecodingKey::from_rsa_pem(pem()?).map_err(invalid)?, None),
            Algorithm::ES256 | Algorithm::ES384 => {
                (DecodingKey::from_ec_pem(pem()?).map_err(invalid)?, None)
            }
            Algorithm::EdDSA => (DecodingKey::from_ed_pem(pem()?).map_err(invalid)?, None),
        };
        Ok(Verifier {
            algorithm: alg,
            key,
            base64_secret,
        })
    }

    /// Whether `signature` (the token's third part) signs `message` (its first two parts).
    fn verifies(&self, signature: &str, message: &[u8], secret_is_base64: bool) -> bool {
        let key = if secret_is_base64 && is_hmac(self.algorithm) {
            match &self.base64_secret {
                Some(k) => k,
                None => return false,
            }
        } else {
            &self.key
        };
        jsonwebtoken::crypto::verify(signature, message, key, self.algorithm).unwrap_or(false)
    }
}

fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Base64 as Kong reads a token's parts and base64 secrets: either alphabet, padding optional.
fn lenient_base64(input: &[u8]) -> Option<Vec<u8>> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let standard: SmallVec<[u8; 256]> = input
        .iter()
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        })
        .collect();
    ENGINE.decode(&standard).ok()
}

/// A token found in the request: its text, or a query argument given without a value.
#[derive(PartialEq, Eq)]
enum Token<'r> {
    Text(Cow<'r, [u8]>),
    Valueless,
}

/// The distinct tokens of the request, in Kong's order: query, cookies, headers. Two are
/// enough to answer "Multiple tokens provided", so no more are kept (a query of thousands of
/// `jwt=` arguments costs one pass, not a comparison of each with all the others).
fn find_tokens<'r>(c: &Jwt, req: &Request<'r>) -> SmallVec<[Token<'r>; 2]> {
    let mut found: SmallVec<[Token<'r>; 2]> = SmallVec::new();
    let mut add = |t: Token<'r>| {
        if found.len() < 2 && !found.contains(&t) {
            found.push(t);
        }
    };
    if let Some(query) = req.query().filter(|_| !c.uri_param_names.is_empty()) {
        for (name, value) in crate::http::form::decoded(query) {
            if c.uri_param_names.contains(&name) {
                match value {
                    None => add(Token::Valueless),
                    Some(v) if !v.is_empty() => add(Token::Text(Cow::Owned(v.into_bytes()))),
                    Some(_) => {}
                }
            }
        }
    }
    for name in &c.cookie_names {
        if let Some(v) = cookie(req, name.as_bytes()).filter(|v| !v.is_empty()) {
            add(Token::Text(Cow::Borrowed(v)));
        }
    }
    for name in &c.header_names {
        let first = req
            .headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()));
        if let Some(token) = first.and_then(|(_, v)| bearer(v)) {
            add(Token::Text(Cow::Borrowed(token)));
        }
    }
    found
}

/// The first cookie called `name` (what nginx's `$cookie_<name>` gives).
fn cookie<'r>(req: &Request<'r>, name: &[u8]) -> Option<&'r [u8]> {
    req.headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
        .flat_map(|(_, v)| v.split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii_start();
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq].trim_ascii_end() == name).then(|| pair[eq + 1..].trim_ascii())
        })
}

/// The token of a `Bearer <token>` value: Kong's `\s*[Bb]earer\s+(.+)`, found anywhere in it.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&value[from..], b"earer").map(|i| from + i) {
        from = at + 5;
        if at == 0 || !matches!(value[at - 1], b'B' | b'b') {
            continue;
        }
        let rest = &value[at + 5..];
        let spaces = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if spaces > 0 && spaces < rest.len() {
            return Some(&rest[spaces..]);
        }
    }
    None
}

/// A token's decoded parts.
struct Decoded<'t> {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    /// The first two parts, as signed.
    signing_input: &'t [u8],
    /// The third part, as written.
    signature: &'t str,
}

/// Decodes a token as Kong's parser does, with its failure words.
fn decode(token: &[u8]) -> Result<Decoded<'_>, &'static str> {
    let mut parts = token.splitn(3, |&b| b == b'.');
    let (header, claims, signature) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let signing_input = &token[..(header.len() + 1 + claims.len()).min(token.len())];
    let json_part = |part: &[u8]| -> Result<Value, &'static str> {
        let bytes = lenient_base64(part).ok_or("invalid JSON")?;
        serde_json::from_slice(&bytes).map_err(|_| "invalid JSON")
    };
    let (header_json, claims_json) = (json_part(header)?, json_part(claims)?);
    let signature_ok = lenient_base64(signature).is_some();
    let header = match header_json {
        Value::Object(h)
            if h.get("alg")
                .and_then(Value::as_str)
                .is_some_and(|a| ALGORITHMS.contains(&a) || a == "ES512") =>
        {
            h
        }
        _ => return Err("invalid alg"),
    };
    let Value::Object(claims) = claims_json else {
        return Err("invalid claims");
    };
    let signature = std::str::from_utf8(signature)
        .ok()
        .filter(|_| signature_ok)
        .ok_or("invalid signature")?;
    Ok(Decoded {
        header,
        claims,
        signing_input,
        signature,
    })
}

/// A failed check: a message, or per-claim errors; whether a token had been found.
enum Failure {
    Message(Cow<'static, str>, bool),
    Claims(Vec<(Claim, &'static str)>),
}

/// Checks the token's claims, Kong's words for each failure.
fn check_claims(
    c: &Jwt,
    claims: &Map<String, Value>,
    now: f64,
) -> Vec<(Claim, &'static str)> {
    let mut errors = Vec::new();
    for &claim in &c.claims_to_verify {
        let error = match claims.get(claim.name()).and_then(Value::as_f64) {
            None => Some("must be a number"),
            Some(exp) if claim == Claim::Exp && exp + c.leeway <= now => Some("token expired"),
            Some(nbf) if claim == Claim::Nbf && nbf - c.leeway > now => Some("token not valid yet"),
            Some(_) => None,
        };
        errors.extend(error.map(|e| (claim, e)));
    }
    if errors.is_empty() && c.maximum_expiration > 0.0 {
        let exp = claims.get("exp").and_then(Value::as_f64);
        if exp.is_none_or(|exp| exp - now > c.maximum_expiration) {
            errors.push((Claim::Exp, "exceeds maximum allowed expiration"));
        }
    }
    errors
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs() as f64)
}

impl Plugin for Jwt {
    const NAME: &'static str = SCHEMA.name;
    const PRIORITY: u32 = 1450;

    fn schema() -> &'static Schema {
        &SCHEMA
    }

    fn build(c: &mut Checker, obj: &Map<String, Value>, _: &str) -> Option<Self> {
        let s = Settings::read(obj);
        let mut claims_to_verify = Vec::new();
        for name in &s.claims_to_verify {
            let claim = if name == "exp" {
                Claim::Exp
            } else {
                Claim::Nbf
            };
            if !claims_to_verify.contains(&claim) {
                claims_to_verify.push(claim);
            }
        }
        if s.maximum_expiration > 0 && !claims_to_verify.contains(&Claim::Exp) {
            c.error_at(
                "claims_to_verify",
                "must contain 'exp' when maximum_expiration is set",
            );
            return None;
        }
        Some(Jwt {
            uri_param_names: s.uri_param_names,
            cookie_names: s.cookie_names,
            header_names: s.header_names,
            key_claim_name: s.key_claim_name,
            secret_is_base64: s.secret_is_base64,
            claims_to_verify,
            anonymous: s.anonymous.filter(|a| !a.is_empty()),
            run_on_preflight: s.run_on_preflight,
            maximum_expiration: s.maximum_expiration as f64,
            realm: s.realm,
            leeway: s.leeway as f64,
        })
    }

    /// Authenticates the request, or answers 401.
    async fn access(
        &self,
        req: &Request<'_>,
        ctx: &mut AccessContext<'_, '_>,
        resp: &mut Response,
    ) -> Verdict {
        check_token(self, req, ctx, resp)
    }
}

fn check_token(
    c: &Jwt,
    req: &Request<'_>,
    ctx: &mut AccessContext<'_, '_>,
    resp: &mut Response,
) -> Verdict {
    if !needed(c.run_on_preflight, c.anonymous.is_some(), req, ctx) {
        return Verdict::Continue;
    }
    let failure = match authenticate(c, req, ctx) {
        Ok(()) => return Verdict::Continue,
        Err(failure) => failure,
    };
    if let Some(anonymous) = &c.anonymous {
        return as_anonymous(anonymous, ctx);
    }
    let challenge = match &c.realm {
        Some(realm) => format!("Bearer realm=\"{realm}\""),
        None => "Bearer".to_string(),
    };
    match failure {
        Failure::Message(message, token_found) => {
            answers::message(resp, 401, &message);
            let value = if token_found {
                format!("{challenge} error=\"invalid_token\"")
            } else {
                challenge
            };
            resp.header(b"WWW-Authenticate", value.as_bytes());
        }
        Failure::Claims(errors) => {
            answers::message(resp, 401, "");
            resp.body.clear();
            resp.body.push(b'{');
            for (i, (claim, error)) in errors.iter().enumerate() {
                if i > 0 {
                    resp.body.push(b',');
                }
                json::write_str(&mut resp.body, claim.name().as_bytes());
                resp.body.push(b':');
                json::write_str(&mut resp.body, error.as_bytes());
            }
            resp.body.push(b'}');
            let value = format!("{challenge} error=\"invalid_token\"");
            resp.header(b"WWW-Authenticate", value.as_bytes());
        }
    }
    Verdict::Answered
}

fn authenticate(
    c: &Jwt,
    req: &Request<'_>,
    ctx: &mut AccessContext<'_, '_>,
) -> Result<(), Failure> {
    let invalid = |m: &'static str| Failure::Message(Cow::Borrowed(m), true);
    let tokens = find_tokens(c, req);
    let token = match tokens.as_slice() {
        [] => return Err(Failure::Message(Cow::Borrowed("Unauthorized"), false)),
        [Token::Text(t)] => t,
        [Token::Valueless] => return Err(invalid("Unrecognizable token")),
        _ => return Err(invalid("Multiple tokens provided")),
    };
    let jwt =
        decode(token).map_err(|e| Failure::Message(format!("Bad token; {e}").into(), true))?;
    let name = c.key_claim_name.as_str();
    let key_value = jwt.claims.get(name).or_else(|| jwt.header.get(name));
    let key: Cow<'_, str> = match key_value {
        None | Some(Value::Null) => {
            return Err(Failure::Message(
                format!("No mandatory '{name}' in claims").into(),
                true,
            ))
        }
        Some(Value::String(s)) if s.is_empty() => {
            return Err(Failure::Message(
                format!("Invalid '{name}' in claims").into(),
                true,
            ))
        }
        Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
        Some(other) => Cow::Owned(other.to_string()),
    };
    let Some((credential, consumer)) = ctx.identities.jwt(&key) else {
        return Err(Failure::Message(
            format!("No credentials found for given '{name}'").into(),
            true,
        ));
    };
    let alg = jwt.header.get("alg").and_then(Value::as_str);
    if alg != Some(credential.algorithm_name()) {
        return Err(invalid("Invalid algorithm"));
    }
    if !credential
        .verifier
        .verifies(jwt.signature, jwt.signing_input, c.secret_is_base64)
    {
        return Err(invalid("Invalid signature"));
    }
    let errors = check_claims(c, &jwt.claims, now_seconds());
    if !errors.is_empty() {
        return Err(Failure::Claims(errors));
    }
    ctx.consumer = Some(consumer);
    ctx.authenticated = true;
    ctx.credential = Some(&credential.id);
    identify(ctx, consumer, Some(&credential.key));
    ctx.jwt_claims = Some(jwt.claims);
    Ok(())
}

/// A `jwt_secrets` credential as the plugin uses it.
#[derive(Debug)]
pub struct JwtCredential {
    /// Its id.
    pub id: String,
    /// Its `key`, which tokens name in `key_claim_name`.
    pub key: String,
    /// How its signatures are checked.
    pub verifier: std::sync::Arc<Verifier>,
}

impl JwtCredential {
    fn algorithm_name(&self) -> &'static str {
        match self.verifier.algorithm {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::EdDSA => "EdDSA",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn part(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn bearer_follows_kongs_pattern() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer   abc.def"), Some(&b"abc.def"[..]));
        assert_eq!(bearer(b"Basic x, Bearer t"), Some(&b"t"[..]));
        assert_eq!(bearer(b"BEARER abc"), None);
        assert_eq!(bearer(b"Bearerabc"), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"earer x"), None);
    }

    #[test]
    fn tokens_decode_with_kongs_words() {
        let h = part(&serde_json::json!({"alg": "HS256", "typ": "JWT"}));
        let c = part(&serde_json::json!({"iss": "k"}));
        let good = format!("{h}.{c}.c2ln");
        let d = decode(good.as_bytes()).expect("decodes");
        assert_eq!(d.signing_input, format!("{h}.{c}").as_bytes());
        assert_eq!(d.signature, "c2ln");
        assert_eq!(d.claims["iss"], "k");
        let bad_alg = part(&serde_json::json!({"alg": "none"}));
        let err = |t: String| decode(t.as_bytes()).err();
        assert_eq!(err(format!("{bad_alg}.{c}.c2ln")), Some("invalid alg"));
        assert_eq!(err(format!("{h}.!!.c2ln")), Some("invalid JSON"));
        assert_eq!(err("garbage".into()), Some("invalid JSON"));
        assert_eq!(
            err(format!("{h}.{}.c2ln", part(&serde_json::json!(5)))),
            Some("invalid claims")
        );
        assert_eq!(err(format!("{h}.{c}.%%")), Some("invalid signature"));
        // Padded and standard-alphabet parts are read too, as Kong reads them.
        let padded = base64::engine::general_purpose::STANDARD.encode(r#"{"alg":"HS256"}"#);
        assert!(decode(format!("{padded}.{c}.c2ln").as_bytes()).is_ok());
    }

    fn config(claims: &[Claim], max: f64, leeway: f64) -> Jwt {
        Jwt {
            uri_param_names: vec!["jwt".into()],
            cookie_names: vec![],
            header_names: vec!["authorization".into()],
            key_claim_name: "iss".into(),
            secret_is_base64: false,
            claims_to_verify: claims.to_vec(),
            anonymous: None,
            run_on_preflight: true,
            maximum_expiration: max,
            realm: None,
            leeway,
        }
    }

    #[test]
    fn claims_are_checked_as_kong_does() {
        let claims = |v: Value| v.as_object().cloned().unwrap_or_default();
        let both = config(&[Claim::Exp, Claim::Nbf], 0.0, 0.0);
        let now = 1_000_000.0;
        assert!(check_claims(
            &both,
            &claims(serde_json::json!({"exp": now + 1.0, "nbf": now})),
            now
        )
        .is_empty());
        assert_eq!(
            check_claims(
                &both,
                &claims(serde_json::json!({"exp": now, "nbf": now + 1.0})),
                now
            ),
            vec![
                (Claim::Exp, "token expired"),
                (Claim::Nbf, "token not valid yet")
            ]
        );
        assert_eq!(
            check_claims(&both, &claims(serde_json::json!({"exp": "soon"})), now),
            vec![
                (Claim::Exp, "must be a number"),
                (Claim::Nbf, "must be a number")
            ]
        );
        let skewed = config(&[Claim::Exp, Claim::Nbf], 0.0, 30.0);
        assert!(check_claims(
            &skewed,
            &claims(serde_json::json!({"exp": now - 29.0, "nbf": now + 29.0})),
            now
        )
        .is_empty());
        assert_eq!(
            check_claims(
                &skewed,
                &claims(serde_json::json!({"exp": now - 30.0, "nbf": now})),
                now
            ),
            vec![(Claim::Exp, "token expired")]
        );
        let capped = config(&[Claim::Exp], 60.0, 0.0);
        assert_eq!(
            check_claims(
                &capped,
                &claims(serde_json::json!({"exp": now + 61.0})),
                now
            ),
            vec![(Claim::Exp, "exceeds maximum allowed expiration")]
        );
        assert!(check_claims(
            &capped,
            &claims(serde_json::json!({"exp": now + 60.0})),
            now
        )
        .is_empty());
    }

    #[test]
    fn verifiers_refuse_bad_keys_and_unknown_algorithms() {
        assert!(Verifier::new("HS256", "s", None).is_ok());
        assert!(Verifier::new("ES512", "s", None)
            .unwrap_err()
            .contains("expected one of"));
        assert!(Verifier::new("none", "s", None).is_err());
        assert!(Verifier::new("RS256", "s", None)
            .unwrap_err()
            .contains("required"));
        assert!(Verifier::new("RS256", "s", Some("not a key"))
            .unwrap_err()
            .contains("invalid key"));
    }

    #[test]
    fn hmac_signatures_verify_plain_and_base64_secrets() {
        let key = jsonwebtoken::EncodingKey::from_secret(b"secret-bytes");
        let claims = serde_json::json!({"iss": "k"});
        let token =
            jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("signs");
        let d = decode(token.as_bytes()).expect("decodes");
        let plain = Verifier::new("HS256", "secret-bytes", None).expect("verifier");
        assert!(plain.verifies(d.signature, d.signing_input, false));
        assert!(!plain.verifies(d.signature, b"other", false));
        let b64 = base64::engine::general_purpose::STANDARD.encode("secret-bytes");
        let encoded = Verifier::new("HS256", &b64, None).expect("verifier");
        assert!(encoded.verifies(d.signature, d.signing_input, true));
        assert!(!encoded.verifies(d.signature, d.signing_input, false));
    }

    /// An HS256 token for `claims`, signed with `secret` by jsonwebtoken (the crate that
    /// checks it here; tests/jwt.rs signs with PyJWT too).
    fn hs256(claims: Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("signed")
    }

    /// Kong's spec (`spec/03-plugins/16-jwt`): where tokens are found, its 401s.
    #[test]
    fn tokens_identify_consumers_with_kongs_answers() {
        use super::super::testing::{configured, run, Known};
        let mut known = Known::default().consumer("alice", None, &[]);
        known.jwts.push((
            JwtCredential {
                id: "j-1".into(),
                key: "alice-iss".into(),
                verifier: std::sync::Arc::new(Verifier::new("HS256", "s3cret", None).expect("HS256")),
            },
            0,
        ));
        let plugin: Jwt = configured(r#"{"claims_to_verify":["exp"],"cookie_names":["session"]}"#)
            .expect("valid");
        let good = hs256(serde_json::json!({"iss": "alice-iss", "exp": 9_999_999_999u64}), "s3cret");
        let forged = hs256(serde_json::json!({"iss": "alice-iss", "exp": 9_999_999_999u64}), "guess");
        let expired = hs256(serde_json::json!({"iss": "alice-iss", "exp": 1}), "s3cret");
        let unknown = hs256(serde_json::json!({"iss": "nobody"}), "s3cret");
        let with = |header: &str| format!("GET /r HTTP/1.1\r\nHost: h\r\n{header}\r\n");
        for (raw, status, body) in [
            (with(&format!("Authorization: Bearer {good}\r\n")), 200, "{}".to_string()),
            (format!("GET /r?jwt={good} HTTP/1.1\r\nHost: h\r\n\r\n"), 200, "{}".into()),
            (with(&format!("Cookie: a=b; session={good}\r\n")), 200, "{}".into()),
            (with(""), 401, r#"{"message":"Unauthorized"}"#.into()),
            (with(&format!("Authorization: Bearer {forged}\r\n")), 401, r#"{"message":"Invalid signature"}"#.into()),
            (with(&format!("Authorization: Bearer {expired}\r\n")), 401, r#"{"exp":"token expired"}"#.into()),
            (with(&format!("Authorization: Bearer {unknown}\r\n")), 401, r#"{"message":"No credentials found for given 'iss'"}"#.into()),
            (with("Authorization: Bearer not.a.token\r\n"), 401, r#"{"message":"Bad token; invalid JSON"}"#.into()),
        ] {
            let out = run(&plugin, &raw, &known);
            assert_eq!((out.status(), out.body()), (status, body), "{raw:?}");
        }
        let out = run(&plugin, &with(""), &known);
        assert_eq!(out.header("WWW-Authenticate").as_deref(), Some("Bearer"));
        let out = run(&plugin, &with(&format!("Authorization: Bearer {good}\r\n")), &known);
        assert_eq!(out.consumer.as_deref(), Some("alice"));
        assert!(out.forwarded.expect("told").contains("X-Credential-Identifier: alice-iss"));
    }
}

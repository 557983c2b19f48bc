//! STS: `AssumeRole` (signed with SigV4) and `AssumeRoleWithWebIdentity` (unsigned), the Query
//! API's form-encoded requests, and its XML answers.

use super::{Fetched, StsEndpoint};
use crate::aws::credentials::{Credentials, Secret};
use crate::aws::endpoint::{parse_endpoint_url, Endpoint};
use crate::aws::time::{parse_iso8601, AmzDate};
use crate::upstream::fetch::{fetch, FetchRequest};
use quick_xml::events::Event;
use std::time::{Duration, SystemTime};

/// How long one STS call may take.
pub const STS_TIMEOUT: Duration = Duration::from_secs(10);

/// The STS endpoint the SDKs pick: `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else the
/// regional endpoint (`sts.<region>.amazonaws.com`, `.amazonaws.com.cn` in China), else the
/// global one (`sts.amazonaws.com`, signed for us-east-1) when no region is known.
pub fn endpoint_for(
    get: &dyn Fn(&str) -> Option<String>,
    region: Option<&str>,
) -> Result<StsEndpoint, (&'static str, String)> {
    for var in ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"] {
        if let Some(url) = get(var).filter(|v| !v.is_empty()) {
            let endpoint = parse_endpoint_url(&url).map_err(|why| (var, why))?;
            return Ok(StsEndpoint {
                endpoint,
                region: region.unwrap_or("us-east-1").to_string(),
            });
        }
    }
    Ok(regional(region))
}

/// `sts.<region>.amazonaws.com` (or the global endpoint without a region).
pub fn regional(region: Option<&str>) -> StsEndpoint {
    let (host, region) = match region {
        Some(r) if r.starts_with("cn-") => (format!("sts.{r}.amazonaws.com.cn"), r),
        Some(r) => (format!("sts.{r}.amazonaws.com"), r),
        None => ("sts.amazonaws.com".to_string(), "us-east-1"),
    };
    StsEndpoint {
        endpoint: Endpoint {
            tls: true,
            host,
            port: 443,
            path_prefix: String::new(),
            proxy: None,
        },
        region: region.to_string(),
    }
}

/// `application/x-www-form-urlencoded` value encoding (RFC 3986 unreserved kept).
fn form_value(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn form(params: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            body.push('&');
        }
        body.push_str(k);
        body.push('=');
        form_value(&mut body, v);
    }
    body
}

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// STS `AssumeRole` with `base` credentials.
pub async fn assume_role(
    tls: &monoio_rustls::TlsConnector,
    sts: &StsEndpoint,
    base: &Credentials,
    role_arn: &str,
    session_name: &str,
    external_id: Option<&str>,
) -> Result<Fetched, String> {
    let mut params = vec![
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name),
        ("DurationSeconds", "3600"),
    ];
    if let Some(id) = external_id {
        params.push(("ExternalId", id));
    }
    let body = form(&params);
    let date = AmzDate::from_system_time(SystemTime::now());
    let host = sts.endpoint.host_header();
    let path = if sts.endpoint.path_prefix.is_empty() {
        "/".to_string()
    } else {
        format!("{}/", sts.endpoint.path_prefix)
    };
    // Content-Length is added by the client; it is signed all the same.
    let length = body.len().to_string();
    let mut signed: Vec<(&str, &[u8])> = vec![
        ("Content-Length", length.as_bytes()),
        ("Content-Type", FORM.as_bytes()),
        ("Host", host.as_bytes()),
        ("X-Amz-Date", date.timestamp.as_slice()),
    ];
    if let Some(token) = &base.session_token {
        signed.push(("X-Amz-Security-Token", token.0.as_bytes()));
    }
    let authorization = crate::aws::sigv4::authorization(
        base,
        &date,
        &sts.region,
        "sts",
        "POST",
        &path,
        &signed,
        body.as_bytes(),
    );
    let mut headers = vec![
        ("Content-Type", FORM),
        ("X-Amz-Date", date.timestamp_str()),
        ("Authorization", authorization.as_str()),
    ];
    if let Some(token) = &base.session_token {
        headers.push(("X-Amz-Security-Token", token.0.as_str()));
    }
    call(tls, sts, "/", &headers, body.as_bytes(), "AssumeRole").await
}

/// STS `AssumeRoleWithWebIdentity` with `token` (not signed: the token is the proof).
pub async fn assume_role_with_web_identity(
    tls: &monoio_rustls::TlsConnector,
    sts: &StsEndpoint,
    role_arn: &str,
    session_name: &str,
    token: &str,
) -> Result<Fetched, String> {
    let body = form(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name),
        ("WebIdentityToken", token),
    ]);
    let headers = [("Content-Type", FORM)];
    call(
        tls,
        sts,
        "/",
        &headers,
        body.as_bytes(),
        "AssumeRoleWithWebIdentity",
    )
    .await
}

async fn call(
    tls: &monoio_rustls::TlsConnector,
    sts: &StsEndpoint,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    action: &str,
) -> Result<Fetched, String> {
    let req = FetchRequest {
        method: "POST",
        path,
        headers,
        body,
    };
    let answer = fetch(tls, &sts.endpoint, &req, STS_TIMEOUT)
        .await
        .map_err(|e| format!("STS {action}: {e}"))?;
    let text = String::from_utf8_lossy(&answer.body);
    if answer.status != 200 {
        let why = match parse_error(&text) {
            Some((code, message)) => format!("{code}: {message}"),
            None => answer.body_excerpt(),
        };
        return Err(format!("STS {action} answered {}: {why}", answer.status));
    }
    parse_credentials(&text).map_err(|why| format!("STS {action}: {why}"))
}

/// The text of each element on `paths` (element names from the root, namespaces ignored).
fn texts(xml: &str, paths: &[&[&str]]) -> Result<Vec<Option<String>>, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut found: Vec<Option<String>> = vec![None; paths.len()];
    let matching = |stack: &[String]| {
        paths
            .iter()
            .position(|p| p.len() == stack.len() && p.iter().zip(stack).all(|(a, b)| a == b))
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML: {e}"))?;
        match event {
            Event::Start(e) => {
                // Depth is bounded by the document, which is bounded by the response cap; an
                // answer this deep is not STS's.
                if stack.len() >= 16 {
                    return Err("XML nested too deeply".into());
                }
                stack.push(e.local_name().as_ref().to_string());
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Text(t) => {
                if let Some(i) = matching(&stack) {
                    found[i]
                        .get_or_insert_with(String::new)
                        .push_str(&t.xml10_content());
                }
            }
            Event::CData(c) => {
                if let Some(i) = matching(&stack) {
                    found[i]
                        .get_or_insert_with(String::new)
                        .push_str(&c.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(i) = matching(&stack) {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            let name = r.xml10_content();
                            quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or_else(|| format!("unknown XML entity &{name};"))?
                                .to_string()
                        }
                        Err(e) => return Err(format!("bad character reference: {e}")),
                    };
                    found[i].get_or_insert_with(String::new).push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(found)
}

/// The credentials in an `AssumeRole…Response` (`…Result/Credentials`).
pub fn parse_credentials(xml: &str) -> Result<Fetched, String> {
    let root = ["AssumeRoleResponse", "AssumeRoleWithWebIdentityResponse"];
    for response in root {
        let result = response.replace("Response", "Result");
        let path = |leaf: &'static str| -> Vec<&str> {
            vec![response, result.as_str(), "Credentials", leaf]
        };
        let (a, s, t, e) = (
            path("AccessKeyId"),
            path("SecretAccessKey"),
            path("SessionToken"),
            path("Expiration"),
        );
        let found = texts(xml, &[&a, &s, &t, &e])?;
        let [key, secret, token, expiration] = <[Option<String>; 4]>::try_from(found)
            .map_err(|_| "internal: wrong number of fields".to_string())?;
        let (Some(key), Some(secret)) = (key, secret) else {
            continue;
        };
        let (key, secret) = (key.trim(), secret.trim());
        if key.is_empty() || secret.is_empty() {
            return Err("an empty AccessKeyId or SecretAccessKey in the answer".into());
        }
        let expires = match expiration {
            Some(e) => Some(
                parse_iso8601(e.trim())
                    .ok_or_else(|| format!("Expiration {e:?} is not an ISO 8601 UTC time"))?,
            ),
            None => None,
        };
        return Ok(Fetched {
            credentials: Credentials {
                access_key_id: key.to_string(),
                secret_access_key: Secret(secret.to_string()),
                session_token: token.map(|t| Secret(t.trim().to_string())),
            },
            expires,
        });
    }
    Err("no Credentials (AccessKeyId, SecretAccessKey) in the answer".into())
}

/// `(Code, Message)` of an `ErrorResponse` (STS's `ErrorResponse/Error`, or the
/// `ErrorResponse/Errors/Error` some emulators write), each on one line.
pub fn parse_error(xml: &str) -> Option<(String, String)> {
    let found = texts(
        xml,
        &[
            &["ErrorResponse", "Error", "Code"],
            &["ErrorResponse", "Error", "Message"],
            &["ErrorResponse", "Errors", "Error", "Code"],
            &["ErrorResponse", "Errors", "Error", "Message"],
        ],
    )
    .ok()?;
    let (code, message) = match &found[0] {
        Some(_) => (&found[0], &found[1]),
        None => (&found[2], &found[3]),
    };
    let one_line = |s: &str| s.replace(|c: char| c.is_control(), " ");
    Some((
        one_line(code.as_deref()?),
        one_line(message.as_deref().unwrap_or_default()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_assume_role_answers() {
        let xml = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity>Alice</SourceIdentity>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/demo/TestAR</Arn></AssumedRoleUser>
    <Credentials>
      <SessionToken>IQoJb3JpZ2luX2VjEP&amp;/tok=</SessionToken>
      <SecretAccessKey><![CDATA[wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY]]></SecretAccessKey>
      <Expiration>2019-11-09T13:34:41Z</Expiration>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;
        let f = parse_credentials(xml).expect("parsed");
        assert_eq!(f.credentials.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(
            f.credentials.secret_access_key.0,
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
        );
        assert_eq!(
            f.credentials.session_token.map(|t| t.0).as_deref(),
            Some("IQoJb3JpZ2luX2VjEP&/tok=")
        );
        assert_eq!(f.expires, parse_iso8601("2019-11-09T13:34:41Z"));
        let web = xml
            .replace("AssumeRoleResponse", "AssumeRoleWithWebIdentityResponse")
            .replace("AssumeRoleResult", "AssumeRoleWithWebIdentityResult");
        assert_eq!(
            parse_credentials(&web)
                .expect("parsed")
                .credentials
                .access_key_id,
            "ASIAIOSFODNN7EXAMPLE"
        );
    }

    #[test]
    fn refuses_what_is_not_an_answer() {
        // Keys outside the Credentials element do not count.
        let elsewhere = "<AssumeRoleResponse><AssumeRoleResult><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey></AssumeRoleResult></AssumeRoleResponse>";
        assert!(parse_credentials(elsewhere).is_err());
        assert!(parse_credentials("<AssumeRoleResponse><unclosed>").is_err());
        assert!(parse_credentials("not xml at all").is_err());
        let bad_time = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey><Expiration>tomorrow</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>";
        assert!(parse_credentials(bad_time).is_err_and(|e| e.contains("tomorrow")));
        let blank = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId> </AccessKeyId><SecretAccessKey>S</SecretAccessKey></Credentials></AssumeRoleResult></AssumeRoleResponse>";
        assert!(parse_credentials(blank).is_err_and(|e| e.contains("empty")));
        let deep = "<a>".repeat(100_000);
        assert!(parse_credentials(&deep).is_err());
    }

    #[test]
    fn reads_error_answers() {
        let xml = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::1:user/x is not authorized to perform: sts:AssumeRole on &lt;role&gt;</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;
        assert_eq!(
            parse_error(xml),
            Some((
                "AccessDenied".into(),
                "User: arn:aws:iam::1:user/x is not authorized to perform: sts:AssumeRole on <role>"
                    .into()
            ))
        );
        let nested = "<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>not\nallowed</Message></Error></Errors></ErrorResponse>";
        assert_eq!(
            parse_error(nested),
            Some(("AccessDenied".into(), "not allowed".into()))
        );
    }

    #[test]
    fn picks_endpoints_as_the_sdks_do() {
        let none = |_: &str| None;
        assert_eq!(
            endpoint_for(&none, Some("eu-west-1"))
                .expect("ok")
                .endpoint
                .host,
            "sts.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            regional(Some("cn-north-1")).endpoint.host,
            "sts.cn-north-1.amazonaws.com.cn"
        );
        let global = regional(None);
        assert_eq!(
            (global.endpoint.host.as_str(), global.region.as_str()),
            ("sts.amazonaws.com", "us-east-1")
        );
        let env = |k: &str| match k {
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:1".to_string()),
            "AWS_ENDPOINT_URL_STS" => Some("http://127.0.0.1:2".to_string()),
            _ => None,
        };
        let e = endpoint_for(&env, Some("eu-west-1")).expect("ok");
        assert_eq!((e.endpoint.port, e.region.as_str()), (2, "eu-west-1"));
        let bad = |k: &str| (k == "AWS_ENDPOINT_URL_STS").then(|| "ftp://x".to_string());
        assert!(endpoint_for(&bad, None).is_err_and(|(var, _)| var == "AWS_ENDPOINT_URL_STS"));
        let mut form_body = String::new();
        form_value(&mut form_body, "a b/c+d=é");
        assert_eq!(form_body, "a%20b%2Fc%2Bd%3D%C3%A9");
    }
}

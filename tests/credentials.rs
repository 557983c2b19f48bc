//! Credentials and region from the AWS shared files (`AWS_PROFILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`), for plugins without their own keys; the
//! mock Lambda checks every signature with the keys it expects.

mod support;

/// How the instance metadata provider is named where the chain ended at it: what the chain
/// looked for before it.
const END_OF_CHAIN: &str = ", the end of the chain (nothing configured in the environment, the shared files, web identity or container credentials)";

use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn a_named_profile_signs_the_invokes() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("profile");
        let credentials = dir.path.join("credentials");
        let config = dir.path.join("config");
        std::fs::write(
            &credentials,
            format!("[default]\naws_access_key_id = AKIDNOTTHISONE\naws_secret_access_key = nope\n\n[ci]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"),
        )
        .expect("write");
        std::fs::write(&config, "[profile ci]\nregion = us-east-1\n").expect("write");
        let cfg = format!(
            "_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [/x]\nplugins:\n- {{name: aws-lambda, config: {{function_name: echo, host: localhost, port: {}}}}}\n",
            mock.addr.port()
        );
        let gw = Gateway::start_with(
            &mock,
            GatewayOptions {
                config: &cfg,
                driver,
                env: vec![
                    ("AWS_PROFILE", "ci".into()),
                    (
                        "AWS_SHARED_CREDENTIALS_FILE",
                        credentials.display().to_string(),
                    ),
                    ("AWS_CONFIG_FILE", config.display().to_string()),
                ],
                args: vec![],
            },
        );
        let r = gw.send(&get("/x?from=profile"));
        assert_eq!(
            (r.status, r.json()),
            (200, json!({"from": "profile"})),
            "{}",
            gw.logs()
        );
        assert_eq!(mock.assert_all_signatures_valid(), 1);
        assert!(mock
            .last()
            .header("authorization")
            .is_some_and(|a| a.contains(ACCESS_KEY)));
    }
}

#[test]
fn a_profile_that_cannot_be_used_is_refused_at_start() {
    let dir = TempDir::new("bad-profile");
    let credentials = dir.path.join("credentials");
    std::fs::write(
        &credentials,
        "[sso]\nsso_session = corp\n[loop]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = loop2\n[loop2]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = loop\n",
    )
    .expect("write");
    let file = dir.path.join("kong.yml");
    std::fs::write(&file, "_format_version: \"3.0\"\n").expect("write");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-gateway"));
    cmd.arg("check").arg(&file);
    clear_aws_env(&mut cmd);
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_PROFILE", "sso");
    let out = cmd.output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "AWS_PROFILE: profile \"sso\" gets its credentials through `sso_session` (IAM Identity Center), which this version of lambda-gateway does not support: give it static keys, a role, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY\n"
    );
    cmd.env("AWS_PROFILE", "loop");
    let out = cmd.output().expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "AWS_PROFILE: profile \"loop\": source_profile loop or chain deeper than 8 (loop -> loop2)\n"
    );
    cmd.env("AWS_PROFILE", "nowhere");
    let out = cmd.output().expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "AWS_PROFILE: profile \"nowhere\" is in neither the shared credentials nor the config file\n"
    );
}

/// A config whose one plugin (route `/x`, function `echo` at the mock) has no keys of its own;
/// `extra` adds plugin fields.
fn keyless(mock: &MockLambda, extra: &str) -> String {
    format!(
        "_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [/x]\nplugins:\n- {{name: aws-lambda, config: {{function_name: echo, host: localhost, port: {}{extra}}}}}\n",
        mock.addr.port()
    )
}

fn start(mock: &MockLambda, config: &str, driver: Driver, env: Vec<(&str, String)>) -> Gateway {
    Gateway::start_with(
        mock,
        GatewayOptions {
            config,
            driver,
            env,
            args: vec![],
        },
    )
}

/// The access key an invoke was signed with.
fn signed_by(r: &support::Recorded) -> String {
    let auth = r.header("authorization").expect("signed");
    let credential = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .expect("a Credential");
    credential.to_string()
}

fn assert_echo(gw: &Gateway, query: &str) {
    let r = gw.send(&get(&format!("/x?q={query}")));
    assert_eq!(
        (r.status, r.json()),
        (200, json!({ "q": query })),
        "{}",
        gw.logs()
    );
}

#[test]
fn web_identity_signs_with_the_role_it_assumes() {
    for driver in DRIVERS {
        let (mock, sts) = (MockLambda::start(), support::aws::MockSts::start());
        let dir = TempDir::new("web-identity");
        let token_file = dir.path.join("token");
        std::fs::write(&token_file, "eyJhbGciOi.web.token\n").expect("write");
        let gw = start(
            &mock,
            &keyless(&mock, ", aws_region: us-east-1"),
            driver,
            vec![
                (
                    "AWS_WEB_IDENTITY_TOKEN_FILE",
                    token_file.display().to_string(),
                ),
                ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod".into()),
                ("AWS_ROLE_SESSION_NAME", "pod-7".into()),
                ("AWS_ENDPOINT_URL_STS", sts.server.url()),
            ],
        );
        assert_echo(&gw, "one");
        assert_echo(&gw, "two");
        let calls = sts.calls();
        assert_eq!(calls.len(), 1, "fetched once, ahead of use: {calls:?}");
        assert_eq!(calls[0]["Action"], "AssumeRoleWithWebIdentity");
        assert_eq!(calls[0]["WebIdentityToken"], "eyJhbGciOi.web.token");
        assert_eq!(calls[0]["RoleArn"], "arn:aws:iam::123456789012:role/pod");
        assert_eq!(calls[0]["RoleSessionName"], "pod-7");
        let issued = &sts.behaviour.issued.lock().expect("lock")[0];
        let last = mock.last();
        assert_eq!(signed_by(&last), issued.key);
        assert_eq!(
            last.header("x-amz-security-token"),
            Some(issued.token.as_str())
        );
        assert_eq!(mock.assert_all_signatures_valid(), 2);
    }
}

#[test]
fn container_credentials_use_the_token_file() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let ecs = support::aws::MockContainer::start("ecs-token-123");
        let dir = TempDir::new("container");
        let token_file = dir.path.join("token");
        std::fs::write(&token_file, "ecs-token-123\n").expect("write");
        let gw = start(
            &mock,
            &keyless(&mock, ", aws_region: us-east-1"),
            driver,
            vec![
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    format!("{}/creds", ecs.server.url()),
                ),
                (
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                    token_file.display().to_string(),
                ),
                // The file wins over the variable.
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong".into()),
            ],
        );
        assert_echo(&gw, "ecs");
        assert_eq!(signed_by(&mock.last()), ecs.behaviour.keys()[0]);
        assert_eq!(mock.assert_all_signatures_valid(), 1);
    }
}

#[test]
fn instance_metadata_speaks_v2_unless_told_v1() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let imds = support::aws::MockImds::start("edge-role", false);
        let env = || {
            vec![
                ("AWS_EC2_METADATA_DISABLED", "false".to_string()),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url()),
            ]
        };
        // No region anywhere: the instance's placement gives it.
        let gw = start(&mock, &keyless(&mock, ""), driver, env());
        assert_echo(&gw, "imds");
        let last = mock.last();
        assert_eq!(signed_by(&last), imds.behaviour.keys()[0]);
        assert!(
            last.header("authorization")
                .is_some_and(|a| a.contains("/eu-central-1/lambda/aws4_request")),
            "{last:?}"
        );
        let seen: Vec<String> = imds
            .server
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.target))
            .collect();
        assert_eq!(seen[0], "PUT /latest/api/token", "{seen:?}");
        assert!(imds
            .server
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .all(|r| r.header("x-aws-ec2-metadata-token").is_some()));
        drop(gw);

        // v1 on an instance that requires v2: refused, and the log says by whom.
        let gw = start(
            &mock,
            &keyless(
                &mock,
                ", aws_region: us-east-1, aws_imds_protocol_version: v1",
            ),
            driver,
            env(),
        );
        let r = gw.send(&get("/x"));
        assert_eq!(r.status, 500, "{}", gw.logs());
        let provider = format!(
            "instance metadata (IMDSv1 at {}){END_OF_CHAIN}",
            imds.server.addr
        );
        assert!(
            gw.logged(&format!(
                "credentials from {provider} failed (attempt 1): GET /latest/meta-data/iam/security-credentials/ answered 401"
            )),
            "{}",
            gw.logs()
        );
        assert!(gw.logged(&format!(
            "status=500 cause=\"no valid credentials: {provider} failed: GET"
        )));
        drop(gw);

        // v1 where allowed: no token asked for.
        let v1 = support::aws::MockImds::start("edge-role", true);
        let gw = start(
            &mock,
            &keyless(
                &mock,
                ", aws_region: us-east-1, aws_imds_protocol_version: v1",
            ),
            driver,
            vec![
                ("AWS_EC2_METADATA_DISABLED", "false".to_string()),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT", v1.server.url()),
            ],
        );
        assert_echo(&gw, "v1");
        assert!(v1.server.requests().iter().all(|r| r.method == "GET"));
        mock.assert_all_signatures_valid();
    }
}

#[test]
fn aws_assume_role_arn_signs_with_the_assumed_role() {
    for driver in DRIVERS {
        let (mock, sts) = (MockLambda::start(), support::aws::MockSts::start());
        let role = "arn:aws:iam::123456789012:role/invoker";
        let cfg = format!(
            "_format_version: \"3.0\"\nroutes:\n- name: r\n  paths: [/x]\n  plugins:\n  - {{name: aws-lambda, config: {{function_name: echo, host: localhost, port: {port}, aws_region: us-east-1, aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_assume_role_arn: \"{role}\", aws_sts_endpoint_url: \"{sts}\"}}}}\n- name: other\n  paths: [/other]\n  plugins:\n  - {{name: aws-lambda, config: {{function_name: echo, host: localhost, port: {port}, aws_region: us-east-1, aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_assume_role_arn: \"{role}\", aws_role_session_name: other-session, aws_sts_endpoint_url: \"{sts}\"}}}}\n",
            port = mock.addr.port(),
            sts = sts.server.url()
        );
        let gw = start(&mock, &cfg, driver, vec![]);
        assert_echo(&gw, "assumed");
        let r = gw.send(&get("/other?q=1"));
        assert_eq!(r.status, 200, "{}", gw.logs());
        // One STS session per (base keys, role, session name); each signed with the base keys
        // (the mock STS checked the signature with aws-sigv4).
        let calls = sts.calls();
        let mut sessions: Vec<&str> = calls
            .iter()
            .map(|c| c["RoleSessionName"].as_str())
            .collect();
        sessions.sort();
        assert_eq!(sessions, ["kong", "other-session"], "{calls:?}");
        assert!(calls
            .iter()
            .all(|c| c["Action"] == "AssumeRole" && c["RoleArn"] == role));
        for req in sts.server.requests() {
            assert!(req
                .header("authorization")
                .is_some_and(|a| a.contains(&format!("Credential={ACCESS_KEY}/"))
                    && a.contains("/us-east-1/sts/aws4_request")));
        }
        let keys = sts.behaviour.keys();
        let used: Vec<String> = mock.requests().iter().map(signed_by).collect();
        assert_eq!(used.len(), 2);
        assert!(used.iter().all(|k| keys.contains(k)), "{used:?} {keys:?}");
        assert_ne!(used[0], used[1]);
        mock.assert_all_signatures_valid();
    }
}

#[test]
fn a_profile_assumes_its_role_with_its_source_profile() {
    let (mock, sts) = (MockLambda::start(), support::aws::MockSts::start());
    let dir = TempDir::new("profile-role");
    let config = dir.path.join("config");
    std::fs::write(
        &config,
        format!("[profile base]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n\n[profile app]\nrole_arn = arn:aws:iam::123456789012:role/app\nsource_profile = base\nrole_session_name = laptop\nexternal_id = shared-secret-id\nregion = us-east-1\n"),
    )
    .expect("write");
    let gw = start(
        &mock,
        &keyless(&mock, ""),
        Driver::IoUring,
        vec![
            ("AWS_PROFILE", "app".into()),
            ("AWS_CONFIG_FILE", config.display().to_string()),
            ("AWS_ENDPOINT_URL_STS", sts.server.url()),
        ],
    );
    assert_echo(&gw, "profile-role");
    let calls = sts.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["RoleArn"], "arn:aws:iam::123456789012:role/app");
    assert_eq!(calls[0]["RoleSessionName"], "laptop");
    assert_eq!(calls[0]["ExternalId"], "shared-secret-id");
    assert_eq!(signed_by(&mock.last()), sts.behaviour.keys()[0]);
    mock.assert_all_signatures_valid();
}

#[test]
fn the_chain_takes_the_first_provider_configured() {
    let mock = MockLambda::start();
    let sts = support::aws::MockSts::start();
    let ecs = support::aws::MockContainer::start("t");
    let imds = support::aws::MockImds::start("role", false);
    let dir = TempDir::new("chain");
    let token_file = dir.path.join("token");
    std::fs::write(&token_file, "jwt").expect("write");
    let web_identity = vec![
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/pod".to_string(),
        ),
        ("AWS_ENDPOINT_URL_STS", sts.server.url()),
    ];
    let rest = vec![
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/creds", ecs.server.url()),
        ),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "t".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "false".to_string()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url()),
    ];
    let environment = vec![
        ("AWS_ACCESS_KEY_ID", ENV_ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", ENV_SECRET_KEY.to_string()),
        ("AWS_SESSION_TOKEN", ENV_SESSION_TOKEN.to_string()),
    ];
    let cfg = keyless(&mock, ", aws_region: us-east-1");
    let counts = || {
        (
            sts.server.requests().len(),
            ecs.server.requests().len(),
            imds.server.requests().len(),
        )
    };
    // Environment first: nothing fetched.
    let all: Vec<_> = [environment, web_identity.clone(), rest.clone()].concat();
    let gw = start(&mock, &cfg, Driver::IoUring, all);
    assert_echo(&gw, "env");
    assert_eq!(signed_by(&mock.last()), ENV_ACCESS_KEY);
    assert_eq!(counts(), (0, 0, 0));
    drop(gw);
    // Then web identity, before container and instance.
    let gw = start(
        &mock,
        &cfg,
        Driver::IoUring,
        [web_identity, rest.clone()].concat(),
    );
    assert_echo(&gw, "web");
    assert_eq!(counts(), (1, 0, 0));
    drop(gw);
    // Then the container, before the instance.
    let gw = start(&mock, &cfg, Driver::IoUring, rest.clone());
    assert_echo(&gw, "ecs");
    assert_eq!(counts(), (1, 1, 0));
    drop(gw);
    let gw = start(&mock, &cfg, Driver::IoUring, rest[2..].to_vec());
    assert_echo(&gw, "imds");
    assert_eq!(counts().0 + counts().1, 2);
    assert!(counts().2 >= 3, "token, role, credentials");
    mock.assert_all_signatures_valid();
}

/// Sends requests from `clients` threads for `for_how_long`; returns every (status, latency).
fn load(gw: &Gateway, clients: usize, for_how_long: Duration) -> Vec<(u16, Duration)> {
    let until = Instant::now() + for_how_long;
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let addr = gw.addr;
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut seen = Vec::new();
                let mut n = 0;
                while Instant::now() < until {
                    let started = Instant::now();
                    let r = client.request(get(&format!("/x?c={i}&n={n}")).as_bytes());
                    seen.push((r.status, started.elapsed()));
                    n += 1;
                }
                seen
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("client"))
        .collect()
}

/// A gateway getting web identity credentials from `sts`, and the directory of its token
/// file (read again at every refresh, so kept as long as the gateway).
fn sts_gateway(
    mock: &MockLambda,
    sts: &support::aws::MockSts,
    driver: Driver,
) -> (Gateway, TempDir) {
    let dir = TempDir::new("rotate");
    let token_file = dir.path.join("token");
    std::fs::write(&token_file, "jwt").expect("write");
    let gw = start(
        mock,
        &keyless(mock, ", aws_region: us-east-1"),
        driver,
        vec![
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod".into()),
            ("AWS_ENDPOINT_URL_STS", sts.server.url()),
        ],
    );
    (gw, dir)
}

#[test]
fn credentials_rotate_under_load_without_a_failed_request() {
    for driver in DRIVERS {
        let (mock, sts) = (MockLambda::start(), support::aws::MockSts::start());
        // Five minutes and two seconds: each set is refreshed about two seconds after issue.
        *sts.behaviour.lifetime.lock().expect("lock") = Duration::from_secs(302);
        let (gw, _token) = sts_gateway(&mock, &sts, driver);
        let results = load(&gw, 4, Duration::from_secs(6));
        let failed: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
        assert!(failed.is_empty(), "{failed:?}\n{}", gw.logs());
        let mut used: Vec<String> = mock.requests().iter().map(signed_by).collect();
        used.dedup();
        assert!(
            used.len() >= 3,
            "{driver:?}: at least two rotations, signed by {used:?} ({} requests)",
            results.len()
        );
        assert_eq!(mock.assert_all_signatures_valid(), results.len());
        eprintln!(
            "{driver:?}: {} requests, none failed, {} credential sets used",
            results.len(),
            used.len()
        );
    }
}

#[test]
fn a_slow_sts_never_holds_up_a_request_once_credentials_exist() {
    let (mock, sts) = (MockLambda::start(), support::aws::MockSts::start());
    *sts.behaviour.lifetime.lock().expect("lock") = Duration::from_secs(301);
    // Every refresh takes three seconds.
    *sts.behaviour.later_delay.lock().expect("lock") = Duration::from_secs(3);
    let (gw, _token) = sts_gateway(&mock, &sts, Driver::IoUring);
    assert_echo(&gw, "first");
    let results = load(&gw, 2, Duration::from_secs(4));
    assert!(
        sts.calls().len() >= 2,
        "a refresh ran during the load: {:?}",
        sts.calls()
    );
    let slowest = results.iter().map(|r| r.1).max().expect("requests");
    assert!(results.iter().all(|r| r.0 == 200), "{}", gw.logs());
    assert!(
        slowest < Duration::from_millis(500),
        "a request waited {slowest:?} while STS took 3 s"
    );
    eprintln!(
        "{} requests during a 3 s refresh, slowest {slowest:?}",
        results.len()
    );
}

#[test]
fn a_failing_provider_is_retried_and_recovers() {
    let mock = MockLambda::start();
    let imds = support::aws::MockImds::start("edge-role", false);
    imds.behaviour
        .failures_left
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let gw = start(
        &mock,
        &keyless(&mock, ", aws_region: us-east-1"),
        Driver::Epoll,
        vec![
            ("AWS_EC2_METADATA_DISABLED", "false".to_string()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url()),
        ],
    );
    let provider = format!(
        "instance metadata (IMDSv2 at {}){END_OF_CHAIN}",
        imds.server.addr
    );
    assert!(
        gw.logged(&format!(
            "credentials from {provider} failed (attempt 1): GET /latest/meta-data/iam/security-credentials/edge-role answered 500: mock failure; requests that need them answer 500; retrying in 1000ms"
        )),
        "{}",
        gw.logs()
    );
    let r = gw.send(&get("/x"));
    assert_eq!(r.status, 500);
    assert!(gw.logged(&format!(
        "status=500 cause=\"no valid credentials: {provider} failed: GET /latest/meta-data/iam/security-credentials/edge-role answered 500: mock failure\" side=internal"
    )));
    // Retried after 1 s, then about 2 s: served again without a restart.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let r = gw.send(&get("/x?q=back"));
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered:\n{}", gw.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gw.logged("failed (attempt 2)"));
    assert!(!gw
        .logs()
        .contains(&imds.behaviour.issued.lock().expect("lock")[0].secret));
    mock.assert_all_signatures_valid();
}

#[test]
fn check_warns_about_credentials_it_cannot_get() {
    let imds = support::aws::MockImds::start("edge-role", false);
    imds.behaviour
        .failures_left
        .store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    let dir = TempDir::new("check-credentials");
    let file = dir.path.join("kong.yml");
    std::fs::write(
        &file,
        "_format_version: \"3.0\"\nroutes:\n- {name: r, paths: [/r]}\nplugins:\n- {name: aws-lambda, config: {function_name: f, aws_region: us-east-1}}\n",
    )
    .expect("write");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-gateway"));
    cmd.arg("check").arg(&file);
    clear_aws_env(&mut cmd);
    cmd.env("AWS_EC2_METADATA_DISABLED", "false")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.server.url());
    let out = cmd.output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    // One report, on stdout: the refresher's own log line (a timestamped WARN with its retry
    // plan) is not repeated on stderr.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "warning: route r: credentials from instance metadata (IMDSv2 at {}){END_OF_CHAIN} cannot be obtained: GET /latest/meta-data/iam/security-credentials/edge-role answered 500: mock failure\n{}: OK (0 services, 1 routes, 1 plugins, 0 consumers)\n",
            imds.server.addr,
            file.display()
        )
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn invokes_and_assume_role_go_through_the_forward_proxy() {
    for driver in DRIVERS {
        let (mock, sts) = (MockLambda::start(), support::aws::MockSts::start());
        // user:pa ss@word, percent-encoded in the URL.
        let proxy = support::aws::MockProxy::start(Some("Basic dXNlcjpwYSBzc0B3b3Jk"));
        let keys =
            format!(", aws_region: us-east-1, aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\"");
        let via = |auth: &str| format!("{keys}, proxy_url: \"http://{auth}@{}\"", proxy.addr);
        let gw = start(
            &mock,
            &keyless(&mock, &via("user:pa%20ss%40word")),
            driver,
            vec![],
        );
        // One client connection, so both requests are served by the same worker and its pool.
        let mut client = gw.connect();
        for q in ["tunnelled", "again"] {
            let r = client.request(get(&format!("/x?q={q}")).as_bytes());
            assert_eq!(
                (r.status, r.json()),
                (200, json!({ "q": q })),
                "{}",
                gw.logs()
            );
        }
        assert_eq!(
            proxy.tunnels.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the pooled tunnel is reused"
        );
        assert_eq!(
            proxy.targets.lock().expect("lock").as_slice(),
            [format!("localhost:{}", mock.addr.port())]
        );
        drop(gw);

        // The role is assumed through the proxy too.
        let role = format!(
            "{}, aws_assume_role_arn: \"arn:aws:iam::123456789012:role/r\", aws_sts_endpoint_url: \"{}\"",
            via("user:pa%20ss%40word"),
            sts.server.url()
        );
        let gw = start(&mock, &keyless(&mock, &role), driver, vec![]);
        assert_echo(&gw, "assumed");
        assert!(proxy
            .targets
            .lock()
            .expect("lock")
            .contains(&sts.server.addr.to_string()));
        assert_eq!(signed_by(&mock.last()), sts.behaviour.keys()[0]);
        drop(gw);

        // A proxy refusing the credentials: 502, and the log says why.
        let gw = start(&mock, &keyless(&mock, &via("user:wrong")), driver, vec![]);
        let r = gw.send(&get("/x"));
        assert_eq!(r.status, 502, "{}", gw.logs());
        assert!(
            gw.logged(&format!(
                "cause=\"forward proxy {} refused the tunnel to localhost:{}: HTTP/1.1 407 Proxy Authentication Required (its credentials in proxy_url are wrong)\" side=upstream",
                proxy.addr,
                mock.addr.port()
            )),
            "{}",
            gw.logs()
        );
        assert!(!gw.logs().contains("wrong@") && !gw.logs().contains("dXNlcjp3cm9uZw"));
        drop(gw);

        // NO_PROXY: straight to the endpoint.
        let tunnels = proxy.tunnels.load(std::sync::atomic::Ordering::SeqCst);
        let gw = start(
            &mock,
            &keyless(&mock, &via("user:wrong")),
            driver,
            vec![("NO_PROXY", "example.com,localhost".into())],
        );
        assert_echo(&gw, "direct");
        assert_eq!(
            proxy.tunnels.load(std::sync::atomic::Ordering::SeqCst),
            tunnels
        );
        mock.assert_all_signatures_valid();
    }
}

/// A moto server on a free loopback port, stopped on drop.
struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        let child = python::python()
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python");
        let mut moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto exited ({status})");
            }
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn moto_lets_the_assumed_role_invoke_with_iam_checks_on() {
    let moto = Moto::start();
    let url = format!("http://127.0.0.1:{}", moto.port);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/moto_iam.py");
    let out = python::python()
        .args([script, &url])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "moto setup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let setup: serde_json::Value = serde_json::from_slice(&out.stdout).expect("setup JSON");
    let plugin = |role: &str| {
        format!(
            "{{name: aws-lambda, config: {{function_name: moto-fn, aws_region: us-east-1, host: 127.0.0.1, port: {}, disable_https: true, aws_key: \"{}\", aws_secret: \"{}\"{role}, aws_sts_endpoint_url: \"{url}\"}}}}",
            moto.port, setup["key"].as_str().expect("key"), setup["secret"].as_str().expect("secret")
        )
    };
    let cfg = format!(
        "_format_version: \"3.0\"\nroutes:\n- name: assumed\n  paths: [/assumed]\n  plugins: [{}]\n- name: user\n  paths: [/user]\n  plugins: [{}]\n- name: unreachable\n  paths: [/unreachable]\n  plugins: [{}]\n",
        plugin(&format!(", aws_assume_role_arn: \"{}\"", setup["invoker"].as_str().expect("arn"))),
        plugin(""),
        plugin(&format!(", aws_assume_role_arn: \"{}\"", setup["unreachable"].as_str().expect("arn"))),
    );
    let mock = MockLambda::start();
    for driver in DRIVERS {
        let gw = start(&mock, &cfg, driver, vec![]);
        // The role, assumed through moto's STS with the user's signed request, may invoke.
        let r = gw.send(&get("/assumed?q=moto"));
        assert_eq!(
            (r.status, r.json()),
            (200, json!({"q": "moto"})),
            "{}",
            gw.logs()
        );
        // The user itself may not: moto checks IAM, so the role above really was used.
        let r = gw.send(&get("/user?q=moto"));
        assert_eq!(r.status, 502, "{}", gw.logs());
        // (moto answers with XML and no x-amzn-ErrorType, so the log has the status only.)
        assert!(
            gw.logged("route=user function=moto-fn status=502 cause=\"HTTP 403\""),
            "{}",
            gw.logs()
        );
        // A role that does not trust the user: STS refuses, and the log says so.
        let r = gw.send(&get("/unreachable"));
        assert_eq!(r.status, 500);
        assert!(
            gw.logged("STS AssumeRole answered 403: AccessDenied: User: arn:aws:iam::123456789012:user/gateway is not authorized to perform: sts:AssumeRole;"),
            "{}",
            gw.logs()
        );
    }
}

#[test]
fn a_profile_credential_process_signs_the_invokes() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("process");
        let config = dir.path.join("config");
        let printed = format!(
            r#"{{"Version": 1, "AccessKeyId": "{ACCESS_KEY}", "SecretAccessKey": "{SECRET_KEY}", "SessionToken": "from-process"}}"#
        );
        std::fs::write(
            &config,
            format!(
                "[default]\nregion = us-east-1\ncredential_process = printf '%s' '{printed}'\n"
            ),
        )
        .expect("write");
        let gw = start(
            &mock,
            &keyless(&mock, ""),
            driver,
            vec![("AWS_CONFIG_FILE", config.display().to_string())],
        );
        assert_echo(&gw, "process");
        let last = mock.last();
        assert_eq!(signed_by(&last), ACCESS_KEY);
        assert_eq!(last.header("x-amz-security-token"), Some("from-process"));
        mock.assert_all_signatures_valid();
    }
}

#[test]
fn a_failing_refresh_keeps_the_credentials_that_are_still_valid() {
    let (mock, sts) = (MockLambda::start(), support::aws::MockSts::start());
    *sts.behaviour.lifetime.lock().expect("lock") = Duration::from_secs(302);
    let (gw, _token) = sts_gateway(&mock, &sts, Driver::Epoll);
    assert_echo(&gw, "first");
    // Every refresh from now on fails; the first set is valid for five more minutes.
    sts.behaviour
        .failures_left
        .store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    let results = load(&gw, 2, Duration::from_secs(4));
    assert!(
        gw.logged("failed (attempt 2): STS AssumeRoleWithWebIdentity answered 500: mock failure; the previous credentials stay in use until they expire"),
        "{}",
        gw.logs()
    );
    assert!(results.iter().all(|r| r.0 == 200), "{}", gw.logs());
    let used: std::collections::HashSet<String> = mock.requests().iter().map(signed_by).collect();
    assert_eq!(used.len(), 1);
    mock.assert_all_signatures_valid();
}

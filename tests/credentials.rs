//! Credentials and region from the AWS shared files (`AWS_PROFILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`), for plugins without their own keys; the
//! mock Lambda checks every signature with the keys it expects.

mod support;

use serde_json::json;
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

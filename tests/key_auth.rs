//! `key-auth` and its credentials: keys in headers, query or body, Kong's 401 answers, the
//! consumer told to the function in Kong's `X-Consumer-*` headers, `hide_credentials`,
//! `anonymous`; credentials in the declarative file (nested in consumers) and through Kong's
//! Admin API examples (`/consumers/{c}/key-auth`). Both drivers.

mod support;

use serde_json::json;
use support::*;

fn config(mock: &MockLambda) -> String {
    format!(
        r#"_format_version: "3.0"
consumers:
- username: alice
  custom_id: a-1
  keyauth_credentials:
  - {{id: 2b5a4f74-8d6b-4d34-9a2d-5b1c0e7a3f01, key: secret-a}}
- username: guest
keyauth_credentials:
- {{consumer: alice, key: second-a}}
plugins:
- {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: "{SECRET_KEY}", aws_region: us-east-1, function_name: echo, host: localhost, port: {port}, forward_request_headers: true, forward_request_uri: true}}}}
routes:
- name: x
  paths: [/x]
  plugins: [{{name: key-auth}}]
- name: hidden
  paths: [/hidden]
  plugins: [{{name: key-auth, config: {{hide_credentials: true, key_names: [apikey, x-api-key]}}}}]
- name: anon
  paths: [/anon]
  plugins: [{{name: key-auth, config: {{anonymous: guest, realm: ours}}}}]
"#,
        port = mock.addr.port()
    )
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> String {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw
}

#[test]
fn key_auth_identifies_the_consumer_to_the_function() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let gw = Gateway::start(&mock, &config(&mock), driver);
        let r = gw.send(&get("/x"));
        assert_eq!(
            (r.status, r.text()),
            (
                401,
                r#"{"message":"No API key found in request"}"#.to_string()
            )
        );
        assert_eq!(r.header("www-authenticate"), Some(r#"Key realm="kong""#));
        let r = gw.send(&get_with("/x", &[("apikey", "wrong")]));
        assert_eq!(
            (r.status, r.text()),
            (
                401,
                r#"{"message":"Invalid authentication credentials"}"#.to_string()
            )
        );
        assert_eq!(r.header("www-authenticate"), None);
        let r = gw.send(&get_with(
            "/x",
            &[("apikey", "secret-a"), ("apikey", "second-a")],
        ));
        assert_eq!(
            (r.status, r.text()),
            (401, r#"{"message":"Duplicate API key found"}"#.to_string())
        );
        assert_eq!(
            mock.requests().len(),
            0,
            "refused requests never reach Lambda"
        );

        // The key in a header; a client's own X-Consumer-* headers are replaced.
        let r = gw.send(&get_with(
            "/x",
            &[("ApiKey", "secret-a"), ("X-Consumer-Username", "mallory")],
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        let seen = r.json()["request_headers"].clone();
        assert_eq!(seen["x-consumer-username"], "alice");
        assert_eq!(seen["x-consumer-custom-id"], "a-1");
        assert_eq!(
            seen["x-credential-identifier"],
            "2b5a4f74-8d6b-4d34-9a2d-5b1c0e7a3f01"
        );
        assert!(seen["x-consumer-id"]
            .as_str()
            .is_some_and(|id| id.len() == 36));
        assert_eq!(seen["apikey"], "secret-a", "not hidden unless asked");
        assert_eq!(seen.get("x-anonymous-consumer"), None);
        // In the query; a credential written at the top level works the same.
        let r = gw.send(&get("/x?apikey=second-a&keep=1"));
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json()["request_uri_args"],
            json!({"apikey": "second-a", "keep": "1"})
        );

        // hide_credentials: the function sees neither the header nor the argument.
        let r = gw.send(&get_with("/hidden?apikey=secret-a&keep=1", &[]));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["request_uri_args"], json!({"keep": "1"}));
        let r = gw.send(&get_with("/hidden", &[("x-api-key", "secret-a")]));
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["request_headers"].get("x-api-key"), None);

        // anonymous: no key is the guest, said so.
        let r = gw.send(&get("/anon"));
        assert_eq!(r.status, 200, "{}", r.text());
        let seen = r.json()["request_headers"].clone();
        assert_eq!(seen["x-consumer-username"], "guest");
        assert_eq!(seen["x-anonymous-consumer"], "true");
        assert_eq!(seen.get("x-credential-identifier"), None);
        let r = gw.send(&get_with("/anon", &[("apikey", "secret-a")]));
        assert_eq!(r.json()["request_headers"]["x-consumer-username"], "alice");
        mock.assert_all_signatures_valid();
    }
}

#[test]
fn kongs_key_auth_admin_examples_work() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("key-auth-admin");
        let gw = Gateway::start_admin_with(&mock, &one_route_config(&mock), driver, &dir);
        let path = gw.config_path.clone();
        let ok = |r: Response, status: u16| {
            assert_eq!(r.status, status, "{}", r.text());
            r.json()
        };
        ok(
            gw.admin_form(
                "POST",
                "/routes/r/plugins",
                "name=key-auth&config.key_names=apikey",
            ),
            201,
        );
        let asha = ok(gw.admin_form("POST", "/consumers", "username=asha"), 201);
        let cred = ok(
            gw.admin_form("POST", "/consumers/asha/key-auth", "key=asha-secret-key"),
            201,
        );
        assert_eq!(cred["key"], "asha-secret-key");
        assert_eq!(cred["consumer"]["id"], asha["id"]);
        assert_eq!(gw.send(&get("/r")).status, 401);
        assert_eq!(
            gw.send(&get_with("/r", &[("apikey", "asha-secret-key")]))
                .status,
            200
        );
        // A key made up by the gateway, kept in the file.
        let made = ok(gw.admin_form("POST", "/consumers/asha/key-auth", ""), 201);
        let key = made["key"].as_str().expect("key").to_string();
        assert_eq!(key.len(), 32);
        assert_eq!(gw.send(&get(&format!("/r?apikey={key}"))).status, 200);
        assert!(std::fs::read_to_string(&path).expect("read").contains(&key));
        // The same key twice: Kong's 409.
        let clash = gw.admin_form("POST", "/consumers/asha/key-auth", "key=asha-secret-key");
        assert_eq!(clash.status, 409, "{}", clash.text());
        let listed = ok(gw.admin_get("/consumers/asha/key-auth"), 200);
        assert_eq!(listed["data"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            ok(gw.admin_get("/key-auths"), 200)["data"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        // Deleting the credential, then the consumer (which takes its keys with it).
        let id = cred["id"].as_str().expect("id");
        assert_eq!(
            gw.admin(
                "DELETE",
                &format!("/consumers/asha/key-auth/{id}"),
                "",
                "",
                &[]
            )
            .status,
            204
        );
        assert_eq!(
            gw.send(&get_with("/r", &[("apikey", "asha-secret-key")]))
                .status,
            401
        );
        assert_eq!(
            gw.admin("DELETE", "/consumers/asha", "", "", &[]).status,
            204
        );
        assert_eq!(gw.send(&get(&format!("/r?apikey={key}"))).status, 401);
        assert_eq!(ok(gw.admin_get("/key-auths"), 200)["data"], json!([]));
    }
}

#[test]
fn consumer_scoped_plugins_apply_to_identified_consumers() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let lambda = |function: &str| {
            format!(
                "{{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: \"{SECRET_KEY}\", aws_region: us-east-1, function_name: {function}, host: localhost, port: {}}}}}",
                mock.addr.port()
            )
        };
        let cfg = format!(
            r#"_format_version: "3.0"
consumers:
- username: alice
  keyauth_credentials: [{{key: ka}}]
  plugins: [{alice_fn}]
- username: bob
  keyauth_credentials: [{{key: kb}}]
  plugins: [{{name: rate-limiting, config: {{hour: 1}}}}]
- username: carol
  keyauth_credentials: [{{key: kc}}]
routes:
- name: r
  paths: [/r]
  plugins: [{{name: key-auth}}, {route_fn}]
plugins:
- {{name: aws-lambda, consumer: carol, route: r, config: {{aws_key: {ACCESS_KEY}, aws_secret: "{SECRET_KEY}", aws_region: us-east-1, function_name: MyLambda, host: localhost, port: {port}, invocation_type: DryRun}}}}
"#,
            alice_fn = lambda("MyLambda"),
            route_fn = lambda("echo"),
            port = mock.addr.port()
        );
        let gw = Gateway::start(&mock, &cfg, driver);
        let as_key = |k: &str| gw.send(&get_with("/r?who=1", &[("apikey", k)]));
        // alice: her own aws-lambda plugin (consumer beats route in Kong's order).
        let r = as_key("ka");
        assert_eq!((r.status, r.json()), (200, json!({"response": "yes"})));
        // bob: the route's function, and his own rate limit.
        let r = as_key("kb");
        assert_eq!((r.status, r.json()), (200, json!({"who": "1"})));
        assert_eq!(r.header("ratelimit-limit"), Some("1"));
        assert_eq!(as_key("kb").status, 429);
        assert_eq!(as_key("ka").status, 200, "alice has no limit");
        // carol: consumer+route beats consumer alone and route alone.
        assert_eq!(as_key("kc").status, 204);
        // Nobody identified: the route's plugins only.
        assert_eq!(gw.send(&get("/r")).status, 401);
        mock.assert_all_signatures_valid();
    }
}

#[test]
fn acl_lets_groups_through_after_key_auth() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("acl");
        let path = dir.path.join("kong.yml");
        std::fs::write(
            &path,
            format!(
                r#"_format_version: "3.0"
consumers:
- {{username: alice, keyauth_credentials: [{{key: ka}}], acls: [{{group: admin}}, {{group: ops}}]}}
- {{username: bob, keyauth_credentials: [{{key: kb}}], acls: [{{group: dev}}]}}
- {{username: carol, keyauth_credentials: [{{key: kc}}]}}
plugins:
- {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: "{SECRET_KEY}", aws_region: us-east-1, function_name: echo, host: localhost, port: {}, forward_request_headers: true}}}}
routes:
- {{name: admin, paths: [/admin], plugins: [{{name: key-auth}}, {{name: acl, config: {{allow: [admin]}}}}]}}
- {{name: nodev, paths: [/nodev], plugins: [{{name: key-auth}}, {{name: acl, config: {{deny: [dev], hide_groups_header: true}}}}]}}
- {{name: open, paths: [/open], plugins: [{{name: acl, config: {{allow: [admin]}}}}]}}
"#,
                mock.addr.port()
            ),
        )
        .expect("write");
        let gw = Gateway::start_admin(
            &mock,
            AdminOptions {
                config_path: path,
                driver,
                env: vec![],
                args: vec![],
            },
        );
        let call = |path: &str, key: &str| gw.send(&get_with(path, &[("apikey", key)]));
        let r = call("/admin", "ka");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["request_headers"]["x-consumer-groups"],
            "admin, ops"
        );
        let r = call("/admin", "kb");
        assert_eq!(
            (r.status, r.text()),
            (
                403,
                r#"{"message":"You cannot consume this service"}"#.to_string()
            )
        );
        assert_eq!(call("/nodev", "kb").status, 403);
        let r = call("/nodev", "kc");
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["request_headers"].get("x-consumer-groups"), None);
        let r = gw.send(&get("/open"));
        assert_eq!(
            (r.status, r.text()),
            (401, r#"{"message":"Unauthorized"}"#.to_string())
        );
        // Kong's example: put bob in the admin group.
        let added = gw.admin_form("POST", "/consumers/bob/acls", "group=admin");
        assert_eq!(added.status, 201, "{}", added.text());
        assert_eq!(added.json()["group"], "admin");
        assert_eq!(call("/admin", "kb").status, 200);
        assert_eq!(
            gw.admin_get("/consumers/bob/acls").json()["data"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let bad = gw.admin_form("POST", "/plugins", "name=acl&config.allow=a&config.deny=b");
        assert_eq!(bad.status, 400, "{}", bad.text());
    }
}

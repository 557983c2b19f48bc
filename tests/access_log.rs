//! The access log (`--access-log`): one JSON object per request with Kong's `file-log` names,
//! no key or secret in it, and `SIGUSR1` reopening the file after logrotate moved it.

mod support;

use support::*;

#[test]
fn one_line_per_request_without_secrets_and_reopened_on_sigusr1() {
    for driver in DRIVERS {
        let mock = MockLambda::start();
        let dir = TempDir::new("access-log");
        let log = dir.path.join("access.log");
        let cfg = format!(
            r#"_format_version: "3.0"
consumers:
- {{username: alice, keyauth_credentials: [{{key: super-secret-key}}]}}
services:
- name: svc
  routes: [{{name: r, paths: [/r], plugins: [{{name: key-auth}}]}}]
  plugins:
  - {{name: aws-lambda, config: {{aws_key: {ACCESS_KEY}, aws_secret: "{SECRET_KEY}", aws_region: us-east-1, function_name: echo, host: localhost, port: {}}}}}
"#,
            mock.addr.port()
        );
        let gw = Gateway::start_with(
            &mock,
            GatewayOptions {
                config: &cfg,
                driver,
                env: vec![],
                args: vec!["--access-log".into(), log.display().to_string()],
            },
        );
        let sent_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let r = gw.send("GET /r?apikey=super-secret-key&x=1 HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer also-secret\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(gw.send(&get("/r")).status, 401);
        assert_eq!(gw.send(&get("/nowhere")).status, 404);
        let seen = json_lines(&log, 3);
        assert_eq!(seen.len(), 3, "{seen:?}");
        let ok = seen
            .iter()
            .find(|l| l["response"]["status"] == 200)
            .expect("the 200");
        assert_eq!(ok["request"]["method"], "GET");
        assert_eq!(ok["request"]["uri"], "/r");
        assert_eq!(ok["request"]["url"], "http://api.test/r");
        assert_eq!(ok["request"]["protocol"], "HTTP/1.1");
        assert_eq!(ok["route"]["name"], "r");
        assert_eq!(ok["service"]["name"], "svc");
        assert_eq!(ok["consumer"]["username"], "alice");
        assert_eq!(ok["client_ip"], "127.0.0.1");
        let l = &ok["latencies"];
        let (request, kong, proxy) = (
            l["request"].as_u64().expect("ms"),
            l["kong"].as_u64().expect("ms"),
            l["proxy"].as_u64().expect("ms"),
        );
        assert_eq!(request, kong + proxy);
        let started = ok["started_at"].as_u64().expect("ms");
        assert!(
            started + 1000 >= sent_at && started <= sent_at + 5000,
            "{started} vs {sent_at}"
        );
        assert!(seen
            .iter()
            .any(|l| l["response"]["status"] == 401 && l.get("consumer").is_none()));
        assert!(seen
            .iter()
            .any(|l| l["response"]["status"] == 404 && l.get("route").is_none()));
        let text = std::fs::read_to_string(&log).expect("read");
        assert!(
            !text.contains("super-secret-key") && !text.contains("also-secret"),
            "{text}"
        );

        // logrotate: move the file, SIGUSR1, and the next lines go to a new file.
        let rotated = dir.path.join("access.log.1");
        std::fs::rename(&log, &rotated).expect("rename");
        let _ = std::process::Command::new("kill")
            .arg("-USR1")
            .arg(gw.pid().to_string())
            .status();
        assert!(gw.logged("access log reopened"), "{}", gw.logs());
        assert_eq!(gw.send(&get("/nowhere?again=1")).status, 404);
        assert_eq!(json_lines(&log, 1).len(), 1);
        assert_eq!(json_lines(&rotated, 3).len(), 3);
    }
}

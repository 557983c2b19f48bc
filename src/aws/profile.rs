//! The AWS shared configuration files, as the SDKs read them: `~/.aws/credentials` and
//! `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`), the profile named by
//! `AWS_PROFILE` (else `default`), its static keys and its region.
//!
//! The format is the SDKs' INI dialect: `[name]` sections (`[profile name]` in the config
//! file, where `[default]` stays plain), `key = value` lines, `#` and `;` comments, and
//! indented lines that continue a sub-section (`s3 =` followed by `  max_concurrent_requests
//! = 10`), which no setting used here has. Keys from the credentials file win over the same
//! profile's keys in the config file, as in the SDKs.

use super::credentials::{Credentials, Secret};
use std::collections::HashMap;
use std::path::PathBuf;

/// Settings of one profile: key → value, keys lower-cased.
type Section = HashMap<String, String>;

/// The sections of a file by profile name.
fn parse(text: &str, config_file: bool) -> HashMap<String, Section> {
    let mut sections: HashMap<String, Section> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        // An indented line belongs to a sub-section of the key above it.
        if line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let name = header.split(']').next().unwrap_or_default().trim();
            current = if !config_file || name == "default" {
                Some(name.to_string())
            } else {
                // The config file names profiles `[profile x]`; other sections (`[sso-session
                // x]`, `[services x]`) are not profiles.
                name.strip_prefix("profile")
                    .filter(|rest| rest.starts_with([' ', '\t']))
                    .map(|rest| rest.trim().to_string())
            };
            if let Some(name) = &current {
                sections.entry(name.clone()).or_default();
            }
            continue;
        }
        let (Some(name), Some((key, value))) = (&current, line.split_once('=')) else {
            continue;
        };
        // A value may end with an inline comment after whitespace.
        let value = value
            .split(" #")
            .next()
            .unwrap_or_default()
            .split(" ;")
            .next()
            .unwrap_or_default()
            .trim();
        if let Some(section) = sections.get_mut(name) {
            section.insert(key.trim().to_ascii_lowercase(), value.to_string());
        }
    }
    sections
}

/// What the shared files say about one profile.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// Static credentials, when the profile has them.
    pub credentials: Option<Credentials>,
    /// `region`.
    pub region: Option<String>,
}

/// Reads the profile the environment names (through `get`), from the files it names or the
/// defaults under `$HOME/.aws`. A missing file is no profile; `Err` says what is wrong (a
/// profile named by `AWS_PROFILE` that no file has, keys given half, or a way of getting
/// credentials this build does not support).
pub fn load(get: &dyn Fn(&str) -> Option<String>) -> Result<Profile, String> {
    let set = |var: &str| get(var).filter(|v| !v.is_empty());
    let home = set("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        set(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let read = |path: Option<PathBuf>, config: bool| -> Result<HashMap<String, Section>, String> {
        let Some(path) = path else {
            return Ok(HashMap::new());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(parse(&text, config)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    };
    let credentials_file = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), false)?;
    let config_file = read(file("AWS_CONFIG_FILE", "config"), true)?;
    let named = set("AWS_PROFILE");
    let name = named.clone().unwrap_or_else(|| "default".to_string());
    let from_credentials = credentials_file.get(&name);
    let from_config = config_file.get(&name);
    if from_credentials.is_none() && from_config.is_none() {
        return match named {
            Some(_) => Err(format!(
                "profile {name:?} is in neither the shared credentials nor the config file"
            )),
            None => Ok(Profile::default()),
        };
    }
    let value = |key: &str| {
        from_credentials
            .and_then(|s| s.get(key))
            .or_else(|| from_config.and_then(|s| s.get(key)))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let unsupported = [
        "role_arn",
        "credential_process",
        "sso_session",
        "sso_start_url",
        "web_identity_token_file",
    ];
    let key = value("aws_access_key_id");
    let secret = value("aws_secret_access_key");
    let credentials = match (key, secret) {
        (Some(key), Some(secret)) => Some(Credentials {
            access_key_id: key,
            secret_access_key: Secret(secret),
            session_token: value("aws_session_token").map(Secret),
        }),
        (None, None) => {
            if let Some(how) = unsupported.iter().find(|k| value(k).is_some()) {
                return Err(format!(
                    "profile {name:?} gets its credentials through `{how}`, which this version of lambda-gateway does not support yet: give it static keys, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                ));
            }
            None
        }
        _ => {
            return Err(format!(
                "profile {name:?} sets only one of aws_access_key_id and aws_secret_access_key"
            ))
        }
    };
    Ok(Profile {
        credentials,
        region: value("region"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lg-profile-{tag}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        d
    }

    fn load_with(vars: &[(&str, String)]) -> Result<Profile, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        load(&|k| vars.get(k).cloned())
    }

    fn keys(id: &str, secret: &str, token: Option<&str>) -> Option<Credentials> {
        Some(Credentials {
            access_key_id: id.into(),
            secret_access_key: Secret(secret.into()),
            session_token: token.map(|t| Secret(t.into())),
        })
    }

    #[test]
    fn odd_formatting_is_read_as_the_sdks_read_it() {
        let text = "# comment\n; another\n[default]\naws_access_key_id=AKIDDEFAULT\naws_secret_access_key   =   s3cret  \n\n[work]\nAWS_ACCESS_KEY_ID = AKIDWORK # inline comment\naws_secret_access_key = w0rk;not-a-comment\naws_session_token = tok\ns3 =\n  max_concurrent_requests = 10\nregion = eu-west-1\n";
        let parsed = parse(text, false);
        assert_eq!(parsed["default"]["aws_access_key_id"], "AKIDDEFAULT");
        assert_eq!(parsed["default"]["aws_secret_access_key"], "s3cret");
        assert_eq!(parsed["work"]["aws_access_key_id"], "AKIDWORK");
        assert_eq!(
            parsed["work"]["aws_secret_access_key"],
            "w0rk;not-a-comment"
        );
        assert_eq!(parsed["work"]["s3"], "");
        assert!(!parsed["work"].contains_key("max_concurrent_requests"));
        let config = parse("[default]\nregion=us-east-2\n[profile work]\nregion = ap-south-1\n[sso-session corp]\nregion = x\n[profilework]\nregion=y\n", true);
        assert_eq!(config["default"]["region"], "us-east-2");
        assert_eq!(config["work"]["region"], "ap-south-1");
        assert_eq!(config.len(), 2, "{config:?}");
    }

    #[test]
    fn profiles_from_both_files() {
        let d = dir("both");
        let credentials = d.join("credentials");
        let config = d.join("config");
        std::fs::write(&credentials, "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s3cret\n[work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = w0rk\n").expect("write");
        std::fs::write(&config, "[default]\nregion = us-east-2\n[profile work]\nregion = eu-west-1\naws_session_token = from-config\n[profile cfgonly]\naws_access_key_id = AKIDCFG\naws_secret_access_key = c0nfig\n[profile assumed]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = default\n[profile half]\naws_access_key_id = AKIDHALF\n").expect("write");
        let files = |profile: Option<&str>| {
            let mut v = vec![
                (
                    "AWS_SHARED_CREDENTIALS_FILE",
                    credentials.display().to_string(),
                ),
                ("AWS_CONFIG_FILE", config.display().to_string()),
            ];
            if let Some(p) = profile {
                v.push(("AWS_PROFILE", p.to_string()));
            }
            load_with(&v)
        };
        assert_eq!(
            files(None),
            Ok(Profile {
                credentials: keys("AKIDDEFAULT", "s3cret", None),
                region: Some("us-east-2".into())
            })
        );
        assert_eq!(
            files(Some("work")),
            Ok(Profile {
                credentials: keys("AKIDWORK", "w0rk", Some("from-config")),
                region: Some("eu-west-1".into())
            })
        );
        assert_eq!(
            files(Some("cfgonly")).map(|p| p.credentials),
            Ok(keys("AKIDCFG", "c0nfig", None))
        );
        assert_eq!(
            files(Some("missing")),
            Err(
                "profile \"missing\" is in neither the shared credentials nor the config file"
                    .into()
            )
        );
        assert!(files(Some("assumed")).is_err_and(|e| e.contains("`role_arn`")));
        assert!(files(Some("half")).is_err_and(|e| e.contains("only one of")));

        // The default files under $HOME; none at all is no profile.
        let home = dir("home");
        std::fs::create_dir_all(home.join(".aws")).expect("mkdir");
        std::fs::write(
            home.join(".aws/credentials"),
            "[default]\naws_access_key_id=AKIDHOME\naws_secret_access_key=h0me\n",
        )
        .expect("write");
        let with_home = load_with(&[("HOME", home.display().to_string())]);
        assert_eq!(
            with_home.map(|p| p.credentials),
            Ok(keys("AKIDHOME", "h0me", None))
        );
        let empty = dir("empty");
        assert_eq!(
            load_with(&[("HOME", empty.display().to_string())]),
            Ok(Profile::default())
        );
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&home);
    }
}

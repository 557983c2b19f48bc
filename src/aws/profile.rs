//! The AWS shared configuration files, as the SDKs read them: `~/.aws/credentials` and
//! `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`), the profile named by
//! `AWS_PROFILE` (else `default`), how it gets credentials (static keys, a role assumed from
//! another profile or credential source, a web identity token file, a credential process) and
//! its region.
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

/// How a profile gets its credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileCredentials {
    /// `aws_access_key_id`, `aws_secret_access_key` (and `aws_session_token`).
    Static(Credentials),
    /// `role_arn` with `source_profile` or `credential_source`: STS `AssumeRole`, signed with
    /// the source's credentials.
    AssumeRole {
        /// `role_arn`.
        role_arn: String,
        /// `role_session_name`.
        session_name: Option<String>,
        /// `external_id`.
        external_id: Option<String>,
        /// Where the credentials that call AssumeRole come from.
        source: RoleSource,
    },
    /// `role_arn` with `web_identity_token_file`: STS `AssumeRoleWithWebIdentity`.
    WebIdentity {
        /// `role_arn`.
        role_arn: String,
        /// `web_identity_token_file`.
        token_file: String,
        /// `role_session_name`.
        session_name: Option<String>,
    },
    /// `credential_process`: a command printing credentials as JSON.
    Process(String),
}

/// The credentials an assume-role profile starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleSource {
    /// `source_profile`: another profile (itself, when it names itself and has static keys).
    Profile(Box<ProfileCredentials>),
    /// `credential_source = Environment`.
    Environment,
    /// `credential_source = Ec2InstanceMetadata`.
    Ec2InstanceMetadata,
    /// `credential_source = EcsContainer`.
    EcsContainer,
}

/// What the shared files say about one profile.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// How the profile gets credentials, when it says.
    pub credentials: Option<ProfileCredentials>,
    /// `region`.
    pub region: Option<String>,
}

/// Longest chain of `source_profile`s followed (the SDKs refuse loops; this also bounds work).
const MAX_SOURCE_PROFILES: usize = 8;

/// Reads the profile the environment names (through `get`), from the files it names or the
/// defaults under `$HOME/.aws`. A missing file is no profile; `Err` says what is wrong (a
/// profile named by `AWS_PROFILE` that no file has, keys given half, a `source_profile` loop,
/// or a way of getting credentials this build does not support).
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
    let files = Files {
        credentials: read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), false)?,
        config: read(file("AWS_CONFIG_FILE", "config"), true)?,
    };
    let named = set("AWS_PROFILE");
    let name = named.clone().unwrap_or_else(|| "default".to_string());
    if !files.has(&name) {
        return match named {
            Some(_) => Err(format!(
                "profile {name:?} is in neither the shared credentials nor the config file"
            )),
            None => Ok(Profile::default()),
        };
    }
    Ok(Profile {
        credentials: files.credentials_of(&name, &mut Vec::new())?,
        region: files.value(&name, "region"),
    })
}

/// Both shared files, parsed.
struct Files {
    credentials: HashMap<String, Section>,
    config: HashMap<String, Section>,
}

impl Files {
    fn has(&self, profile: &str) -> bool {
        self.credentials.contains_key(profile) || self.config.contains_key(profile)
    }

    /// A setting of `profile`: the credentials file's, else the config file's.
    fn value(&self, profile: &str, key: &str) -> Option<String> {
        self.credentials
            .get(profile)
            .and_then(|s| s.get(key))
            .or_else(|| self.config.get(profile).and_then(|s| s.get(key)))
            .filter(|v| !v.is_empty())
            .cloned()
    }

    fn static_keys(&self, name: &str) -> Result<Option<Credentials>, String> {
        let key = self.value(name, "aws_access_key_id");
        let secret = self.value(name, "aws_secret_access_key");
        match (key, secret) {
            (Some(key), Some(secret)) => Ok(Some(Credentials {
                access_key_id: key,
                secret_access_key: Secret(secret),
                session_token: self.value(name, "aws_session_token").map(Secret),
            })),
            (None, None) => Ok(None),
            _ => Err(format!(
                "profile {name:?} sets only one of aws_access_key_id and aws_secret_access_key"
            )),
        }
    }

    /// How profile `name` gets credentials, following `source_profile`s (`seen` holds the
    /// profiles already on the path).
    fn credentials_of(
        &self,
        name: &str,
        seen: &mut Vec<String>,
    ) -> Result<Option<ProfileCredentials>, String> {
        if seen.len() >= MAX_SOURCE_PROFILES || seen.iter().any(|s| s == name) {
            return Err(format!(
                "profile {name:?}: source_profile loop or chain deeper than {MAX_SOURCE_PROFILES} ({})",
                seen.join(" -> ")
            ));
        }
        if !self.has(name) {
            return Err(format!(
                "profile {name:?} (a source_profile) is in neither the shared credentials nor the config file"
            ));
        }
        seen.push(name.to_string());
        let value = |key: &str| self.value(name, key);
        let role_arn = value("role_arn");
        if let Some(role_arn) = role_arn {
            let session_name = value("role_session_name");
            if let Some(token_file) = value("web_identity_token_file") {
                return Ok(Some(ProfileCredentials::WebIdentity {
                    role_arn,
                    token_file,
                    session_name,
                }));
            }
            let source = match (value("source_profile"), value("credential_source")) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "profile {name:?} sets both source_profile and credential_source"
                    ))
                }
                (Some(source), None) if source == name => {
                    // A profile that names itself uses its own static keys as the source.
                    let keys = self.static_keys(name)?.ok_or_else(|| {
                        format!("profile {name:?} is its own source_profile but has no keys")
                    })?;
                    RoleSource::Profile(Box::new(ProfileCredentials::Static(keys)))
                }
                (Some(source), None) => {
                    let base = self.credentials_of(&source, seen)?.ok_or_else(|| {
                        format!("profile {name:?}: source_profile {source:?} has no credentials")
                    })?;
                    RoleSource::Profile(Box::new(base))
                }
                (None, Some(source)) => match source.as_str() {
                    "Environment" => RoleSource::Environment,
                    "Ec2InstanceMetadata" => RoleSource::Ec2InstanceMetadata,
                    "EcsContainer" => RoleSource::EcsContainer,
                    other => {
                        return Err(format!(
                            "profile {name:?}: credential_source {other:?} is not one of Environment, Ec2InstanceMetadata, EcsContainer"
                        ))
                    }
                },
                (None, None) => {
                    return Err(format!(
                        "profile {name:?} sets role_arn without source_profile, credential_source or web_identity_token_file"
                    ))
                }
            };
            return Ok(Some(ProfileCredentials::AssumeRole {
                role_arn,
                session_name,
                external_id: value("external_id"),
                source,
            }));
        }
        if let Some(keys) = self.static_keys(name)? {
            return Ok(Some(ProfileCredentials::Static(keys)));
        }
        if let Some(command) = value("credential_process") {
            return Ok(Some(ProfileCredentials::Process(command)));
        }
        if let Some(how) = ["sso_session", "sso_start_url"]
            .iter()
            .find(|k| value(k).is_some())
        {
            return Err(format!(
                "profile {name:?} gets its credentials through `{how}` (IAM Identity Center), which this version of lambda-gateway does not support: give it static keys, a role, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            ));
        }
        Ok(None)
    }
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

    fn keys(id: &str, secret: &str, token: Option<&str>) -> Option<ProfileCredentials> {
        Some(ProfileCredentials::Static(Credentials {
            access_key_id: id.into(),
            secret_access_key: Secret(secret.into()),
            session_token: token.map(|t| Secret(t.into())),
        }))
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
        let Ok(Profile {
            credentials:
                Some(ProfileCredentials::AssumeRole {
                    role_arn, source, ..
                }),
            ..
        }) = files(Some("assumed"))
        else {
            panic!("an assume-role profile: {:?}", files(Some("assumed")))
        };
        assert_eq!(role_arn, "arn:aws:iam::123456789012:role/r");
        assert_eq!(
            source,
            RoleSource::Profile(Box::new(keys("AKIDDEFAULT", "s3cret", None).expect("keys")))
        );
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

    #[test]
    fn roles_web_identity_processes_and_loops() {
        let d = dir("roles");
        let config = d.join("config");
        std::fs::write(
            &config,
            "[profile base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = b4se\n\
             [profile hop1]\nrole_arn = arn:aws:iam::1:role/one\nsource_profile = base\n\
             [profile hop2]\nrole_arn = arn:aws:iam::2:role/two\nsource_profile = hop1\nexternal_id = ext\nrole_session_name = s2\n\
             [profile self]\nrole_arn = arn:aws:iam::3:role/self\nsource_profile = self\naws_access_key_id = AKIDSELF\naws_secret_access_key = s3lf\n\
             [profile loop1]\nrole_arn = arn:aws:iam::4:role/l\nsource_profile = loop2\n\
             [profile loop2]\nrole_arn = arn:aws:iam::4:role/l\nsource_profile = loop1\n\
             [profile imds]\nrole_arn = arn:aws:iam::5:role/i\ncredential_source = Ec2InstanceMetadata\n\
             [profile badsource]\nrole_arn = arn:aws:iam::5:role/i\ncredential_source = Moon\n\
             [profile web]\nrole_arn = arn:aws:iam::6:role/w\nweb_identity_token_file = /var/run/token\n\
             [profile proc]\ncredential_process = /usr/bin/get-creds --json\n\
             [profile sso]\nsso_session = corp\n\
             [profile lonely]\nrole_arn = arn:aws:iam::7:role/x\n",
        )
        .expect("write");
        let profile = |name: &str| {
            load_with(&[
                ("AWS_CONFIG_FILE", config.display().to_string()),
                ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".to_string()),
                ("AWS_PROFILE", name.to_string()),
            ])
            .map(|p| p.credentials)
        };
        let base = keys("AKIDBASE", "b4se", None).expect("keys");
        let hop1 = ProfileCredentials::AssumeRole {
            role_arn: "arn:aws:iam::1:role/one".into(),
            session_name: None,
            external_id: None,
            source: RoleSource::Profile(Box::new(base)),
        };
        assert_eq!(profile("hop1"), Ok(Some(hop1.clone())));
        assert_eq!(
            profile("hop2"),
            Ok(Some(ProfileCredentials::AssumeRole {
                role_arn: "arn:aws:iam::2:role/two".into(),
                session_name: Some("s2".into()),
                external_id: Some("ext".into()),
                source: RoleSource::Profile(Box::new(hop1)),
            }))
        );
        assert!(matches!(
            profile("self"),
            Ok(Some(ProfileCredentials::AssumeRole { source: RoleSource::Profile(p), .. }))
                if *p == keys("AKIDSELF", "s3lf", None).expect("keys")
        ));
        assert!(profile("loop1").is_err_and(|e| e.contains("loop")));
        assert!(matches!(
            profile("imds"),
            Ok(Some(ProfileCredentials::AssumeRole {
                source: RoleSource::Ec2InstanceMetadata,
                ..
            }))
        ));
        assert!(profile("badsource").is_err_and(|e| e.contains("Moon")));
        assert_eq!(
            profile("web"),
            Ok(Some(ProfileCredentials::WebIdentity {
                role_arn: "arn:aws:iam::6:role/w".into(),
                token_file: "/var/run/token".into(),
                session_name: None,
            }))
        );
        assert_eq!(
            profile("proc"),
            Ok(Some(ProfileCredentials::Process(
                "/usr/bin/get-creds --json".into()
            )))
        );
        assert!(profile("sso").is_err_and(|e| e.contains("sso_session")));
        assert!(profile("lonely").is_err_and(|e| e.contains("without source_profile")));
        let _ = std::fs::remove_dir_all(&d);
    }
}

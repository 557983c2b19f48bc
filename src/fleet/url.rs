//! `etcd://[user:password@]host:port[,host:port…]/prefix`: where a fleet's configuration is.

use std::fmt;

/// A parsed `etcd://` location.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdLocation {
    /// `host:port` of each member given.
    pub endpoints: Vec<String>,
    /// The key prefix, with a leading `/` and no trailing one.
    pub prefix: String,
    /// Credentials from the URL (`ETCD_USERNAME`/`ETCD_PASSWORD` otherwise).
    pub user: Option<(String, String)>,
}

impl fmt::Debug for EtcdLocation {
    // The password stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for EtcdLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "etcd://")?;
        if let Some((user, _)) = &self.user {
            write!(f, "{user}:***@")?;
        }
        write!(f, "{}{}", self.endpoints.join(","), self.prefix)
    }
}

/// Whether `--config` names an etcd location rather than a file.
pub fn is_etcd(config: &str) -> bool {
    config.starts_with("etcd://")
}

impl EtcdLocation {
    /// Parses an `etcd://` URL; the prefix defaults to `/lambda-gateway`.
    pub fn parse(url: &str) -> Result<EtcdLocation, String> {
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| format!("{url}: not an etcd:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, hosts) = match authority.rsplit_once('@') {
            Some((info, hosts)) => {
                let (name, password) = info
                    .split_once(':')
                    .ok_or("etcd:// credentials must be user:password@")?;
                (Some((decode(name), decode(password))), hosts)
            }
            None => (None, authority),
        };
        let mut endpoints = Vec::new();
        for host in hosts.split(',') {
            let (name, port) = host
                .rsplit_once(':')
                .ok_or_else(|| format!("etcd endpoint {host:?} needs host:port"))?;
            if name.is_empty() || port.parse::<u16>().is_err() {
                return Err(format!("etcd endpoint {host:?} needs host:port"));
            }
            endpoints.push(host.to_string());
        }
        let prefix = path.trim_end_matches('/');
        if prefix.contains(['?', '#']) {
            return Err("an etcd:// URL takes no query or fragment".into());
        }
        Ok(EtcdLocation {
            endpoints,
            prefix: if prefix.is_empty() {
                "/lambda-gateway".into()
            } else {
                prefix.to_string()
            },
            user,
        })
    }

    /// The key holding the configuration document.
    pub fn config_key(&self) -> String {
        format!("{}/config", self.prefix)
    }
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    crate::http::percent::percent_decode_into(&mut out, s.as_bytes(), false);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_members_prefix_and_credentials() {
        let l =
            EtcdLocation::parse("etcd://127.0.0.1:2379,[::1]:2381,etcd.local:2379/edge/").unwrap();
        assert_eq!(
            l.endpoints,
            ["127.0.0.1:2379", "[::1]:2381", "etcd.local:2379"]
        );
        assert_eq!(l.prefix, "/edge");
        assert_eq!(l.config_key(), "/edge/config");
        assert_eq!(l.user, None);
        let l = EtcdLocation::parse("etcd://gw:p%40ss%3Aw@h:2379").unwrap();
        assert_eq!(l.user, Some(("gw".into(), "p@ss:w".into())));
        assert_eq!(l.prefix, "/lambda-gateway");
        assert_eq!(l.to_string(), "etcd://gw:***@h:2379/lambda-gateway");
        assert!(!format!("{l:?}").contains("p@ss"));
        for bad in [
            "http://h:2379/x",
            "etcd://h/x",
            "etcd://h:port/x",
            "etcd://:2379/x",
            "etcd://user@h:2379/x",
            "etcd://h:2379/x?y",
        ] {
            assert!(EtcdLocation::parse(bad).is_err(), "{bad}");
        }
        assert!(is_etcd("etcd://h:1/x") && !is_etcd("kong.yml"));
    }
}

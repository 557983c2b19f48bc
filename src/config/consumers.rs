//! The consumer index the auth plugins look identities up in: consumers by id and username,
//! their ACL groups, key-auth keys and JWT keys. Built once per configuration.

use super::model::Config;
use crate::access::jwt::JwtCredential;
use crate::access::{ConsumerInfo, Identities};
use std::collections::HashMap;

/// Consumers by id and username, and key-auth keys, looked up once per authenticated request.
#[derive(Debug, Default)]
pub struct ConsumerIndex {
    consumers: Vec<ConsumerInfo>,
    groups: Vec<Vec<String>>,
    by_name: HashMap<String, usize>,
    by_key: HashMap<Vec<u8>, (String, usize)>,
    by_jwt_key: HashMap<String, (JwtCredential, usize)>,
}

impl ConsumerIndex {
    /// The index of `config`'s consumers and their credentials.
    pub fn new(config: &Config) -> ConsumerIndex {
        let mut index = ConsumerIndex::default();
        for (i, c) in config.consumers.iter().enumerate() {
            index.consumers.push(ConsumerInfo {
                index: i,
                id: c.id.clone(),
                username: c.username.clone(),
                custom_id: c.custom_id.clone(),
            });
            index.by_name.insert(c.id.clone(), i);
            if let Some(u) = &c.username {
                index.by_name.entry(u.clone()).or_insert(i);
            }
        }
        index.groups = vec![Vec::new(); config.consumers.len()];
        for a in &config.acls {
            if let Some(&i) = a.consumer.as_ref().and_then(|c| index.by_name.get(c)) {
                index.groups[i].push(a.group.clone());
            }
        }
        for k in &config.keyauth_credentials {
            if let Some(&i) = k.consumer.as_ref().and_then(|c| index.by_name.get(c)) {
                index
                    .by_key
                    .insert(k.key.as_bytes().to_vec(), (k.id.clone(), i));
            }
        }
        for j in &config.jwt_secrets {
            let consumer = j.consumer.as_ref().and_then(|c| index.by_name.get(c));
            if let (Some(&i), Some(verifier)) = (consumer, &j.verifier) {
                let credential = JwtCredential {
                    id: j.id.clone(),
                    key: j.key.clone(),
                    verifier: verifier.clone(),
                };
                index.by_jwt_key.insert(j.key.clone(), (credential, i));
            }
        }
        index
    }
}

impl Identities for ConsumerIndex {
    fn jwt(&self, key: &str) -> Option<(&JwtCredential, &ConsumerInfo)> {
        let (credential, i) = self.by_jwt_key.get(key)?;
        Some((credential, &self.consumers[*i]))
    }

    fn key_auth(&self, key: &[u8]) -> Option<(&str, &ConsumerInfo)> {
        let (credential, i) = self.by_key.get(key)?;
        Some((credential.as_str(), &self.consumers[*i]))
    }

    fn groups(&self, consumer: &ConsumerInfo) -> &[String] {
        self.groups
            .get(consumer.index)
            .map_or(&[][..], Vec::as_slice)
    }

    fn consumer(&self, id_or_username: &str) -> Option<&ConsumerInfo> {
        let i = self
            .by_name
            .get(id_or_username)
            .or_else(|| self.by_name.get(&id_or_username.to_ascii_lowercase()))?;
        Some(&self.consumers[*i])
    }
}

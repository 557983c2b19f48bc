//! The certificates HTTPS handshakes choose from, by SNI name.

use super::model::Config;
use crate::certificate::{Served, SniIndex};
use std::collections::HashMap;

/// Every SNI's certificate by the SNI's name.
pub fn index(config: &Config) -> SniIndex {
    let by_id: HashMap<&str, Served> = config
        .certificates
        .iter()
        .map(|c| {
            let served = Served {
                main: c.key.clone(),
                alt: c.alt.clone(),
            };
            (c.id.as_str(), served)
        })
        .collect();
    let mut index = SniIndex::default();
    for sni in &config.snis {
        if let Some(served) = sni.certificate.as_deref().and_then(|id| by_id.get(id)) {
            index.insert(&sni.name, served.clone());
        }
    }
    index
}

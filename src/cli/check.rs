//! `lambda-gateway check FILE`: every error with its path, the warnings, whether the
//! credentials the routes use can be obtained.

use super::environment::environment;
use crate::config::{self, Snapshot};
use std::process::ExitCode;
use std::time::Duration;

/// How long `check` waits for each credential provider's first answer (STS's own timeout
/// and a little more).
const CHECK_CREDENTIALS_WITHIN: Duration = Duration::from_secs(12);

pub(super) fn check(file: &std::path::Path) -> ExitCode {
    // The report below is the output: what the threads it starts would log (a credential
    // provider failing, retried) it says itself, once.
    log::set_max_level(log::LevelFilter::Error);
    let loaded = config::load_file(file);
    let (env, _, env_errors) = environment(loaded.as_ref().ok());
    let mut errors = match loaded {
        Ok(cfg) if env_errors.0.is_empty() => {
            let (snapshot, warnings) = Snapshot::build(cfg.clone(), &env);
            for w in &warnings {
                println!("warning: {w}");
            }
            for w in snapshot.unobtainable_credentials(CHECK_CREDENTIALS_WITHIN) {
                println!("warning: {w}");
            }
            println!(
                "{}: OK ({} services, {} routes, {} plugins, {} consumers)",
                file.display(),
                cfg.services.len(),
                cfg.routes.len(),
                cfg.plugins.len(),
                cfg.consumers.len()
            );
            return ExitCode::SUCCESS;
        }
        Ok(_) => Vec::new(),
        Err(errors) => errors.0,
    };
    errors.extend(env_errors.0);
    for e in &errors {
        println!("{e}");
    }
    eprintln!("{}: {} error(s)", file.display(), errors.len());
    ExitCode::FAILURE
}

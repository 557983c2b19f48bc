//! The `lambda-gateway` command line: serve a config (a file, or a fleet's in etcd), `check`
//! one, run the `demo`, print completions or the man page.

mod args;
mod check;
mod environment;
mod serve;

use crate::config;
use args::{creatable, flags_that_do_not_apply, listen_address, Cli, Command};
use clap::{CommandFactory, FromArgMatches};
use serve::{demo, serve, serve_fleet, ConfigFile};
use std::process::ExitCode;

/// Runs the command line of this process.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    crate::logging::init(cli.log_format);
    if let Some(problem) = flags_that_do_not_apply(&cli, &matches) {
        eprintln!("error: {problem}");
        return ExitCode::from(2);
    }
    let admin_addr = match cli.admin_listen.as_str() {
        "off" => None,
        text => match listen_address(text) {
            Ok(a) => Some(a),
            Err(why) => {
                eprintln!("error: --admin-listen: {why}, or `off`");
                return ExitCode::from(2);
            }
        },
    };
    let token = cli.admin_token.clone().filter(|t| !t.is_empty());
    if let Some(addr) = admin_addr {
        if !addr.ip().is_loopback() && token.is_none() {
            eprintln!("error: the Admin API on {addr} is reachable from other hosts: set --admin-token (or LAMBDA_GATEWAY_ADMIN_TOKEN), or listen on a loopback address");
            return ExitCode::from(2);
        }
    }
    match &cli.command {
        Some(Command::Check { file }) => check::check(file),
        Some(Command::Demo) => demo(&cli, admin_addr, token),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "lambda-gateway",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Some(Command::Manpage) => {
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                // `lambda-gateway manpage | head` closed the pipe: nothing went wrong.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the man page: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => match &cli.config {
            Some(url) if crate::fleet::url::is_etcd(&url.to_string_lossy()) => {
                serve_fleet(&cli, &url.to_string_lossy(), admin_addr, token)
            }
            Some(path) if !path.exists() && admin_addr.is_some() => {
                // Only a file the first Admin API change can create: a wrong path must not start a
                // gateway that serves nothing and fails every change.
                if let Err(why) = creatable(path) {
                    eprintln!("error: --config {}: {why}", path.display());
                    return ExitCode::FAILURE;
                }
                log::info!("{} does not exist: starting with an empty config; the Admin API creates it on the first change", path.display());
                let file = ConfigFile {
                    path: path.clone(),
                    on_disk: None,
                };
                serve(
                    &cli,
                    config::Config::default(),
                    Some(file),
                    admin_addr,
                    token,
                    None,
                )
            }
            Some(path) => match config::load_file_with_digest(path) {
                Ok((cfg, digest)) => {
                    let file = ConfigFile {
                        path: path.clone(),
                        on_disk: Some(digest),
                    };
                    serve(&cli, cfg, Some(file), admin_addr, token, None)
                }
                Err(errors) => {
                    eprintln!("{}: invalid config:\n{errors}", path.display());
                    ExitCode::FAILURE
                }
            },
            None => {
                eprintln!("error: give --config FILE to serve a config, or run `lambda-gateway demo` (see --help)");
                ExitCode::from(2)
            }
        },
    }
}

//! The `lambda-gateway` binary: the command line is [`lambda_gateway::cli`].

fn main() -> std::process::ExitCode {
    lambda_gateway::cli::main()
}

//! The `himg` command.

fn main() -> std::process::ExitCode {
    himg::cli::main()
}

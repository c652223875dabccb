fn main() -> std::process::ExitCode {
    circsnn::cli::main()
}

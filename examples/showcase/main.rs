//! The showcase component: every capability of exampple in one small program.
//!
//!     cargo run --example showcase            # connect (EXAMPPLE_* variables, defaults for a local Prosody)
//!     cargo run --example showcase routes     # print the route table
//!     cargo run --example showcase namespaces # print the namespaces
//!
//! `scripts/demo.sh` starts a private Prosody, runs this and drives it with a client.

mod app;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match app::config_from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("showcase: {e}");
            std::process::exit(2);
        }
    };
    let runtime = match exampple::smol::Runtime::new(config, app::router()) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("showcase: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = runtime.run() {
        eprintln!("showcase: {e}");
        std::process::exit(1);
    }
}

//! `podbgp`: the node speaker (`podbgp run`) and its gobgp-style CLI.

mod alloc;
mod api;
mod bfd_io;
mod bmp_io;
mod cli;
mod daemon;
mod events;
mod fib;
mod ifaces;
mod k8s;
mod metrics;
mod mrt_log;
mod settings;
mod snat;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "podbgp",
    version,
    about = "BGP route distribution for Kubernetes nodes",
    disable_help_subcommand = true
)]
struct Cli {
    /// The speaker's control API: http://HOST:PORT or unix:PATH.
    #[arg(long, global = true, default_value = "http://127.0.0.1:7179")]
    api: String,
    /// Print JSON instead of text.
    #[arg(short = 'j', long = "json", global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the speaker in the foreground.
    Run {
        /// The configuration file, TOML or YAML.
        #[arg(long)]
        config: PathBuf,
        /// Log format: text or json (overrides log.format).
        #[arg(long)]
        log_format: Option<String>,
    },
    /// Peers: `neighbor [ADDR [adj-in|adj-out|reset|softreset|shutdown|enable]]`.
    Neighbor {
        /// Address family: ipv4 or ipv6.
        #[arg(short = 'a', long = "address-family")]
        family: Option<String>,
        args: Vec<String>,
    },
    /// This speaker: `global [rib [summary|add PREFIX ...|del PREFIX|PREFIX]]`.
    Global {
        /// Address family: ipv4 or ipv6.
        #[arg(short = 'a', long = "address-family")]
        family: Option<String>,
        args: Vec<String>,
    },
    /// Kernel routes podbgp installed.
    Fib,
    /// The masquerade rules and the no-masquerade set.
    Snat,
    /// BFD sessions: state, discriminators, negotiated intervals.
    Bfd,
    /// MRT: `mrt dump FILE` writes the RIB, every path of every prefix, as
    /// a TABLE_DUMP_V2 file (RFC 6396; RFC 8050 records where paths carry
    /// identifiers), as bgpdump and the route collectors' tools read it;
    /// `mrt replay FILE --peer ADDR --local-as N [--port N] [--source-peer
    /// N|ADDR]` feeds such a file (or an older TABLE_DUMP one, gzipped or
    /// not) into a BGP session, this command the speaker.
    Mrt {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Leave for good: every session ends with a Cease and stays down, so
    /// peers drop our routes at once; the process runs on until SIGTERM
    /// (which, alone, stops to restart: peers keep our routes).
    Shutdown,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, log_format } => run(&config, log_format),
        command => ExitCode::from(client(&cli.api, cli.json, command)),
    }
}

fn usage(e: &str) -> u8 {
    eprintln!("podbgp: {e}");
    eprintln!("Try 'podbgp --help'.");
    2
}

fn client(api: &str, json: bool, command: Command) -> u8 {
    let endpoint = match cli::Endpoint::parse(api) {
        Ok(e) => e,
        Err(e) => return usage(&e),
    };
    if let Command::Mrt { args } = &command {
        if let [what, rest @ ..] = args.as_slice() {
            if what == "replay" {
                return match cli::replay::parse(rest) {
                    Ok(r) => u8::try_from(cli::replay::run(&r)).unwrap_or(1),
                    Err(cli::Usage(e)) => usage(&e),
                };
            }
        }
    }
    let (plan, family) = match &command {
        Command::Neighbor { family, args } => {
            (cli::neighbor(args, family.as_deref()), family.clone())
        }
        Command::Global { family, args } => (cli::global(args, family.as_deref()), family.clone()),
        Command::Fib => (Ok(plan("/v1/fib", cli::Print::Fib)), None),
        Command::Snat => (Ok(plan("/v1/snat", cli::Print::Snat)), None),
        Command::Bfd => (Ok(plan("/v1/bfd", cli::Print::Bfd)), None),
        Command::Mrt { args } => (cli::mrt(args), None),
        Command::Shutdown => (
            Ok(cli::Plan {
                method: hyper::Method::POST,
                path: "/v1/shutdown".into(),
                body: None,
                print: cli::Print::Done,
            }),
            None,
        ),
        Command::Run { .. } => return 2,
    };
    let plan = match plan {
        Ok(p) => p,
        Err(cli::Usage(e)) => return usage(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("podbgp: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(cli::execute(&endpoint, plan, json, family.as_deref()));
    u8::try_from(code).unwrap_or(1)
}

fn plan(path: &str, print: cli::Print) -> cli::Plan {
    cli::Plan {
        method: hyper::Method::GET,
        path: path.into(),
        body: None,
        print,
    }
}

fn run(config: &std::path::Path, log_format: Option<String>) -> ExitCode {
    let settings = match settings::Settings::load(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("podbgp: {e}");
            // As a Pod, say it on the Node too: a crash-looping DaemonSet
            // is seen there before anyone reads its logs.
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(k8s::events::tell_once(
                    events::Reason::InvalidConfig,
                    &format!("{e}; podbgp does not start"),
                ));
            }
            return ExitCode::from(1);
        }
    };
    let format = log_format
        .or_else(|| settings.log.format.clone())
        .unwrap_or_else(|| "text".into());
    if format != "text" && format != "json" {
        return ExitCode::from(usage(&format!(
            "--log-format {format}: expected text or json"
        )));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| {
            tracing_subscriber::EnvFilter::try_new(settings.log.level.as_deref().unwrap_or("info"))
        })
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The netlink crate warns about every kernel attribute newer than it,
    // harmless and many: quiet unless asked for by name.
    let asked = std::env::var("RUST_LOG").unwrap_or_default()
        + settings.log.level.as_deref().unwrap_or_default();
    let filter = match "netlink_packet_route=error".parse() {
        Ok(quiet) if !asked.contains("netlink_packet_route") => filter.add_directive(quiet),
        _ => filter,
    };
    use std::io::IsTerminal;
    // Colours only for a person at a terminal, never into a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    alloc::tune();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("podbgp: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(daemon::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("podbgp: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
#[path = "manifests_tests.rs"]
mod manifests_tests;

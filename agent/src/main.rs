//! `podbgp`: the node agent. The speaker, its control API and CLI are being
//! built on the `bgp` crate; until then the binary only says so.

use std::process::ExitCode;

const USAGE: &str =
    "usage: podbgp run --config FILE\n       podbgp [--api URL] [-j|--json] COMMAND ...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h") | Some("--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(_) => {
            eprintln!("podbgp: this build has the BGP codec only; the speaker is not in it yet");
            ExitCode::from(1)
        }
    }
}

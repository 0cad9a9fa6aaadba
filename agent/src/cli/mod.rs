//! The gobgp-style commands: parsed here (the grammar is gobgp's, freer
//! than clap's), sent to the control API, printed as text or JSON.

mod client;
pub mod format;
pub mod replay;

use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::api::model;
pub use client::Endpoint;

/// A command line the CLI could not understand: exit status 2.
#[derive(Debug, PartialEq, Eq)]
pub struct Usage(pub String);

/// One request to the API and how to print its answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub method: Method,
    pub path: String,
    pub body: Option<serde_json::Value>,
    pub print: Print,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Print {
    Neighbors,
    Neighbor,
    AdjIn,
    AdjOut,
    Global,
    Rib,
    Summary,
    Done,
    Fib,
    Snat,
    Bfd,
    /// Not printed: written to this file (an MRT dump).
    Save(std::path::PathBuf),
}

fn family_arg(family: Option<&str>) -> Result<Option<&'static str>, Usage> {
    match family {
        None => Ok(None),
        Some("ipv4" | "4") => Ok(Some("ipv4")),
        Some("ipv6" | "6") => Ok(Some("ipv6")),
        Some(other) => Err(Usage(format!("-a {other}: expected ipv4 or ipv6"))),
    }
}

fn query(family: Option<&str>, prefix: Option<&str>) -> String {
    let mut q = Vec::new();
    if let Some(f) = family {
        q.push(format!("family={f}"));
    }
    if let Some(p) = prefix {
        q.push(format!("prefix={}", p.replace('/', "%2F")));
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// `neighbor [ADDR [adj-in|adj-out|reset|softreset|softresetin|softresetout|shutdown|enable]]`
pub fn neighbor(args: &[String], family: Option<&str>) -> Result<Plan, Usage> {
    let family = family_arg(family)?;
    let get = |path: String, print| Plan {
        method: Method::GET,
        path,
        body: None,
        print,
    };
    match args {
        [] => Ok(get("/v1/neighbors".into(), Print::Neighbors)),
        [addr, rest @ ..] => {
            addr.parse::<std::net::IpAddr>()
                .map_err(|_| Usage(format!("{addr}: not a neighbor address")))?;
            match rest {
                [] => Ok(get(format!("/v1/neighbors/{addr}"), Print::Neighbor)),
                [what] if what == "adj-in" || what == "adj-out" => {
                    let print = if what == "adj-in" { Print::AdjIn } else { Print::AdjOut };
                    Ok(get(
                        format!("/v1/neighbors/{addr}/{what}{}", query(family, None)),
                        print,
                    ))
                }
                [op] if ["reset", "softreset", "softresetin", "softresetout", "shutdown", "enable"]
                    .contains(&op.as_str()) =>
                {
                    Ok(Plan {
                        method: Method::POST,
                        path: format!("/v1/neighbors/{addr}/{op}"),
                        body: None,
                        print: Print::Done,
                    })
                }
                _ => Err(Usage(format!(
                    "neighbor {addr} {}: expected adj-in, adj-out, reset, softreset, shutdown or enable",
                    rest.join(" ")
                ))),
            }
        }
    }
}

/// `global [rib [summary | add PREFIX ... | del PREFIX | PREFIX]]`
pub fn global(args: &[String], family: Option<&str>) -> Result<Plan, Usage> {
    let family = family_arg(family)?;
    match args {
        [] => Ok(Plan {
            method: Method::GET,
            path: "/v1/global".into(),
            body: None,
            print: Print::Global,
        }),
        [rib, rest @ ..] if rib == "rib" => match rest {
            [] => Ok(Plan {
                method: Method::GET,
                path: format!("/v1/rib{}", query(family, None)),
                body: None,
                print: Print::Rib,
            }),
            [s] if s == "summary" => Ok(Plan {
                method: Method::GET,
                path: format!("/v1/rib/summary{}", query(family, None)),
                body: None,
                print: Print::Summary,
            }),
            [add, words @ ..] if add == "add" => rib_add(words, family),
            [del, prefix] if del == "del" => {
                check_prefix(prefix)?;
                Ok(Plan {
                    method: Method::DELETE,
                    path: format!("/v1/rib{}", query(None, Some(prefix))),
                    body: None,
                    print: Print::Done,
                })
            }
            [prefix] => {
                prefix
                    .parse::<ipnet::IpNet>()
                    .map(|_| ())
                    .or_else(|_| prefix.parse::<std::net::IpAddr>().map(|_| ()))
                    .map_err(|_| Usage(format!("global rib {prefix}: not a prefix or address")))?;
                Ok(Plan {
                    method: Method::GET,
                    path: format!("/v1/rib{}", query(family, Some(prefix))),
                    body: None,
                    print: Print::Rib,
                })
            }
            _ => Err(Usage(format!(
                "global rib {}: expected summary, add PREFIX, del PREFIX or a PREFIX",
                rest.join(" ")
            ))),
        },
        _ => Err(Usage(format!("global {}: expected rib", args.join(" ")))),
    }
}

fn check_prefix(p: &str) -> Result<ipnet::IpNet, Usage> {
    p.parse()
        .map_err(|_| Usage(format!("{p}: not a prefix such as 10.244.1.0/24")))
}

/// `add PREFIX [nexthop ADDR] [community C ...] [large-community C ...] [med N] [local-pref N]`
fn rib_add(words: &[String], family: Option<&str>) -> Result<Plan, Usage> {
    let [prefix, rest @ ..] = words else {
        return Err(Usage("global rib add: which prefix?".into()));
    };
    let net = check_prefix(prefix)?;
    if let Some(f) = family {
        if (f == "ipv6") != matches!(net, ipnet::IpNet::V6(_)) {
            return Err(Usage(format!("{prefix} is not an {f} prefix")));
        }
    }
    let mut add = model::RibAdd {
        prefix: prefix.clone(),
        next_hop: None,
        communities: Vec::new(),
        large_communities: Vec::new(),
        med: None,
        local_pref: None,
    };
    let mut it = rest.iter().peekable();
    while let Some(word) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| Usage(format!("{word} needs a value")))
        };
        match word.as_str() {
            "nexthop" => {
                let v = value()?;
                v.parse::<std::net::IpAddr>()
                    .map_err(|_| Usage(format!("nexthop {v}: not an address")))?;
                add.next_hop = Some(v);
            }
            "community" => add.communities.push(value()?),
            "large-community" => add.large_communities.push(value()?),
            "med" => {
                let v = value()?;
                add.med = Some(v.parse().map_err(|_| Usage(format!("med {v}: not a number")))?);
            }
            "local-pref" => {
                let v = value()?;
                add.local_pref =
                    Some(v.parse().map_err(|_| Usage(format!("local-pref {v}: not a number")))?);
            }
            other => {
                return Err(Usage(format!(
                    "global rib add: unknown word {other}; expected nexthop, community, large-community, med or local-pref"
                )))
            }
        }
    }
    let body = serde_json::to_value(&add).map_err(|e| Usage(e.to_string()))?;
    Ok(Plan {
        method: Method::POST,
        path: "/v1/rib".into(),
        body: Some(body),
        print: Print::Done,
    })
}

/// `mrt dump FILE`: the RIB as an MRT TABLE_DUMP_V2 file.
pub fn mrt(args: &[String]) -> Result<Plan, Usage> {
    match args {
        [what, file] if what == "dump" => Ok(Plan {
            method: Method::GET,
            path: "/v1/mrt/rib".into(),
            body: None,
            print: Print::Save(file.into()),
        }),
        [what] if what == "dump" => Err(Usage("mrt dump FILE: the file is missing".into())),
        _ => Err(Usage(format!("mrt {}: expected dump FILE", args.join(" ")))),
    }
}

/// Write an MRT dump to `path` (whole or not at all: a temporary file
/// renamed), and say what it holds.
fn save(path: &std::path::Path, bytes: &[u8], json: bool) -> i32 {
    use bgp::wire::mrt::Record;
    let (mut peers, mut prefixes, mut at) = (0, 0usize, 0);
    while let Ok(Some((_, record, len))) = Record::decode(&bytes[at..]) {
        match record {
            Record::PeerIndexTable { peers: p, .. } => peers = p.len(),
            Record::Rib { .. } => prefixes += 1,
            _ => {}
        }
        at += len;
    }
    if at != bytes.len() {
        eprintln!(
            "podbgp: the speaker's MRT dump is not whole ({at} of {} bytes read)",
            bytes.len()
        );
        return 1;
    }
    let tmp = path.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("podbgp: {}: {e}", path.display());
        return 1;
    }
    if json {
        let v = serde_json::json!({
            "file": path.display().to_string(),
            "bytes": bytes.len(),
            "peers": peers,
            "prefixes": prefixes,
        });
        emit(&format!("{v}\n"));
    } else {
        emit(&format!(
            "wrote {}: MRT TABLE_DUMP_V2, {prefixes} prefixes, {peers} peers (this speaker first), {} bytes\n",
            path.display(),
            bytes.len()
        ));
    }
    0
}

/// Carry out a plan: 0 on success, 1 on an error from the speaker.
pub async fn execute(api: &Endpoint, plan: Plan, json: bool, family: Option<&str>) -> i32 {
    let body = plan.body.as_ref().map(|b| b.to_string().into_bytes());
    let (status, bytes) = match client::call(api, plan.method.clone(), &plan.path, body).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("podbgp: {e}");
            return 1;
        }
    };
    if status != StatusCode::OK {
        let msg = serde_json::from_slice::<model::ApiError>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| format!("HTTP {status}"));
        eprintln!("podbgp: {msg}");
        return 1;
    }
    if let Print::Save(path) = &plan.print {
        return save(path, &bytes, json);
    }
    if json {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => emit(&format!(
                "{}\n",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            )),
            Err(e) => {
                eprintln!("podbgp: the speaker's answer is not JSON: {e}");
                return 1;
            }
        }
        return 0;
    }
    let text = match plan.print {
        Print::Neighbors => {
            parse(&bytes).map(|l: Vec<model::Neighbor>| format::neighbors(&l, family))
        }
        Print::Neighbor => parse(&bytes).map(|n: model::Neighbor| format::neighbor(&n)),
        Print::AdjIn => parse(&bytes).map(|a: model::AdjIn| format::adj_in(&a)),
        Print::AdjOut | Print::Rib => {
            parse(&bytes).map(|d: Vec<model::Destination>| format::rib(&d, false))
        }
        Print::Global => parse(&bytes).map(|g: model::Global| format::global(&g)),
        Print::Summary => parse(&bytes).map(|s: Vec<model::RibSummary>| format::summary(&s)),
        Print::Done => parse(&bytes).map(|d: model::Done| format!("{}\n", d.done)),
        Print::Fib => parse(&bytes).map(|l: Vec<crate::fib::FibEntry>| format::fib(&l)),
        Print::Snat => parse(&bytes).map(|v: crate::snat::SnatView| format::snat(&v)),
        Print::Bfd => parse(&bytes).map(|l: Vec<crate::bfd_io::SessionView>| format::bfd(&l)),
        Print::Save(_) => Ok(String::new()),
    };
    match text {
        Ok(t) => {
            emit(&t);
            0
        }
        Err(e) => {
            eprintln!("podbgp: {e}");
            1
        }
    }
}

/// Print to stdout; a reader that stops early (`| head`) is no error.
fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("unexpected answer from the speaker: {e}"))
}

#[cfg(test)]
mod tests;

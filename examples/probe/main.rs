//! Measures a server's keep-alive limits, the figures behind most "connection reset by peer":
//! its idle timeout (and whether it closes idle connections with a `FIN`, a reset, or drops
//! them silently), the requests it allows per connection, and whether it speaks HTTP/2 with
//! prior knowledge (and its stream limit). Prints the client settings that stay clear of them.
//!
//! ```text
//! cargo run --release --example probe --features hyper-util -- <URL> [--json] [--max-idle 90s] [--max-requests 1000]
//! ```
//!
//! With `--json`, the last line of standard output is one JSON object with at least
//! `idle_timeout_ms` and `max_requests_per_connection` (numbers, or `null` when there is none
//! up to `--max-idle` and `--max-requests`). Run `--help` for the rest.

mod measure;
mod output;
mod wire;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::measure::{parse_duration, probe, Options, Progress, Target};

const HELP: &str = "\
Measures a server's keep-alive limits: its idle timeout, how it closes idle connections, the
requests it allows per connection, and HTTP/2 with prior knowledge; prints the client settings
that stay clear of them.

usage: probe <URL> [--json] [--max-idle 90s] [--max-requests 1000]

  <URL>                 http://host[:port][/path]: a small resource that answers GET
                        (https is not supported: probe the plain-HTTP port)
  --json                end with one line of JSON: idle_timeout_ms, max_requests_per_connection
                        (numbers, or null when none up to the limits below), and the rest
  --max-idle <time>     the longest idle time tried (90s, 1500ms, 2m). Default 90s, hyper-util's
                        pool_idle_timeout
  --max-requests <n>    the most requests sent on one connection. Default 1000
  -h, --help            this text

The idle timeout is measured on up to 16 connections at once, idle from 0.3 s to --max-idle,
then refined between the two closest when the server drops connections silently; the requests
per connection on one more, in parallel (30 s at most). Each connect and each response may
take 5 s. The run takes about twice the idle timeout, and at most 2 x --max-idle + 45 s, or
55 s if that is more.
Exit status: 0 measured, 1 the server could not be probed, 2 wrong arguments.";

struct Args {
    url: String,
    json: bool,
    options: Options,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut url = None;
    let mut json = false;
    let mut options = Options::default();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value (see --help)"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--json" => json = true,
            "--max-idle" => {
                let text = value("--max-idle")?;
                options.max_idle = parse_duration(&text)
                    .ok_or_else(|| format!("--max-idle: not a duration: {text:?} (try 90s)"))?;
            }
            "--max-requests" => {
                let text = value("--max-requests")?;
                options.max_requests = text
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--max-requests: not a count: {text:?}"))?;
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if url.is_some() => return Err(format!("one URL only, not also {arg:?}")),
            _ => url = Some(arg),
        }
    }
    let url = url.ok_or("a URL is needed: probe http://host:port/ (see --help)")?;
    Ok(Some(Args { url, json, options }))
}

/// A progress line on standard error, when it is a terminal.
fn show_progress(url: String, progress: Arc<Progress>) -> Option<tokio::task::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let started = Instant::now();
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let round = progress.idle_round_ms.load(Ordering::Relaxed);
            let requests = progress.requests.load(Ordering::Relaxed);
            eprint!(
                "\r\x1b[Kprobing {url}: {:.0} s; idle probes up to {:.1} s; {requests} requests \
                 on one connection",
                started.elapsed().as_secs_f64(),
                round as f64 / 1000.0
            );
            let _ = std::io::stderr().flush();
        }
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("probe: {message}");
            return ExitCode::from(2);
        }
    };
    let target = match Target::resolve(&args.url).await {
        Ok(target) => target,
        Err(error) => {
            eprintln!("probe: {error}");
            return ExitCode::from(if matches!(error, measure::ProbeError::Url(_)) {
                2
            } else {
                1
            });
        }
    };
    let progress = Arc::new(Progress::default());
    let line = show_progress(args.url.clone(), Arc::clone(&progress));
    // The structure of the probe bounds its run; this bounds it whatever happens.
    let bound = args.options.longest_run();
    let result = tokio::time::timeout(bound, probe(&target, &args.options, &progress)).await;
    if let Some(line) = line {
        line.abort();
        eprint!("\r\x1b[K");
    }
    match result {
        Ok(Ok(findings)) => {
            print!("{}", output::text(&findings));
            if args.json {
                println!("{}", output::json(&findings));
            }
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => {
            eprintln!("probe: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("probe: gave up after {bound:?}");
            ExitCode::FAILURE
        }
    }
}

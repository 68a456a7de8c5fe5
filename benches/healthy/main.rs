//! What each client costs per request on a healthy server: a real hyper server in another
//! process, over loopback, HTTP/1.1 and HTTP/2.
//!
//! Run with `cargo bench --bench healthy --features hyper-util` (about a minute; `-- --quick`
//! for a rough run in a few seconds). It prints Markdown tables, the machine and its load; progress
//! goes to stderr.
//!
//! The benchmark starts its own executable again as the server (`--serve`, see `server.rs`), so
//! that client and server share no runtime, thread or allocator. Every client has a hyper-util
//! legacy `Client` (its own pool) of its own. In each round every client sends one block of
//! requests, in an order rotated from round to round; each figure is the median, over the
//! rounds, of the client's block time divided by the bare client's block time in the same round.
//! So a drift of the machine's speed between rounds (another build starting) cancels out, and
//! what is left is what the layers add.
//!
//! Workloads: GET and POST (64-byte JSON body, never retried by `tower::retry`'s policy unless it
//! fails, retryable by the standard policy before it is sent), sequential or 8 in flight (8 tasks
//! taking the requests of the block in turn), HTTP/1.1 or HTTP/2 (prior knowledge); each
//! response has a 128-byte body, read to its end. The many-hosts table sends sequential GETs
//! over HTTP/1.1 to 1, 100 or 4,096 hosts in turn (names that resolve to 127.0.0.1: one pool
//! key, one connection and one registry entry each), after one request to each host.
//!
//! Options (after `--`): `--rounds N` (default 200), `--block N` requests per block (default
//! 100), `--quick` (20 rounds, at most 100 hosts), `--threads N` (a multi-thread runtime of N
//! workers for the clients; default: one current-thread runtime), `--clients a,b` (keys:
//! bare, tower-retry, reset-retry, backoff, reset-retry-backoff, fresh-connection, stack,
//! resume-stack; the bare client is always measured), `--workloads WORD` (only the workloads
//! whose name contains it, e.g. `HTTP/2`, `POST`, `hosts`), `--hosts 1,100,4096`, `--profile
//! KEY` (only that client, no table: to run under a profiler, which then counts everything the
//! client process does for the requests it prints), `--sizes` (the size of each client and of
//! its response future, then stop), `--no-pin` (by default, with one client thread, client and
//! server share the last core, pinned with `taskset` where it is installed; see `main`).

#[path = "../../tests/support/instant_service.rs"]
mod instant_service;
#[path = "../../tests/support/loopback_resolver.rs"]
mod loopback_resolver;
#[path = "../support/machine.rs"]
mod machine;

mod clients;
mod server;

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use tokio::time::Instant;

use crate::clients::{ClientKind, Lineup, Protocol, Target};
use crate::server::ServerProcess;

/// Requests in flight in the concurrent workloads.
const IN_FLIGHT: usize = 8;
/// The clients measured against many hosts: those whose state is per host, and the bare one.
const MANY_HOSTS_CLIENTS: [ClientKind; 4] = [
    ClientKind::Bare,
    ClientKind::ResetRetryBackoff,
    ClientKind::FreshConnection,
    ClientKind::Stack,
];

#[derive(Debug)]
struct Options {
    rounds: usize,
    block: usize,
    threads: usize,
    clients: Vec<ClientKind>,
    workloads: Option<String>,
    hosts: Vec<usize>,
    /// Only this client, no table: for a profiler.
    profile: bool,
    /// Print the sizes of the clients and their futures, and stop.
    sizes: bool,
    /// Pin the client and the server to a core each.
    pin: bool,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            rounds: 200,
            block: 100,
            threads: 0,
            clients: ClientKind::ALL.to_vec(),
            workloads: None,
            hosts: vec![1, 100, 4096],
            profile: false,
            sizes: false,
            pin: true,
        };
        let number = |value: Option<String>, name: &str| {
            value
                .and_then(|value| value.parse::<usize>().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // Passed by `cargo bench`.
                "--bench" => {}
                "--rounds" => options.rounds = number(args.next(), "--rounds")?.max(1),
                "--block" => options.block = number(args.next(), "--block")?.max(1),
                "--threads" => options.threads = number(args.next(), "--threads")?,
                "--quick" => {
                    options.rounds = 20;
                    options.hosts.retain(|hosts| *hosts <= 100);
                }
                "--clients" => {
                    let list = args.next().ok_or("--clients needs a list")?;
                    let mut clients = vec![ClientKind::Bare];
                    for key in list.split(',') {
                        let kind = ClientKind::ALL
                            .into_iter()
                            .find(|kind| kind.key() == key)
                            .ok_or_else(|| format!("no client {key:?}"))?;
                        if !clients.contains(&kind) {
                            clients.push(kind);
                        }
                    }
                    options.clients = clients;
                }
                "--profile" => {
                    let key = args.next().ok_or("--profile needs a client")?;
                    let kind = ClientKind::ALL
                        .into_iter()
                        .find(|kind| kind.key() == key)
                        .ok_or_else(|| format!("no client {key:?}"))?;
                    options.clients = vec![kind];
                    options.profile = true;
                }
                "--workloads" => options.workloads = args.next(),
                "--sizes" => options.sizes = true,
                "--no-pin" => options.pin = false,
                "--hosts" => {
                    let list = args.next().ok_or("--hosts needs a list")?;
                    options.hosts = list
                        .split(',')
                        .map(|hosts| hosts.parse::<usize>().map(|n| n.max(1)))
                        .collect::<Result<_, _>>()
                        .map_err(|_| "--hosts needs numbers")?;
                }
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(options)
    }

    fn wants(&self, workload: &Workload) -> bool {
        self.workloads
            .as_ref()
            .is_none_or(|word| workload.name().contains(word.as_str()))
    }
}

/// One column of a table.
#[derive(Debug, Clone)]
struct Workload {
    protocol: Protocol,
    method: Method,
    in_flight: usize,
    hosts: usize,
    /// A column of the many-hosts table, named by its number of hosts.
    by_hosts: bool,
}

impl Workload {
    fn name(&self) -> String {
        if self.by_hosts {
            let hosts = self.hosts;
            return if hosts == 1 {
                "1 host".to_owned()
            } else {
                format!("{hosts} hosts")
            };
        }
        let concurrency = match self.in_flight {
            1 => "sequential".to_owned(),
            n => format!("{n} in flight"),
        };
        format!("{} {}, {concurrency}", self.protocol.name(), self.method)
    }
}

/// What one workload measured: per client, one block time per round.
struct Measured {
    workload: Workload,
    times: Vec<(ClientKind, Vec<Duration>)>,
    requests: usize,
}

impl Measured {
    fn of(&self, kind: ClientKind) -> Option<&[Duration]> {
        self.times
            .iter()
            .find(|(client, _)| *client == kind)
            .map(|(_, times)| &times[..])
    }

    /// The bare client's median time per request.
    fn bare_per_request(&self) -> Duration {
        let bare = self.of(ClientKind::Bare).expect("the bare client");
        let mut times: Vec<f64> = bare.iter().map(Duration::as_secs_f64).collect();
        Duration::from_secs_f64(quantile(&mut times, 0.5) / self.requests as f64)
    }

    /// The quartiles and median of the per-round ratios of `kind` to the bare client.
    fn ratios(&self, kind: ClientKind) -> Option<[f64; 3]> {
        let bare = self.of(ClientKind::Bare)?;
        let mut ratios: Vec<f64> = self
            .of(kind)?
            .iter()
            .zip(bare)
            .map(|(time, bare)| time.as_secs_f64() / bare.as_secs_f64())
            .collect();
        Some([0.25, 0.5, 0.75].map(|q| quantile(&mut ratios, q)))
    }
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let index = ((values.len() - 1) as f64 * q).round() as usize;
    values[index]
}

/// Runs `workload` through `clients`: a warm-up block each, then the rounds.
async fn measure(
    lineup: &Lineup,
    workload: Workload,
    port: u16,
    clients: &[ClientKind],
    options: &Options,
) -> Measured {
    let template = Target::new(workload.method.clone(), workload.hosts, port);
    let targets: Vec<Arc<Target>> = clients.iter().map(|_| Arc::new(template.fresh())).collect();
    let in_flight = workload.in_flight;
    // Opens the connections: one per host, or one per request in flight.
    let warm_up = options.block.max(template.hosts());
    for (kind, target) in clients.iter().zip(&targets) {
        lineup.block(*kind, target, warm_up, in_flight).await;
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(options.rounds); clients.len()];
    for round in 0..options.rounds {
        for turn in 0..clients.len() {
            let index = (round + turn) % clients.len();
            let elapsed = lineup
                .block(clients[index], &targets[index], options.block, in_flight)
                .await;
            times[index].push(elapsed);
        }
    }
    Measured {
        times: clients.iter().copied().zip(times).collect(),
        workload,
        requests: options.block,
    }
}

/// How long requests go out before anything is measured, so that the allocators, the caches
/// and (with `--no-pin`) the scheduler's placement of the two processes have settled.
const SETTLE: Duration = Duration::from_millis(500);

async fn run(options: &Options, ports: (u16, u16)) -> (Vec<Measured>, Vec<Measured>) {
    if !options.profile {
        let settling = Lineup::new(Protocol::Http1);
        let target = Arc::new(Target::new(Method::GET, 1, ports.0));
        let started = Instant::now();
        while started.elapsed() < SETTLE {
            settling
                .block(ClientKind::Bare, &target, options.block, 1)
                .await;
        }
    }

    let mut one_host = Vec::new();
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let lineup = Lineup::new(protocol);
        let port = match protocol {
            Protocol::Http1 => ports.0,
            Protocol::Http2 => ports.1,
        };
        for in_flight in [1, IN_FLIGHT] {
            for method in [Method::GET, Method::POST] {
                let workload = Workload {
                    protocol,
                    method,
                    in_flight,
                    hosts: 1,
                    by_hosts: false,
                };
                if !options.wants(&workload) {
                    continue;
                }
                let started = Instant::now();
                let measured = measure(&lineup, workload, port, &options.clients, options).await;
                eprintln!(
                    "healthy: {}: {:.1} s",
                    measured.workload.name(),
                    started.elapsed().as_secs_f64()
                );
                one_host.push(measured);
            }
        }
    }

    let mut many_hosts = Vec::new();
    let clients: Vec<ClientKind> = MANY_HOSTS_CLIENTS
        .into_iter()
        .filter(|kind| options.clients.contains(kind))
        .collect();
    if clients.is_empty() {
        return (one_host, many_hosts);
    }
    // Every client keeps a connection per host open, and so does the server.
    let limit = machine::open_files_limit().unwrap_or(1024) as usize;
    for &hosts in &options.hosts {
        let workload = Workload {
            protocol: Protocol::Http1,
            method: Method::GET,
            in_flight: 1,
            hosts,
            by_hosts: true,
        };
        if !options.wants(&workload) {
            continue;
        }
        if hosts * clients.len() + 64 > limit {
            eprintln!(
                "healthy: {hosts} hosts skipped: {} clients need {} open files, the limit is \
                 {limit} (ulimit -n)",
                clients.len(),
                hosts * clients.len()
            );
            continue;
        }
        let started = Instant::now();
        let lineup = Lineup::new(Protocol::Http1);
        let measured = measure(&lineup, workload, ports.0, &clients, options).await;
        eprintln!(
            "healthy: {}: {:.1} s",
            measured.workload.name(),
            started.elapsed().as_secs_f64()
        );
        many_hosts.push(measured);
    }
    (one_host, many_hosts)
}

fn print_table(title: &str, measured: &[Measured], clients: &[ClientKind]) {
    if measured.is_empty() {
        return;
    }
    println!("{title}\n");
    let mut header = "| client |".to_owned();
    let mut rule = "|---|".to_owned();
    for column in measured {
        header += &format!(" {} |", column.workload.name());
        rule += "---|";
    }
    println!("{header}\n{rule}");
    let mut bare = "| hyper-util legacy `Client`: time per request |".to_owned();
    for column in measured {
        bare += &format!(" {:.1} µs |", column.bare_per_request().as_secs_f64() * 1e6);
    }
    println!("{bare}");
    for &kind in clients.iter().filter(|kind| **kind != ClientKind::Bare) {
        if measured.iter().all(|column| column.of(kind).is_none()) {
            continue;
        }
        let mut row = format!("| {} |", kind.name());
        for column in measured {
            match column.ratios(kind) {
                Some([low, median, high]) => {
                    row += &format!(" {median:.3} <sub>{low:.3}–{high:.3}</sub> |");
                }
                None => row += " — |",
            }
        }
        println!("{row}");
    }
    println!();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--serve") {
        return Ok(server::run()?);
    }
    let options = Options::parse(args)?;
    if options.sizes {
        let lineup = Lineup::new(Protocol::Http1);
        println!("| client | response future | service |\n|---|---|---|");
        for kind in ClientKind::ALL {
            let (future, service) = lineup.sizes(kind);
            println!("| {} | {future} bytes | {service} bytes |", kind.name());
        }
        return Ok(());
    }
    let load_before = machine::load_average();
    // Left to itself, the scheduler moves client and server between cores as other work comes
    // and goes. On one core, a sequential request is two context switches; on two, it is two
    // wake-ups of the other core, which on a virtual machine whose idle cores halt costs tens
    // of microseconds more: the block times of one run mixed both (19 and 60 µs per request).
    // Sharing one core, each request costs its CPU time and the same switches, and the figures
    // are what the layers add to that. The server inherits the client's core.
    let cores = machine::cores();
    let pinned = options.pin && options.threads == 0 && machine::pin(std::process::id(), cores - 1);
    let server = ServerProcess::start()?;
    let mut runtime = if options.threads == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(options.threads);
        builder
    };
    let runtime = runtime.enable_all().build()?;
    let started = Instant::now();
    let (one_host, many_hosts) = runtime.block_on(run(&options, server.ports));
    drop(runtime);
    drop(server);
    eprintln!(
        "healthy: done in {:.0} s\n",
        started.elapsed().as_secs_f64()
    );
    if options.profile {
        let requests: usize = one_host
            .iter()
            .chain(&many_hosts)
            .map(|measured| {
                (options.rounds * options.block)
                    .saturating_add(measured.workload.hosts.max(options.block))
            })
            .sum();
        println!("{} requests through {}", requests, options.clients[0].key());
        return Ok(());
    }

    let runtime = match options.threads {
        0 => "one current-thread tokio runtime".to_owned(),
        n => format!("a multi-thread tokio runtime of {n} workers"),
    };
    let placement = if pinned {
        format!("; client and server share CPU {} (`taskset`)", cores - 1)
    } else {
        String::new()
    };
    println!(
        "Machine: {} cores, {}, {} {}; load average (1, 5, 15 min) {} before the run, {} after. \
         The server: hyper (HTTP/1.1 and HTTP/2 prior knowledge, 128-byte bodies) in a process \
         of its own on one current-thread runtime; the clients: {runtime}{placement}; over \
         127.0.0.1, TCP_NODELAY on both sides.\n",
        cores,
        machine::cpu_model(),
        std::env::consts::OS,
        std::env::consts::ARCH,
        load_before,
        machine::load_average(),
    );
    println!(
        "Each figure: the median over {} rounds of the client's time for a block of {} requests \
         divided by the bare client's in the same round (small: the quartiles); the clients take \
         turns in an order rotated every round.\n",
        options.rounds, options.block
    );
    print_table(
        "One host: time per request relative to the bare client",
        &one_host,
        &options.clients,
    );
    print_table(
        "Many hosts, HTTP/1.1 GET, sequential, to each host in turn: time per request relative \
         to the bare client",
        &many_hosts,
        &options.clients,
    );
    Ok(())
}

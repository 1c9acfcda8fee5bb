//! `loadgen`: a signaling load generator for Duet and two reference relays.
//!
//! It opens N WebSocket connections (spread over several 127.0.0.x source addresses), pairs them,
//! and drives trickle-ICE `candidate` messages through the relay, open-loop at a fixed total rate
//! or closed-loop as fast as the relay answers. Every message carries its sequence number, sender,
//! recipient and send time (nanoseconds since an `Instant` shared by the whole process), so the
//! receiver measures one-way latency and counts lost, duplicated and misrouted messages.
//! `--mode idle` only holds the connections and reports the server's memory per connection.
//! Several targets (instances of one service sharing a database and Redis) share the
//! connections; `--placement` puts each pair's ends on one instance or on two.
//!
//! Every loop is bounded in time and only loopback (127.0.0.0/8) targets are accepted.

#![recursion_limit = "256"]

mod accounts;
mod cli;
mod connections;
mod load;
mod report;
mod shared;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;

use cli::{Args, Mode, Plan, check_loopback};
use report::{LoadStart, Readings, cpu_each, rss_total};
use shared::{EPOCH, Shared};

fn main() {
    let args = Args::parse();
    if let Err(error) = check_loopback(&args.target) {
        eprintln!("loadgen: {error}");
        std::process::exit(2);
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder.enable_all().build().expect("tokio runtime");
    EPOCH.get_or_init(Instant::now);
    let code = runtime.block_on(async {
        match run(args).await {
            Ok(report) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                let clean = report["lost"] == 0
                    && report["duplicated"] == 0
                    && report["misrouted"] == 0
                    && report["errors"] == 0;
                if clean { 0 } else { 1 }
            }
            Err(error) => {
                eprintln!("loadgen: {error}");
                2
            }
        }
    });
    // Connections still open are torn down with the process.
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

/// One run: accounts, connections and their settle, the load, then the report.
async fn run(args: Args) -> Result<serde_json::Value, String> {
    let plan = Plan::new(&args)?;
    connections::ensure_file_limit(args.conns)?;
    let setup_deadline = Instant::now() + Duration::from_secs(args.setup_timeout);
    let shared = Arc::new(Shared::new(args));
    let args = &shared.args;

    // 1. Accounts (Duet only).
    let accounts = accounts::set_up(args, plan.users, setup_deadline).await?;
    let server_rss_before = rss_total(&args.server_pid);

    // 2. Connections. Each one's reader starts at once: Duet queues presence frames for it.
    let ramp_up_cpu_before = cpu_each(&args.server_pid);
    let windows = load::windows(plan.active, args.window);
    let mut conns =
        connections::open_all(&shared, &plan, &accounts.cookies, &windows, setup_deadline).await;
    let ramp_up = load::settle(&shared, ramp_up_cpu_before).await;

    // 3. Load.
    let load_start = LoadStart::read(args);
    if args.mode != Mode::Idle {
        load::drive(
            &shared,
            plan.active,
            &mut conns.sinks,
            &windows,
            &accounts.http,
        )
        .await;
    }
    let load = load_start.finish(args);
    shared.stop_reading.store(true, Ordering::Relaxed);

    // 4. Report.
    let readings = Readings {
        register_secs: accounts.register_secs,
        contacts_secs: accounts.contacts_secs,
        server_rss_before,
        connected: conns.connected,
        connect_secs: conns.connect_secs,
        ramp_up,
        load,
    };
    let report = report::build(&shared, &plan, &readings);
    if let Some(path) = &args.json_out {
        report::write(&report, path)?;
    }
    conns.close();
    Ok(report)
}

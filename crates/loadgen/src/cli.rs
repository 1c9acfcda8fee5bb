//! The command line: what to run against which server, and how hard.

use std::net::{IpAddr, SocketAddr};

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Flavour {
    /// Duet: register over HTTP, `GET /video` with the session cookie, `name`/`from` envelope.
    Duet,
    /// The minimal reference relay (`minimal-relay`): `/?name=ID`, routes by `name`.
    Minimal,
    /// PeerServer (npm `peer`): `/peerjs?key=peerjs&id=ID&token=T`, `dst`/`src` envelope.
    Peerjs,
}

/// How a Duet or minimal-relay frame is shaped (PeerServer has its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Envelope {
    /// Duet's client: `type`, `name`, `sdp`, `call_id`, no `from`.
    Duet,
    /// The seed's pages: `type`, `sdp`, `name` and the sender's own `from`, no `call_id`.
    Seed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Hold the connections, send nothing; report memory.
    Idle,
    /// Each pair keeps `--window` messages in flight per direction, as fast as they come back.
    Closed,
    /// A fixed total rate (`--rate` messages/s) spread evenly over all senders.
    Open,
}

/// Where the two ends of each active pair open their sockets when there are several targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Placement {
    /// Both ends on the same instance; pairs spread round-robin over the instances.
    Local,
    /// Each end on a different instance (pair p: instances p and p+1, modulo their number), so
    /// every relayed frame crosses from one instance to another.
    Cross,
    /// Even pairs local, odd pairs cross, both spread evenly: local and cross-instance latency
    /// measured in the same run, under the same load.
    Mixed,
}

#[derive(Debug, Parser)]
#[command(name = "loadgen", about = "Signaling load generator (loopback only)")]
pub struct Args {
    /// Protocol spoken by the server under test.
    #[arg(long, value_enum, default_value = "duet")]
    pub flavour: Flavour,
    /// Server address; must be in 127.0.0.0/8. Several, comma-separated (`--targets`,
    /// `--servers`), are instances of one service: connections are spread over them (see
    /// `--placement`); accounts are made through the first.
    #[arg(
        long,
        alias = "targets",
        alias = "servers",
        value_delimiter = ',',
        default_value = "127.0.0.1:8080"
    )]
    pub target: Vec<SocketAddr>,
    /// With several targets: whether each pair's ends share an instance or not.
    #[arg(long, value_enum, default_value = "local")]
    pub placement: Placement,
    #[arg(long, value_enum, default_value = "closed")]
    pub mode: Mode,
    /// Frame shape for Duet and the minimal relay.
    #[arg(long, value_enum, default_value = "duet")]
    pub envelope: Envelope,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,
    /// Connections that take part in the relay load (paired 0-1, 2-3, …); the rest stay idle.
    /// Default: all of them (idle mode: none).
    #[arg(long)]
    pub active: Option<usize>,
    /// Distinct users shared by the idle connections (Duet only; every active connection gets a
    /// user of its own). Default: one user per connection.
    #[arg(long)]
    pub idle_users: Option<usize>,
    /// Duet only: make each user a mutual contact of its K nearest users on a ring (K/2 each
    /// side) before connecting, so that presence scoped to contacts has contacts to scope to.
    #[arg(long, default_value_t = 0)]
    pub contacts: usize,
    /// Contact requests (and acceptances) in flight at once while setting up `--contacts`.
    #[arg(long, default_value_t = 32)]
    pub contact_concurrency: usize,
    /// Total messages per second in open loop.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u64,
    /// Messages in flight per direction of a pair in closed loop.
    #[arg(long, default_value_t = 4)]
    pub window: usize,
    /// Seconds of measured load (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Seconds to wait after the load for messages still in flight.
    #[arg(long, default_value_t = 2)]
    pub drain: u64,
    /// Seconds to hold idle connections before reading the server's memory.
    #[arg(long, default_value_t = 3)]
    pub settle: u64,
    /// Source addresses 127.0.0.1 ..= 127.0.0.K; default: enough for 20,000 connections each.
    #[arg(long)]
    pub sources: Option<u8>,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Registrations in flight at once (Duet hashes two passwords at a time by default).
    #[arg(long, default_value_t = 8)]
    pub register_concurrency: usize,
    /// Overall deadline in seconds for setup (registering and connecting).
    #[arg(long, default_value_t = 600)]
    pub setup_timeout: u64,
    /// Server process ids (comma-separated, one per instance), to report their resident memory
    /// (VmRSS) before and after connecting and the CPU they used (summed, and each).
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Redis's process id, to report the CPU it used during the load.
    #[arg(long)]
    pub redis_pid: Option<u32>,
    /// Duet only: this many logins, all at once, `--burst-at` seconds into the measured load;
    /// latency is reported separately for messages sent while they run.
    #[arg(long, default_value_t = 0)]
    pub login_burst: usize,
    #[arg(long, default_value_t = 3)]
    pub burst_at: u64,
    /// Prefix for user names (so repeated runs against one server do not collide).
    #[arg(long, default_value = "lg")]
    pub prefix: String,
    /// Worker threads of the generator's runtime (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json_out: Option<std::path::PathBuf>,
    /// A label copied into the report.
    #[arg(long, default_value = "")]
    pub label: String,
}

pub fn check_loopback(targets: &[SocketAddr]) -> Result<(), String> {
    if targets.is_empty() {
        return Err("no target".into());
    }
    for target in targets {
        match target.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => {}
            other => {
                return Err(format!(
                    "refusing target {other}: only 127.0.0.0/8 is allowed"
                ));
            }
        }
    }
    Ok(())
}

/// What the arguments come to: which connections carry load, and who each connection is.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Connections that take part in the relay load: an even number, paired 0-1, 2-3, …
    pub active: usize,
    idle_users: usize,
    /// Distinct users behind the connections.
    pub users: usize,
    /// Source addresses 127.0.0.1 ..= 127.0.0.sources.
    pub sources: u8,
    /// Instances (targets) the connections are spread over.
    pub instances: usize,
    pub placement: Placement,
}

impl Plan {
    pub fn new(args: &Args) -> Result<Plan, String> {
        let active = match args.mode {
            Mode::Idle => args.active.unwrap_or(0),
            _ => args.active.unwrap_or(args.conns),
        }
        .min(args.conns)
            / 2
            * 2;
        if args.mode != Mode::Idle && active < 2 {
            return Err("need at least two active connections".into());
        }
        if args.login_burst > 0 && args.flavour != Flavour::Duet {
            return Err("--login-burst needs --flavour duet".into());
        }
        if args.contacts > 0 && args.flavour != Flavour::Duet {
            return Err("--contacts needs --flavour duet".into());
        }
        let instances = args.target.len().max(1);
        if args.placement != Placement::Local && instances < 2 {
            return Err("--placement cross or mixed needs at least two targets".into());
        }
        let idle_conns = args.conns - active;
        let idle_users = args
            .idle_users
            .unwrap_or(idle_conns)
            .clamp(1, idle_conns.max(1));
        let users = if idle_conns > 0 {
            active + idle_users
        } else {
            active
        };
        let sources = args
            .sources
            // 28k ephemeral ports per address, less those still in TIME_WAIT from earlier runs.
            .unwrap_or_else(|| (args.conns / 4_000 + 1).clamp(1, 250) as u8)
            .max(1);
        Ok(Plan {
            active,
            idle_users,
            users,
            sources,
            instances,
            placement: args.placement,
        })
    }

    /// Whether active connection `conn`'s pair has its ends on two instances.
    pub fn is_cross(&self, conn: usize) -> bool {
        let pair = conn / 2;
        match self.placement {
            Placement::Local => false,
            Placement::Cross => self.instances > 1,
            Placement::Mixed => self.instances > 1 && pair % 2 == 1,
        }
    }

    /// The instance (index into the targets) connection `conn` opens its socket on. Active
    /// pairs are spread evenly; an end of a cross pair sits on the next instance from the other.
    /// Idle connections go round-robin.
    pub fn instance(&self, conn: usize) -> usize {
        let n = self.instances.max(1);
        if conn >= self.active {
            return conn % n;
        }
        let pair = conn / 2;
        // Mixed: local and cross pairs alternate, each kind spread over all instances.
        let slot = match self.placement {
            Placement::Mixed => pair / 2,
            _ => pair,
        };
        let first = slot % n;
        if conn % 2 == 1 && self.is_cross(conn) {
            (first + 1) % n
        } else {
            first
        }
    }

    /// The user behind connection `conn`. Active connection i is user `prefix i`; idle
    /// connection j shares user `prefix (active + j % idle_users)`.
    pub fn identity(&self, conn: usize) -> usize {
        if conn < self.active {
            conn
        } else {
            self.active + (conn - self.active) % self.idle_users
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(target: &str) -> Result<(), String> {
        check_loopback(&[target.parse().unwrap()])
    }

    #[test]
    fn only_loopback_targets() {
        assert!(check("127.0.0.1:8080").is_ok());
        assert!(check("127.3.2.1:80").is_ok());
        assert!(check("10.0.0.1:8080").is_err());
        assert!(check("0.0.0.0:8080").is_err());
        assert!(check("[::1]:8080").is_err());
        let mixed = [
            "127.0.0.1:1".parse().unwrap(),
            "10.0.0.1:1".parse().unwrap(),
        ];
        assert!(check_loopback(&mixed).is_err());
        assert!(check_loopback(&[]).is_err());
    }

    fn plan(targets: &str, placement: &str, conns: usize) -> Plan {
        let args = Args::parse_from([
            "loadgen",
            "--targets",
            targets,
            "--placement",
            placement,
            "--conns",
            &conns.to_string(),
        ]);
        Plan::new(&args).unwrap()
    }

    #[test]
    fn one_target_still_parses_as_before() {
        let args = Args::parse_from(["loadgen", "--target", "127.0.0.1:9000", "--server-pid", "7"]);
        assert_eq!(args.target, vec!["127.0.0.1:9000".parse().unwrap()]);
        assert_eq!(args.server_pid, vec![7]);
        let plan = Plan::new(&args).unwrap();
        assert!((0..args.conns).all(|c| plan.instance(c) == 0 && !plan.is_cross(c)));
    }

    #[test]
    fn pairs_are_placed_as_asked_and_spread_evenly() {
        let targets = "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,127.0.0.1:4";
        for (placement, cross_pairs) in [("local", 0), ("cross", 48), ("mixed", 24)] {
            let plan = plan(targets, placement, 96);
            let mut load = [0usize; 4];
            let mut crossing = 0;
            for pair in 0..48 {
                let (a, b) = (plan.instance(2 * pair), plan.instance(2 * pair + 1));
                assert_eq!(a != b, plan.is_cross(2 * pair), "{placement} pair {pair}");
                assert_eq!(plan.is_cross(2 * pair), plan.is_cross(2 * pair + 1));
                crossing += usize::from(a != b);
                load[a] += 1;
                load[b] += 1;
            }
            assert_eq!(crossing, cross_pairs, "{placement}");
            assert_eq!(load, [24; 4], "{placement}");
        }
        let mixed = plan("127.0.0.1:1,127.0.0.1:2", "mixed", 8);
        let local_on: Vec<usize> = [0, 4].iter().map(|&c| mixed.instance(c)).collect();
        assert_eq!(local_on, vec![0, 1], "local pairs use both instances");
    }

    #[test]
    fn cross_needs_two_targets() {
        let args = Args::parse_from(["loadgen", "--placement", "cross"]);
        assert!(Plan::new(&args).is_err());
    }
}

//! The command line: one subcommand per thing an operator does.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// carelog — an event-sourced, encrypted, auditable store for clinical data.
#[derive(Debug, Parser)]
#[command(name = "carelog", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Json, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API, the relay and the projectors (DATABASE_URL, NATS_URL,
    /// CARELOG_MASTER_KEY, CARELOG_TOKEN_KEY).
    Serve {
        /// Run no projectors in this process (API-only nodes; `carelog project` runs them).
        #[arg(long)]
        no_projectors: bool,
    },
    /// Run the projector workers only, one per projection, until Ctrl-C or SIGTERM
    /// (DATABASE_URL, NATS_URL, CARELOG_MASTER_KEY, CARELOG_TOKEN_KEY).
    Project,
    /// Apply the database migrations (DATABASE_URL).
    Migrate,
    /// Run the start-up checks (configuration, master key, database) without serving.
    Check,
    /// The embedded default: private PostgreSQL and NATS under a data directory,
    /// development keys, migrations; stops everything on Ctrl-C.
    Dev {
        /// Where the private services and development keys live.
        #[arg(long, env = "CARELOG_DEV_DIR", default_value = ".carelog")]
        data_dir: PathBuf,
    },
    /// User accounts (the first SUPER:ADMIN).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Master and signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Recompute the hash chain of every stream (or one); exit 1 naming the first broken
    /// event of each broken stream.
    Verify {
        /// Only this stream (e.g. `patient-0190f3a4-…`).
        #[arg(long)]
        stream: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Check the checkpoints' signatures with this public key (PASERK `k4.public.…`, from
        /// `carelog checkpoint --public-key` or `GET /api/audit/checkpoints/key`) instead of
        /// the key derived with CARELOG_MASTER_KEY.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Take a signed checkpoint of the whole log now (DATABASE_URL, CARELOG_MASTER_KEY);
    /// `serve` also takes one every CARELOG_CHECKPOINT_EVERY events (default 10000).
    Checkpoint {
        /// Print the checkpoint public key (PASERK k4.public and its id) instead.
        #[arg(long)]
        public_key: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a read model (or all) from the event log, swapping it in atomically;
    /// queries keep working meanwhile.
    Rebuild {
        /// The projection (e.g. `audit_feed`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Every projection.
        #[arg(long)]
        all: bool,
    },
    /// The projections' dead-letter queue.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Measure throughput and latency; writes a table into docs/benchmarks.md.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

/// User accounts.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create an account with a platform or base role; the password is read from stdin.
    Create(crate::cmd::users::CreateArgs),
}

/// Key management.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new master key (64 hex) and a new PASERK k4.secret token-signing key.
    Generate,
    /// Re-wrap every data key under a new master key (read from standard input, 64 hex);
    /// events are not touched. CARELOG_MASTER_KEY is the current key.
    RotateMaster {
        /// Read the new master key from this file instead of standard input.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Sealed, chained, gap-safe appends vs raw single-row INSERT commits.
    Append(crate::cmd::bench::AppendArgs),
    /// Rebuild speed of audit_feed (read, decrypt, apply) from a log of ≥ 1M sealed
    /// events vs a plain read and a server-side INSERT … SELECT.
    Rebuild(crate::cmd::bench::RebuildArgs),
    /// End-to-end projection lag (append → visible in audit_feed through the relay, NATS
    /// and the projector) at a steady half of the maximum append rate.
    Lag(crate::cmd::bench::LagArgs),
    /// PHI read latency (a patient's demographics with its access event) at 1 and 64
    /// concurrent readers vs a plain read of the patient's stream.
    Reads(crate::cmd::bench::ReadsArgs),
    /// Audit search latency (the store's search and count) over a 1M-row audit_feed vs a
    /// primary-key look-up and a full count(*).
    AuditSearch(crate::cmd::bench::AuditSearchArgs),
}

/// The dead-letter queue. Exit codes: 0 done, 1 the event still fails, 2 bad input or no
/// such entry.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List the dead letters (failed and waiting), in position order (DATABASE_URL).
    List {
        /// Only this projection's.
        #[arg(long)]
        projection: Option<String>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Re-apply a failed event, then the events of its stream waiting behind it; recorded
    /// as a DlqEntryRetried event with the operator as actor.
    Retry {
        /// The entry's id (from `dlq list`).
        id: uuid::Uuid,
        /// Why (recorded in the audit event; at most 500 characters).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Drop a failed event (never applied) and release the events waiting behind it;
    /// recorded as a DlqEntryDiscarded event with the operator as actor.
    Discard {
        /// The entry's id (from `dlq list`).
        id: uuid::Uuid,
        /// Why (recorded in the audit event; at most 500 characters).
        #[arg(long)]
        reason: Option<String>,
    },
}

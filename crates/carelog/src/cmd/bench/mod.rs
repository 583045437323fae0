//! `carelog bench …`: what carelog costs, each measured against a plain-PostgreSQL
//! floor on the same machine in the same run.
//!
//! - `append`: sealed, chained, gap-safe appends through the group-commit event store,
//!   against one single-row `INSERT` committed on its own. For each writer count the raw
//!   baseline runs first, then carelog.
//! - `rebuild` ([`rebuild`]): a rebuild of `audit_feed` (read, decrypt, apply) from a log
//!   of ≥ 1M sealed events, against a plain read of the log and a server-side
//!   `INSERT … SELECT` of the same rows.
//! - `lag` ([`lag`]): end-to-end projection lag (append → row visible in `audit_feed`,
//!   through the relay, JetStream and the projector) at a steady half of the maximum
//!   append rate, split into the relay's hop and the projector's; against the same
//!   steady load of appends with nothing else running, and against a floor: the same load
//!   through a minimal publisher and consumer of the same shape ([`floor`]); with the
//!   host's CPU during each ([`cpu`]: busy share, and CPU per event of carelog, PostgreSQL
//!   and the NATS server).
//! - `reads` ([`reads`]): a PHI read with its access event, at 1 and 64 readers, against
//!   a plain read of the patient's stream.
//! - `audit-search` ([`audit_search`]): the audit queries as the API runs them (page and
//!   capped total) over ≥ 1M `audit_feed` rows, against a primary-key look-up.
//!
//! Everything runs in a scratch database (`carelog_bench_<uuid>`) created through an
//! admin URL and dropped at the end, also when the bench fails or is interrupted (and,
//! for `lag`, under a private NATS prefix whose streams are deleted at the end). The
//! results go to standard output and, unless `--no-write`, into the bench's marked
//! section of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use carelog_commands::clinical::{Caller, Clinical, ClinicalConfig, NewPatient};
use carelog_commands::{Actor, Ctx};
use carelog_crypto::{Keyring, MasterKey};
use carelog_domain::patient::{Demographics, Sex};
use carelog_domain::record::{RecordContent, RecordKind};
use carelog_domain::{
    EventId, EventType, Metadata, NewEvent, PatientId, Role, SchemaVersion, SessionId, StreamId,
    StreamType, StreamVersion, SubjectId, UserId,
};
use carelog_projector::AuditFeed;
use carelog_store::keys::CacheConfig;
use carelog_store::{AppendRequest, EventStore, Expected, GroupCommitConfig, KeyStore, PoolConfig};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, PgPool, Row};
use tokio::task::JoinHandle;
use uuid::Uuid;

mod audit_search;
mod cpu;
mod floor;
mod lag;
mod reads;
mod rebuild;

pub use audit_search::{audit_search, AuditSearchArgs};
pub use lag::{lag, LagArgs};
pub use reads::{reads, ReadsArgs};
pub use rebuild::{rebuild, RebuildArgs};

use rebuild::{bench_metadata, events_per_stream, join_workers_unit};

/// Where a bench's section starts and ends in the output file.
#[derive(Debug, Clone, Copy)]
struct Markers {
    start: &'static str,
    end: &'static str,
}

/// The section of `carelog bench append`.
const APPEND_MARKERS: Markers = Markers {
    start: "<!-- bench:append:start -->",
    end: "<!-- bench:append:end -->",
};
/// Time each measurement runs before it starts counting (connections, first keys).
const WARM_UP: Duration = Duration::from_millis(500);
/// AES-256-GCM nonce (12 bytes) and tag (16 bytes) added to every sealed payload.
const SEAL_OVERHEAD: usize = 28;
/// Connections of carelog's pool: the committers (2 by default) plus key look-ups.
const CARELOG_POOL: u32 = 8;
/// The writer count the ≥ 1.0× target is stated for.
const TARGET_WRITERS: u32 = 32;
/// `{"note":""}`: the JSON around the note of a bench payload.
const JSON_ENVELOPE: usize = 11;
/// Latency histograms cover 1 µs to 60 s.
const MAX_LATENCY_US: u64 = 60_000_000;

/// Options every `carelog bench` command shares.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// Admin connection string: a role that may CREATE DATABASE. The bench runs in a
    /// scratch database created here and dropped at the end.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub database_url: String,
    /// The Markdown file whose bench section is replaced.
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub out: PathBuf,
    /// Only print the results; leave the file alone.
    #[arg(long)]
    pub no_write: bool,
}

impl CommonArgs {
    /// Replaces the bench's section of `--out` with `section`, unless `--no-write`.
    fn write(&self, markers: Markers, section: &str) -> Result<()> {
        if !self.no_write {
            write_section(&self.out, markers, section)?;
            eprintln!("wrote {}", self.out.display());
        }
        Ok(())
    }
}

/// Options of `carelog bench append`.
#[derive(Debug, clap::Args)]
pub struct AppendArgs {
    /// Where it runs and what it writes.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Writer counts to measure, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,8,32,64",
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub writers: Vec<u32>,
    /// Seconds counted per measurement (after a 0.5 s warm-up).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Size of each event's plaintext JSON payload, in bytes.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(16..=1_000_000))]
    pub payload_bytes: u64,
}

/// Runs the bench: scratch database, every measurement, report; drops the database
/// whatever happened.
pub async fn append(args: AppendArgs) -> Result<ExitCode> {
    let scratch = Scratch::create(&args.common.database_url).await?;
    let outcome = until_interrupted(run_in(&scratch, &args)).await;
    let report = scratch.finish(outcome).await?;
    print!("{}", report.table());
    println!();
    println!("{}", report.interpretation());
    args.common.write(APPEND_MARKERS, &report.section())?;
    Ok(ExitCode::SUCCESS)
}

/// `work`, or an error when Ctrl-C comes first (dropping `work`).
async fn until_interrupted<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        outcome = work => outcome,
        signal = tokio::signal::ctrl_c() => match signal {
            Ok(()) => Err(anyhow!("interrupted")),
            Err(e) => Err(anyhow!(e).context("waiting for Ctrl-C")),
        },
    }
}

/// A database created for one bench run.
struct Scratch {
    /// A connection pool on the admin database, used to create and drop the scratch one.
    admin: PgPool,
    /// The scratch database's name.
    name: String,
    /// Connection string of the scratch database.
    url: String,
}

impl Scratch {
    /// Creates `carelog_bench_<uuid>` through `admin_url`.
    async fn create(admin_url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(admin_url)
            .context("--database-url is not a PostgreSQL connection string")?;
        let admin = carelog_store::connect(admin_url, &small_pool(1))
            .await
            .context("connecting to the admin database")?;
        let name = format!("carelog_bench_{}", Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .execute(&admin)
            .await
            .with_context(|| {
                format!("creating scratch database {name} (the --database-url role must be allowed to CREATE DATABASE)")
            })?;
        let url = options.database(&name).to_url_lossy().to_string();
        Ok(Self { admin, name, url })
    }

    /// A pool of `connections` on the scratch database.
    async fn pool(&self, connections: u32) -> Result<PgPool> {
        carelog_store::connect(&self.url, &small_pool(connections))
            .await
            .with_context(|| format!("connecting to scratch database {}", self.name))
    }

    /// Drops the database whatever `outcome` is; the outcome's error comes first.
    async fn finish<T>(self, outcome: Result<T>) -> Result<T> {
        let name = self.name.clone();
        match (outcome, self.drop().await) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(e)) | (Err(e), Ok(())) => Err(e),
            (Err(e), Err(drop_err)) => {
                eprintln!("carelog: could not drop scratch database {name}: {drop_err:#}");
                Err(e)
            }
        }
    }

    /// Drops the database, ending any session still on it.
    async fn drop(self) -> Result<()> {
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        ))
        .execute(&self.admin)
        .await
        .with_context(|| format!("dropping scratch database {}", self.name))?;
        self.admin.close().await;
        Ok(())
    }
}

/// Pool settings with `connections` connections.
fn small_pool(connections: u32) -> PoolConfig {
    PoolConfig {
        max_connections: connections,
        ..PoolConfig::default()
    }
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Migrates the scratch database, describes the machine, then measures every writer
/// count: raw INSERT first, then carelog.
async fn run_in(scratch: &Scratch, args: &AppendArgs) -> Result<Report> {
    let setup = scratch.pool(2).await?;
    carelog_store::migrate(&setup)
        .await
        .context("migrating the scratch database")?;
    sqlx::query("CREATE TABLE raw_inserts (id bigserial PRIMARY KEY, payload bytea NOT NULL)")
        .execute(&setup)
        .await
        .context("creating raw_inserts")?;
    let machine = Machine::describe(&setup).await?;
    setup.close().await;

    let payload_bytes =
        usize::try_from(args.payload_bytes).context("--payload-bytes is too large")?;
    let note = random_ascii(payload_bytes.saturating_sub(JSON_ENVELOPE));
    let plaintext = serde_json::json!({ "note": note });
    let plaintext_len = serde_json::to_vec(&plaintext)
        .context("serialising the bench payload")?
        .len();
    let sealed_len = plaintext_len + SEAL_OVERHEAD;
    let keyring = Keyring::new(MasterKey::generate(), []);
    let window = Duration::from_secs(args.seconds);

    let mut rows = Vec::with_capacity(args.writers.len());
    for &writers in &args.writers {
        let raw = {
            let progress = Progress::start(&format!("raw INSERT, {}", writers_label(writers)));
            let m = measure_raw(scratch, writers, sealed_len, window).await?;
            progress.finish(&m.summary("commits/s"));
            m
        };
        let carelog = {
            let progress = Progress::start(&format!("carelog append, {}", writers_label(writers)));
            let m = measure_carelog(scratch, &keyring, writers, &plaintext, window).await?;
            progress.finish(&format!(
                "{}, {:.1} appends per transaction",
                m.run.summary("appends/s"),
                m.appends_per_tx
            ));
            m
        };
        rows.push(Measured {
            writers,
            raw,
            carelog: carelog.run,
            appends_per_tx: carelog.appends_per_tx,
        });
    }
    Ok(Report {
        machine,
        command: command_line(args),
        plaintext_len,
        sealed_len,
        seconds: args.seconds,
        rows,
    })
}

/// "1 writer", "8 writers".
fn writers_label(n: u32) -> String {
    if n == 1 {
        "1 writer".to_owned()
    } else {
        format!("{n} writers")
    }
}

/// `len` random characters from `[0-9a-f]`.
fn random_ascii(len: usize) -> String {
    let mut out = String::with_capacity(len + 32);
    while out.len() < len {
        let _ = write!(out, "{}", Uuid::new_v4().simple());
    }
    out.truncate(len);
    out
}

/// `len` random bytes.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        out.extend_from_slice(Uuid::new_v4().as_bytes());
    }
    out.truncate(len);
    out
}

/// The command that reproduces this run (the database URL left out: it may hold a
/// password).
fn command_line(args: &AppendArgs) -> String {
    let writers: Vec<String> = args.writers.iter().map(u32::to_string).collect();
    format!(
        "carelog bench append --writers {} --seconds {} --payload-bytes {}",
        writers.join(","),
        args.seconds,
        args.payload_bytes
    )
}

/// Asks PostgreSQL to checkpoint now, so a checkpoint is less likely to land inside the
/// next measurement. Best effort: a role without the right just skips it.
async fn checkpoint(pool: &PgPool) {
    if let Err(e) = sqlx::query("CHECKPOINT").execute(pool).await {
        tracing::debug!(error = %e, "CHECKPOINT refused; measuring without it");
    }
}

/// Background tasks of a bench run, told to stop through one watch channel
/// ([`Running::stop`]) and aborted when dropped.
struct Running<T> {
    /// Set to `true` to ask the tasks to stop (they watch a receiver of it).
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<T>>,
}

impl<T> Running<T> {
    /// Asks the tasks to stop and waits at most 10 s for them: their outcomes, or `None`
    /// when they did not all stop in time (those left are aborted).
    async fn stop(mut self) -> Option<Vec<Result<T, tokio::task::JoinError>>> {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut self.tasks);
        let aborts: Vec<tokio::task::AbortHandle> =
            tasks.iter().map(JoinHandle::abort_handle).collect();
        let joined =
            tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(tasks)).await;
        if joined.is_err() {
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
        joined.ok()
    }
}

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

// ---------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------

/// When a measurement counts: completions inside `[from, until]`.
#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    until: Instant,
}

impl Window {
    /// A window that opens after the warm-up and stays open `length`.
    fn after_warm_up(length: Duration) -> Self {
        let from = Instant::now() + WARM_UP;
        Self {
            from,
            until: from + length,
        }
    }

    /// Whether workers should start another operation.
    fn open(&self) -> bool {
        Instant::now() < self.until
    }
}

/// What one worker saw.
struct Tally {
    /// Latencies (µs) of the operations completed inside the window.
    latencies: Histogram<u64>,
    /// Operations completed inside the window.
    counted: u64,
    /// Every successful operation, warm-up and tail included.
    succeeded: u64,
}

impl Tally {
    /// An empty tally.
    fn new() -> Result<Self> {
        Ok(Self {
            latencies: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .context("creating a latency histogram")?,
            counted: 0,
            succeeded: 0,
        })
    }

    /// Records one successful operation that started at `started` and ended now.
    fn record(&mut self, started: Instant, window: &Window) {
        let ended = Instant::now();
        self.succeeded += 1;
        if ended >= window.from && ended <= window.until {
            self.counted += 1;
            let us = micros(ended.duration_since(started));
            self.latencies.saturating_record(us.max(1));
        }
    }

    /// Adds another worker's tally to this one.
    fn merge(&mut self, other: Tally) -> Result<()> {
        self.latencies
            .add(&other.latencies)
            .context("merging latency histograms")?;
        self.counted += other.counted;
        self.succeeded += other.succeeded;
        Ok(())
    }
}

/// The result of one measurement.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Operations per second inside the window.
    per_second: f64,
    /// Median latency, milliseconds.
    p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    p99_ms: f64,
    /// Every successful operation, warm-up and tail included.
    succeeded: u64,
}

impl Run {
    /// Sums the workers' tallies over a window of `length`.
    fn from_tallies(tallies: Vec<Tally>, length: Duration) -> Result<Self> {
        let mut all = Tally::new()?;
        for t in tallies {
            all.merge(t)?;
        }
        let ms = |q: f64| all.latencies.value_at_quantile(q) as f64 / 1_000.0;
        Ok(Self {
            per_second: all.counted as f64 / length.as_secs_f64(),
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            succeeded: all.succeeded,
        })
    }

    /// One line for the progress display.
    fn summary(&self, unit: &str) -> String {
        format!(
            "{:.0} {unit}, p50 {:.2} ms, p99 {:.2} ms",
            self.per_second, self.p50_ms, self.p99_ms
        )
    }
}

/// Waits for every worker; the first error (after all have stopped) fails the run.
async fn join_workers(handles: Vec<JoinHandle<Result<Tally>>>) -> Result<Vec<Tally>> {
    let mut tallies = Vec::with_capacity(handles.len());
    let mut first_error = None;
    for joined in futures::future::join_all(handles).await {
        match joined.context("a bench worker panicked or was cancelled") {
            Ok(Ok(tally)) => tallies.push(tally),
            Ok(Err(e)) | Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(tallies),
    }
}

/// Baseline: `writers` tasks, each committing single-row INSERTs of `payload_len`
/// random bytes, autocommit, on a pool of `writers` connections.
async fn measure_raw(
    scratch: &Scratch,
    writers: u32,
    payload_len: usize,
    length: Duration,
) -> Result<Run> {
    let pool = scratch.pool(writers).await?;
    checkpoint(&pool).await;
    let stop = Arc::new(AtomicBool::new(false));
    let window = Window::after_warm_up(length);
    let handles = (0..writers)
        .map(|_| {
            let pool = pool.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(raw_writer(pool, random_bytes(payload_len), window, stop))
        })
        .collect();
    let tallies = join_workers(handles).await;
    pool.close().await;
    Run::from_tallies(tallies.context("raw INSERT run")?, length)
}

/// One raw writer: INSERT, commit, repeat until the window closes.
async fn raw_writer(
    pool: PgPool,
    payload: Vec<u8>,
    window: Window,
    stop: Arc<AtomicBool>,
) -> Result<Tally> {
    let mut tally = Tally::new()?;
    while window.open() && !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let inserted = sqlx::query("INSERT INTO raw_inserts (payload) VALUES ($1)")
            .bind(&payload)
            .execute(&pool)
            .await;
        if let Err(e) = inserted {
            stop.store(true, Ordering::Relaxed);
            return Err(e).context("raw INSERT");
        }
        tally.record(started, &window);
    }
    Ok(tally)
}

/// What a carelog measurement adds to [`Run`].
struct CarelogRun {
    run: Run,
    /// Appends per committed transaction (each append here is one event).
    appends_per_tx: f64,
}

/// carelog: a fresh group-commit [`EventStore`]; `writers` tasks each appending one
/// event at a time to its own patient stream with the exact expected version. Checks
/// afterwards that the event table grew by exactly the successful appends.
async fn measure_carelog(
    scratch: &Scratch,
    keyring: &Keyring,
    writers: u32,
    payload: &serde_json::Value,
    length: Duration,
) -> Result<CarelogRun> {
    let pool = scratch.pool(CARELOG_POOL).await?;
    checkpoint(&pool).await;
    let before = last_position(&pool).await?;
    let count_before = count_events(&pool).await?;
    let keys = KeyStore::new(pool.clone(), keyring.clone(), CacheConfig::default());
    let store = EventStore::start(pool.clone(), keys, GroupCommitConfig::default());
    let event_type = EventType::try_from("BenchEvent").context("event type BenchEvent")?;
    let stop = Arc::new(AtomicBool::new(false));
    let window = Window::after_warm_up(length);
    let handles = (0..writers)
        .map(|_| {
            tokio::spawn(carelog_writer(
                store.clone(),
                event_type.clone(),
                payload.clone(),
                window,
                Arc::clone(&stop),
            ))
        })
        .collect();
    let tallies = join_workers(handles).await;
    drop(store);
    let tallies = tallies.context("carelog append run")?;
    let run = Run::from_tallies(tallies, length)?;

    let added = count_events(&pool).await? - count_before;
    if u64::try_from(added).ok() != Some(run.succeeded) {
        bail!(
            "sanity check failed: {} appends succeeded but the event table grew by {added} rows",
            run.succeeded
        );
    }
    let appends_per_tx = appends_per_transaction(&pool, before).await?;
    pool.close().await;
    Ok(CarelogRun {
        run,
        appends_per_tx,
    })
}

/// The append of one bench event (schema version 1) to `stream`, expected at `version`,
/// sealed under the stream's own subject (so a patient stream's own data key).
fn next_event(
    stream: StreamId,
    version: StreamVersion,
    event_type: &EventType,
    payload: &serde_json::Value,
    metadata: Metadata,
) -> AppendRequest {
    AppendRequest {
        stream,
        expected: Expected::Exact(version),
        events: vec![NewEvent {
            event_id: EventId::new_v7(),
            event_type: event_type.clone(),
            schema_version: SchemaVersion(1),
            subject: SubjectId::of_stream(&stream),
            payload: payload.clone(),
            metadata,
        }],
    }
}

/// One carelog writer: its own patient stream (so its own data key), one event per
/// append, `Expected::Exact` the version the last append returned.
async fn carelog_writer(
    store: EventStore,
    event_type: EventType,
    payload: serde_json::Value,
    window: Window,
    stop: Arc<AtomicBool>,
) -> Result<Tally> {
    let stream = StreamId::new(StreamType::Patient, Uuid::now_v7());
    let mut version = StreamVersion::EMPTY;
    let mut tally = Tally::new()?;
    while window.open() && !stop.load(Ordering::Relaxed) {
        let request = next_event(stream, version, &event_type, &payload, Metadata::default());
        let started = Instant::now();
        match store.append(request).await {
            Ok(appended) if appended.version == version.next() && !appended.replayed => {
                version = appended.version;
                tally.record(started, &window);
            }
            Ok(appended) => {
                stop.store(true, Ordering::Relaxed);
                bail!(
                    "append to {stream} at version {version} answered version {} (replayed: {})",
                    appended.version,
                    appended.replayed
                );
            }
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                return Err(e).with_context(|| format!("append to {stream} at version {version}"));
            }
        }
    }
    Ok(tally)
}

/// Rows in the event table.
async fn count_events(pool: &PgPool) -> Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .context("counting events")
}

/// A duration in whole microseconds, as the latency histograms and percentiles take it
/// (saturating at `u64::MAX`, some 585,000 years).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The highest position in the event table (0 when empty).
async fn last_position(pool: &PgPool) -> Result<i64> {
    sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .context("reading the last position")
}

/// Mean events per writing transaction after position `after`: the group-commit batch
/// size, read from the `tx_id` every row records.
async fn appends_per_transaction(pool: &PgPool, after: i64) -> Result<f64> {
    let row = sqlx::query(
        "SELECT count(*) AS events, count(DISTINCT tx_id) AS transactions \
         FROM events WHERE position > $1",
    )
    .bind(after)
    .fetch_one(pool)
    .await
    .context("measuring group-commit batch sizes")?;
    let events: i64 = row.try_get("events")?;
    let transactions: i64 = row.try_get("transactions")?;
    Ok(if transactions == 0 {
        0.0
    } else {
        events as f64 / transactions as f64
    })
}

// ---------------------------------------------------------------------------------
// Progress
// ---------------------------------------------------------------------------------

/// A spinner on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    label: String,
}

impl Progress {
    /// Announces a measurement.
    fn start(label: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        if bar.is_none() {
            eprintln!("measuring {label} …");
        }
        Self {
            bar,
            label: label.to_owned(),
        }
    }

    /// Replaces the announcement with the result.
    fn finish(self, result: &str) {
        let line = format!("{}: {result}", self.label);
        match self.bar {
            Some(bar) => bar.finish_with_message(line),
            None => eprintln!("  {line}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------

/// Where the numbers were measured.
struct Machine {
    cpus: usize,
    cpu_model: Option<String>,
    memory_gib: Option<f64>,
    server_version: String,
    synchronous_commit: String,
    fsync: String,
}

impl Machine {
    /// Reads the host's CPUs and memory and the server's durability settings.
    async fn describe(pool: &PgPool) -> Result<Self> {
        Ok(Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpu_model(),
            memory_gib: memory_gib(),
            server_version: show(pool, "server_version").await?,
            synchronous_commit: show(pool, "synchronous_commit").await?,
            fsync: show(pool, "fsync").await?,
        })
    }

    /// One Markdown line.
    fn line(&self) -> String {
        let memory = self.memory_gib.map_or_else(
            || "unknown memory".to_owned(),
            |g| format!("{g:.1} GiB RAM"),
        );
        let cpu = self
            .cpu_model
            .as_deref()
            .map_or_else(String::new, |m| format!(" ({m})"));
        format!(
            "{} CPUs{cpu}, {memory}; PostgreSQL {} on the same host, \
             `synchronous_commit = {}`, `fsync = {}`",
            self.cpus, self.server_version, self.synchronous_commit, self.fsync
        )
    }
}

/// `SHOW setting`.
async fn show(pool: &PgPool, setting: &str) -> Result<String> {
    sqlx::query_scalar(&format!("SHOW {setting}"))
        .fetch_one(pool)
        .await
        .with_context(|| format!("SHOW {setting}"))
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`, e.g. `3.84 3.63 3.30`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `MemTotal` from `/proc/meminfo`, in GiB.
fn memory_gib() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / (1024.0 * 1024.0))
}

/// The first `model name` in `/proc/cpuinfo`.
fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// One writer count's results.
struct Measured {
    writers: u32,
    raw: Run,
    carelog: Run,
    appends_per_tx: f64,
}

impl Measured {
    /// carelog appends per raw commit.
    fn ratio(&self) -> f64 {
        if self.raw.per_second > 0.0 {
            self.carelog.per_second / self.raw.per_second
        } else {
            0.0
        }
    }
}

/// Everything one run measured.
struct Report {
    machine: Machine,
    command: String,
    plaintext_len: usize,
    sealed_len: usize,
    seconds: u64,
    rows: Vec<Measured>,
}

impl Report {
    /// The results as a Markdown table.
    fn table(&self) -> String {
        let mut out = String::from(
            "| writers | raw INSERT commits/s | raw p50 ms | raw p99 ms | carelog appends/s \
             | carelog p50 ms | carelog p99 ms | carelog ÷ raw |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2}× |",
                r.writers,
                r.raw.per_second,
                r.raw.p50_ms,
                r.raw.p99_ms,
                r.carelog.per_second,
                r.carelog.p50_ms,
                r.carelog.p99_ms,
                r.ratio()
            );
        }
        out
    }

    /// Mean group-commit batch per writer count, one line.
    fn batches(&self) -> String {
        let parts: Vec<String> = self
            .rows
            .iter()
            .map(|r| format!("{} → {:.1}", writers_label(r.writers), r.appends_per_tx))
            .collect();
        format!(
            "Mean carelog appends per committed transaction (group-commit batch, from the \
             rows' `tx_id`): {}.",
            parts.join(", ")
        )
    }

    /// One sentence saying what the numbers mean against the 32-writer target.
    fn interpretation(&self) -> String {
        let Some(target) = self.rows.iter().find(|r| r.writers == TARGET_WRITERS) else {
            return format!(
                "{TARGET_WRITERS} writers were not measured in this run, so the target \
                 (carelog ≥ 1.0× raw INSERT at {TARGET_WRITERS} writers) was not checked."
            );
        };
        let verdict = if target.ratio() >= 1.0 {
            "reaching"
        } else {
            "missing"
        };
        let single = self
            .rows
            .iter()
            .find(|r| r.writers == 1)
            .map_or_else(String::new, |r| {
                format!(
                    ", while a lone writer, which has nobody to share a commit with, runs at {:.2}×",
                    r.ratio()
                )
            });
        format!(
            "At {TARGET_WRITERS} writers carelog committed {:.2}× the appends per second of \
             raw single-row INSERTs ({:.0} vs {:.0}/s, {:.1} appends per transaction), \
             {verdict} the ≥ 1.0× target{single}.",
            target.ratio(),
            target.carelog.per_second,
            target.raw.per_second,
            target.appends_per_tx,
        )
    }

    /// The whole Markdown section, markers included.
    fn section(&self) -> String {
        format!(
            "{start}\n\
             ## Appends: sealed, chained, gap-safe vs raw INSERT\n\
             \n\
             - Date: {date}\n\
             - Machine: {machine}\n\
             - Command: `{command}`\n\
             - Payload: {plain} bytes of JSON plaintext, {sealed} bytes sealed; the raw \
             baseline inserts {sealed} random bytes per row.\n\
             - Each measurement counts {secs} s after a {warm} s warm-up; latency is per \
             commit (raw) or per append (carelog), from the client.\n\
             \n\
             {table}\n\
             {batches}\n\
             \n\
             {interpretation}\n\
             {end}\n",
            date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            machine = self.machine.line(),
            command = self.command,
            plain = self.plaintext_len,
            sealed = self.sealed_len,
            secs = self.seconds,
            warm = WARM_UP.as_secs_f64(),
            table = self.table(),
            batches = self.batches(),
            interpretation = self.interpretation(),
            start = APPEND_MARKERS.start,
            end = APPEND_MARKERS.end,
        )
    }
}

/// The file written when `--out` does not exist yet.
const NEW_FILE: &str = "# carelog benchmarks\n\
\n\
Numbers measured by `carelog bench …` on the machine named in each section. Each \
section is regenerated by its command and replaced in place; the rest of this file is \
left as it is. Compare numbers only within one section: they depend on the disk's \
fsync latency far more than on the CPU.\n";

/// Replaces the section of `path` between `markers` (creating the file, or appending
/// the section, when missing); the rest of the file is kept.
fn write_section(path: &Path, markers: Markers, section: &str) -> Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => NEW_FILE.to_owned(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let updated = splice_section(&existing, markers, section)
        .with_context(|| format!("updating {}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, updated).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

/// `text` with the section between `markers` replaced by `section` (or appended if
/// absent).
fn splice_section(text: &str, markers: Markers, section: &str) -> Result<String> {
    let Markers { start, end } = markers;
    match (text.find(start), text.find(end)) {
        (Some(s), Some(e)) if s < e => {
            let mut after = &text[e + end.len()..];
            after = after.strip_prefix('\n').unwrap_or(after);
            Ok(format!("{}{section}{after}", &text[..s]))
        }
        (None, None) => {
            let sep = if text.ends_with("\n\n") || text.is_empty() {
                ""
            } else if text.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            Ok(format!("{text}{sep}{section}"))
        }
        _ => bail!("its {start} / {end} markers are missing or out of order"),
    }
}

/// p50, p95, p99, max in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Percentiles {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    /// Of `values_us` (microseconds), nearest-rank.
    fn of(values_us: &mut [u64]) -> Self {
        values_us.sort_unstable();
        let at = |q: f64| -> f64 {
            if values_us.is_empty() {
                return 0.0;
            }
            let rank = ((q * values_us.len() as f64).ceil() as usize).clamp(1, values_us.len());
            values_us[rank - 1] as f64 / 1_000.0
        };
        Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// A small xorshift generator: enough to pick bench parameters (no `rand` here).
struct Rng(u64);

impl Rng {
    /// Seeded from a random UUID.
    fn new() -> Self {
        Self(Uuid::new_v4().as_u64_pair().0 | 1)
    }

    /// The next value.
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::audit_search::AUDIT_SEARCH_MARKERS;
    use super::lag::{due_offset, steady_writers, Timeline, LAG_MARKERS};
    use super::reads::READS_MARKERS;
    use super::rebuild::REBUILD_MARKERS;
    use super::*;

    #[test]
    fn a_missing_section_is_appended_after_the_header() {
        let out = splice_section(NEW_FILE, APPEND_MARKERS, "S\n").unwrap();
        assert!(out.starts_with("# carelog benchmarks\n"));
        assert!(out.ends_with("\n\nS\n"));
    }

    #[test]
    fn an_existing_section_is_replaced_and_the_rest_kept() {
        let Markers { start, end } = APPEND_MARKERS;
        let text = format!("# t\n\nbefore\n\n{start}\nold\n{end}\n\nafter\n");
        let new = format!("{start}\nnew\n{end}\n");
        let out = splice_section(&text, APPEND_MARKERS, &new).unwrap();
        assert_eq!(out, format!("# t\n\nbefore\n\n{new}\nafter\n"));
    }

    #[test]
    fn a_lone_marker_is_refused() {
        let end = APPEND_MARKERS.end;
        assert!(splice_section(&format!("x\n{end}\n"), APPEND_MARKERS, "S").is_err());
    }

    #[test]
    fn events_are_spread_evenly_over_streams() {
        assert_eq!(events_per_stream(10, 3), [4, 3, 3]);
        assert_eq!(
            events_per_stream(1_000_000, 1_000).iter().sum::<u64>(),
            1_000_000
        );
        assert_eq!(events_per_stream(5, 0), [5]);
    }

    #[test]
    fn writers_take_evenly_spaced_turns() {
        // 4 writers at 1,000/s: one append every ms, writer 1 second, then every 4 ms.
        assert_eq!(due_offset(0, 0, 4, 1_000.0), Duration::ZERO);
        assert_eq!(due_offset(0, 1, 4, 1_000.0), Duration::from_millis(1));
        assert_eq!(due_offset(2, 1, 4, 1_000.0), Duration::from_millis(9));
    }

    #[test]
    fn the_steady_load_has_enough_writers_to_keep_to_its_schedule() {
        // A turn every 100 ms: 15,000/s needs 1,500 writers; never fewer than 64; as given.
        assert_eq!(steady_writers(None, 15_000.0), 1_500);
        assert_eq!(steady_writers(None, 12_345.0), 1_235);
        assert_eq!(steady_writers(None, 100.0), 64);
        assert_eq!(steady_writers(None, 1e9), 5000);
        assert_eq!(steady_writers(Some(8), 15_000.0), 8);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).map(|ms| ms * 1_000).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(&mut []).p99, 0.0);
    }

    #[test]
    fn a_position_is_visible_from_the_first_read_that_reached_it() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let timeline = Timeline {
            seen: vec![(at(1), 3), (at(2), 7), (at(5), 9)],
        };
        assert_eq!(timeline.visible_at(1), Some(at(1)));
        assert_eq!(timeline.visible_at(4), Some(at(2)));
        assert_eq!(timeline.visible_at(9), Some(at(5)));
        assert_eq!(timeline.visible_at(10), None);
    }

    #[test]
    fn sections_have_distinct_markers() {
        let all = [
            APPEND_MARKERS,
            REBUILD_MARKERS,
            LAG_MARKERS,
            READS_MARKERS,
            AUDIT_SEARCH_MARKERS,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.start, b.start);
                assert!(!a.start.contains(b.start) && !b.start.contains(a.start));
            }
        }
        let text = splice_section(
            NEW_FILE,
            APPEND_MARKERS,
            "<!-- bench:append:start -->\na\n<!-- bench:append:end -->\n",
        )
        .unwrap();
        let text = splice_section(
            &text,
            LAG_MARKERS,
            "<!-- bench:lag:start -->\nl\n<!-- bench:lag:end -->\n",
        )
        .unwrap();
        let text = splice_section(
            &text,
            APPEND_MARKERS,
            "<!-- bench:append:start -->\nb\n<!-- bench:append:end -->\n",
        )
        .unwrap();
        assert!(text.contains("\nb\n") && text.contains("\nl\n") && !text.contains("\na\n"));
    }

    #[test]
    fn random_payloads_have_the_asked_size() {
        assert_eq!(random_ascii(501).len(), 501);
        assert_eq!(random_bytes(540).len(), 540);
        let note = random_ascii(512 - JSON_ENVELOPE);
        let json = serde_json::to_vec(&serde_json::json!({ "note": note })).unwrap();
        assert_eq!(json.len(), 512);
    }
}

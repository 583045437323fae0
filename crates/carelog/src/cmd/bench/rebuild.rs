//! `carelog bench rebuild`.

use super::*;

/// The section of `carelog bench rebuild`.
pub(super) const REBUILD_MARKERS: Markers = Markers {
    start: "<!-- bench:rebuild:start -->",
    end: "<!-- bench:rebuild:end -->",
};
/// The rebuild speed the issue asks for (decrypt + apply), events per second.
const REBUILD_TARGET_PER_SEC: f64 = 100_000.0;
/// Events per append while filling the log (≤ `MAX_EVENTS_PER_APPEND`).
const FILL_EVENTS_PER_APPEND: u64 = 100;
/// Tasks appending concurrently while filling the log.
const FILL_TASKS: u64 = 8;
/// Events per read of the plain-read baseline (as a rebuild batch).
const READ_BATCH: i64 = 10_000;

/// Options of `carelog bench rebuild`.
#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    /// Where it runs and what it writes.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Events in the log to rebuild from.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1_000..=100_000_000))]
    pub events: u64,
    /// Subjects (patient streams, each with its own data key) the events are spread over.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub subjects: u64,
    /// Size of each event's plaintext JSON payload, in bytes.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(16..=1_000_000))]
    pub payload_bytes: u64,
    /// Keep the filled log between runs, for measuring the rebuild again and again: use
    /// the database NAME (`carelog_bench_keep_…`) if an earlier run filled it with the
    /// same log (then the fill is skipped), else create and fill it; either way it is
    /// left in place at the end (drop it with `DROP DATABASE NAME`). Without this flag
    /// the scratch database is always dropped. Requires --no-write.
    #[arg(long, value_name = "NAME", value_parser = kept_name)]
    pub keep_log: Option<String>,
    /// Measure the rebuild only, not the read and INSERT … SELECT baselines. Requires
    /// --no-write.
    #[arg(long)]
    pub skip_baselines: bool,
}

/// The prefix a kept log's database name must have, so it cannot name another database.
const KEPT_PREFIX: &str = "carelog_bench_keep_";

fn kept_name(name: &str) -> Result<String, String> {
    let ok = name.starts_with(KEPT_PREFIX)
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "a kept log's database is named {KEPT_PREFIX}[a-z0-9_]* (at most 63 characters)"
        ))
    }
}

/// Runs `carelog bench rebuild`: fills a scratch log, measures the baselines and the
/// rebuild, reports; drops the database whatever happened.
pub async fn rebuild(args: RebuildArgs) -> Result<ExitCode> {
    if !args.common.no_write && (args.keep_log.is_some() || args.skip_baselines) {
        bail!("--keep-log and --skip-baselines measure a partial run: add --no-write");
    }
    let report = match &args.keep_log {
        None => {
            let scratch = Scratch::create(&args.common.database_url).await?;
            let outcome = until_interrupted(rebuild_in(&scratch, &args, None)).await;
            scratch.finish(outcome).await?
        }
        Some(name) => {
            let (scratch, existed) = Scratch::open_kept(&args.common.database_url, name).await?;
            let outcome = until_interrupted(rebuild_in(&scratch, &args, Some(existed))).await;
            eprintln!("kept the log in database {name} (DROP DATABASE {name} when done)");
            scratch.admin.close().await;
            outcome?
        }
    };
    print!("{}", report.table());
    println!();
    println!("{}", report.interpretation());
    println!();
    print!("{}", report.stages());
    args.common.write(REBUILD_MARKERS, &report.section())?;
    Ok(ExitCode::SUCCESS)
}

impl Scratch {
    /// The kept database `name` (created if missing) and whether it existed.
    async fn open_kept(admin_url: &str, name: &str) -> Result<(Self, bool)> {
        let options = PgConnectOptions::from_str(admin_url)
            .context("--database-url is not a PostgreSQL connection string")?;
        let admin = carelog_store::connect(admin_url, &small_pool(1))
            .await
            .context("connecting to the admin database")?;
        let existed: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&admin)
                .await
                .context("looking for the kept log")?;
        if !existed {
            sqlx::query(&format!("CREATE DATABASE {}", quote_ident(name)))
                .execute(&admin)
                .await
                .with_context(|| format!("creating database {name}"))?;
        }
        let url = options.database(name).to_url_lossy().to_string();
        Ok((
            Self {
                admin,
                name: name.to_owned(),
                url,
            },
            existed,
        ))
    }
}

/// One timed step of the rebuild bench.
#[derive(Debug, Clone)]
struct Step {
    what: &'static str,
    events: u64,
    elapsed: Duration,
}

impl Step {
    fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Everything `carelog bench rebuild` measured.
struct RebuildReport {
    machine: Machine,
    command: String,
    plaintext_len: usize,
    subjects: u64,
    fill: Option<Step>,
    read: Option<Step>,
    copy: Option<Step>,
    rebuild: Step,
    stages: carelog_projector::RebuildTimings,
}

/// The table of a kept log: its master key (a bench key, for this scratch data only) and
/// the shape it was filled with.
const KEPT_TABLE: &str = "bench_kept_log";

/// Fills a log (or, with `kept = Some(true)`, reuses the kept one), measures the
/// baselines unless skipped, then the rebuild.
async fn rebuild_in(
    scratch: &Scratch,
    args: &RebuildArgs,
    kept: Option<bool>,
) -> Result<RebuildReport> {
    let pool = scratch.pool(CARELOG_POOL).await?;
    carelog_store::migrate(&pool)
        .await
        .context("migrating the scratch database")?;
    // The read models as `carelog migrate` leaves them (the migrations create only the
    // first shape of some; `projections/*.sql` bring them to their current one).
    carelog_projector::schemas::ensure_schemas(&pool)
        .await
        .context("creating the read models")?;
    let machine = Machine::describe(&pool).await?;
    let payload_bytes =
        usize::try_from(args.payload_bytes).context("--payload-bytes is too large")?;
    let plaintext =
        serde_json::json!({ "note": random_ascii(payload_bytes.saturating_sub(JSON_ENVELOPE)) });
    let plaintext_len = serde_json::to_vec(&plaintext)?.len();
    let shape = format!(
        "events={} subjects={} payload_bytes={}",
        args.events, args.subjects, args.payload_bytes
    );
    let reused: Option<String> = if kept == Some(true) {
        let row: Option<(String, String)> = sqlx::query_as(&format!(
            "SELECT master_key, shape FROM {KEPT_TABLE} WHERE complete"
        ))
        .fetch_optional(&pool)
        .await
        .ok()
        .flatten();
        match row {
            Some((key, kept_shape)) if kept_shape == shape => Some(key),
            Some((_, kept_shape)) => bail!(
                "database {} holds a log of {kept_shape}, not {shape}: drop it or name another",
                scratch.name
            ),
            None => bail!(
                "database {} holds no complete kept log: drop it or name another",
                scratch.name
            ),
        }
    } else {
        None
    };
    let master = match &reused {
        Some(hex) => MasterKey::from_hex(hex).context("the kept log's master key")?,
        None => MasterKey::generate(),
    };
    let keyring = Keyring::new(master.clone(), []);

    // Fill the log through the real append path: sealed, chained, group-committed.
    let fill = if reused.is_some() {
        None
    } else {
        let progress = Progress::start(&format!(
            "filling the log: {} events over {} subjects",
            args.events, args.subjects
        ));
        let keys = KeyStore::new(pool.clone(), keyring.clone(), CacheConfig::default());
        let store = EventStore::start(pool.clone(), keys, GroupCommitConfig::default());
        let started = Instant::now();
        fill_log(&store, args.events, args.subjects, &plaintext).await?;
        let step = Step {
            what: "fill (append, sealed)",
            events: args.events,
            elapsed: started.elapsed(),
        };
        progress.finish(&format!("{:.0} events/s", step.per_second()));
        Some(step)
    };
    let stored = count_events(&pool).await?;
    if u64::try_from(stored).ok() != Some(args.events) {
        bail!(
            "sanity check failed: {} events appended but the log holds {stored}",
            args.events
        );
    }
    if kept == Some(false) {
        sqlx::query(&format!(
            "CREATE TABLE {KEPT_TABLE} (master_key text NOT NULL, shape text NOT NULL, \
             complete boolean NOT NULL)"
        ))
        .execute(&pool)
        .await
        .context("recording the kept log")?;
        sqlx::query(&format!("INSERT INTO {KEPT_TABLE} VALUES ($1, $2, true)"))
            .bind(master.to_hex())
            .bind(&shape)
            .execute(&pool)
            .await
            .context("recording the kept log")?;
    }
    // Settle the table as any log older than a few minutes is: hint bits set, visibility
    // map built, statistics known; then start from a clean checkpoint. (A kept log: the
    // tables earlier rebuilds dropped are gone, the log's hint bits already set.)
    sqlx::query("VACUUM (ANALYZE) events")
        .execute(&pool)
        .await
        .context("VACUUM events")?;
    checkpoint(&pool).await;

    // Baseline 1: read the whole log, gap-safe, as the rebuild does (no decryption).
    let read = if args.skip_baselines {
        None
    } else {
        let progress = Progress::start("plain read of the log (gap-safe, 10,000 at a time)");
        let started = Instant::now();
        let mut cursor = carelog_domain::Position::START;
        let mut events = 0u64;
        loop {
            let batch = carelog_store::read::all(&pool, cursor, READ_BATCH).await?;
            let Some(last) = batch.last() else { break };
            cursor = last.position;
            events += batch.len() as u64;
        }
        let step = Step {
            what: "read the log (gap-safe reads, decoded, not decrypted)",
            events,
            elapsed: started.elapsed(),
        };
        progress.finish(&format!("{:.0} events/s", step.per_second()));
        Some(step)
    };

    // Baseline 2: the same rows into a table shaped like audit_feed, server-side.
    let copy = if args.skip_baselines {
        None
    } else {
        let progress = Progress::start("INSERT … SELECT into a plain audit_feed-shaped table");
        sqlx::query("DROP TABLE IF EXISTS bench_feed")
            .execute(&pool)
            .await
            .context("dropping bench_feed")?;
        sqlx::query("CREATE TABLE bench_feed (LIKE audit_feed INCLUDING ALL)")
            .execute(&pool)
            .await
            .context("creating bench_feed")?;
        let started = Instant::now();
        let copied = sqlx::query(
            "INSERT INTO bench_feed (position, event_id, stream_id, stream_type, event_type, \
             actor_id, request_id, recorded_at) \
             SELECT position, event_id, stream_id, stream_type, event_type, \
             (metadata->>'actor_id')::uuid, metadata->>'request_id', recorded_at \
             FROM events ORDER BY position",
        )
        .execute(&pool)
        .await
        .context("INSERT … SELECT into bench_feed")?
        .rows_affected();
        let step = Step {
            what: "INSERT … SELECT of the same rows (server-side, no decryption)",
            events: copied,
            elapsed: started.elapsed(),
        };
        progress.finish(&format!("{:.0} events/s", step.per_second()));
        sqlx::query("DROP TABLE bench_feed")
            .execute(&pool)
            .await
            .context("dropping bench_feed")?;
        Some(step)
    };
    checkpoint(&pool).await;

    // carelog: a rebuild of audit_feed, as `carelog rebuild audit_feed` runs it, with a
    // fresh key store (no data key cached yet).
    let (rebuild, stages) = {
        let progress =
            Progress::start("carelog rebuild audit_feed (read, open what it reads, apply)");
        let keys = KeyStore::new(pool.clone(), keyring.clone(), CacheConfig::default());
        let store = EventStore::start(pool.clone(), keys, GroupCommitConfig::default());
        let started = Instant::now();
        let report = carelog_projector::rebuild(&pool, &store, &AuditFeed, |_, _| {})
            .await
            .context("rebuilding audit_feed")?;
        let step = Step {
            what: "carelog rebuild of audit_feed (read, open what it reads, apply, swap)",
            events: report.applied + report.skipped,
            elapsed: started.elapsed(),
        };
        progress.finish(&format!("{:.0} events/s", step.per_second()));
        (step, report.timings)
    };
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_feed")
        .fetch_one(&pool)
        .await
        .context("counting audit_feed")?;
    if u64::try_from(rows).ok() != Some(args.events) || rebuild.events != args.events {
        bail!(
            "sanity check failed: the rebuild handled {} events and audit_feed holds {rows} rows, not {}",
            rebuild.events,
            args.events
        );
    }
    pool.close().await;
    Ok(RebuildReport {
        machine,
        command: format!(
            "carelog bench rebuild --events {} --subjects {} --payload-bytes {}",
            args.events, args.subjects, args.payload_bytes
        ),
        plaintext_len,
        subjects: args.subjects,
        fill,
        read,
        copy,
        rebuild,
        stages,
    })
}

/// How many events each of `subjects` streams gets so that they add up to `events`.
pub(super) fn events_per_stream(events: u64, subjects: u64) -> Vec<u64> {
    let subjects = subjects.max(1);
    let (base, extra) = (events / subjects, events % subjects);
    (0..subjects).map(|i| base + u64::from(i < extra)).collect()
}

/// Appends `events` events spread over `subjects` patient streams (each its own subject
/// and data key), [`FILL_EVENTS_PER_APPEND`] per append, from [`FILL_TASKS`] tasks; each
/// task goes round its streams so the log interleaves them.
async fn fill_log(
    store: &EventStore,
    events: u64,
    subjects: u64,
    payload: &serde_json::Value,
) -> Result<()> {
    let counts = events_per_stream(events, subjects);
    let event_type = EventType::try_from("BenchEvent").context("event type BenchEvent")?;
    let mut handles: Vec<JoinHandle<Result<()>>> = Vec::new();
    for task in 0..FILL_TASKS {
        let mine: Vec<u64> = counts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u64 % FILL_TASKS == task)
            .map(|(_, n)| *n)
            .collect();
        let (store, event_type, payload) = (store.clone(), event_type.clone(), payload.clone());
        handles.push(tokio::spawn(async move {
            let mut streams: Vec<(StreamId, StreamVersion, u64, Uuid)> = mine
                .into_iter()
                .map(|n| {
                    (
                        StreamId::new(StreamType::Patient, Uuid::now_v7()),
                        StreamVersion::EMPTY,
                        n,
                        Uuid::now_v7(),
                    )
                })
                .collect();
            while streams.iter().any(|s| s.2 > 0) {
                for (stream, version, left, actor) in streams.iter_mut().filter(|s| s.2 > 0) {
                    let n = (*left).min(FILL_EVENTS_PER_APPEND);
                    let subject = SubjectId::of_stream(stream);
                    let events = (0..n)
                        .map(|_| NewEvent {
                            event_id: EventId::new_v7(),
                            event_type: event_type.clone(),
                            schema_version: SchemaVersion(1),
                            subject: subject.clone(),
                            payload: payload.clone(),
                            metadata: bench_metadata(*actor),
                        })
                        .collect();
                    let appended = store
                        .append(AppendRequest {
                            stream: *stream,
                            expected: Expected::Exact(*version),
                            events,
                        })
                        .await
                        .with_context(|| format!("filling {stream}"))?;
                    *version = appended.version;
                    *left -= n;
                }
            }
            Ok(())
        }));
    }
    join_workers_unit(handles).await
}

/// Metadata as a command would record it (no PHI): who, which request, which command.
pub(super) fn bench_metadata(actor: Uuid) -> Metadata {
    Metadata {
        actor_id: Some(actor),
        request_id: Some(format!("req-{}", Uuid::now_v7().simple())),
        command: Some("BenchCommand".to_owned()),
        time: Some(chrono::Utc::now()),
        ..Metadata::default()
    }
}

/// Waits for tasks that return nothing; the first error fails.
pub(super) async fn join_workers_unit(handles: Vec<JoinHandle<Result<()>>>) -> Result<()> {
    let mut first_error = None;
    for joined in futures::future::join_all(handles).await {
        let outcome = joined
            .context("a bench task panicked or was cancelled")
            .and_then(|r| r);
        if let Err(e) = outcome {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

impl RebuildReport {
    fn table(&self) -> String {
        let mut out =
            String::from("| step | events | seconds | events/s |\n|---|---:|---:|---:|\n");
        let steps = [&self.fill, &self.read, &self.copy]
            .into_iter()
            .flatten()
            .chain([&self.rebuild]);
        for step in steps {
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | {:.0} |",
                step.what,
                step.events,
                step.elapsed.as_secs_f64(),
                step.per_second()
            );
        }
        out
    }

    fn interpretation(&self) -> String {
        let rate = self.rebuild.per_second();
        let verdict = if rate >= REBUILD_TARGET_PER_SEC {
            "reaching"
        } else {
            "missing"
        };
        let mut out = format!(
            "The rebuild replayed {} events at {:.0} events/s, {verdict} the ≥ {:.0} events/s \
             target",
            self.rebuild.events, rate, REBUILD_TARGET_PER_SEC,
        );
        if let (Some(copy), Some(read)) = (&self.copy, &self.read) {
            let _ = write!(
                out,
                "; that is {:.2}× the server-side INSERT … SELECT of the same rows (which \
                 neither leaves the server nor decrypts) and {:.2}× a plain gap-safe read of \
                 the log",
                rate / copy.per_second().max(1e-9),
                rate / read.per_second().max(1e-9),
            );
        }
        out.push('.');
        out
    }

    /// The rebuild's stages: wall-clock spans, and the time each pipelined task was busy
    /// (the three fill tasks overlap, so their busy times add up to more than the fill).
    fn stages(&self) -> String {
        let t = &self.stages;
        let s = |d: Duration| d.as_secs_f64();
        format!(
            "rebuild stages (s): prepare {:.2}, fill {:.2} (busy: read {:.2}, open {:.2}, \
             apply {:.2}), indexes {:.2}, catch-up and swap {:.2}\n",
            s(t.prepare),
            s(t.fill),
            s(t.read_busy),
            s(t.open_busy),
            s(t.apply_busy),
            s(t.index),
            s(t.catch_up_and_swap),
        )
    }

    fn section(&self) -> String {
        format!(
            "{start}\n\
             ## Rebuild: audit_feed from the log (read, open, apply) vs plain SQL\n\
             \n\
             - Date: {date}\n\
             - Machine: {machine}\n\
             - Command: `{command}`\n\
             - Log: {events} sealed events ({plain} bytes of JSON plaintext each) over \
             {subjects} patient streams, each its own subject and data key, appended {per} \
             per append through the group-commit event store; then `VACUUM (ANALYZE)` and \
             `CHECKPOINT`.\n\
             - The rebuild is `carelog_projector::rebuild` with a fresh key store (no data \
             key cached): reads of {batch} events, opened where the projection reads the \
             payload (AES-256-GCM + JSON, on every core; `audit_feed` reads only access \
             records sealed under `system`, so this log's patient payloads are not \
             decrypted, as in production where they are most of the log) and applied by \
             one binary `COPY` per batch into an index-less twin table, \
             the three stages pipelined; then the twin gets the live table's indexes, \
             catches up under the projection's lock and is swapped in. Baselines: the same \
             gap-safe reads (`read::all`) \
             without opening or applying, and one server-side `INSERT … SELECT` of the same \
             rows into a table shaped like `audit_feed`.\n\
             \n\
             {table}\n\
             {interpretation}\n\
             {end}\n",
            start = REBUILD_MARKERS.start,
            end = REBUILD_MARKERS.end,
            date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            machine = self.machine.line(),
            command = self.command,
            events = self.rebuild.events,
            plain = self.plaintext_len,
            subjects = self.subjects,
            per = FILL_EVENTS_PER_APPEND,
            batch = READ_BATCH,
            table = self.table(),
            interpretation = self.interpretation(),
        )
    }
}

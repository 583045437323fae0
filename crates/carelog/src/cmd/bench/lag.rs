//! `carelog bench lag`.

use super::*;

/// The section of `carelog bench lag`.
pub(super) const LAG_MARKERS: Markers = Markers {
    start: "<!-- bench:lag:start -->",
    end: "<!-- bench:lag:end -->",
};
/// The p99 lag the issue asks for at half the maximum append rate.
const LAG_TARGET_P99_MS: f64 = 50.0;
/// The watcher's pause between reads of `max(position)` in `audit_feed`.
const WATCH_EVERY: Duration = Duration::from_millis(1);
/// Steady-load appends scheduled in this first part are not counted.
const LAG_WARM_UP: Duration = Duration::from_secs(1);
/// How long the pipeline may take to catch up before and after the steady load.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(180);

/// Options of `carelog bench lag`.
#[derive(Debug, clap::Args)]
pub struct LagArgs {
    /// Where it runs and what it writes.
    #[command(flatten)]
    pub common: CommonArgs,
    /// NATS with JetStream; the bench uses a private prefix and deletes its streams.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Steady append rate, events/s (default: half the maximum rate measured first).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub rate: Option<u64>,
    /// Seconds of each steady run: the appends-alone baseline, the watched run and the
    /// floor (the first second of each is a warm-up, not counted).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub seconds: u64,
    /// Writers of the steady load, each appending to its own stream on a fixed schedule
    /// (default: enough to keep to it, see `STEADY_TURN`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub writers: Option<u32>,
    /// Writers of the saturation run that measures the maximum append rate.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_writers: u32,
    /// Seconds of the saturation run.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub max_seconds: u64,
    /// Size of each event's plaintext JSON payload, in bytes.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(16..=1_000_000))]
    pub payload_bytes: u64,
}

/// Runs `carelog bench lag`; deletes the NATS streams of its prefix and drops the scratch
/// database whatever happened.
pub async fn lag(args: LagArgs) -> Result<ExitCode> {
    let prefix = format!("bench{}_", &Uuid::new_v4().simple().to_string()[..16]);
    let scratch = Scratch::create(&args.common.database_url).await?;
    let outcome = until_interrupted(lag_in(&scratch, &args, &prefix)).await;
    let cleaned = delete_streams(&args.nats_url, &prefix).await;
    let outcome = match (outcome, cleaned) {
        (Ok(r), Ok(())) => Ok(r),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(clean_err)) => {
            eprintln!("carelog: could not delete the NATS streams of {prefix}: {clean_err:#}");
            Err(e)
        }
    };
    let report = scratch.finish(outcome).await?;
    print!("{}", report.table());
    println!();
    print!("{}", report.cpu_table());
    println!();
    println!(
        "{}{}{}",
        report.interpretation(),
        report.cpu_interpretation(),
        report.floor_interpretation()
    );
    args.common.write(LAG_MARKERS, &report.section())?;
    Ok(ExitCode::SUCCESS)
}

/// Deletes every JetStream stream whose name starts with `prefix` (their consumers go
/// with them).
async fn delete_streams(nats_url: &str, prefix: &str) -> Result<()> {
    use futures::TryStreamExt as _;
    let client = async_nats::connect(nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {nats_url}"))?;
    let js = async_nats::jetstream::new(client);
    let names: Vec<String> = js
        .stream_names()
        .try_collect()
        .await
        .context("listing JetStream streams")?;
    for name in names.into_iter().filter(|n| n.starts_with(prefix)) {
        js.delete_stream(&name)
            .await
            .with_context(|| format!("deleting stream {name}"))?;
    }
    Ok(())
}

/// The relay and the audit_feed projector of one bench run, stopped on purpose by
/// [`Pipeline::stop`] or aborted when dropped ([`Running`]).
struct Pipeline {
    running: Running<()>,
    /// The relay's progress (what JetStream acknowledged, in process: read for free).
    relay: carelog_bus::RelayStatus,
}

impl Pipeline {
    /// Starts both, as `carelog serve` does, under `prefix`.
    async fn start(
        pool: &PgPool,
        store: &EventStore,
        nats_url: &str,
        prefix: &str,
    ) -> Result<Self> {
        let client = carelog_bus::connect(nats_url)
            .await
            .with_context(|| format!("connecting to NATS at {nats_url}"))?;
        let bus = carelog_bus::BusConfig::new(prefix, 1)?;
        let relay = carelog_bus::Relay::new(
            pool.clone(),
            client.clone(),
            carelog_bus::RelayConfig::new(bus.clone()),
        )?
        .wake_on_commits(store.commits());
        let projector = carelog_projector::Projector::new(
            pool.clone(),
            store.clone(),
            client,
            bus,
            Box::new(AuditFeed),
            carelog_projector::ProjectorConfig::default(),
        )?;
        let relay_status = relay.status();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let tasks = vec![
            tokio::spawn(relay.run(until(stopped.clone()))),
            tokio::spawn(projector.run(until(stopped))),
        ];
        Ok(Self {
            running: Running { stop, tasks },
            relay: relay_status,
        })
    }

    /// Asks both to stop and waits for them (at most 10 s).
    async fn stop(self) {
        let _ = self.running.stop().await;
    }
}

/// The read model a steady run's lag is measured to; each is applied in position order.
#[derive(Debug, Clone, Copy)]
enum Feed {
    /// `audit_feed`, built by carelog's projector from what the relay published.
    AuditFeed,
    /// `bench_floor`, built by the floor's minimal consumer ([`floor`]).
    Floor,
}

impl Feed {
    fn table(self) -> &'static str {
        match self {
            Self::AuditFeed => "audit_feed",
            Self::Floor => "bench_floor",
        }
    }

    fn head_sql(self) -> &'static str {
        match self {
            Self::AuditFeed => "SELECT coalesce(max(position), 0) FROM audit_feed",
            Self::Floor => floor::HEAD_SQL,
        }
    }
}

/// The highest position visible in `feed` (0 when empty).
async fn feed_head(db: impl sqlx::PgExecutor<'_>, feed: Feed) -> Result<i64> {
    sqlx::query_scalar(feed.head_sql())
        .fetch_one(db)
        .await
        .with_context(|| format!("reading max(position) of {}", feed.table()))
}

/// Waits until `feed` holds `position` (at most [`CATCH_UP_LIMIT`]).
async fn wait_for_feed(pool: &PgPool, feed: Feed, position: i64) -> Result<()> {
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    while feed_head(pool, feed).await? < position {
        if Instant::now() > deadline {
            bail!(
                "{} did not reach position {position} within {CATCH_UP_LIMIT:?}",
                feed.table()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The last position JetStream acknowledged to whoever publishes for a feed (read in
/// process, for free), or why the publisher or its consumer stopped.
type Published = Box<dyn Fn() -> Result<i64> + Send>;

/// What the watcher saw: when `max(position)` of a feed first reached each value.
pub(super) struct Timeline {
    /// (when the read returned, max position), both increasing.
    pub(super) seen: Vec<(Instant, i64)>,
}

impl Timeline {
    /// The first moment `position` was seen visible.
    pub(super) fn visible_at(&self, position: i64) -> Option<Instant> {
        let i = self.seen.partition_point(|&(_, p)| p < position);
        self.seen.get(i).map(|&(t, _)| t)
    }
}

/// Reads `max(position)` of `feed` on a connection of its own every [`WATCH_EVERY`]
/// until `stop`, keeping each change; and, at the same ticks, the last position
/// JetStream acknowledged to its publisher. Ends early with the publisher's error.
async fn watch_feed(
    scratch_url: String,
    stop: Arc<AtomicBool>,
    feed: Feed,
    published_now: Published,
) -> Result<(Timeline, Timeline)> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&scratch_url)
        .await
        .context("connecting the watcher")?;
    let mut seen = Vec::with_capacity(200_000);
    let mut published = Vec::with_capacity(200_000);
    let mut last = -1;
    let mut last_published = -1;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let relayed = published_now()?;
        if relayed > last_published {
            published.push((Instant::now(), relayed));
            last_published = relayed;
        }
        let head = feed_head(&mut conn, feed).await?;
        if head > last {
            seen.push((Instant::now(), head));
            last = head;
        }
    }
    Ok((Timeline { seen }, Timeline { seen: published }))
}

/// What the steady load cost with nothing else running.
struct Baseline {
    achieved: f64,
    append: Percentiles,
    cpu: Option<cpu::CpuUse>,
}

/// One steady-load append.
struct Sample {
    /// When it was due.
    due: Instant,
    /// When the append call started.
    started: Instant,
    /// When it returned.
    ended: Instant,
    /// Its position.
    position: i64,
}

impl Sample {
    /// How long the append call took, in µs.
    fn append_us(&self) -> u64 {
        micros(self.ended.saturating_duration_since(self.started))
    }
}

/// Everything `carelog bench lag` measured.
struct LagReport {
    machine: Machine,
    command: String,
    max_writers: u32,
    max_rate: f64,
    rate: f64,
    rate_given: bool,
    writers: u32,
    seconds: u64,
    /// The steady load through the relay, JetStream and the audit_feed projector.
    pipeline: Lags,
    /// The same load with nothing else running.
    alone: Baseline,
    /// The same load through the floor's minimal publisher and consumer ([`floor`]).
    floor: Lags,
}

/// What one watched steady run measured, over the appends due after the warm-up.
struct Lags {
    /// The rate the counted appends started at.
    achieved: f64,
    counted: usize,
    /// Appends started more than 5 ms after they were due.
    late: usize,
    /// Start of each append call − when it was due.
    lateness: Percentiles,
    watcher_reads: usize,
    /// Append start → visible in the feed.
    lag: Percentiles,
    append: Percentiles,
    /// Append start → JetStream acknowledged it to the publisher (published).
    relayed: Percentiles,
    /// Published → visible in the feed.
    projected: Percentiles,
    /// What the host spent during the counted part of the run.
    cpu: Option<cpu::CpuUse>,
}

impl Lags {
    /// Of the appends `counted`, from what the watcher saw of the feed and of what was
    /// published.
    fn of(
        counted: &[&Sample],
        feed: Feed,
        timeline: &Timeline,
        published_at: &Timeline,
        cpu: Option<cpu::CpuUse>,
    ) -> Result<Self> {
        let mut lags = Vec::with_capacity(counted.len());
        let mut appends = Vec::with_capacity(counted.len());
        let mut relayed = Vec::with_capacity(counted.len());
        let mut projected = Vec::with_capacity(counted.len());
        let mut lateness = Vec::with_capacity(counted.len());
        for s in counted {
            let seen = timeline.visible_at(s.position).ok_or_else(|| {
                anyhow!("position {} was never seen in {}", s.position, feed.table())
            })?;
            lateness.push(micros(s.started.saturating_duration_since(s.due)));
            lags.push(micros(seen.saturating_duration_since(s.started)));
            appends.push(s.append_us());
            // The publisher's acknowledgements are sampled at the same ticks; a position
            // the watcher saw in the feed before that sample moved counts as published when
            // it was seen.
            let out = published_at
                .visible_at(s.position)
                .unwrap_or(seen)
                .min(seen);
            relayed.push(micros(out.saturating_duration_since(s.started)));
            projected.push(micros(seen.saturating_duration_since(out)));
        }
        let late = lateness
            .iter()
            .filter(|&&l| l > micros(Duration::from_millis(5)))
            .count();
        Ok(Self {
            achieved: started_rate(counted),
            counted: counted.len(),
            late,
            lateness: Percentiles::of(&mut lateness),
            watcher_reads: timeline.seen.len(),
            lag: Percentiles::of(&mut lags),
            append: Percentiles::of(&mut appends),
            relayed: Percentiles::of(&mut relayed),
            projected: Percentiles::of(&mut projected),
            cpu,
        })
    }
}

/// How often each writer of the steady load gets a turn, by default: far longer than an
/// append takes under load, so that writers start their appends when due. A writer
/// whose previous append has not returned starts late, and then the load is no longer
/// the one scheduled (fewer appends in flight than arrive, the lag of those that wait
/// unmeasured).
const STEADY_TURN: Duration = Duration::from_millis(100);

/// The steady load's writers: as given, or enough for turns of [`STEADY_TURN`] at
/// `rate` (at least 64).
pub(super) fn steady_writers(given: Option<u32>, rate: f64) -> u32 {
    given.unwrap_or_else(|| {
        let needed = (rate * STEADY_TURN.as_secs_f64()).ceil();
        // At most the flag's own limit.
        (needed as u32).clamp(64, 5000)
    })
}

/// When writer `writer` of `writers` must start its `n`-th append, for `rate` events/s
/// in all: writers take turns, so the load is evenly spaced.
pub(super) fn due_offset(n: u64, writer: u32, writers: u32, rate: f64) -> Duration {
    Duration::from_secs_f64((n * u64::from(writers) + u64::from(writer)) as f64 / rate)
}

async fn lag_in(scratch: &Scratch, args: &LagArgs, prefix: &str) -> Result<LagReport> {
    let setup = scratch.pool(2).await?;
    carelog_store::migrate(&setup)
        .await
        .context("migrating the scratch database")?;
    carelog_projector::schemas::ensure_schemas(&setup)
        .await
        .context("creating the read models")?;
    let machine = Machine::describe(&setup).await?;
    setup.close().await;
    let payload_bytes =
        usize::try_from(args.payload_bytes).context("--payload-bytes is too large")?;
    let payload =
        serde_json::json!({ "note": random_ascii(payload_bytes.saturating_sub(JSON_ENVELOPE)) });
    let keyring = Keyring::new(MasterKey::generate(), []);

    // 1. The maximum append rate: the append bench's carelog run, nothing else running.
    let max = {
        let progress = Progress::start(&format!(
            "maximum append rate, {}",
            writers_label(args.max_writers)
        ));
        let m = measure_carelog(
            scratch,
            &keyring,
            args.max_writers,
            &payload,
            Duration::from_secs(args.max_seconds),
        )
        .await?;
        progress.finish(&m.run.summary("appends/s"));
        m.run
    };
    let (rate, rate_given) = match args.rate {
        Some(r) => (r as f64, true),
        None => ((max.per_second / 2.0).max(1.0), false),
    };

    let steady = steady_writers(args.writers, rate);
    let length = Duration::from_secs(args.seconds);
    let pool = scratch.pool(PoolConfig::default().max_connections).await?;
    let keys = KeyStore::new(pool.clone(), keyring.clone(), CacheConfig::default());
    let store = EventStore::start(pool.clone(), keys, GroupCommitConfig::default());
    let load = SteadyLoad {
        store: &store,
        payload: &payload,
        rate,
        writers: steady,
        length,
    };

    // 2. The baseline: the same steady load with nothing else running (no relay, no
    // projector), for what the appends alone cost the host at this rate.
    // As `bench append` does: the saturation run's WAL should not trigger a checkpoint
    // inside the measurement (its burst of full-page writes stalls commits ~0.3 s).
    checkpoint(&pool).await;
    let alone = {
        let progress = Progress::start(&format!(
            "appends alone: {rate:.0} events/s for {} s, {}",
            args.seconds,
            writers_label(steady)
        ));
        let start = Instant::now() + Duration::from_millis(200);
        let cpu = cpu_window(start, length);
        let samples = load.run(start).await?;
        let counted = counted_after_warm_up(&samples, start);
        let mut appends: Vec<u64> = counted.iter().map(|s| s.append_us()).collect();
        let run = Baseline {
            achieved: started_rate(&counted),
            append: Percentiles::of(&mut appends),
            cpu: cpu.await.ok().and_then(|(a, b)| a.until(&b, counted.len())),
        };
        progress.finish(&format!("{} appends counted", counted.len()));
        run
    };

    // 3. The floor: the same load through a minimal publisher and consumer. It runs
    // before the pipeline: in runs at 14,000 events/s, whichever of the two ran later had
    // the longer tail, and the floor is to be a lower bound.
    checkpoint(&pool).await;
    let progress = Progress::start(&format!(
        "the floor (minimal publisher and consumer): {rate:.0} events/s for {} s",
        args.seconds
    ));
    let floor = floor::Floor::start(&pool, &scratch.url, &store, &args.nats_url, prefix).await?;
    let at_floor = load
        .watched(scratch, &pool, Feed::Floor, floor.published())
        .await;
    let at_floor = match (at_floor, floor.stop().await) {
        (Ok(lags), Ok(())) => lags,
        // The floor's own error explains the run's.
        (_, Err(cause)) => return Err(cause),
        (Err(e), Ok(())) => return Err(e),
    };
    progress.finish(&format!("{} appends counted", at_floor.counted));

    // 4. The pipeline, as `carelog serve` runs it: relay and audit_feed projector.
    let pipeline = Pipeline::start(&pool, &store, &args.nats_url, prefix).await?;
    {
        let progress = Progress::start("relay and projector catching up with the earlier runs");
        wait_for_feed(&pool, Feed::AuditFeed, last_position(&pool).await?).await?;
        progress.finish("caught up");
    }
    checkpoint(&pool).await;

    // 5. Steady load at `rate`, watched.
    let progress = Progress::start(&format!(
        "steady load: {rate:.0} events/s for {} s, {}",
        args.seconds,
        writers_label(steady)
    ));
    let relay = pipeline.relay.clone();
    let watched = load
        .watched(
            scratch,
            &pool,
            Feed::AuditFeed,
            Box::new(move || Ok(relay.acknowledged().0)),
        )
        .await;
    pipeline.stop().await;
    let watched = watched?;
    progress.finish(&format!("{} appends counted", watched.counted));

    drop(store);
    pool.close().await;

    Ok(LagReport {
        machine,
        command: command_line_lag(args),
        max_writers: args.max_writers,
        max_rate: max.per_second,
        rate,
        rate_given,
        writers: steady,
        seconds: args.seconds,
        pipeline: watched,
        alone,
        floor: at_floor,
    })
}

/// The steady load: `writers` tasks, each appending one event at a time to a stream of
/// its own on a fixed schedule, `rate` events/s in all, for `length`.
struct SteadyLoad<'a> {
    store: &'a EventStore,
    payload: &'a serde_json::Value,
    rate: f64,
    writers: u32,
    length: Duration,
}

impl SteadyLoad<'_> {
    /// Runs it from `start`; every append, when it was due, started and ended.
    async fn run(&self, start: Instant) -> Result<Vec<Sample>> {
        let event_type = EventType::try_from("BenchEvent").context("event type BenchEvent")?;
        let failed = Arc::new(AtomicBool::new(false));
        let (rate, writers, length) = (self.rate, self.writers, self.length);
        let tasks: Vec<JoinHandle<Result<Vec<Sample>>>> = (0..writers)
            .map(|w| {
                let (store, event_type, payload, failed) = (
                    self.store.clone(),
                    event_type.clone(),
                    self.payload.clone(),
                    Arc::clone(&failed),
                );
                tokio::spawn(async move {
                    let stream = StreamId::new(StreamType::Patient, Uuid::now_v7());
                    let actor = Uuid::now_v7();
                    let mut version = StreamVersion::EMPTY;
                    let mut samples = Vec::new();
                    for n in 0.. {
                        let offset = due_offset(n, w, writers, rate);
                        if offset >= length || failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let due = start + offset;
                        tokio::time::sleep_until(due.into()).await;
                        let request = next_event(
                            stream,
                            version,
                            &event_type,
                            &payload,
                            bench_metadata(actor),
                        );
                        let started = Instant::now();
                        let appended = match store.append(request).await {
                            Ok(a) => a,
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e).with_context(|| format!("append to {stream}"));
                            }
                        };
                        samples.push(Sample {
                            due,
                            started,
                            ended: Instant::now(),
                            position: appended.last_position().0,
                        });
                        version = appended.version;
                    }
                    Ok(samples)
                })
            })
            .collect();
        let mut samples = Vec::new();
        let mut first_error = None;
        for joined in futures::future::join_all(tasks).await {
            match joined.context("a bench writer panicked").and_then(|r| r) {
                Ok(s) => samples.extend(s),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(samples),
        }
    }

    /// Runs it from a moment just ahead, watched until `feed` shows its last append.
    async fn watched(
        &self,
        scratch: &Scratch,
        pool: &PgPool,
        feed: Feed,
        published_now: Published,
    ) -> Result<Lags> {
        let stop_watch = Arc::new(AtomicBool::new(false));
        let watcher = tokio::spawn(watch_feed(
            scratch.url.clone(),
            Arc::clone(&stop_watch),
            feed,
            published_now,
        ));
        let start = Instant::now() + Duration::from_millis(200);
        let cpu = cpu_window(start, self.length);
        let loaded = self.run(start).await;
        let caught_up = match &loaded {
            Ok(samples) => {
                let last = samples.iter().map(|s| s.position).max().unwrap_or(0);
                tokio::select! {
                    r = wait_for_feed(pool, feed, last) => r,
                    // The watcher ends early only with an error, which it gives below.
                    () = finished(&watcher) => Ok(()),
                }
            }
            Err(_) => Ok(()),
        };
        stop_watch.store(true, Ordering::Relaxed);
        let (timeline, published_at) = watcher.await.context("the watcher panicked")??;
        let samples = loaded?;
        caught_up?;
        let counted = counted_after_warm_up(&samples, start);
        let cpu = cpu.await.ok().and_then(|(a, b)| a.until(&b, counted.len()));
        Lags::of(&counted, feed, &timeline, &published_at, cpu)
    }
}

/// Returns once `task` has finished (without taking its output).
async fn finished<T>(task: &JoinHandle<T>) {
    while !task.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The appends of a steady load started at `start` that were due after its warm-up.
fn counted_after_warm_up(samples: &[Sample], start: Instant) -> Vec<&Sample> {
    samples
        .iter()
        .filter(|s| s.due >= start + LAG_WARM_UP)
        .collect()
}

/// The rate the appends really started at (late writers stretch the window).
fn started_rate(counted: &[&Sample]) -> f64 {
    let window = match (
        counted.iter().map(|s| s.started).min(),
        counted.iter().map(|s| s.started).max(),
    ) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64().max(1e-9),
        _ => 1e-9,
    };
    counted.len() as f64 / window
}

/// Reads the CPU counters when the counted part of a steady load started at `start`
/// begins (after the warm-up) and when the load ends.
fn cpu_window(
    start: Instant,
    length: Duration,
) -> JoinHandle<(cpu::CpuSnapshot, cpu::CpuSnapshot)> {
    tokio::spawn(async move {
        tokio::time::sleep_until((start + LAG_WARM_UP).into()).await;
        let first = cpu::CpuSnapshot::take();
        tokio::time::sleep_until((start + length).into()).await;
        (first, cpu::CpuSnapshot::take())
    })
}

/// The command that reproduces this run (URLs left out).
fn command_line_lag(args: &LagArgs) -> String {
    let rate = args
        .rate
        .map_or_else(String::new, |r| format!(" --rate {r}"));
    let writers = args
        .writers
        .map_or_else(String::new, |w| format!(" --writers {w}"));
    format!(
        "carelog bench lag{rate}{writers} --seconds {} --max-writers {} --max-seconds {} --payload-bytes {}",
        args.seconds, args.max_writers, args.max_seconds, args.payload_bytes
    )
}

impl LagReport {
    fn table(&self) -> String {
        let mut out = String::from(
            "| measure | events/s | p50 ms | p95 ms | p99 ms | max ms |\n\
             |---|---:|---:|---:|---:|---:|\n",
        );
        let mut row = |what: &str, rate: f64, p: &Percentiles| {
            let _ = writeln!(
                out,
                "| {what} | {rate:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
                p.p50, p.p95, p.p99, p.max
            );
        };
        let (run, floor) = (&self.pipeline, &self.floor);
        row(
            "append → visible in audit_feed (end-to-end lag)",
            run.achieved,
            &run.lag,
        );
        row("append call alone (commit)", run.achieved, &run.append);
        row(
            "hop 1: append → published (acknowledged by JetStream to the relay)",
            run.achieved,
            &run.relayed,
        );
        row(
            "hop 2: published → visible in audit_feed (JetStream, projector)",
            run.achieved,
            &run.projected,
        );
        row(
            "floor: append → visible in bench_floor (minimal publisher and consumer)",
            floor.achieved,
            &floor.lag,
        );
        row(
            "floor hop 1: append → published (acknowledged by JetStream to the floor's publisher)",
            floor.achieved,
            &floor.relayed,
        );
        row(
            "floor hop 2: published → visible in bench_floor (JetStream, one-row inserts)",
            floor.achieved,
            &floor.projected,
        );
        out
    }

    /// The host's CPU during the counted part of each steady run.
    fn cpu_table(&self) -> String {
        let mut out = String::from(
            "| run (same steady load) | events/s | host CPU busy | carelog µs/event | \
             PostgreSQL µs/event | NATS server µs/event | append p99 ms |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        );
        let mut row = |what: &str, rate: f64, cpu: Option<&cpu::CpuUse>, append: f64| {
            // "n/a": not read (off Linux), or the server runs on another host.
            let us = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"));
            let busy = cpu.map_or_else(|| "n/a".to_owned(), |c| format!("{:.0} %", c.busy_pct));
            let _ = writeln!(
                out,
                "| {what} | {rate:.0} | {busy} | {} | {} | {} | {append:.2} |",
                us(cpu.map(|c| c.carelog_us)),
                us(cpu.and_then(|c| c.postgres_us)),
                us(cpu.and_then(|c| c.nats_us)),
            );
        };
        row(
            "appends alone (no relay, no projector)",
            self.alone.achieved,
            self.alone.cpu.as_ref(),
            self.alone.append.p99,
        );
        row(
            "appends, relay, JetStream and projector (the run above)",
            self.pipeline.achieved,
            self.pipeline.cpu.as_ref(),
            self.pipeline.append.p99,
        );
        row(
            "appends, the floor's publisher, JetStream and consumer (the floor)",
            self.floor.achieved,
            self.floor.cpu.as_ref(),
            self.floor.append.p99,
        );
        out
    }

    /// What the CPU table says, in a sentence (empty when `/proc` could not be read).
    fn cpu_interpretation(&self) -> String {
        let (Some(alone), Some(all)) = (&self.alone.cpu, &self.pipeline.cpu) else {
            return String::new();
        };
        let postgres = match (all.postgres_us, alone.postgres_us) {
            (Some(all), Some(alone)) => format!(", PostgreSQL {all:.1} µs against {alone:.1}"),
            _ => String::new(),
        };
        let nats = all
            .nats_us
            .map_or_else(String::new, |n| format!(", the NATS server {n:.1} µs"));
        format!(
            " The appends alone kept the host {:.0} % busy at this rate; with the relay, \
             JetStream and the projector it was {:.0} % busy (per event: carelog {:.1} µs \
             against {:.1} alone{postgres}{nats}).",
            alone.busy_pct, all.busy_pct, all.carelog_us, alone.carelog_us,
        )
    }

    /// What the floor says about the target, in a sentence.
    fn floor_interpretation(&self) -> String {
        let floor = &self.floor;
        let busy = floor.cpu.as_ref().map_or_else(String::new, |c| {
            format!(", the host {:.0} % busy", c.busy_pct)
        });
        let nats = floor
            .cpu
            .as_ref()
            .and_then(|c| c.nats_us)
            .map_or_else(String::new, |n| {
                format!(", the NATS server {n:.1} µs per event")
            });
        let meaning = if floor.lag.p99 <= LAG_TARGET_P99_MS {
            "within the target: in this run, what the pipeline adds beyond the floor is \
             what kept it from the target"
        } else {
            "above the target too: in this run, at this rate on this host, a pipeline that \
             does at least as much (one JetStream message per event, one PostgreSQL \
             transaction per batch) could not reach it"
        };
        format!(
            " The floor (the same load through a minimal publisher, the same stream \
             definition and a consumer inserting one narrow row per event) gave p99 {:.2} ms \
             (p50 {:.2} ms) at {:.0} events/s{busy}{nats}: {meaning}.",
            floor.lag.p99, floor.lag.p50, floor.achieved,
        )
    }

    fn interpretation(&self) -> String {
        let half = self.max_rate / 2.0;
        let at = if self.rate_given {
            format!(
                "at {:.0} events/s (given; half the measured maximum would be {half:.0})",
                self.rate
            )
        } else {
            format!("at {:.0} events/s, half the measured maximum", self.rate)
        };
        let run = &self.pipeline;
        let verdict = if run.lag.p99 <= LAG_TARGET_P99_MS {
            "reaching"
        } else {
            "missing"
        };
        format!(
            "{at}, the p99 end-to-end lag was {:.2} ms (p50 {:.2} ms), {verdict} the ≤ {:.0} ms \
             target; of the p50, {:.2} ms is the append's own commit, the rest the relay, \
             JetStream, the projector's transaction and the watcher's resolution.",
            run.lag.p99, run.lag.p50, LAG_TARGET_P99_MS, run.append.p50,
        )
    }

    fn section(&self) -> String {
        format!(
            "{start}\n\
             ## Projection lag: append → visible in audit_feed, at a steady load\n\
             \n\
             - Date: {date}\n\
             - Machine: {machine}; NATS JetStream on the same host (1 replica)\n\
             - Command: `{command}`\n\
             - Maximum append rate: {max:.0} events/s ({max_writers} writers appending one \
             event at a time with nothing else running, as `carelog bench append`). Steady \
             load: {rate:.0} events/s scheduled for {secs} s from {writers} writers (each its \
             own stream, one event per append, evenly spaced turns); {counted} appends \
             counted after a {warm} s warm-up, started at {achieved:.0} events/s; {late} \
             started more than 5 ms after they were due (lateness p50 {late50:.2} ms, p99 \
             {late99:.2} ms, max {latemax:.2} ms).\n\
             - Pipeline: the real relay (LISTEN/NOTIFY wake-up, {idle} ms fallback poll) and \
             the audit_feed projector (durable pull consumer, default settings), in-process, \
             on a private NATS prefix, as `carelog serve` runs them.\n\
             - Floor: before the pipeline starts, the same steady load through the \
             least a pipeline of this shape does: a publisher sends each committed event as \
             the relay encodes it (same headers and body, `Nats-Msg-Id` = event id) to a \
             stream of the events stream's definition, batches of up to 500 pipelined; a \
             durable pull consumer (cumulative acknowledgements) inserts each batch's \
             positions, read from a header, into `bench_floor` (primary key only) with its \
             checkpoint, one transaction per batch. No gap checks, no dead letters, no \
             decoding, no audit columns or indexes (see `crates/carelog/src/cmd/bench/floor.rs`).\n\
             - Method: lag = from the start of the append call until a watcher, on a \
             connection of its own, reads `max(position)` of `audit_feed` ≥ the event's \
             position (the projector applies in position order). The watcher reads every \
             {every} ms ({reads} changes seen), so each lag is overstated by up to about 1 ms \
             plus one query. What JetStream acknowledged to the relay is sampled at the same \
             ticks (in process), splitting the lag into its two hops; the percentiles of the hops do \
             not add up to those of the whole. A `CHECKPOINT` precedes the steady load, as \
             in `bench append`.\n\
             \n\
             {table}\n\
             CPU during the counted part of each steady run (from Linux's `/proc`: the \
             host's busy share, and the CPU time of this process, of PostgreSQL's processes \
             and of the NATS server's, per event counted). The first run is the same load \
             with nothing but the appends running; the floor's, in the last row, ran second. The \
             relay and the projector start after both and catch up with them before the \
             measured run.\n\
             \n\
             {cpu_table}\n\
             {interpretation}{cpu_interpretation}{floor_interpretation}\n\
             {end}\n",
            start = LAG_MARKERS.start,
            end = LAG_MARKERS.end,
            date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            machine = self.machine.line(),
            command = self.command,
            max = self.max_rate,
            max_writers = self.max_writers,
            rate = self.rate,
            secs = self.seconds,
            writers = self.writers,
            counted = self.pipeline.counted,
            warm = LAG_WARM_UP.as_secs(),
            achieved = self.pipeline.achieved,
            late = self.pipeline.late,
            late50 = self.pipeline.lateness.p50,
            late99 = self.pipeline.lateness.p99,
            latemax = self.pipeline.lateness.max,
            idle = carelog_bus::RelayConfig::new(
                carelog_bus::BusConfig::new("x", 1).expect("a valid prefix")
            )
            .idle_poll
            .as_millis(),
            every = WATCH_EVERY.as_millis(),
            reads = self.pipeline.watcher_reads,
            table = self.table(),
            cpu_table = self.cpu_table(),
            interpretation = self.interpretation(),
            cpu_interpretation = self.cpu_interpretation(),
            floor_interpretation = self.floor_interpretation(),
        )
    }
}

//! `carelog bench reads`.

use super::*;

/// The section of `carelog bench reads`.
pub(super) const READS_MARKERS: Markers = Markers {
    start: "<!-- bench:reads:start -->",
    end: "<!-- bench:reads:end -->",
};
/// The p99 of a PHI read (access event included) the issue asks for.
const READ_TARGET_P99_MS: f64 = 10.0;
/// Tasks registering patients while seeding.
const SEED_TASKS: usize = 16;

/// Options of `carelog bench reads`.
#[derive(Debug, clap::Args)]
pub struct ReadsArgs {
    /// Where it runs and what it writes.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Concurrent reader counts to measure, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,64",
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub readers: Vec<u32>,
    /// Seconds counted per measurement (after a 0.5 s warm-up).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub seconds: u64,
    /// Patients seeded (each with one record); every read picks one at random.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub patients: u64,
}

/// Runs `carelog bench reads`: seeds a scratch database through the clinical service,
/// measures the baseline and the reads, reports; drops the database whatever happened.
pub async fn reads(args: ReadsArgs) -> Result<ExitCode> {
    let scratch = Scratch::create(&args.common.database_url).await?;
    let outcome = until_interrupted(reads_in(&scratch, &args)).await;
    let report = scratch.finish(outcome).await?;
    print!("{}", report.table());
    println!();
    println!("{}", report.interpretation());
    args.common.write(READS_MARKERS, &report.section())?;
    Ok(ExitCode::SUCCESS)
}

/// One reader count's results.
struct ReadsMeasured {
    readers: u32,
    baseline: Run,
    carelog: Run,
    /// Access events per committed transaction (group commit).
    events_per_tx: f64,
}

/// Everything `carelog bench reads` measured.
struct ReadsReport {
    machine: Machine,
    command: String,
    patients: u64,
    seconds: u64,
    pool: u32,
    rows: Vec<ReadsMeasured>,
    /// Load averages before and after the measurements.
    load: (String, String),
}

/// An authenticated actor with `roles` (org roles come from memberships).
fn bench_actor(user: UserId, roles: Vec<Role>) -> Actor {
    Actor {
        user_id: user,
        session_id: SessionId(Uuid::nil()),
        roles,
        mfa: false,
    }
}

/// The context of one API request, as the HTTP layer builds it.
fn api_ctx(command: &str) -> Ctx {
    Ctx {
        request_id: format!("bench-{}", Uuid::now_v7().simple()),
        ip: Some("127.0.0.1".to_owned()),
        user_agent: Some(format!("carelog-bench/{}", env!("CARGO_PKG_VERSION"))),
        command: command.to_owned(),
        now: chrono::Utc::now(),
        operator: false,
    }
}

async fn reads_in(scratch: &Scratch, args: &ReadsArgs) -> Result<ReadsReport> {
    let pool_size = PoolConfig::default().max_connections;
    let pool = scratch.pool(pool_size).await?;
    carelog_store::migrate(&pool)
        .await
        .context("migrating the scratch database")?;
    carelog_projector::schemas::ensure_schemas(&pool)
        .await
        .context("creating the read models")?;
    let machine = Machine::describe(&pool).await?;
    let keyring = Keyring::new(MasterKey::generate(), []);
    let keys = KeyStore::new(pool.clone(), keyring, CacheConfig::default());
    let store = EventStore::start(pool.clone(), keys, GroupCommitConfig::default());
    let clinical = Clinical::new(store.clone(), pool.clone(), ClinicalConfig::default());

    // Seed through the service, as `carelog dev` does: an org, a doctor, the patients.
    let (doctor, patients) = {
        let progress = Progress::start(&format!(
            "seeding an org, a doctor and {} patients with a record each",
            args.patients
        ));
        let seeded = seed_patients(&clinical, args.patients).await?;
        progress.finish("seeded");
        seeded
    };
    // Bring the patients read model up to date without NATS: a rebuild from the log.
    {
        let progress = Progress::start("rebuilding the patients read model");
        carelog_projector::rebuild(&pool, &store, &carelog_projector::Patients, |_, _| {})
            .await
            .context("rebuilding the patients read model")?;
        progress.finish("caught up");
    }
    let patients = Arc::new(patients);

    let load_before = load_average();
    let window = Duration::from_secs(args.seconds);
    let mut rows = Vec::with_capacity(args.readers.len());
    for &readers in &args.readers {
        let baseline = {
            let progress = Progress::start(&format!(
                "plain stream read + open, {}",
                readers_label(readers)
            ));
            checkpoint(&pool).await;
            let (store, patients) = (store.clone(), Arc::clone(&patients));
            let choices = patients.len();
            let m = measure_reads(readers, window, choices, move |i| {
                let (store, id) = (store.clone(), patients[i]);
                async move {
                    let stream = id.stream();
                    let events = store
                        .read_stream(&stream, StreamVersion::EMPTY, 500)
                        .await
                        .with_context(|| format!("reading {stream}"))?;
                    if events.is_empty() {
                        bail!("{stream} has no events");
                    }
                    for e in &events {
                        store.open(e).await.context("opening an event")?;
                    }
                    Ok(())
                }
            })
            .await?;
            progress.finish(&m.summary("reads/s"));
            m
        };
        let (carelog, events_per_tx) = {
            let progress = Progress::start(&format!(
                "carelog patient read + access event, {}",
                readers_label(readers)
            ));
            checkpoint(&pool).await;
            let before = last_position(&pool).await?;
            let count_before = count_events(&pool).await?;
            let (clinical, doctor, patients) =
                (clinical.clone(), doctor.clone(), Arc::clone(&patients));
            let choices = patients.len();
            let m = measure_reads(readers, window, choices, move |i| {
                let (clinical, doctor, id) = (clinical.clone(), doctor.clone(), patients[i]);
                async move {
                    let ctx = api_ctx("GET /api/patients/{id}");
                    clinical
                        .patient(&ctx, &doctor, id)
                        .await
                        .with_context(|| format!("reading patient {}", id.0))?;
                    Ok(())
                }
            })
            .await?;
            let added = count_events(&pool).await? - count_before;
            if u64::try_from(added).ok() != Some(m.succeeded) {
                bail!(
                    "sanity check failed: {} reads succeeded but the log grew by {added} events",
                    m.succeeded
                );
            }
            let per_tx = appends_per_transaction(&pool, before).await?;
            progress.finish(&format!(
                "{}, {per_tx:.1} access events per transaction",
                m.summary("reads/s")
            ));
            (m, per_tx)
        };
        rows.push(ReadsMeasured {
            readers,
            baseline,
            carelog,
            events_per_tx,
        });
    }
    drop(clinical);
    drop(store);
    pool.close().await;
    let readers: Vec<String> = args.readers.iter().map(u32::to_string).collect();
    Ok(ReadsReport {
        machine,
        command: format!(
            "carelog bench reads --readers {} --seconds {} --patients {}",
            readers.join(","),
            args.seconds,
            args.patients
        ),
        patients: args.patients,
        seconds: args.seconds,
        pool: pool_size,
        rows,
        load: (load_before, load_average()),
    })
}

/// "1 reader", "64 readers".
fn readers_label(n: u32) -> String {
    if n == 1 {
        "1 reader".to_owned()
    } else {
        format!("{n} readers")
    }
}

/// `readers` tasks, each running `read(i)` (with `i` a random index below `choices`)
/// back to back until the window closes.
async fn measure_reads<F, Fut>(
    readers: u32,
    length: Duration,
    choices: usize,
    read: F,
) -> Result<Run>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let read = Arc::new(read);
    let stop = Arc::new(AtomicBool::new(false));
    let window = Window::after_warm_up(length);
    let handles = (0..readers)
        .map(|_| {
            let (read, stop) = (Arc::clone(&read), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut rng = Rng::new();
                let mut tally = Tally::new()?;
                while window.open() && !stop.load(Ordering::Relaxed) {
                    let op = read(rng.below(choices));
                    let started = Instant::now();
                    if let Err(e) = op.await {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                    tally.record(started, &window);
                }
                Ok(tally)
            })
        })
        .collect();
    let tallies = join_workers(handles).await?;
    Run::from_tallies(tallies, length)
}

/// Seeds, through the clinical service: an organisation (created by a SUPER:ADMIN), an
/// ORG:DOCTOR member, and `patients` patients registered by the doctor, each with one
/// note the doctor wrote. Returns the doctor and the patients.
async fn seed_patients(clinical: &Clinical, patients: u64) -> Result<(Caller, Vec<PatientId>)> {
    let ctx = api_ctx("POST /api/organizations");
    let admin = clinical
        .caller(bench_actor(UserId(Uuid::now_v7()), vec![Role::SuperAdmin]))
        .await?;
    let org = clinical
        .create_org(&ctx, &admin, "Bench Clinic")
        .await
        .context("creating the organisation")?
        .org_id;
    let doctor_id = UserId(Uuid::now_v7());
    clinical
        .add_member(&ctx, &admin, org, doctor_id, Role::OrgDoctor)
        .await
        .context("adding the doctor")?;
    let doctor = clinical.caller(bench_actor(doctor_id, vec![])).await?;
    let per_task = events_per_stream(patients, SEED_TASKS as u64);
    let handles: Vec<JoinHandle<Result<Vec<PatientId>>>> = per_task
        .into_iter()
        .enumerate()
        .map(|(task, n)| {
            let (clinical, doctor) = (clinical.clone(), doctor.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for k in 0..n {
                    let ctx = api_ctx("POST /api/organizations/{org_id}/patients");
                    let i = k * SEED_TASKS as u64 + task as u64;
                    let patient = clinical
                        .register_patient(
                            &ctx,
                            &doctor,
                            org,
                            NewPatient {
                                demographics: Demographics {
                                    given_name: format!("Given{i}"),
                                    family_name: format!("Family{}", i % 500),
                                    birth_date: chrono::NaiveDate::from_ymd_opt(
                                        1940 + (i % 80) as i32,
                                        1 + (i % 12) as u32,
                                        1 + (i % 28) as u32,
                                    )
                                    .context("a birth date")?,
                                    sex: if i.is_multiple_of(2) {
                                        Sex::Female
                                    } else {
                                        Sex::Male
                                    },
                                    phone: Some(format!("+41 44 555 {:04}", i % 10_000)),
                                    email: Some(format!("patient{i}@bench.example")),
                                    address: Some(format!("{} Bench Road, Zürich", 1 + i % 200)),
                                    national_id: Some(format!("756.{i:010}")),
                                },
                                user_id: None,
                            },
                        )
                        .await
                        .with_context(|| format!("registering patient {i}"))?;
                    let ctx = api_ctx("POST /api/patients/{id}/records");
                    clinical
                        .create_record(
                            &ctx,
                            &doctor,
                            patient.patient_id,
                            RecordKind::Note,
                            RecordContent {
                                code: None,
                                title: "Consultation".to_owned(),
                                body: "Patient reports fatigue for two weeks; no fever.".to_owned(),
                                data: None,
                                recorded_at: chrono::Utc::now(),
                            },
                        )
                        .await
                        .with_context(|| format!("writing the record of patient {i}"))?;
                    ids.push(patient.patient_id);
                }
                Ok(ids)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for joined in futures::future::join_all(handles).await {
        ids.extend(joined.context("a seeding task panicked")??);
    }
    Ok((doctor, ids))
}

impl ReadsReport {
    fn table(&self) -> String {
        let mut out = String::from(
            "| readers | reads/s | p50 ms | p99 ms | baseline reads/s | baseline p50 ms \
             | baseline p99 ms | access events per commit |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.1} |",
                r.readers,
                r.carelog.per_second,
                r.carelog.p50_ms,
                r.carelog.p99_ms,
                r.baseline.per_second,
                r.baseline.p50_ms,
                r.baseline.p99_ms,
                r.events_per_tx,
            );
        }
        out
    }

    fn interpretation(&self) -> String {
        let Some(worst) = self
            .rows
            .iter()
            .max_by(|a, b| a.carelog.p99_ms.total_cmp(&b.carelog.p99_ms))
        else {
            return "Nothing was measured.".to_owned();
        };
        let verdict = if worst.carelog.p99_ms <= READ_TARGET_P99_MS {
            "reaching"
        } else {
            "missing"
        };
        let parts: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                format!(
                    "{} p99 {:.2} ms (baseline {:.2} ms)",
                    readers_label(r.readers),
                    r.carelog.p99_ms,
                    r.baseline.p99_ms
                )
            })
            .collect();
        format!(
            "The worst p99 of a PHI read with its access event was {:.2} ms at {}, {verdict} \
             the ≤ {:.0} ms target ({}).",
            worst.carelog.p99_ms,
            readers_label(worst.readers),
            READ_TARGET_P99_MS,
            parts.join("; ")
        )
    }

    fn section(&self) -> String {
        format!(
            "{start}\n\
             ## PHI reads: a patient's demographics with their access event vs a plain stream read\n\
             \n\
             - Date: {date}\n\
             - Machine: {machine}\n\
             - Command: `{command}`\n\
             - Data: one organisation, one ORG:DOCTOR member and {patients} patients, each with \
             one note, all created through the clinical service (`carelog_commands::clinical`) \
             as the API does; then the `patients` read model is brought up to date by a \
             rebuild from the log (no NATS), so reads take the read-model path \
             (`ClinicalConfig::default()`, the projection already past the patient's \
             position: no wait, no stream fold).\n\
             - carelog: `Clinical::patient` called directly (no HTTP) by the doctor on a random \
             patient: the decision's facts from the inline tables and the `patients` row in \
             one statement, the policy, and one `AccessRecorded` event appended through the \
             group-commit event store before the answer (checked: the log grew by exactly one event per read). Baseline, same \
             run, same pool ({pool} connections) and same random patients: a plain read of \
             the patient's stream (`EventStore::read_stream`) and opening (decrypting) each \
             of its events, with no authorization and no write.\n\
             - Each measurement counts {secs} s after a {warm} s warm-up; latency is per call, \
             from the caller. Load average (1, 5, 15 min) before / after the measurements: \
             {load_before} / {load_after}.\n\
             \n\
             {table}\n\
             {interpretation}\n\
             {end}\n",
            start = READS_MARKERS.start,
            end = READS_MARKERS.end,
            date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            machine = self.machine.line(),
            command = self.command,
            patients = self.patients,
            pool = self.pool,
            secs = self.seconds,
            load_before = self.load.0,
            load_after = self.load.1,
            warm = WARM_UP.as_secs_f64(),
            table = self.table(),
            interpretation = self.interpretation(),
        )
    }
}

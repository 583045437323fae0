//! `carelog bench audit-search`.

use super::*;

/// The section of `carelog bench audit-search`.
pub(super) const AUDIT_SEARCH_MARKERS: Markers = Markers {
    start: "<!-- bench:audit-search:start -->",
    end: "<!-- bench:audit-search:end -->",
};
/// The p99 of an audit search the issue asks for.
const SEARCH_TARGET_P99_MS: f64 = 20.0;
/// Rows per `INSERT … SELECT` while filling `audit_feed`.
const FILL_BATCH_ROWS: u64 = 250_000;
/// The page size of every search.
const SEARCH_PAGE: i64 = 50;
/// Distinct users, organisations and days of the synthetic feed.
const FEED_USERS: u32 = 10_000;
const FEED_ORGS: u32 = 100;
const FEED_DAYS: u32 = 30;

/// Options of `carelog bench audit-search`.
#[derive(Debug, clap::Args)]
pub struct AuditSearchArgs {
    /// Where it runs and what it writes.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Rows written into `audit_feed`.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(10_000..=100_000_000))]
    pub rows: u64,
    /// Queries timed per kind of search (each with random parameters).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..=100_000))]
    pub queries: u64,
}

/// Runs `carelog bench audit-search`: fills a scratch `audit_feed`, times the baselines
/// and the searches, reports; drops the database whatever happened.
pub async fn audit_search(args: AuditSearchArgs) -> Result<ExitCode> {
    let scratch = Scratch::create(&args.common.database_url).await?;
    let outcome = until_interrupted(audit_search_in(&scratch, &args)).await;
    let report = scratch.finish(outcome).await?;
    print!("{}", report.table());
    println!();
    println!("{}", report.interpretation());
    for (what, plan) in &report.plans {
        eprintln!("\nEXPLAIN (ANALYZE, BUFFERS) of a slow \"{what}\" query:\n{plan}");
    }
    args.common.write(AUDIT_SEARCH_MARKERS, &report.section())?;
    Ok(ExitCode::SUCCESS)
}

/// The synthetic feed, `$1..=$2` positions of `$3` in all: 10k users in 100
/// organisations, resources, actions and outcomes mixed, `recorded_at` spread evenly
/// over the last 30 days in position order.
const FILL_FEED_SQL: &str = "\
INSERT INTO audit_feed (position, event_id, stream_id, stream_type, event_type, actor_id, \
  request_id, recorded_at, roles, org_id, ip, user_agent, action, resource_type, \
  resource_id, outcome, endpoint, service, emergency) \
SELECT g, gen_random_uuid(), rt || '-' || rid, rt, et, actor, 'req-' || g, at, \
  ARRAY['ORG:DOCTOR'], org, ip, 'Mozilla/5.0 (carelog bench)', action, rt, rid, outcome, \
  action || ' ' || rt, 'api', r3 > 0.999 \
FROM ( \
  SELECT g, actor, org, at, ip, r3, rt, \
    CASE rt WHEN 'patient' THEN md5('patient' || floor(r4 * 100000))::uuid::text \
            WHEN 'clinical_record' THEN md5('record' || floor(r4 * 500000))::uuid::text \
            WHEN 'user' THEN actor::text \
            WHEN 'organization' THEN org::text \
            ELSE md5(rt || floor(r4 * 20000))::uuid::text END AS rid, \
    CASE WHEN rt = 'user' THEN 'login' WHEN r2 < 0.70 THEN 'read' \
         WHEN r2 < 0.85 THEN 'create' WHEN r2 < 0.95 THEN 'update' \
         WHEN r2 < 0.97 THEN 'export' WHEN r2 < 0.98 THEN 'delete' \
         WHEN r2 < 0.99 THEN 'grant' ELSE 'revoke' END AS action, \
    CASE WHEN r3 < 0.94 THEN 'success' WHEN r3 < 0.99 THEN 'denied' \
         ELSE 'failure' END AS outcome, \
    CASE WHEN rt = 'user' THEN 'UserLoggedIn' WHEN r2 < 0.70 THEN 'AccessRecorded' \
         ELSE 'ClinicalChange' END AS et \
  FROM ( \
    SELECT g, md5('user' || u)::uuid AS actor, md5('org' || (u % $5))::uuid AS org, \
      now() - make_interval(days => $6) \
        + make_interval(secs => (g - 1)::float8 * $6 * 86400.0 / $3::float8) AS at, \
      '10.' || (u % 250) || '.' || (u / 250 % 250) || '.7' AS ip, r2, r3, r4, \
      CASE WHEN r1 < 0.45 THEN 'patient' WHEN r1 < 0.85 THEN 'clinical_record' \
           WHEN r1 < 0.92 THEN 'user' WHEN r1 < 0.96 THEN 'organization' \
           WHEN r1 < 0.99 THEN 'consent' ELSE 'dsr' END AS rt \
    FROM (SELECT g, floor(random() * $4)::int AS u, random() AS r1, random() AS r2, \
            random() AS r3, random() AS r4 \
          FROM generate_series($1::bigint, $2::bigint) AS g) a \
  ) b \
) c";

/// The kinds of search timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SearchKind {
    Resource,
    User,
    ActionDay,
    ReadDay,
    LateWeek,
    Outcome,
    Browse,
}

impl SearchKind {
    const ALL: [SearchKind; 7] = [
        SearchKind::Resource,
        SearchKind::User,
        SearchKind::ActionDay,
        SearchKind::ReadDay,
        SearchKind::LateWeek,
        SearchKind::Outcome,
        SearchKind::Browse,
    ];

    fn label(self) -> &'static str {
        match self {
            SearchKind::Resource => "by resource (type + id)",
            SearchKind::User => "by user (actor)",
            SearchKind::ActionDay => "by action + 24 h date range",
            SearchKind::ReadDay => {
                "by action `read` (70 % of rows) + 24 h date range, one of the first 20 pages"
            }
            SearchKind::LateWeek => {
                "by date range: the last 7 of the 30 days (≈ 23 % of rows), one of the first 20 pages"
            }
            SearchKind::Outcome => "by outcome",
            SearchKind::Browse => "no filter, one of the first 20 pages",
        }
    }
}

/// Values the random parameters are drawn from, sampled from the filled feed.
struct FeedSample {
    resources: Vec<(String, String)>,
    users: Vec<Uuid>,
    first: chrono::DateTime<chrono::Utc>,
    last: chrono::DateTime<chrono::Utc>,
}

const SEARCH_ACTIONS: [&str; 8] = [
    "read", "create", "update", "export", "delete", "grant", "revoke", "login",
];
const SEARCH_OUTCOMES: [&str; 3] = ["success", "denied", "failure"];

impl FeedSample {
    /// A filter of `kind` and a page offset, with random parameters.
    fn draw(&self, kind: SearchKind, rng: &mut Rng) -> (carelog_store::audit::AuditFilter, i64) {
        let mut f = carelog_store::audit::AuditFilter::default();
        let mut offset = 0;
        match kind {
            SearchKind::Resource => {
                let (t, id) = &self.resources[rng.below(self.resources.len())];
                f.resource_type = Some(t.clone());
                f.resource_id = Some(id.clone());
            }
            SearchKind::User => f.actor_id = Some(self.users[rng.below(self.users.len())]),
            SearchKind::ActionDay => {
                f.action = Some(SEARCH_ACTIONS[rng.below(SEARCH_ACTIONS.len())].to_owned());
                (f.from, f.to) = self.day(rng);
            }
            SearchKind::ReadDay => {
                // The commonest action: the most matches a day holds (about 23k of 1M
                // rows), anywhere in the 30 days, and not only the first page.
                f.action = Some("read".to_owned());
                (f.from, f.to) = self.day(rng);
                offset = rng.below(20) as i64 * SEARCH_PAGE;
            }
            SearchKind::LateWeek => {
                // A long range late in the log, as "the last week" of a long history:
                // too many matches to sort, far from the log's start.
                let from = self.last - chrono::Duration::days(7)
                    + chrono::Duration::seconds((rng.next() % 3600) as i64);
                (f.from, f.to) = (Some(from), Some(from + chrono::Duration::days(7)));
                offset = rng.below(20) as i64 * SEARCH_PAGE;
            }
            SearchKind::Outcome => {
                f.outcome = Some(SEARCH_OUTCOMES[rng.below(SEARCH_OUTCOMES.len())].to_owned());
            }
            SearchKind::Browse => offset = rng.below(20) as i64 * SEARCH_PAGE,
        }
        (f, offset)
    }

    /// A random 24 h range within the feed (inclusive bounds).
    #[allow(clippy::type_complexity)]
    fn day(
        &self,
        rng: &mut Rng,
    ) -> (
        Option<chrono::DateTime<chrono::Utc>>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) {
        let span = (self.last - self.first - chrono::Duration::days(1))
            .num_seconds()
            .max(1);
        let from =
            self.first + chrono::Duration::seconds((rng.next() % span.unsigned_abs()) as i64);
        (Some(from), Some(from + chrono::Duration::days(1)))
    }
}

/// One kind of search's timings.
struct SearchMeasured {
    kind: SearchKind,
    search: Percentiles,
    count: Percentiles,
    page: Percentiles,
    /// Median total, as the API answers it (at most the cap).
    matched: i64,
    /// How many of the totals were exact (the count stayed within the cap).
    exact: usize,
    /// How many queries were timed.
    queries: usize,
}

/// Everything `carelog bench audit-search` measured.
struct AuditSearchReport {
    machine: Machine,
    command: String,
    rows: u64,
    queries: u64,
    fill: Duration,
    pk: Percentiles,
    count_all: Percentiles,
    kinds: Vec<SearchMeasured>,
    /// EXPLAIN ANALYZE of one query of each kind that missed the target.
    plans: Vec<(&'static str, String)>,
    /// Load averages before and after the timed queries.
    load: (String, String),
}

/// Microseconds since `started`.
fn us_since(started: Instant) -> u64 {
    micros(started.elapsed())
}

async fn audit_search_in(scratch: &Scratch, args: &AuditSearchArgs) -> Result<AuditSearchReport> {
    let pool = scratch.pool(4).await?;
    carelog_store::migrate(&pool)
        .await
        .context("migrating the scratch database")?;
    carelog_projector::schemas::ensure_schemas(&pool)
        .await
        .context("creating the read models")?;
    let machine = Machine::describe(&pool).await?;

    // Fill: server-side INSERT … SELECT, 4 batches at a time.
    let fill = {
        let progress = Progress::start(&format!(
            "filling audit_feed with {} rows (INSERT … SELECT generate_series)",
            args.rows
        ));
        let started = Instant::now();
        let batches: Vec<(i64, i64)> = (0..args.rows.div_ceil(FILL_BATCH_ROWS))
            .map(|b| {
                let lo = b * FILL_BATCH_ROWS + 1;
                let hi = ((b + 1) * FILL_BATCH_ROWS).min(args.rows);
                (lo as i64, hi as i64)
            })
            .collect();
        let total = args.rows as i64;
        let handles: Vec<JoinHandle<Result<()>>> = batches
            .chunks(batches.len().div_ceil(4).max(1))
            .map(|mine| {
                let (pool, mine) = (pool.clone(), mine.to_vec());
                tokio::spawn(async move {
                    for (lo, hi) in mine {
                        sqlx::query(FILL_FEED_SQL)
                            .bind(lo)
                            .bind(hi)
                            .bind(total)
                            .bind(FEED_USERS as f64)
                            .bind(FEED_ORGS as i32)
                            .bind(FEED_DAYS as i32)
                            .execute(&pool)
                            .await
                            .with_context(|| format!("filling positions {lo}..={hi}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        join_workers_unit(handles).await?;
        sqlx::query("VACUUM (ANALYZE) audit_feed")
            .execute(&pool)
            .await
            .context("VACUUM (ANALYZE) audit_feed")?;
        let elapsed = started.elapsed();
        progress.finish(&format!("{:.1} s", elapsed.as_secs_f64()));
        elapsed
    };
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_feed")
        .fetch_one(&pool)
        .await?;
    if u64::try_from(rows).ok() != Some(args.rows) {
        bail!(
            "sanity check failed: audit_feed holds {rows} rows, not {}",
            args.rows
        );
    }
    checkpoint(&pool).await;

    let sample = FeedSample {
        resources: sqlx::query_as(
            "SELECT resource_type, resource_id FROM audit_feed TABLESAMPLE BERNOULLI (1) \
             WHERE resource_id IS NOT NULL LIMIT 5000",
        )
        .fetch_all(&pool)
        .await
        .context("sampling resources")?,
        users: sqlx::query_scalar(
            "SELECT DISTINCT actor_id FROM audit_feed WHERE actor_id IS NOT NULL",
        )
        .fetch_all(&pool)
        .await
        .context("listing users")?,
        first: sqlx::query_scalar("SELECT min(recorded_at) FROM audit_feed")
            .fetch_one(&pool)
            .await?,
        last: sqlx::query_scalar("SELECT max(recorded_at) FROM audit_feed")
            .fetch_one(&pool)
            .await?,
    };
    if sample.resources.is_empty() || sample.users.is_empty() {
        bail!("the feed sample is empty");
    }
    pool.close().await;

    // Every query on one connection, one after the other, as one API request would.
    let db = scratch.pool(1).await?;
    let load_before = load_average();
    let mut rng = Rng::new();
    let n = usize::try_from(args.queries).context("--queries is too large")?;

    let pk = {
        let progress = Progress::start("baseline: primary-key look-ups of audit_feed");
        let mut us = Vec::with_capacity(n);
        for _ in 0..n {
            let position = 1 + (rng.next() % args.rows) as i64;
            let started = Instant::now();
            sqlx::query("SELECT * FROM audit_feed WHERE position = $1")
                .bind(position)
                .fetch_one(&db)
                .await
                .context("primary-key look-up")?;
            us.push(us_since(started));
        }
        let p = Percentiles::of(&mut us);
        progress.finish(&format!("p50 {:.2} ms, p99 {:.2} ms", p.p50, p.p99));
        p
    };
    let count_all = {
        let progress = Progress::start("baseline: SELECT count(*) FROM audit_feed");
        let mut us = Vec::new();
        for _ in 0..n.min(20) {
            let started = Instant::now();
            let _: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_feed")
                .fetch_one(&db)
                .await
                .context("count(*)")?;
            us.push(us_since(started));
        }
        let p = Percentiles::of(&mut us);
        progress.finish(&format!("p50 {:.2} ms, p99 {:.2} ms", p.p50, p.p99));
        p
    };

    let mut kinds = Vec::new();
    let mut plans = Vec::new();
    for kind in SearchKind::ALL {
        let progress = Progress::start(&format!("audit search {}", kind.label()));
        let (mut search_us, mut count_us, mut page_us, mut matched, mut exact) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            0,
        );
        let mut slowest: Option<(u64, carelog_store::audit::AuditFilter, i64)> = None;
        for _ in 0..n {
            let (filter, offset) = sample.draw(kind, &mut rng);
            // As the API answers a page (`carelog_store::audit::page`): in one read-only
            // snapshot, the total, capped, then the page; each timed on its own, and the
            // whole with the transaction's begin and commit.
            let whole = Instant::now();
            let mut tx = db
                .begin_with(carelog_store::audit::PAGE_BEGIN)
                .await
                .context("audit page transaction")?;
            let started = Instant::now();
            let total = carelog_store::audit::count(&mut *tx, &filter, TOTAL_CAP)
                .await
                .context("audit count")?;
            let counted = us_since(started);
            let started = Instant::now();
            let page = carelog_store::audit::search(&mut tx, &filter, SEARCH_PAGE, offset)
                .await
                .context("audit search")?;
            let searched = us_since(started);
            tx.commit().await.context("audit page transaction")?;
            let paged = us_since(whole);
            if page.len() as i64 > SEARCH_PAGE
                || (offset == 0 && page.len() as i64 != total.value.min(SEARCH_PAGE))
                || (total.exact
                    && page.len() as i64 != (total.value - offset).clamp(0, SEARCH_PAGE))
                || page.windows(2).any(|w| w[0].position >= w[1].position)
            {
                bail!(
                    "sanity check failed: a page of {} entries (offset {offset}) for a total \
                     of {total:?}, or not in log order",
                    page.len()
                );
            }
            if slowest.as_ref().is_none_or(|s| paged > s.0) {
                slowest = Some((paged, filter, offset));
            }
            search_us.push(searched);
            count_us.push(counted);
            page_us.push(paged);
            matched.push(total.value);
            exact += usize::from(total.exact);
        }
        matched.sort_unstable();
        let m = SearchMeasured {
            kind,
            search: Percentiles::of(&mut search_us),
            count: Percentiles::of(&mut count_us),
            page: Percentiles::of(&mut page_us),
            matched: matched.get(matched.len() / 2).copied().unwrap_or(0),
            exact,
            queries: n,
        };
        progress.finish(&format!(
            "search p50 {:.2} ms p99 {:.2} ms, count p50 {:.2} ms p99 {:.2} ms",
            m.search.p50, m.search.p99, m.count.p50, m.count.p99
        ));
        if m.search.p99 > SEARCH_TARGET_P99_MS || m.count.p99 > SEARCH_TARGET_P99_MS {
            if let Some((_, filter, offset)) = slowest {
                plans.push((kind.label(), explain_search(&db, &filter, offset).await?));
            }
        }
        kinds.push(m);
    }
    db.close().await;
    Ok(AuditSearchReport {
        machine,
        command: format!(
            "carelog bench audit-search --rows {} --queries {}",
            args.rows, args.queries
        ),
        rows: args.rows,
        queries: args.queries,
        fill,
        pk,
        count_all,
        kinds,
        plans,
        load: (load_before, load_average()),
    })
}

/// The cap of the API's audit totals.
const TOTAL_CAP: i64 = carelog_store::audit::TOTAL_CAP;

/// EXPLAIN (ANALYZE, BUFFERS) of the store's search and count SQL with these parameters.
async fn explain_search(
    db: &PgPool,
    f: &carelog_store::audit::AuditFilter,
    offset: i64,
) -> Result<String> {
    let mut out = String::new();
    for (what, sql, paged) in [
        ("count", carelog_store::audit::COUNT_SQL, false),
        ("search", carelog_store::audit::SEARCH_SQL, true),
    ] {
        let explain = format!("EXPLAIN (ANALYZE, BUFFERS) {sql}");
        let q = sqlx::query_scalar::<_, String>(&explain)
            .bind(f.action.as_deref())
            .bind(f.resource_type.as_deref())
            .bind(f.resource_id.as_deref())
            .bind(f.actor_id)
            .bind(f.outcome.as_deref())
            .bind(f.from)
            .bind(f.to)
            .bind(f.orgs.as_deref());
        let q = if paged {
            q.bind(SEARCH_PAGE).bind(offset)
        } else {
            q.bind(TOTAL_CAP)
        };
        let lines = q
            .fetch_all(db)
            .await
            .with_context(|| format!("EXPLAIN of the audit {what}"))?;
        let _ = writeln!(
            out,
            "-- {what} ({f:?}, offset {offset})\n{}",
            lines.join("\n")
        );
    }
    Ok(out)
}

impl AuditSearchReport {
    fn table(&self) -> String {
        let mut out = String::from(
            "| query | median total | exact totals | search p50 ms | search p99 ms \
             | count p50 ms | count p99 ms | page (count + search, one transaction) p99 ms |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for m in &self.kinds {
            let median = if m.matched >= TOTAL_CAP {
                format!("≥ {}", m.matched)
            } else {
                m.matched.to_string()
            };
            let _ = writeln!(
                out,
                "| {} | {median} | {}/{} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                m.kind.label(),
                m.exact,
                m.queries,
                m.search.p50,
                m.search.p99,
                m.count.p50,
                m.count.p99,
                m.page.p99
            );
        }
        let _ = writeln!(
            out,
            "| baseline: primary-key look-up | 1 | | {:.2} | {:.2} | | | |",
            self.pk.p50, self.pk.p99
        );
        let _ = writeln!(
            out,
            "| baseline: `SELECT count(*) FROM audit_feed` | {} | | | | {:.2} | {:.2} | |",
            self.rows, self.count_all.p50, self.count_all.p99
        );
        out
    }

    fn interpretation(&self) -> String {
        let missed: Vec<String> = self
            .kinds
            .iter()
            .filter(|m| m.search.p99 > SEARCH_TARGET_P99_MS)
            .map(|m| format!("{} ({:.2} ms)", m.kind.label(), m.search.p99))
            .collect();
        let worst = self
            .kinds
            .iter()
            .map(|m| m.search.p99)
            .fold(0.0_f64, f64::max);
        let counts_missed: Vec<String> = self
            .kinds
            .iter()
            .filter(|m| m.count.p99 > SEARCH_TARGET_P99_MS)
            .map(|m| format!("{} ({:.2} ms)", m.kind.label(), m.count.p99))
            .collect();
        let pages_missed: Vec<String> = self
            .kinds
            .iter()
            .filter(|m| m.page.p99 > SEARCH_TARGET_P99_MS)
            .map(|m| format!("{} ({:.2} ms)", m.kind.label(), m.page.p99))
            .collect();
        let search = if missed.is_empty() {
            format!(
                "Every kind of search kept its p99 within the ≤ {SEARCH_TARGET_P99_MS:.0} ms \
                 target (worst {worst:.2} ms)"
            )
        } else {
            format!(
                "The search missed the ≤ {SEARCH_TARGET_P99_MS:.0} ms p99 target for: {}",
                missed.join(", ")
            )
        };
        let count = if counts_missed.is_empty() && missed.is_empty() {
            "and so did the count the API runs with each page".to_owned()
        } else if counts_missed.is_empty() {
            "while the count the API runs with each page stayed within it for every kind".to_owned()
        } else {
            format!(
                "and the total the API counts with each page missed it for: {} (a full \
                 `count(*)` of the table takes {:.2} ms at p50)",
                counts_missed.join(", "),
                self.count_all.p50
            )
        };
        let page = if pages_missed.is_empty() {
            let worst = self
                .kinds
                .iter()
                .map(|m| m.page.p99)
                .fold(0.0_f64, f64::max);
            format!(
                "A whole page answer (count + search in one read-only transaction) kept its p99 within the target for \
                 every kind (worst {worst:.2} ms)"
            )
        } else {
            format!(
                "A whole page answer (count + search in one read-only transaction) missed it for: {}",
                pages_missed.join(", ")
            )
        };
        format!(
            "{search}, {count}. {page}. Totals are counted up to {TOTAL_CAP} (\"exact totals\": \
             how many stayed within; above, the API answers `total` {TOTAL_CAP} and \
             `total_exact` false)."
        )
    }

    fn section(&self) -> String {
        format!(
            "{start}\n\
             ## Audit search: the store's queries over a 1M-row audit_feed\n\
             \n\
             - Date: {date}\n\
             - Machine: {machine}\n\
             - Command: `{command}`\n\
             - Data: {rows} rows written straight into `audit_feed` (the table and indexes \
             of `carelog_projector::schemas::ensure_schemas` after the migrations) by \
             server-side `INSERT … SELECT … generate_series` in {fill:.1} s, then \
             `VACUUM (ANALYZE)`. This measures the queries, not the projection. \
             Distribution: {users} users in {orgs} organisations (one each), resources \
             45 % patient (100k ids), 40 % clinical_record (500k ids), 7 % user (logins), \
             4 % organization, 3 % consent, 1 % dsr; actions 70 % read, 15 % create, 10 % \
             update, the rest export/delete/grant/revoke; outcomes 94 % success, 5 % \
             denied, 1 % failure; `recorded_at` evenly over {days} days in position order.\n\
             - Method: for each kind, {queries} queries with random parameters (drawn from \
             the rows) on one connection, one after the other, each as the API answers a \
             page (`carelog_store::audit::page`): in one read-only repeatable-read \
             transaction, `carelog_store::audit::count` (capped at {cap}, as the API \
             counts) then `carelog_store::audit::search` (page of {page}, platform-wide \
             scope; with a date range, its span bounds first) — the store's own SQL, \
             planned with its parameters at each call as the API runs it; the page column \
             is the whole transaction. Baselines, same run and connection: primary-key \
             look-ups of \
             random positions ({queries}), and `SELECT count(*) FROM audit_feed` (20). Load \
             average (1, 5, 15 min) before / after the timed queries: {load_before} / \
             {load_after}.\n\
             \n\
             {table}\n\
             {interpretation}\n\
             {end}\n",
            start = AUDIT_SEARCH_MARKERS.start,
            end = AUDIT_SEARCH_MARKERS.end,
            date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            machine = self.machine.line(),
            command = self.command,
            rows = self.rows,
            fill = self.fill.as_secs_f64(),
            users = FEED_USERS,
            orgs = FEED_ORGS,
            days = FEED_DAYS,
            queries = self.queries,
            page = SEARCH_PAGE,
            cap = TOTAL_CAP,
            load_before = self.load.0,
            load_after = self.load.1,
            table = self.table(),
            interpretation = self.interpretation(),
        )
    }
}

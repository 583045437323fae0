//! `carelog dlq list|retry ID|discard ID [--reason WHY]`: the projections' dead-letter
//! queue, as the admin API offers it. Retry and discard are commands: they append
//! DlqEntryRetried / DlqEntryDiscarded to the operations stream with the operator as
//! actor and the reason, if given.
//!
//! When `NATS_URL` is set, retry and discard also publish their notices on
//! `<prefix>DLQ` (`CARELOG_NATS_PREFIX`; see crates/bus `dead_letter`), best effort: an
//! unreachable NATS is a warning, never a failure (PostgreSQL is the record).
//!
//! Exit codes: 0 done; 1 the event still cannot be applied (its entry records the
//! attempt); 2 bad input, no such entry, or any other failure.

use std::process::ExitCode;

use std::time::Duration;

use anyhow::{Context, Result};
use carelog_bus::NoticePublisher;
use carelog_projector::dlq::{self, Released};
use carelog_projector::DlqError;
use carelog_store::projector::DlqEntry;
use serde_json::json;
use uuid::Uuid;

use crate::config;

pub async fn list(projection: Option<String>, as_json: bool) -> Result<ExitCode> {
    if let Some(name) = &projection {
        if carelog_projector::find(name).is_none() {
            eprintln!("carelog: no projection called {name:?}");
            return Ok(ExitCode::from(2));
        }
    }
    let pool = super::cli_pool(&config::database_url()?).await?;
    let entries = dlq::list(&pool, projection.as_deref())
        .await
        .context("cannot read the dead-letter queue")?;
    if as_json {
        let rows: Vec<_> = entries.iter().map(entry_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&entries);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn retry(id: Uuid, reason: Option<String>) -> Result<ExitCode> {
    operate(id, Op::Retry, reason).await
}

pub async fn discard(id: Uuid, reason: Option<String>) -> Result<ExitCode> {
    operate(id, Op::Discard, reason).await
}

#[derive(Clone, Copy)]
enum Op {
    Retry,
    Discard,
}

async fn operate(id: Uuid, op: Op, reason: Option<String>) -> Result<ExitCode> {
    let services = super::services::from_env().await?;
    let entries = dlq::list(&services.pool, None)
        .await
        .context("cannot read the dead-letter queue")?;
    let Some(entry) = entries.into_iter().find(|e| e.id == id) else {
        eprintln!("carelog: dead letter {id} not found");
        return Ok(ExitCode::from(2));
    };
    let Some(projection) = carelog_projector::find(&entry.projection) else {
        eprintln!(
            "carelog: dead letter {id} belongs to projection {:?}, which this build does not have",
            entry.projection
        );
        return Ok(ExitCode::from(2));
    };
    let notices = notice_publisher().await?;
    let operator = |command: &str| dlq::Operator {
        metadata: super::operator_metadata(command),
        reason: reason.clone(),
        notices: notices.as_ref(),
    };
    let (pool, store, projection) = (&services.pool, &services.store, projection.as_ref());
    let result = match op {
        Op::Retry => dlq::retry(pool, store, projection, id, operator("dlq retry")).await,
        Op::Discard => dlq::discard(pool, store, projection, id, operator("dlq discard")).await,
    };
    let verb = match op {
        Op::Retry => "retried",
        Op::Discard => "discarded",
    };
    match result {
        Ok(Released {
            applied,
            failed,
            audit_event,
        }) => {
            println!(
                "{verb} dead letter {id} (projection {}, event {}); {applied} waiting event(s) applied; audit event {}",
                entry.projection, entry.event_id.0, audit_event.0
            );
            if let Some(failed) = failed {
                println!("the waiting event of dead letter {failed} failed in turn and is now its stream's failed entry");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(DlqError::StillFailing(error)) => {
            eprintln!("carelog: the event still cannot be applied: {error}");
            Ok(ExitCode::from(1))
        }
        Err(
            e @ (DlqError::NotFound
            | DlqError::WrongProjection(_)
            | DlqError::NotFailed
            | DlqError::BadReason),
        ) => {
            eprintln!("carelog: dead letter {id}: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

/// A publisher of DLQ notices when `NATS_URL` is set and NATS answers within a few
/// seconds; `None` (with a warning when it was set) otherwise. A bad prefix is an error.
async fn notice_publisher() -> Result<Option<NoticePublisher>> {
    let Some(url) = std::env::var("NATS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        return Ok(None);
    };
    let bus = config::bus()?;
    let servers: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(3))
        .connect(servers);
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(client)) => Ok(Some(NoticePublisher::new(client, &bus))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot reach NATS at NATS_URL; no DLQ notice is published (PostgreSQL records the operation)");
            Ok(None)
        }
        Err(_) => {
            tracing::warn!("NATS at NATS_URL did not answer; no DLQ notice is published (PostgreSQL records the operation)");
            Ok(None)
        }
    }
}

fn entry_json(e: &DlqEntry) -> serde_json::Value {
    json!({
        "id": e.id,
        "projection": e.projection,
        "stream_id": e.stream_id,
        "event_id": e.event_id.0,
        "position": e.position.0,
        "status": e.status.as_str(),
        "attempts": e.attempts,
        "first_failed_at": e.first_failed_at,
        "last_failed_at": e.last_failed_at,
        "error": e.error,
    })
}

fn print_table(entries: &[DlqEntry]) {
    let header = [
        "ID",
        "PROJECTION",
        "STREAM_ID",
        "EVENT_ID",
        "POSITION",
        "STATUS",
        "ATTEMPTS",
        "FIRST_FAILED",
        "LAST_FAILED",
        "ERROR",
    ];
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    };
    let rows: Vec<[String; 10]> = entries
        .iter()
        .map(|e| {
            [
                e.id.to_string(),
                e.projection.clone(),
                e.stream_id.clone(),
                e.event_id.0.to_string(),
                e.position.0.to_string(),
                e.status.as_str().to_owned(),
                e.attempts.to_string(),
                time(e.first_failed_at),
                time(e.last_failed_at),
                e.error.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{out}");
    };
    line(&header);
    for row in &rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

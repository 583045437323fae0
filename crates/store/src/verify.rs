//! Recomputing the hash chain of every stream (or one), as `carelog verify` and the
//! auditors' API do.
//!
//! Each stream must run from version 1 without gaps, each event's `prev_hash` must be
//! the previous event's `hash` (the genesis hash for version 1), and each `hash` must
//! equal SHA-256 over the previous hash, the header and the ciphertext. Payloads are not
//! opened, so erased subjects verify like any other.
//!
//! [`verify_log`] adds the signed checkpoints ([`crate::checkpoint`]): a row rewritten
//! *and* re-chained passes the chain check but no longer matches the signed digest of the
//! latest checkpoint. Such a failure is reported with `stream_id` [`WHOLE_LOG`] and the
//! checkpoint's position: the digest covers every stream at once and cannot say which one
//! changed.

use carelog_crypto::{chain_hash, ChainHash, GENESIS};
use carelog_domain::StreamId;
use serde::Serialize;
use sqlx::PgPool;

use crate::checkpoint::{CheckpointReport, CheckpointVerifier};
use crate::error::StoreError;
use crate::read::EventRow;

const PAGE: i64 = 2_000;

/// The `stream_id` of a failure of the signed checkpoints (they cover the whole log).
pub const WHOLE_LOG: &str = "*";

/// One broken link: the first bad event of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyFailure {
    /// The stream.
    pub stream_id: String,
    /// The global position of its first bad event.
    pub position: i64,
    /// The event's version within the stream.
    pub version: i64,
    /// What is wrong.
    pub reason: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// No failure found.
    pub ok: bool,
    /// Events checked.
    pub checked: u64,
    /// Streams checked.
    pub streams: u64,
    /// The first broken event of each broken stream, in stream order; then the signed
    /// checkpoints' failures (`stream_id` [`WHOLE_LOG`]).
    pub failures: Vec<VerifyFailure>,
    /// The signed checkpoints' check ([`verify_log`] only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointReport>,
}

/// Where the walk is within the current stream.
struct Cursor {
    stream: String,
    version: i64,
    prev: ChainHash,
    broken: bool,
}

/// Verifies the chain of `stream`, or of every stream when `None`.
pub async fn verify_chain(
    pool: &PgPool,
    stream: Option<&StreamId>,
) -> Result<VerifyReport, StoreError> {
    let only = stream.map(|s| s.to_string());
    let mut report = VerifyReport::default();
    let mut cur: Option<Cursor> = None;
    let (mut after_stream, mut after_version) = (String::new(), 0i64);
    loop {
        let rows = sqlx::query_as::<_, EventRow>(include_str!("../sql/read_chain.sql"))
            .bind(&only)
            .bind(&after_stream)
            .bind(after_version)
            .bind(PAGE)
            .fetch_all(pool)
            .await?;
        let Some(last) = rows.last() else { break };
        (after_stream, after_version) = (last.stream_id().to_owned(), last.version());
        let full = rows.len() as i64 == PAGE;
        for row in rows {
            check_row(row, &mut cur, &mut report);
        }
        if !full {
            break;
        }
    }
    report.ok = report.failures.is_empty();
    Ok(report)
}

/// Verifies the chain of `stream` (or of every stream), then the signed checkpoints: every
/// signature with `verifier` (when given) and the digest of the latest checkpoint against
/// the log. The checkpoints are checked for a single stream too (they are the only thing
/// that catches a re-chained rewrite), but their failure names no stream.
pub async fn verify_log(
    pool: &PgPool,
    stream: Option<&StreamId>,
    verifier: Option<&CheckpointVerifier>,
) -> Result<VerifyReport, StoreError> {
    let mut report = verify_chain(pool, stream).await?;
    let checkpoints = crate::checkpoint::verify(pool, verifier).await?;
    for p in &checkpoints.problems {
        report.failures.push(VerifyFailure {
            stream_id: WHOLE_LOG.to_owned(),
            position: p.position,
            version: 0,
            reason: format!(
                "signed checkpoint {} at position {}: {}",
                p.id, p.position, p.reason
            ),
        });
    }
    report.ok = report.failures.is_empty();
    report.checkpoint = Some(checkpoints);
    Ok(report)
}

fn check_row(row: EventRow, cur: &mut Option<Cursor>, report: &mut VerifyReport) {
    report.checked += 1;
    if cur.as_ref().map(|c| c.stream.as_str()) != Some(row.stream_id()) {
        report.streams += 1;
        *cur = Some(Cursor {
            stream: row.stream_id().to_owned(),
            version: 0,
            prev: GENESIS,
            broken: false,
        });
    }
    let c = cur.as_mut().expect("set above");
    if c.broken {
        return;
    }
    let (position, version) = (row.position(), row.version());
    let expected_version = c.version + 1;
    let reason = match row.decode() {
        Err(e) => Some(format!("row cannot be decoded: {e}")),
        Ok(_) if version != expected_version => Some(format!(
            "version {version} where {expected_version} was expected (an event is missing or was moved)"
        )),
        Ok(ev) if ev.prev_hash != c.prev => {
            Some("prev_hash does not match the previous event's hash".to_owned())
        }
        Ok(ev) if chain_hash(&c.prev, &ev.header, &ev.payload) != ev.hash => Some(
            "hash does not match the event's header and payload (altered)".to_owned(),
        ),
        Ok(ev) => {
            c.version = version;
            c.prev = ev.hash;
            None
        }
    };
    if let Some(reason) = reason {
        c.broken = true;
        report.failures.push(VerifyFailure {
            stream_id: c.stream.clone(),
            position,
            version,
            reason,
        });
    }
}

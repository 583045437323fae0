//! What the NATS relay (crates/bus) keeps in PostgreSQL: who is the active relay of a
//! NATS prefix (a session advisory lock) and how far it has published (its checkpoint).
//!
//! A [`RelaySession`] is one dedicated connection, outside the pool, that the relay keeps
//! for as long as it runs. The lock lives and dies with that session: a relay that
//! crashes, is aborted or loses its connection releases it, and a standby takes over
//! from the checkpoint. The checkpoint is written on the same session, so a relay that
//! lost its lock (its connection) cannot move it any more.

use carelog_domain::Position;
use sqlx::{Connection, PgConnection, PgPool, Row};

use crate::error::StoreError;

/// The relay's own session for one NATS prefix.
pub struct RelaySession {
    conn: PgConnection,
    name: String,
}

impl std::fmt::Debug for RelaySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelaySession")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RelaySession {
    /// Opens a dedicated connection with the pool's settings (not taken from the pool,
    /// so it never holds a pooled connection hostage) for the relay of prefix `name`.
    pub async fn open(pool: &PgPool, name: &str) -> Result<Self, StoreError> {
        let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
        // The checkpoint is written on every published batch; it need not wait for its
        // own fsync. Only a PostgreSQL crash can lose such a commit (the last few hundred
        // milliseconds of checkpoints), and then the relay re-publishes from the older
        // checkpoint: JetStream drops the copies by `Nats-Msg-Id` within its duplicate
        // window, and consumers skip positions at or below their own checkpoint. Nothing
        // is skipped, and the relay no longer pays an fsync per batch.
        sqlx::query(include_str!("../sql/relay_session_async_commit.sql"))
            .execute(&mut conn)
            .await?;
        Ok(Self {
            conn,
            name: name.to_owned(),
        })
    }

    /// Tries, without waiting, to become the active relay of this prefix (session
    /// advisory lock `hashtext('carelog.relay.' || name)`). True when this session holds
    /// the lock (again): taking a lock the session already holds also answers true.
    pub async fn try_lock(&mut self) -> Result<bool, StoreError> {
        let row = sqlx::query(include_str!("../sql/relay_try_lock.sql"))
            .bind(&self.name)
            .fetch_one(&mut self.conn)
            .await?;
        Ok(row.try_get::<bool, _>("locked")?)
    }

    /// The last position published and acknowledged (0 when none was).
    pub async fn checkpoint(&mut self) -> Result<Position, StoreError> {
        let pos: Option<i64> = sqlx::query_scalar(include_str!("../sql/relay_checkpoint_get.sql"))
            .bind(&self.name)
            .fetch_optional(&mut self.conn)
            .await?;
        Ok(Position(pos.unwrap_or(0)))
    }

    /// The log after `after`, at most `limit` events, gap-safe ([`crate::read::all`]), on
    /// this session: the relay reads here rather than from the pool, which pings a
    /// connection when it hands it out and again when it gets it back.
    pub async fn read_after(
        &mut self,
        after: Position,
        limit: i64,
    ) -> Result<Vec<crate::StoredEvent>, StoreError> {
        crate::read::all(&mut self.conn, after, limit).await
    }

    /// Moves the checkpoint forward to `position` (never backwards).
    pub async fn save_checkpoint(&mut self, position: Position) -> Result<(), StoreError> {
        sqlx::query(include_str!("../sql/relay_checkpoint_set.sql"))
            .bind(&self.name)
            .bind(position.0)
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Checks the session is still alive (and with it the lock, if held).
    pub async fn ping(&mut self) -> Result<(), StoreError> {
        self.conn.ping().await?;
        Ok(())
    }

    /// Closes the session, releasing the lock.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// The checkpoint of the relay of prefix `name`, `None` before its first publish.
pub async fn checkpoint(pool: &PgPool, name: &str) -> Result<Option<Position>, StoreError> {
    let pos: Option<i64> = sqlx::query_scalar(include_str!("../sql/relay_checkpoint_get.sql"))
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(pos.map(Position))
}

/// How many positions the relay of prefix `name` is behind the head of the log (for
/// metrics; positions, not events: rolled-back positions count too).
pub async fn lag(pool: &PgPool, name: &str) -> Result<i64, StoreError> {
    let lag: i64 = sqlx::query_scalar(include_str!("../sql/relay_lag.sql"))
        .bind(name)
        .fetch_one(pool)
        .await?;
    Ok(lag)
}

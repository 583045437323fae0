//! carelog's PostgreSQL event store.
//!
//! What it owns:
//! - [`connect`]: the pool (with `idle_in_transaction_session_timeout`), the migrations,
//!   and the start-up checks that refuse a database this process must not serve.
//! - [`keys`]: subject data keys — created on first use, stored wrapped by the master
//!   key, cached unwrapped for a bounded time, destroyed on erasure, re-wrapped on rotation.
//! - [`vault`]: the one place event payloads are sealed and opened.
//! - [`append`]: appends with optimistic concurrency, grouped into shared transactions
//!   (group commit), hash-chained per stream.
//! - [`read`]: reading a stream, and reading the whole log after a cursor without ever
//!   skipping a late committer.
//! - [`verify`]: recomputing every stream's hash chain.
//! - [`checkpoint`]: signed checkpoints of the whole log (digest of every stream's head).
//! - [`relay`]: the NATS relay's lock (who is active) and checkpoint.
//! - [`projector`]: projection checkpoints, the dead-letter queue, shipped read models.
//! - [`clinical`]: the inline clinical state access decisions read (orgs, members,
//!   patients, records, emergency grants).
//! - [`dsr`]: data-subject requests (GDPR erasure, export) and legal holds, the inline
//!   state of the erasure workflow.
//! - [`read_models`]: the clinical read models' schema, projector writes and queries.
//!
//! What it must not do: decide anything. Commands are decided in `carelog-domain`; this
//! crate only persists what was decided. Its SQL lives in `sql/*.sql` and `migrations/`.

pub mod append;
pub mod audit;
pub mod checkpoint;
pub mod clinical;
pub mod connect;
pub mod consent;
pub mod dsr;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod identity;
pub mod keys;
pub mod projector;
pub mod projector_status;
pub mod read;
pub mod read_models;
pub mod relay;
pub mod vault;
pub mod verify;

pub use append::{
    AppendRequest, Appended, Commits, EventStore, Expected, GroupCommitConfig, RecentCommits,
    MAX_EVENT_BYTES,
};
pub use connect::{connect, migrate, startup_checks, PoolConfig};
pub use error::{AppendError, StoreError};
pub use keys::KeyStore;
pub use read::StoredEvent;
pub use vault::{Opened, Vault};
pub use verify::{verify_chain, verify_log, VerifyFailure, VerifyReport};

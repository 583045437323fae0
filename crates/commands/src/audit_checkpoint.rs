//! Taking a signed audit checkpoint on demand (`POST /api/audit/checkpoints`) is an
//! operator's command like any other: the checkpoint is stored
//! ([`carelog_store::checkpoint::create`]), then an `AuditCheckpointTaken` event in the
//! operations stream records who asked for it and when
//! ([`carelog_domain::operations::audit_checkpoint_taken`]). The automatic checkpoints
//! taken every N events are nobody's action and are not events.

use carelog_domain::operations::{audit_checkpoint_taken, operations_stream};
use carelog_domain::{EventId, Metadata};
use carelog_store::checkpoint::{self, Checkpoint, CheckpointKey};
use carelog_store::{AppendError, AppendRequest, EventStore, Expected};

/// Takes a checkpoint at the horizon signed with `key` (the existing one when there is
/// already one at that position) and records the request with `metadata`.
pub async fn take(
    store: &EventStore,
    key: &CheckpointKey,
    metadata: Metadata,
) -> Result<Checkpoint, AppendError> {
    let taken = checkpoint::create(store.pool(), key).await?;
    let digest = hex::encode(&taken.digest);
    store
        .append(AppendRequest {
            stream: operations_stream(),
            expected: Expected::Any,
            events: vec![audit_checkpoint_taken(
                EventId::new_v7(),
                taken.id,
                taken.position,
                &digest,
                &taken.key_id,
                metadata,
            )],
        })
        .await?;
    Ok(taken)
}

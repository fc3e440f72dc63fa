//! The `client_id` index keyed by `client_id` first, then sender.
//!
//! It enforces the same uniqueness as the index it replaces, (sender, client_id), but in the
//! other column order. Keyed by sender first, a batch of replies from a hundred senders landed
//! in a hundred places of the index, and every commit wrote each of those index pages out in
//! full. Keyed by `client_id` first, the web client's ids (UUIDv7, which begin with the time)
//! all land at the index's right edge, in the same page or two.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const OLD: &str = "idx_messages_client_id";
const NEW: &str = "idx_messages_client_id_sender";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace(manager, OLD, NEW, [Messages::ClientId, Messages::SenderId]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace(manager, NEW, OLD, [Messages::SenderId, Messages::ClientId]).await
    }
}

/// Creates the unique index `new` on `columns` of messages, then drops `old`: uniqueness holds
/// throughout.
async fn replace(
    manager: &SchemaManager<'_>,
    old: &str,
    new: &str,
    columns: [Messages; 2],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(new).table(Messages::Table).unique();
    for column in columns {
        index.col(column);
    }
    manager.create_index(index.to_owned()).await?;
    manager
        .drop_index(Index::drop().name(old).table(Messages::Table).to_owned())
        .await
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    SenderId,
    ClientId,
}

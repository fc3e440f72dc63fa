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
        manager
            .create_index(
                Index::create()
                    .name(NEW)
                    .table(Messages::Table)
                    .col(Messages::ClientId)
                    .col(Messages::SenderId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(OLD).table(Messages::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(OLD)
                    .table(Messages::Table)
                    .col(Messages::SenderId)
                    .col(Messages::ClientId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(NEW).table(Messages::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    SenderId,
    ClientId,
}

//! The event log, kept in time order: entries are keyed by `gid`, given out in commit order,
//! so a commit appends its entries at the end of one B-tree, a few pages, whatever the number
//! of users it touches. Keyed by `(user_id, seq)`, each commit wrote a page of the log for each
//! of the hundreds of users a busy commit touches, and that cost about a quarter of fanout.
//!
//! Each user's entries form a chain from the newest back: `prev` is the `gid` of the user's
//! entry before this one (NULL for the first, or when the log was off), and `users.log_gid`
//! is the newest. A replay follows the chain from there down to the position the client heard
//! (`domain/event_log.rs`). No foreign key: the log holds no index on `user_id` for a cascade
//! to use, and pruning removes a deleted user's entries with everyone's.
//!
//! The entries of the earlier layout are dropped: a client holding an older position is told
//! it was not recovered and reloads, as after the window.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventLog::Table).to_owned())
            .await?;
        // `big_integer` + `auto_increment` + `primary_key`: the rowid with `AUTOINCREMENT` on
        // SQLite (keys are never handed out twice, even once pruned), `bigserial` on
        // PostgreSQL (its sequence is `event_log_gid_seq`).
        manager
            .create_table(
                Table::create()
                    .table(EventLog::Table)
                    .col(
                        ColumnDef::new(EventLog::Gid)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(EventLog::UserId).big_integer().not_null())
                    .col(ColumnDef::new(EventLog::Seq).big_integer().not_null())
                    .col(ColumnDef::new(EventLog::Prev).big_integer().null())
                    .col(ColumnDef::new(EventLog::Event).string_len(32).not_null())
                    .col(ColumnDef::new(EventLog::RefId).big_integer().null())
                    .col(ColumnDef::new(EventLog::Payload).text().null())
                    .col(ColumnDef::new(EventLog::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager.create_index(created_at_index()).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Users::LogGid)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::LogGid)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(EventLog::Table).to_owned())
            .await?;
        // The earlier layout, empty, as its own migration would have left it.
        manager
            .create_table(
                Table::create()
                    .table(EventLog::Table)
                    .col(ColumnDef::new(EventLog::UserId).big_integer().not_null())
                    .col(ColumnDef::new(EventLog::Seq).big_integer().not_null())
                    .col(ColumnDef::new(EventLog::Event).string_len(32).not_null())
                    .col(ColumnDef::new(EventLog::RefId).big_integer().null())
                    .col(ColumnDef::new(EventLog::Payload).text().null())
                    .col(ColumnDef::new(EventLog::CreatedAt).big_integer().not_null())
                    .primary_key(Index::create().col(EventLog::UserId).col(EventLog::Seq))
                    .to_owned(),
            )
            .await?;
        manager.create_index(created_at_index()).await
    }
}

/// The index that pruning reads, the same in both layouts.
fn created_at_index() -> IndexCreateStatement {
    Index::create()
        .name("event_log_created_at")
        .table(EventLog::Table)
        .col(EventLog::CreatedAt)
        .to_owned()
}

#[derive(DeriveIden)]
enum EventLog {
    Table,
    Gid,
    UserId,
    Seq,
    Prev,
    Event,
    RefId,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    LogGid,
}

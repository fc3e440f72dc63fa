//! The per-user event log of connection state recovery: every native event sent to a user's
//! rooms is written here, in the transaction of the change it reports, under the user's next
//! position (`seq`). A reconnecting client names the last position it heard and is sent the
//! rest. `users.log_seq` is the newest position of each user: taking the next one locks the
//! user's row, so positions are handed out in commit order on PostgreSQL too.
//!
//! `ref_id` names the message of a `message:new`, rendered again when replayed; other events
//! keep their JSON in `payload`. Entries older than the recovery window are pruned, except each
//! user's newest.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// On SQLite the table is clustered on its key (`WITHOUT ROWID`): one B-tree to write per entry
/// instead of a table and its key's index.
const SQLITE_TABLE: &str = "CREATE TABLE event_log ( \
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE, \
    seq bigint NOT NULL, \
    event varchar(32) NOT NULL, \
    ref_id bigint NULL, \
    payload text NULL, \
    created_at bigint NOT NULL, \
    PRIMARY KEY (user_id, seq) \
) WITHOUT ROWID";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            manager
                .get_connection()
                .execute_unprepared(SQLITE_TABLE)
                .await?;
        } else {
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
                        .foreign_key(
                            ForeignKey::create()
                                .from(EventLog::Table, EventLog::UserId)
                                .to(Users::Table, Users::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("event_log_created_at")
                    .table(EventLog::Table)
                    .col(EventLog::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Users::LogSeq)
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
            .drop_table(Table::drop().table(EventLog::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::LogSeq)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum EventLog {
    Table,
    UserId,
    Seq,
    Event,
    RefId,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    LogSeq,
}

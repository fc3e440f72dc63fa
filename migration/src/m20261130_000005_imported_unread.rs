//! What an import from Flask-Messaging needs beyond the native schema:
//! - `unread_below_mark`: the original app marked messages read one at a time, as their
//!   recipient opened them, where Missive keeps a read mark per reader and thread. A message
//!   below its reader's mark that the original still had unread is listed here, until the
//!   reader reads the thread (or deletes it). Native reads never add a row.
//! - `users.username` up to the original's 80 characters (PostgreSQL enforces the length of
//!   a `varchar`; SQLite does not).

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UnreadBelowMark::Table)
                    .col(
                        ColumnDef::new(UnreadBelowMark::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UnreadBelowMark::MessageId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UnreadBelowMark::ThreadId)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(UnreadBelowMark::UserId)
                            .col(UnreadBelowMark::ThreadId)
                            .col(UnreadBelowMark::MessageId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(UnreadBelowMark::Table, UnreadBelowMark::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(UnreadBelowMark::Table, UnreadBelowMark::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .modify_column(ColumnDef::new(Users::Username).string_len(80).not_null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UnreadBelowMark::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UnreadBelowMark {
    Table,
    UserId,
    MessageId,
    ThreadId,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
}

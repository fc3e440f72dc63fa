//! Conversations for more than two: groups, membership that changes, and read receipts.
//!
//! - `threads.kind` (`direct` or `group`), `created_by` (who holds the right to remove members:
//!   the creator, then the longest-standing member once they leave; filled in from each
//!   existing thread's first message) and `version`, moved by every change of membership or
//!   subject, which a reply's commit hands back so that a node with an older copy of the
//!   thread reads it again.
//! - `participants.joined_after` (the thread's newest message when the member joined: they
//!   see only later ones), `member_until` (the newest message when they left or were
//!   removed: they keep what came up to it; null while a member) and `joined_at` (the time,
//!   for who has stood longest).
//! - `users.read_receipts`: whether the user sends and sees receipts.
//! - `thread_changes`: each change of membership or subject, placed after the message that
//!   was the thread's newest, so a history lists it in place.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one change at a time.
        let threads = [
            ColumnDef::new(Threads::Kind)
                .string_len(8)
                .not_null()
                .default("direct")
                .to_owned(),
            ColumnDef::new(Threads::CreatedBy)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Threads::Version)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        ];
        for mut column in threads {
            manager
                .alter_table(
                    Table::alter()
                        .table(Threads::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        let participants = [
            ColumnDef::new(Participants::JoinedAfter)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Participants::MemberUntil)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Participants::JoinedAt)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        ];
        for mut column in participants {
            manager
                .alter_table(
                    Table::alter()
                        .table(Participants::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Users::ReadReceipts)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE threads SET created_by = (SELECT m.sender_id FROM messages m \
                WHERE m.thread_id = threads.id ORDER BY m.id LIMIT 1)",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE participants SET joined_at = \
                (SELECT t.created_at FROM threads t WHERE t.id = participants.thread_id)",
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(ThreadChanges::Table)
                    .col(big_pk_auto(ThreadChanges::Id))
                    .col(big_integer(ThreadChanges::ThreadId))
                    .col(big_integer(ThreadChanges::AfterMessageId))
                    .col(string_len(ThreadChanges::Kind, 8))
                    .col(big_integer(ThreadChanges::ById))
                    .col(big_integer_null(ThreadChanges::UserId))
                    .col(string_len_null(ThreadChanges::Subject, 280))
                    .col(big_integer(ThreadChanges::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ThreadChanges::Table, ThreadChanges::ThreadId)
                            .to(Threads::Table, Threads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_thread_changes_thread")
                    .table(ThreadChanges::Table)
                    .col(ThreadChanges::ThreadId)
                    .col(ThreadChanges::AfterMessageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ThreadChanges::Table).to_owned())
            .await?;
        for (table, column) in [
            (Threads::Table.into_iden(), Threads::Kind.into_iden()),
            (Threads::Table.into_iden(), Threads::CreatedBy.into_iden()),
            (Threads::Table.into_iden(), Threads::Version.into_iden()),
            (
                Participants::Table.into_iden(),
                Participants::JoinedAfter.into_iden(),
            ),
            (
                Participants::Table.into_iden(),
                Participants::MemberUntil.into_iden(),
            ),
            (
                Participants::Table.into_iden(),
                Participants::JoinedAt.into_iden(),
            ),
            (Users::Table.into_iden(), Users::ReadReceipts.into_iden()),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Threads {
    Table,
    Id,
    Kind,
    CreatedBy,
    Version,
}

#[derive(DeriveIden)]
enum Participants {
    Table,
    JoinedAfter,
    MemberUntil,
    JoinedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    ReadReceipts,
}

#[derive(DeriveIden)]
enum ThreadChanges {
    Table,
    Id,
    ThreadId,
    AfterMessageId,
    Kind,
    ById,
    UserId,
    Subject,
    CreatedAt,
}

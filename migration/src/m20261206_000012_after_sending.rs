//! After sending: reactions, removal for everyone, replies and search.
//!
//! - `messages.reactions`: the message's reactions as JSON, `[[emoji, [user ids]], ...]` in
//!   first-reacted order (null: none). At most 20 emoji, each of a member: the row carries
//!   what its view needs, so listings read no other table.
//! - `messages.removed_at`: when its sender removed it for everyone (its body is then empty).
//! - `messages.reply_to_id` and `reply_to`: the message it answers, and what a view shows of
//!   it (`{url, sender, excerpt}` as JSON), kept when that one is edited or removed.
//! - The search index over bodies, of terms the server cuts and folds itself (so that both
//!   backends match alike): on SQLite an FTS5 table without content, positions (a search
//!   asks for words and a prefix, never a phrase) or sizes (no ranking), keyed by message id; on PostgreSQL a
//!   `tsvector` column with a GIN index. Existing messages are recorded as a backlog in
//!   `settings` and indexed when the server next starts (`domain::search::catch_up`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            ColumnDef::new(Messages::Reactions).text().null().to_owned(),
            ColumnDef::new(Messages::RemovedAt)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Messages::ReplyToId)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Messages::ReplyTo).text().null().to_owned(),
        ];
        // One column per statement: SQLite alters a table one change at a time.
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_reply_to")
                    .table(Messages::Table)
                    .col(Messages::ReplyToId)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared("ALTER TABLE messages ADD COLUMN search tsvector")
                    .await?;
                db.execute_unprepared(
                    "CREATE INDEX idx_messages_search ON messages USING GIN (search)",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(
                    "CREATE VIRTUAL TABLE message_search USING fts5(terms, content='', detail=none, columnsize=0, \
                     tokenize='unicode61 remove_diacritics 0')",
                )
                .await?;
                // Its terms, to look a prefix up as the terms it begins.
                db.execute_unprepared(
                    "CREATE VIRTUAL TABLE message_search_terms USING fts5vocab(message_search, row)",
                )
                .await?;
            }
        }
        // The messages already there are indexed at the next start (`search::catch_up`):
        // the last one indexed, and the newest of them.
        db.execute_unprepared(
            "INSERT INTO settings (key, value) SELECT 'search_index_backlog', \
             '0 ' || CAST(MAX(id) AS TEXT) FROM messages HAVING MAX(id) IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DELETE FROM settings WHERE key = 'search_index_backlog'")
            .await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared("ALTER TABLE messages DROP COLUMN search")
                    .await?;
            }
            _ => {
                db.execute_unprepared("DROP TABLE message_search_terms")
                    .await?;
                db.execute_unprepared("DROP TABLE message_search").await?;
            }
        }
        manager
            .drop_index(Index::drop().name("idx_messages_reply_to").to_owned())
            .await?;
        for column in [
            Messages::ReplyTo,
            Messages::ReplyToId,
            Messages::RemovedAt,
            Messages::Reactions,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Reactions,
    RemovedAt,
    ReplyToId,
    ReplyTo,
}

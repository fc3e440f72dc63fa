use sea_orm_migration::{prelude::*, schema::*};

use super::m20261123_000001_create_accounts::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Threads::Table)
                    .col(big_pk_auto(Threads::Id))
                    .col(string_len_uniq(Threads::PublicId, 32))
                    .col(string_len(Threads::Subject, 280))
                    .col(big_integer(Threads::CreatedAt))
                    .col(big_integer(Threads::UpdatedAt))
                    .col(big_integer_null(Threads::LastMessageId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Participants::Table)
                    .col(big_integer(Participants::ThreadId))
                    .col(big_integer(Participants::UserId))
                    .col(big_integer(Participants::LastMessageId).default(0))
                    .col(big_integer(Participants::ReadUpTo).default(0))
                    .col(big_integer(Participants::HiddenBefore).default(0))
                    .col(integer(Participants::Unread).default(0))
                    .primary_key(
                        Index::create()
                            .col(Participants::ThreadId)
                            .col(Participants::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Participants::Table, Participants::ThreadId)
                            .to(Threads::Table, Threads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Participants::Table, Participants::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A user's inbox, newest activity first, is one range of this index.
        manager
            .create_index(
                Index::create()
                    .name("idx_participants_inbox")
                    .table(Participants::Table)
                    .col(Participants::UserId)
                    .col(Participants::LastMessageId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(big_pk_auto(Messages::Id))
                    .col(string_len_uniq(Messages::PublicId, 32))
                    .col(big_integer(Messages::ThreadId))
                    .col(big_integer(Messages::SenderId))
                    .col(big_integer(Messages::RecipientId))
                    .col(text(Messages::Body))
                    .col(big_integer(Messages::CreatedAt))
                    .col(string_len_null(Messages::ClientId, 64))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::ThreadId)
                            .to(Threads::Table, Threads::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::SenderId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::RecipientId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // History pages and unread counts are ranges of this index.
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_thread")
                    .table(Messages::Table)
                    .col(Messages::ThreadId)
                    .col(Messages::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_client_id")
                    .table(Messages::Table)
                    .col(Messages::SenderId)
                    .col(Messages::ClientId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MessageHides::Table)
                    .col(big_integer(MessageHides::UserId))
                    .col(big_integer(MessageHides::MessageId))
                    .primary_key(
                        Index::create()
                            .col(MessageHides::UserId)
                            .col(MessageHides::MessageId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(MessageHides::Table, MessageHides::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(MessageHides::Table, MessageHides::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            MessageHides::Table.into_iden(),
            Messages::Table.into_iden(),
            Participants::Table.into_iden(),
            Threads::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Threads {
    Table,
    Id,
    PublicId,
    Subject,
    CreatedAt,
    UpdatedAt,
    LastMessageId,
}

#[derive(DeriveIden)]
enum Participants {
    Table,
    ThreadId,
    UserId,
    LastMessageId,
    ReadUpTo,
    HiddenBefore,
    Unread,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    PublicId,
    ThreadId,
    SenderId,
    RecipientId,
    Body,
    CreatedAt,
    ClientId,
}

#[derive(DeriveIden)]
enum MessageHides {
    Table,
    MessageId,
    UserId,
}

//! Notifications: Web Push subscriptions (each bound to the login session that made it), a
//! member's mute of a thread, and one user's block of another.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PushSubscriptions::Table)
                    .col(big_pk_auto(PushSubscriptions::Id))
                    .col(big_integer(PushSubscriptions::UserId))
                    .col(string_len(PushSubscriptions::SessionId, 32))
                    .col(string_len_uniq(PushSubscriptions::Endpoint, 1024))
                    .col(string_len(PushSubscriptions::P256dh, 100))
                    .col(string_len(PushSubscriptions::Auth, 32))
                    .col(big_integer(PushSubscriptions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PushSubscriptions::Table, PushSubscriptions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PushSubscriptions::Table, PushSubscriptions::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_push_subscriptions_user", PushSubscriptions::UserId),
            (
                "idx_push_subscriptions_session",
                PushSubscriptions::SessionId,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(PushSubscriptions::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Blocks::Table)
                    .col(big_integer(Blocks::BlockerId))
                    .col(big_integer(Blocks::BlockedId))
                    .col(big_integer(Blocks::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Blocks::BlockerId)
                            .col(Blocks::BlockedId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Blocks::Table, Blocks::BlockerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Blocks::Table, Blocks::BlockedId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_blocks_blocked")
                    .table(Blocks::Table)
                    .col(Blocks::BlockedId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Participants::Table)
                    .add_column(big_integer_null(Participants::MutedUntil))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Participants::Table)
                    .drop_column(Participants::MutedUntil)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Blocks::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PushSubscriptions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum PushSubscriptions {
    Table,
    Id,
    UserId,
    SessionId,
    Endpoint,
    P256dh,
    Auth,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Blocks {
    Table,
    BlockerId,
    BlockedId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Participants {
    Table,
    MutedUntil,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
}

//! Account security: an e-mail address per account, two-factor secrets and recovery codes,
//! disabled and deleted accounts, one-time tokens (e-mail verification, password reset), each
//! session's device and coarse address, and every account's own security log.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            string_len_null(Users::Email, 254),
            boolean(Users::EmailVerified).default(false).to_owned(),
            string_len_null(Users::TotpSecret, 64),
            string_len_null(Users::TotpPending, 64),
            big_integer(Users::TotpLastStep).default(0).to_owned(),
            boolean(Users::Disabled).default(false).to_owned(),
            big_integer_null(Users::DeletedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // An address is verified for one account at a time (password resets find it).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_users_verified_email ON users (email) \
                 WHERE email_verified = TRUE",
            )
            .await?;
        for column in [
            string_len(Sessions::Device, 100).default("").to_owned(),
            string_len(Sessions::Address, 64).default("").to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AccountTokens::Table)
                    .col(string_len(AccountTokens::TokenHash, 64).primary_key())
                    .col(big_integer(AccountTokens::UserId))
                    .col(string_len(AccountTokens::Purpose, 16))
                    .col(string_len_null(AccountTokens::Email, 254))
                    .col(big_integer(AccountTokens::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccountTokens::Table, AccountTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_account_tokens_user")
                    .table(AccountTokens::Table)
                    .col(AccountTokens::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(big_integer(RecoveryCodes::UserId))
                    .col(string_len(RecoveryCodes::CodeHash, 64))
                    .primary_key(
                        Index::create()
                            .col(RecoveryCodes::UserId)
                            .col(RecoveryCodes::CodeHash),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RecoveryCodes::Table, RecoveryCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SecurityEvents::Table)
                    .col(big_pk_auto(SecurityEvents::Id))
                    .col(big_integer(SecurityEvents::UserId))
                    .col(string_len(SecurityEvents::Kind, 24))
                    .col(big_integer(SecurityEvents::At))
                    .col(string_len(SecurityEvents::Address, 64))
                    .col(string_len(SecurityEvents::Device, 100))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SecurityEvents::Table, SecurityEvents::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_security_events_user",
                vec![SecurityEvents::UserId, SecurityEvents::Id],
            ),
            ("idx_security_events_at", vec![SecurityEvents::At]),
        ] {
            let mut index = Index::create();
            index.name(name).table(SecurityEvents::Table);
            for c in columns {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SecurityEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AccountTokens::Table).to_owned())
            .await?;
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_users_verified_email")
            .await?;
        for column in [Sessions::Device, Sessions::Address] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Users::Email,
            Users::EmailVerified,
            Users::TotpSecret,
            Users::TotpPending,
            Users::TotpLastStep,
            Users::Disabled,
            Users::DeletedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    EmailVerified,
    TotpSecret,
    TotpPending,
    TotpLastStep,
    Disabled,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Device,
    Address,
}

#[derive(DeriveIden)]
enum AccountTokens {
    Table,
    TokenHash,
    UserId,
    Purpose,
    Email,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    UserId,
    CodeHash,
}

#[derive(DeriveIden)]
enum SecurityEvents {
    Table,
    Id,
    UserId,
    Kind,
    At,
    Address,
    Device,
}

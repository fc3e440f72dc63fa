//! What an import took from each row of an original database, so that a later
//! `import --update` can tell what the original gained or changed since, and what Missive
//! changed itself.

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
                    .table(ImportRows::Table)
                    .col(string_len(ImportRows::Origin, 32))
                    .col(small_integer(ImportRows::Kind))
                    .col(big_integer(ImportRows::SourceId))
                    .col(big_integer(ImportRows::TargetId))
                    .col(string_len(ImportRows::Digest, 32))
                    .col(integer(ImportRows::Flags))
                    .col(string_len_null(ImportRows::Secret, 64))
                    .primary_key(
                        Index::create()
                            .col(ImportRows::Origin)
                            .col(ImportRows::Kind)
                            .col(ImportRows::SourceId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ImportRows::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ImportRows {
    Table,
    Origin,
    Kind,
    SourceId,
    TargetId,
    Digest,
    Flags,
    Secret,
}

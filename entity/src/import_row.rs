use sea_orm::entity::prelude::*;

/// What an import took from one row of an original database (`origin`: the first import's
/// fingerprint): the Missive row it became and the row's state then, for a later update.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "import_rows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub origin: String,
    /// 0: a user row; 1: a message row; 2: a placeholder account (`source_id` = its id).
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: i16,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source_id: i64,
    pub target_id: i64,
    /// Of the row's fields that only the original's bugs change (names, urls, bodies...).
    pub digest: String,
    /// A message's `read`, `sender_del` and `recipient_del` (bits 1, 2 and 4).
    pub flags: i32,
    /// SHA-256 of a user's password hash.
    pub secret: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

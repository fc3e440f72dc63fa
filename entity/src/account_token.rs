use sea_orm::entity::prelude::*;

/// A one-time token mailed to a user (e-mail verification, password reset): only its hash is
/// kept, and using it deletes it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_tokens")]
pub struct Model {
    /// SHA-256 (hex) of the token.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub user_id: i64,
    /// `verify_email` or `reset`.
    pub purpose: String,
    /// The address a verification token proves.
    pub email: Option<String>,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

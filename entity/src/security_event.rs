use sea_orm::entity::prelude::*;

/// One entry of an account's own security log (kept 90 days): a login, a failed one, a
/// password, e-mail or second-factor change, an ended session.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "security_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub kind: String,
    pub at: i64,
    /// The client's address, coarse (/24, /48).
    pub address: String,
    /// The device, as its user agent names it.
    pub device: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

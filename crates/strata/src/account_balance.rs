//! The `AccountBalanceProjection` over the [bank](crate::bank)
//! example: every account's balance, owner and status, with a secondary
//! index by owner, served through a
//! [`QueryModel`](crate::QueryModel).
//!
//! It is idempotent under at-least-once delivery: each account remembers
//! the stream version of the last event folded into it and ignores events
//! at or below it.
//!
//! ```
//! # use std::sync::Arc;
//! # use strata::account_balance::{AccountBalanceProjection, BalanceQuery};
//! # use strata::bank::{AccountCommand, BankAccount};
//! # use strata::query::Consistency;
//! # use strata::*;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let repo = Repository::<BankAccount, _>::new(store.clone());
//! repo.execute("1", AccountCommand::Open { owner: "ada".into() }, CommandMeta::new()).await.unwrap();
//! repo.execute("1", AccountCommand::Deposit { amount: 7.into() }, CommandMeta::new()).await.unwrap();
//!
//! let model = QueryModel::new(store, Arc::new(MemoryCheckpointStore::new()));
//! let balances = model.register(Typed::new(AccountBalanceProjection::new())).unwrap();
//! let mine = balances
//!     .query(&BalanceQuery::AccountsOf("ada".into()), Consistency::Latest)
//!     .await
//!     .unwrap();
//! assert_eq!(mine.accounts().unwrap()[0].balance, 7.into());
//! model.shutdown().await.unwrap();
//! # });
//! ```

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use strata_core::{ReadFilter, RecordedEvent, Version};

use crate::aggregate::Aggregate;
use crate::bank::{AccountEvent, AccountStatus, BankAccount};
use crate::projection::{event_types_of, ProjectionError, TypedProjection};
use crate::query::Queryable;

/// The projection's name in a query model.
pub const ACCOUNT_BALANCES: &str = "account-balances";

/// One account as the projection sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountView {
    /// The account id (the stream name without `account-`).
    pub account_id: String,
    /// Its owner.
    pub owner: String,
    /// Its balance.
    pub balance: Decimal,
    /// Where it is in its life.
    pub status: AccountStatus,
    /// The stream version of the last event folded in.
    pub version: Version,
}

/// Balances of every account, by id, with an index by owner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountBalanceProjection {
    accounts: BTreeMap<String, AccountView>,
    by_owner: BTreeMap<String, BTreeSet<String>>,
    total: Decimal,
}

impl AccountBalanceProjection {
    /// No accounts.
    pub fn new() -> Self {
        Self::default()
    }

    /// One account.
    pub fn account(&self, account_id: &str) -> Option<&AccountView> {
        self.accounts.get(account_id)
    }

    /// One account's balance.
    pub fn balance(&self, account_id: &str) -> Option<Decimal> {
        self.accounts.get(account_id).map(|a| a.balance)
    }

    /// The accounts of `owner`, by id (answered from the owner index).
    pub fn accounts_of(&self, owner: &str) -> Vec<AccountView> {
        self.by_owner
            .get(owner)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.accounts.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The sum of all balances.
    pub fn total_balance(&self) -> Decimal {
        self.total
    }

    /// How many accounts it knows.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether it knows no account.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

impl TypedProjection for AccountBalanceProjection {
    type Event = AccountEvent;

    fn name(&self) -> &str {
        ACCOUNT_BALANCES
    }

    fn filter(&self) -> ReadFilter {
        ReadFilter::all()
            .category(BankAccount::TYPE)
            .event_types(event_types_of::<AccountEvent>().iter().copied())
    }

    fn apply(
        &mut self,
        event: AccountEvent,
        recorded: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let stream = recorded.stream_id.as_str();
        let account_id = stream
            .strip_prefix(BankAccount::TYPE)
            .and_then(|s| s.strip_prefix('-'))
            .unwrap_or(stream);
        let view = self
            .accounts
            .entry(account_id.to_owned())
            .or_insert_with(|| AccountView {
                account_id: account_id.to_owned(),
                owner: String::new(),
                balance: Decimal::ZERO,
                status: AccountStatus::New,
                version: 0,
            });
        if recorded.version <= view.version {
            // Delivered again after a restart: already folded in.
            return Ok(());
        }
        view.version = recorded.version;
        match event {
            AccountEvent::Opened { owner } => {
                if !view.owner.is_empty() && view.owner != owner {
                    if let Some(ids) = self.by_owner.get_mut(&view.owner) {
                        ids.remove(account_id);
                    }
                }
                self.by_owner
                    .entry(owner.clone())
                    .or_default()
                    .insert(account_id.to_owned());
                view.owner = owner;
                view.status = AccountStatus::Open;
            }
            AccountEvent::Deposited { amount } => {
                view.balance += amount;
                self.total += amount;
            }
            AccountEvent::Withdrawn { amount } => {
                view.balance -= amount;
                self.total -= amount;
            }
            AccountEvent::Closed => view.status = AccountStatus::Closed,
        }
        Ok(())
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// What can be asked of the balances.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BalanceQuery {
    /// One account's balance.
    Balance(String),
    /// One account.
    Account(String),
    /// Every account of an owner.
    AccountsOf(String),
    /// The sum of all balances.
    TotalBalance,
}

/// The answer to a [`BalanceQuery`] (same variant order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BalanceAnswer {
    /// A balance, if the account exists.
    Balance(Option<Decimal>),
    /// An account, if it exists.
    Account(Option<AccountView>),
    /// Accounts.
    Accounts(Vec<AccountView>),
    /// A total.
    Total(Decimal),
}

impl BalanceAnswer {
    /// The balance, for a `Balance` answer.
    pub fn balance(&self) -> Option<Decimal> {
        match self {
            BalanceAnswer::Balance(b) => *b,
            BalanceAnswer::Account(a) => a.as_ref().map(|a| a.balance),
            _ => None,
        }
    }

    /// The accounts, for an `AccountsOf` answer.
    pub fn accounts(&self) -> Option<&[AccountView]> {
        match self {
            BalanceAnswer::Accounts(a) => Some(a),
            _ => None,
        }
    }

    /// The total, for a `TotalBalance` answer.
    pub fn total(&self) -> Option<Decimal> {
        match self {
            BalanceAnswer::Total(t) => Some(*t),
            _ => None,
        }
    }
}

impl Queryable for AccountBalanceProjection {
    type Query = BalanceQuery;
    type Answer = BalanceAnswer;

    fn query(&self, query: &BalanceQuery) -> BalanceAnswer {
        match query {
            BalanceQuery::Balance(id) => BalanceAnswer::Balance(self.balance(id)),
            BalanceQuery::Account(id) => BalanceAnswer::Account(self.account(id).cloned()),
            BalanceQuery::AccountsOf(owner) => BalanceAnswer::Accounts(self.accounts_of(owner)),
            BalanceQuery::TotalBalance => BalanceAnswer::Total(self.total),
        }
    }
}

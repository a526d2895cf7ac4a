//! A bank account, a worked example of an [`Aggregate`].
//!
//! An account is opened, takes deposits and withdrawals of positive amounts
//! (exact decimals), never goes below zero, and is closed once empty. A closed
//! account refuses everything. The `bank` example (`cargo run -p strata
//! --example bank`) drives it through a [`Repository`](crate::Repository);
//! later demos and projections reuse it.
//!
//! ```
//! use rust_decimal::Decimal;
//! use strata::bank::{AccountCommand, AccountError, AccountEvent, BankAccount};
//! use strata::Aggregate;
//!
//! let account = BankAccount::from_events(&[
//!     AccountEvent::Opened { owner: "ada".into() },
//!     AccountEvent::Deposited { amount: Decimal::new(1050, 2) },
//! ]);
//! assert_eq!(account.balance(), Decimal::new(1050, 2));
//! let too_much = AccountCommand::Withdraw { amount: Decimal::new(2000, 2) };
//! assert!(matches!(account.handle(&too_much), Err(AccountError::InsufficientFunds { .. })));
//! ```

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::event::DomainEvent;

/// Where an account is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Not opened yet (the initial state).
    #[default]
    New,
    /// Open: takes deposits and withdrawals.
    Open,
    /// Closed for good.
    Closed,
}

/// A bank account's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccount {
    status: AccountStatus,
    owner: String,
    balance: Decimal,
}

impl BankAccount {
    /// The current balance.
    pub fn balance(&self) -> Decimal {
        self.balance
    }

    /// The owner's name (empty before opening).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Where the account is in its life.
    pub fn status(&self) -> AccountStatus {
        self.status
    }

    fn require_open(&self) -> Result<(), AccountError> {
        match self.status {
            AccountStatus::New => Err(AccountError::NotOpen),
            AccountStatus::Open => Ok(()),
            AccountStatus::Closed => Err(AccountError::Closed),
        }
    }
}

/// What can be asked of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum AccountCommand {
    /// Opens the account for `owner`.
    Open {
        /// The owner's name; not empty.
        owner: String,
    },
    /// Puts money in.
    Deposit {
        /// How much; positive.
        amount: Decimal,
    },
    /// Takes money out.
    Withdraw {
        /// How much; positive, at most the balance.
        amount: Decimal,
    },
    /// Closes an empty account.
    Close,
}

/// What happened to an account. The event type names are stable and
/// prefixed (`AccountOpened`, `MoneyDeposited`, ...) because `$all` mixes
/// every aggregate's events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountEvent {
    /// The account was opened.
    #[serde(rename = "AccountOpened")]
    Opened {
        /// Its owner.
        owner: String,
    },
    /// Money was put in.
    #[serde(rename = "MoneyDeposited")]
    Deposited {
        /// How much.
        amount: Decimal,
    },
    /// Money was taken out.
    #[serde(rename = "MoneyWithdrawn")]
    Withdrawn {
        /// How much.
        amount: Decimal,
    },
    /// The account was closed.
    #[serde(rename = "AccountClosed")]
    Closed,
}

impl DomainEvent for AccountEvent {}

/// Why an account refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The account has not been opened.
    #[error("the account is not open; open it first")]
    NotOpen,
    /// The account was already opened.
    #[error("the account is already open")]
    AlreadyOpen,
    /// The account is closed and refuses everything.
    #[error("the account is closed")]
    Closed,
    /// An account needs an owner.
    #[error("an account needs a non-empty owner name")]
    MissingOwner,
    /// Amounts must be positive.
    #[error("the amount must be positive, got {amount}")]
    InvalidAmount {
        /// The refused amount.
        amount: Decimal,
    },
    /// A withdrawal larger than the balance.
    #[error("insufficient funds: the balance is {balance}, the withdrawal is {requested}")]
    InsufficientFunds {
        /// The balance.
        balance: Decimal,
        /// The refused withdrawal.
        requested: Decimal,
    },
    /// The deposit would take the balance past what a decimal can hold.
    #[error("a deposit of {amount} would overflow the balance of {balance}")]
    BalanceOverflow {
        /// The balance.
        balance: Decimal,
        /// The refused deposit.
        amount: Decimal,
    },
    /// Only an empty account can be closed.
    #[error("the balance is {balance}; withdraw it before closing the account")]
    NonZeroBalance {
        /// The remaining balance.
        balance: Decimal,
    },
}

fn positive(amount: Decimal) -> Result<Decimal, AccountError> {
    if amount > Decimal::ZERO {
        Ok(amount)
    } else {
        Err(AccountError::InvalidAmount { amount })
    }
}

impl Aggregate for BankAccount {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open { owner } => match self.status {
                AccountStatus::New if owner.trim().is_empty() => Err(AccountError::MissingOwner),
                AccountStatus::New => Ok(vec![AccountEvent::Opened {
                    owner: owner.clone(),
                }]),
                AccountStatus::Open => Err(AccountError::AlreadyOpen),
                AccountStatus::Closed => Err(AccountError::Closed),
            },
            AccountCommand::Deposit { amount } => {
                self.require_open()?;
                let amount = positive(*amount)?;
                if self.balance.checked_add(amount).is_none() {
                    return Err(AccountError::BalanceOverflow {
                        balance: self.balance,
                        amount,
                    });
                }
                Ok(vec![AccountEvent::Deposited { amount }])
            }
            AccountCommand::Withdraw { amount } => {
                self.require_open()?;
                let amount = positive(*amount)?;
                if amount > self.balance {
                    return Err(AccountError::InsufficientFunds {
                        balance: self.balance,
                        requested: amount,
                    });
                }
                Ok(vec![AccountEvent::Withdrawn { amount }])
            }
            AccountCommand::Close => {
                self.require_open()?;
                if !self.balance.is_zero() {
                    return Err(AccountError::NonZeroBalance {
                        balance: self.balance,
                    });
                }
                Ok(vec![AccountEvent::Closed])
            }
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner } => {
                self.status = AccountStatus::Open;
                self.owner.clone_from(owner);
            }
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
            AccountEvent::Closed => self.status = AccountStatus::Closed,
        }
    }
}

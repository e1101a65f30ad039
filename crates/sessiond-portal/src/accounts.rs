//! [`Accounts`]: the portal's users — credential checks, new users, password
//! changes, disabling — in one place, used by the portal's pages and by
//! `sessiond users …` alike.
//!
//! Every change to a user is a compare-and-set on its record, retried a few
//! times when another writer got there first (another node's password
//! change, an admin command), and every change that must end sessions ends
//! them through the manager, so an event records each one.

use std::sync::Arc;

use sessiond_core::{
    Error as CoreError, RevokeReason, SessionId, SessionManager, Subject, Tenant, UserRecord, UserStore, UserStoreError,
};

use crate::passwords::{PasswordError, Passwords};

/// How often a change is retried after losing a compare-and-set race.
const CHANGE_ATTEMPTS: usize = 8;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The name is not a valid user name (empty, surrounding spaces, too
    /// long, control characters).
    #[error("{0:?} is not a valid user name")]
    InvalidName(String),
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// A user with this name exists already.
    #[error("a user with this name already exists")]
    Exists,
    /// The record kept changing under every attempt.
    #[error("the user kept changing concurrently; try again")]
    Conflict,
    /// A new password breaks the length rules, or hashing is busy or failed.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The user store failed.
    #[error(transparent)]
    Users(UserStoreError),
    /// Ending the user's sessions failed.
    #[error(transparent)]
    Sessions(#[from] CoreError),
}

impl From<UserStoreError> for AccountError {
    fn from(error: UserStoreError) -> Self {
        match error {
            UserStoreError::Exists => AccountError::Exists,
            UserStoreError::NotFound => AccountError::NotFound,
            other => AccountError::Users(other),
        }
    }
}

/// The accounts of one tenant, over its user store and session manager.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounts {
    users: Arc<dyn UserStore>,
    manager: SessionManager,
    passwords: Passwords,
}

/// A user name as typed: trimmed input is refused rather than changed, so
/// `alice` and ` alice` never become two accounts.
pub fn user_name(name: &str) -> Result<Subject, AccountError> {
    if name.is_empty() || name.trim() != name {
        return Err(AccountError::InvalidName(name.to_owned()));
    }
    Subject::new(name).map_err(|_| AccountError::InvalidName(name.to_owned()))
}

impl Accounts {
    /// The accounts of `manager`'s tenant; `passwords` bounds the hashing
    /// work (one per core is right for a server).
    pub fn new(users: Arc<dyn UserStore>, manager: SessionManager, passwords: Passwords) -> Self {
        Self {
            users,
            manager,
            passwords,
        }
    }

    /// The tenant these accounts belong to.
    pub fn tenant(&self) -> &Tenant {
        self.manager.tenant()
    }

    /// The user `name` names if `password` is theirs and they are enabled.
    /// Every failure — unknown or invalid name, disabled user, wrong
    /// password — costs one password check and gives the same `None`.
    pub async fn check_credentials(&self, name: &str, password: String) -> Result<Option<UserRecord>, AccountError> {
        let user = match Subject::new(name) {
            Ok(name) => self.users.get_user(self.tenant(), &name).await?,
            Err(_) => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let matched = self.passwords.verify(password, hash).await?;
        Ok(user.filter(|u| matched && !u.disabled))
    }

    /// Whether `name` is an existing user who is not disabled: what the
    /// portal checks before vouching for a session of theirs.
    pub async fn is_active(&self, name: &Subject) -> Result<bool, AccountError> {
        let user = self.users.get_user(self.tenant(), name).await?;
        Ok(user.is_some_and(|u| !u.disabled))
    }

    /// Adds an enabled user.
    pub async fn add(&self, name: &Subject, password: String) -> Result<UserRecord, AccountError> {
        let hash = self.passwords.hash(password).await?;
        let now = self.manager.now();
        let user = UserRecord {
            tenant: self.tenant().clone(),
            name: name.clone(),
            password_hash: hash,
            disabled: false,
            created_at: now,
            password_changed_at: now,
            version: 1,
        };
        self.users.insert_user(&user).await?;
        Ok(user)
    }

    /// Sets a new password and ends every session of the user except `keep`
    /// (the one the change was made from). Returns how many ended.
    pub async fn change_password(
        &self,
        name: &Subject,
        password: String,
        keep: Option<&SessionId>,
    ) -> Result<usize, AccountError> {
        let hash = self.passwords.hash(password).await?;
        let now = self.manager.now();
        self.modify(name, |user| {
            user.password_hash = hash.clone();
            user.password_changed_at = now;
        })
        .await?;
        Ok(self
            .manager
            .revoke_subject(name, keep, RevokeReason::PasswordChange)
            .await?)
    }

    /// Disables or enables a user. Disabling ends every session of the user
    /// and returns how many ended.
    pub async fn set_disabled(&self, name: &Subject, disabled: bool) -> Result<usize, AccountError> {
        self.modify(name, |user| user.disabled = disabled).await?;
        if !disabled {
            return Ok(0);
        }
        Ok(self.manager.revoke_subject(name, None, RevokeReason::Admin).await?)
    }

    /// Deletes a user and then ends every session of theirs (in that order,
    /// so no login slips in between); returns how many ended.
    pub async fn delete(&self, name: &Subject) -> Result<usize, AccountError> {
        if !self.users.delete_user(self.tenant(), name).await? {
            return Err(AccountError::NotFound);
        }
        Ok(self.manager.revoke_subject(name, None, RevokeReason::Admin).await?)
    }

    /// Every user of the tenant.
    pub async fn list(&self) -> Result<Vec<UserRecord>, AccountError> {
        Ok(self.users.list_users(self.tenant()).await?)
    }

    /// Applies `change` by compare-and-set, retrying if the record changed
    /// meanwhile.
    async fn modify(&self, name: &Subject, change: impl Fn(&mut UserRecord)) -> Result<UserRecord, AccountError> {
        for _ in 0..CHANGE_ATTEMPTS {
            let Some(mut user) = self.users.get_user(self.tenant(), name).await? else {
                return Err(AccountError::NotFound);
            };
            let expected = user.version;
            change(&mut user);
            user.version = expected + 1;
            match self.users.update_user(&user, expected).await {
                Ok(()) => return Ok(user),
                Err(UserStoreError::VersionConflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(AccountError::Conflict)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sessiond_core::{CreateOptions, MemoryStore};

    use super::*;

    fn accounts() -> (Accounts, SessionManager) {
        let store = Arc::new(MemoryStore::new());
        let manager = SessionManager::builder(Arc::clone(&store) as Arc<dyn sessiond_core::SessionStore>)
            .build()
            .unwrap();
        (Accounts::new(store, manager.clone(), Passwords::new(2)), manager)
    }

    #[tokio::test]
    async fn credentials_hold_only_for_an_enabled_user_with_the_right_password() {
        let (accounts, _) = accounts();
        let alice = user_name("alice").unwrap();
        accounts.add(&alice, "correct horse".into()).await.unwrap();
        assert!(matches!(
            accounts.add(&alice, "another one".into()).await,
            Err(AccountError::Exists)
        ));
        let ok = accounts
            .check_credentials("alice", "correct horse".into())
            .await
            .unwrap();
        assert_eq!(ok.map(|u| u.name), Some(alice.clone()));
        for (name, password) in [("alice", "wrong horse"), ("bob", "correct horse"), ("\u{7}", "x")] {
            assert!(
                accounts
                    .check_credentials(name, password.into())
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        accounts.set_disabled(&alice, true).await.unwrap();
        assert!(
            accounts
                .check_credentials("alice", "correct horse".into())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_password_change_ends_every_session_but_the_kept_one() {
        let (accounts, manager) = accounts();
        let alice = user_name("alice").unwrap();
        accounts.add(&alice, "correct horse".into()).await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let (_, session) = manager.create(&alice, CreateOptions::default()).await.unwrap();
            ids.push(session.id);
        }
        let ended = accounts
            .change_password(&alice, "battery staple".into(), Some(&ids[0]))
            .await
            .unwrap();
        assert_eq!(ended, 2);
        let left: Vec<_> = manager
            .list_subject(&alice)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(left, vec![ids[0].clone()]);
        assert!(
            accounts
                .check_credentials("alice", "correct horse".into())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            accounts
                .check_credentials("alice", "battery staple".into())
                .await
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            accounts
                .change_password(&user_name("bob").unwrap(), "battery staple".into(), None)
                .await,
            Err(AccountError::NotFound)
        ));
    }

    #[tokio::test]
    async fn a_deleted_user_has_no_session_and_no_login_left() {
        let (accounts, manager) = accounts();
        let alice = user_name("alice").unwrap();
        accounts.add(&alice, "correct horse".into()).await.unwrap();
        manager.create(&alice, CreateOptions::default()).await.unwrap();
        assert_eq!(accounts.delete(&alice).await.unwrap(), 1);
        assert!(manager.list_subject(&alice).await.unwrap().is_empty());
        let login = accounts
            .check_credentials("alice", "correct horse".into())
            .await
            .unwrap();
        assert!(login.is_none());
        assert!(matches!(accounts.delete(&alice).await, Err(AccountError::NotFound)));
    }

    #[test]
    fn user_names_are_taken_as_typed() {
        assert!(user_name("alice").is_ok());
        for bad in ["", " alice", "alice ", "a\u{0}b"] {
            assert!(matches!(user_name(bad), Err(AccountError::InvalidName(_))), "{bad:?}");
        }
    }
}

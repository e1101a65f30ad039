//! [`UserStore`] for [`PostgresStore`]: portal accounts in `users`
//! (migration 2), one statement per operation.
//!
//! Insert is `INSERT … ON CONFLICT DO NOTHING`: of racing inserts the engine
//! lets exactly one through, the others find the key taken. Update is
//! `UPDATE … WHERE version = $expected`; when it writes nothing, a second
//! read tells a missing user from a version conflict.

use async_trait::async_trait;
use sessiond_core::{StoreError, Subject, Tenant, UserRecord, UserStore, UserStoreError};
use tokio_postgres::Row;

use crate::error::{BadColumn, corrupt, store_error};
use crate::row::get;
use crate::store::PostgresStore;

/// The columns of an account, in the order [`decode`] reads them.
const COLUMNS: &str = "tenant, name, password_hash, disabled, created_at, password_changed_at, version";

/// A version as the engine's signed `bigint`; larger ones cannot be stored.
fn version_param(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| {
        StoreError::Backend(Box::new(BadColumn {
            column: "version",
            problem: format!("{version} exceeds bigint"),
        }))
    })
}

fn stored_version(version: i64) -> Result<u64, StoreError> {
    u64::try_from(version).map_err(|_| corrupt("version", version))
}

/// Reads an account from a row selected with [`COLUMNS`].
fn decode(row: &Row) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        tenant: Tenant::new(get::<&str>(row, 0, "tenant")?).map_err(|e| corrupt("tenant", e))?,
        name: Subject::from_record(get::<&str>(row, 1, "name")?).map_err(|e| corrupt("name", e))?,
        password_hash: get(row, 2, "password_hash")?,
        disabled: get(row, 3, "disabled")?,
        created_at: get(row, 4, "created_at")?,
        password_changed_at: get(row, 5, "password_changed_at")?,
        version: stored_version(get(row, 6, "version")?)?,
    })
}

/// What a compare-and-set found.
enum Cas {
    Written,
    Refused(UserStoreError),
}

impl PostgresStore {
    async fn user_cas(&self, user: &UserRecord, expected_version: u64) -> Result<Cas, StoreError> {
        let version = version_param(user.version)?;
        let expected = version_param(expected_version)?;
        let client = self.client().await?;
        let update = client
            .prepare_cached(
                "UPDATE users SET password_hash = $3, disabled = $4, created_at = $5, password_changed_at = $6, \
                 version = $7 WHERE tenant = $1 AND name = $2 AND version = $8",
            )
            .await
            .map_err(store_error)?;
        let current = client
            .prepare_cached("SELECT version FROM users WHERE tenant = $1 AND name = $2")
            .await
            .map_err(store_error)?;
        let (tenant, name) = (user.tenant.as_str(), user.name.as_str());
        loop {
            let written = client
                .execute(
                    &update,
                    &[
                        &tenant,
                        &name,
                        &user.password_hash,
                        &user.disabled,
                        &user.created_at,
                        &user.password_changed_at,
                        &version,
                        &expected,
                    ],
                )
                .await
                .map_err(store_error)?;
            if written == 1 {
                return Ok(Cas::Written);
            }
            let row = client
                .query_opt(&current, &[&tenant, &name])
                .await
                .map_err(store_error)?;
            let Some(row) = row else {
                return Ok(Cas::Refused(UserStoreError::NotFound));
            };
            let current = stored_version(get(&row, 0, "version")?)?;
            if current != expected_version {
                return Ok(Cas::Refused(UserStoreError::VersionConflict { current }));
            }
            // The user appeared (or came back to the expected version)
            // between the two statements: the update would now apply, so
            // try it again rather than report a conflict with no conflict.
        }
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn get_user(&self, tenant: &Tenant, name: &Subject) -> Result<Option<UserRecord>, UserStoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let sql = format!("SELECT {COLUMNS} FROM users WHERE tenant = $1 AND name = $2");
            let statement = client.prepare_cached(&sql).await.map_err(store_error)?;
            let row = client
                .query_opt(&statement, &[&tenant.as_str(), &name.as_str()])
                .await
                .map_err(store_error)?;
            row.as_ref().map(decode).transpose()
        })
        .await
        .map_err(UserStoreError::from)
    }

    async fn insert_user(&self, user: &UserRecord) -> Result<(), UserStoreError> {
        let inserted = self
            .bounded(async {
                let version = version_param(user.version)?;
                let client = self.client().await?;
                let sql = format!(
                    "INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (tenant, name) DO NOTHING"
                );
                let statement = client.prepare_cached(&sql).await.map_err(store_error)?;
                client
                    .execute(
                        &statement,
                        &[
                            &user.tenant.as_str(),
                            &user.name.as_str(),
                            &user.password_hash,
                            &user.disabled,
                            &user.created_at,
                            &user.password_changed_at,
                            &version,
                        ],
                    )
                    .await
                    .map_err(store_error)
            })
            .await
            .map_err(UserStoreError::from)?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(UserStoreError::Exists)
        }
    }

    async fn update_user(&self, user: &UserRecord, expected_version: u64) -> Result<(), UserStoreError> {
        match self
            .bounded(self.user_cas(user, expected_version))
            .await
            .map_err(UserStoreError::from)?
        {
            Cas::Written => Ok(()),
            Cas::Refused(refusal) => Err(refusal),
        }
    }

    async fn list_users(&self, tenant: &Tenant) -> Result<Vec<UserRecord>, UserStoreError> {
        self.bounded(async {
            let client = self.client().await?;
            // `name` is COLLATE "C": byte order, as Rust sorts.
            let sql = format!("SELECT {COLUMNS} FROM users WHERE tenant = $1 ORDER BY name");
            let statement = client.prepare_cached(&sql).await.map_err(store_error)?;
            let rows = client
                .query(&statement, &[&tenant.as_str()])
                .await
                .map_err(store_error)?;
            rows.iter().map(decode).collect()
        })
        .await
        .map_err(UserStoreError::from)
    }

    async fn delete_user(&self, tenant: &Tenant, name: &Subject) -> Result<bool, UserStoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached("DELETE FROM users WHERE tenant = $1 AND name = $2")
                .await
                .map_err(store_error)?;
            let deleted = client
                .execute(&statement, &[&tenant.as_str(), &name.as_str()])
                .await
                .map_err(store_error)?;
            Ok(deleted == 1)
        })
        .await
        .map_err(UserStoreError::from)
    }
}

//! Versioned migrations, embedded in the binary and applied at start.
//!
//! Several nodes may start at once: each takes a session-level advisory lock
//! for the schema before looking, so exactly one applies a migration and the
//! others find it done. Each migration runs in its own transaction together
//! with its `schema_migrations` row, so a crash leaves it either fully
//! applied and recorded or not at all.

use tokio_postgres::Client;

use crate::error::OpenError;
use crate::keys::migration_lock_key;

/// One migration: a version, a name for people, and its SQL.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first. Never edit one that has shipped: add the
/// next version instead.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "sessions",
        sql: include_str!("../migrations/0001_sessions.sql"),
    },
    Migration {
        version: 2,
        name: "users",
        sql: include_str!("../migrations/0002_users.sql"),
    },
    Migration {
        version: 3,
        name: "session_origin",
        sql: include_str!("../migrations/0003_session_origin.sql"),
    },
    Migration {
        version: 4,
        name: "secrets",
        sql: include_str!("../migrations/0004_secrets.sql"),
    },
    Migration {
        version: 5,
        name: "api_keys",
        sql: include_str!("../migrations/0005_api_keys.sql"),
    },
    Migration {
        version: 6,
        name: "counters",
        sql: include_str!("../migrations/0006_counters.sql"),
    },
    Migration {
        version: 7,
        name: "events",
        sql: include_str!("../migrations/0007_events.sql"),
    },
    Migration {
        version: 8,
        name: "sealed_client",
        sql: include_str!("../migrations/0008_sealed_client.sql"),
    },
    Migration {
        version: 9,
        name: "secret_values",
        sql: include_str!("../migrations/0009_secret_values.sql"),
    },
    Migration {
        version: 10,
        name: "created_client",
        sql: include_str!("../migrations/0010_created_client.sql"),
    },
    Migration {
        version: 11,
        name: "session_notify",
        sql: include_str!("../migrations/0011_session_notify.sql"),
    },
];

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The node-local cache's triggers, created on first use (see the file).
const NOTIFY_TRIGGERS: &str = include_str!("../migrations/session_notify_triggers.sql");

/// Brings `schema` up to the latest version on `client` (a dedicated
/// connection whose search path starts with `schema`), and with `notify`
/// (a node that caches records) makes sure session changes are notified.
/// Returns the versions it applied.
pub(crate) async fn migrate(client: &mut Client, schema: &str, notify: bool) -> Result<Vec<i32>, OpenError> {
    let failed = |version: i32| move |source| OpenError::Migration { version, source };
    let (class, key) = migration_lock_key(schema);
    client
        .execute("SELECT pg_advisory_lock($1, $2)", &[&class, &key])
        .await
        .map_err(failed(0))?;
    let mut applied = apply_pending(client, schema).await;
    if notify
        && applied.is_ok()
        && let Err(error) = create_notify_triggers(client, schema).await
    {
        applied = Err(error);
    }
    // Unlock even after a failure; if the connection is gone the server has
    // already released the lock with the session.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1, $2)", &[&class, &key])
        .await;
    let applied = applied?;
    unlocked.map_err(failed(0))?;
    Ok(applied)
}

async fn apply_pending(client: &mut Client, schema: &str) -> Result<Vec<i32>, OpenError> {
    let failed = |version: i32| move |source| OpenError::Migration { version, source };
    // `schema` is validated to be a plain lower-case identifier, so it can
    // be spliced in; DDL takes no bind parameters.
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(failed(0))?;
    let current: i32 = client
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations"),
            &[],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(failed(0))?;
    if current > latest_version() {
        return Err(OpenError::SchemaTooNew {
            found: current,
            known: latest_version(),
        });
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let version = migration.version;
        let tx = client.transaction().await.map_err(failed(version))?;
        tx.batch_execute(migration.sql).await.map_err(failed(version))?;
        tx.execute(
            &format!("INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)"),
            &[&version, &migration.name],
        )
        .await
        .map_err(failed(version))?;
        tx.commit().await.map_err(failed(version))?;
        tracing::info!(schema, version, name = migration.name, "applied migration");
        applied.push(version);
    }
    Ok(applied)
}

/// Creates the cache's triggers unless `sessions_changed` exists, in a
/// transaction of its own (under the caller's migration lock, so nodes
/// opening at once do it once).
async fn create_notify_triggers(client: &mut Client, schema: &str) -> Result<(), OpenError> {
    let failed = |source| OpenError::Migration {
        version: latest_version(),
        source,
    };
    let tx = client.transaction().await.map_err(failed)?;
    let present = tx
        .query_opt(
            "SELECT 1 FROM pg_trigger WHERE tgname = 'sessions_changed' AND tgrelid = $1::text::regclass",
            &[&format!("{schema}.sessions")],
        )
        .await
        .map_err(failed)?
        .is_some();
    if !present {
        tx.batch_execute(NOTIFY_TRIGGERS).await.map_err(failed)?;
        tracing::info!(schema, "created the record cache's notify triggers");
    }
    tx.commit().await.map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(m.version).ok(), Some(i + 1), "{}", m.name);
        }
    }
}

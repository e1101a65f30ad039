//! Admin subcommands that work on the store directly.
//!
//! An embedded store is held open by a running server; opening it here then
//! fails at once with [`StoreOpenError::InUse`], rather than waiting or
//! touching the files. `sessiond keys …` and `sessiond users …` then go
//! through the server's admin routes ([`AdminTarget::Server`]); the other
//! commands say the store is in use.

use anyhow::Context as _;
use std::sync::Arc;

use sessiond_core::{
    Clock as _, KeyId, KeyRecord, KeyRole, RevokeReason, SessionId, SessionManager, Subject, SystemClock, Tenant,
    is_valid_key_name,
};

use crate::config::Config;
use crate::event_log::EventLog;
use crate::keys::KeySpec;
use crate::local_admin::{AdminClient, Refused};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sessiond_stores::{StoreHandle, StoreOpenError};
use sessiond_wire::KeyView;
use std::path::PathBuf;

/// The store a command opened, and the event log that writes the events
/// of the command's changes into it; [`close`] writes them before the store
/// closes. Derefs to the store.
#[derive(Debug)]
pub struct CommandStore {
    store: StoreHandle,
    events: Arc<EventLog>,
}

impl std::ops::Deref for CommandStore {
    type Target = StoreHandle;

    fn deref(&self) -> &StoreHandle {
        &self.store
    }
}

/// A manager for `tenant` on the configured store, with the store to close
/// when done.
pub async fn open_manager(config: &Config, tenant: &str) -> anyhow::Result<(SessionManager, CommandStore)> {
    let opened = crate::data_keys::open_store(config).await?;
    manager_on(config, opened, tenant)
}

/// A manager for `tenant` on the store `opened`, with the store (and the
/// event log that records the command's changes in it) to close when done.
pub fn manager_on(
    config: &Config,
    opened: StoreHandle,
    tenant: &str,
) -> anyhow::Result<(SessionManager, CommandStore)> {
    let events = EventLog::start(opened.events(), config.events.bounds(), Arc::new(SystemClock))?;
    let manager = SessionManager::builder(opened.sessions())
        .policy(config.policy.to_policy())
        .events(events.clone())
        .store_events(events.ids())
        .tenant(Tenant::new(tenant)?)
        .build()?;
    Ok((manager, CommandStore { store: opened, events }))
}

/// Where an admin command works: the configured store itself, or, for an
/// embedded store a running server holds, that server's admin routes (see
/// [`crate::local_admin`]).
#[derive(Debug)]
pub enum AdminTarget {
    /// The store, opened here.
    Store(StoreHandle),
    /// The directory of an embedded store a running server holds.
    Server(PathBuf),
}

/// Opens the configured store, or finds the server that holds it.
pub async fn open_target(config: &Config) -> anyhow::Result<AdminTarget> {
    match crate::data_keys::open_store(config).await {
        Ok(opened) => Ok(AdminTarget::Store(opened)),
        Err(error) => match error.downcast::<StoreOpenError>() {
            Ok(StoreOpenError::InUse { path }) => Ok(AdminTarget::Server(path)),
            Ok(other) => Err(other.into()),
            Err(error) => Err(error),
        },
    }
}

fn print_created(role: &str, id: &str, tenant: &str, key: &str) {
    println!("created {role} API key {id} for tenant {tenant}; it is shown only once:");
    println!("{key}");
}

/// `sessiond keys create`: the key alone on the last line of stdout.
pub async fn keys_create(
    config: &Config,
    tenant: &str,
    role: &str,
    name: String,
    expires_in: Option<&str>,
) -> anyhow::Result<()> {
    let role: KeyRole = role.parse()?;
    if !is_valid_key_name(&name) {
        anyhow::bail!("a key name is at most 64 bytes without control characters");
    }
    if name == crate::local_admin::KEY_NAME {
        anyhow::bail!("the key name {name} is reserved for the command line's keys");
    }
    let now = SystemClock.now();
    let expires_at = expires_in
        .map(|text| {
            let span = sessiond_core::humane::parse_duration(text)
                .with_context(|| format!("--expires-in {text:?} is not a duration such as 90d or 12h"))?;
            anyhow::Ok(now + span)
        })
        .transpose()?;
    let tenant = Tenant::new(tenant)?;
    match open_target(config).await? {
        AdminTarget::Store(opened) => {
            let spec = KeySpec {
                tenant,
                role,
                name,
                expires_at,
            };
            let created = crate::keys::create(opened.keys().as_ref(), spec, now).await;
            opened.shutdown().context("closing the store failed")?;
            let (record, key) = created?;
            print_created(record.role.as_str(), record.id.as_str(), record.tenant.as_str(), &key);
        }
        AdminTarget::Server(dir) => {
            let server = AdminClient::open(&dir, tenant.as_str())?;
            let mut body = json!({"name": name, "role": role.as_str()});
            if let Some(at) = expires_at {
                body["expires_at"] = json!(stamp(at));
            }
            let (_, made) = server.call(Method::POST, &["v1", "admin", "keys"], Some(body)).await?;
            let field = |name: &str| made[name].as_str().unwrap_or_default().to_owned();
            print_created(&field("role"), &field("id"), tenant.as_str(), &field("key"));
        }
    }
    Ok(())
}

/// One line of `sessiond keys list`.
fn print_key(key: &KeyRecord, now: time::OffsetDateTime) {
    let expires = match key.expires_at {
        Some(at) if key.is_expired(now) => format!("expired {}", stamp(at)),
        Some(at) => stamp(at),
        None => "never".to_owned(),
    };
    let used = key.last_used_at.map_or_else(|| "never".to_owned(), stamp);
    println!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        key.id,
        key.tenant,
        key.role,
        stamp(key.created_at),
        expires,
        used,
        key.name
    );
}

/// `sessiond keys list`: every tenant's keys from the store; through a
/// running server, the keys of the tenants its endpoint covers.
pub async fn keys_list(config: &Config) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match open_target(config).await? {
        AdminTarget::Store(opened) => {
            let listed = opened.keys().list_keys().await;
            opened.shutdown().context("closing the store failed")?;
            for key in listed? {
                print_key(&key, now);
            }
        }
        AdminTarget::Server(dir) => {
            for server in AdminClient::for_every_tenant(&dir)? {
                let (_, listed) = server.call(Method::GET, &["v1", "admin", "keys"], None).await?;
                let views: Vec<KeyView> = serde_json::from_value(listed["keys"].clone())?;
                for view in views {
                    print_key(&record_of(view, server.tenant())?, now);
                }
            }
        }
    }
    Ok(())
}

/// A listed key as a record (without its hash, which no listing shows).
fn record_of(view: KeyView, tenant: &str) -> anyhow::Result<KeyRecord> {
    Ok(KeyRecord {
        id: KeyId::new(view.id)?,
        tenant: Tenant::new(tenant)?,
        name: view.name,
        role: view.role.parse()?,
        sha256: String::new(),
        created_at: view.created_at,
        expires_at: view.expires_at,
        last_used_at: view.last_used_at,
    })
}

/// `sessiond keys revoke ID`
pub async fn keys_revoke(config: &Config, id: &str) -> anyhow::Result<()> {
    let id = KeyId::new(id).with_context(|| format!("{id:?} is not a key id"))?;
    let deleted = match open_target(config).await? {
        AdminTarget::Store(opened) => {
            let deleted = opened.keys().delete_key(&id).await;
            opened.shutdown().context("closing the store failed")?;
            deleted?
        }
        AdminTarget::Server(dir) => {
            // Each tenant's admin key deletes only its tenant's keys: 404 elsewhere.
            let mut deleted = false;
            for server in AdminClient::for_every_tenant(&dir)? {
                match server
                    .call(Method::DELETE, &["v1", "admin", "keys", id.as_str()], None)
                    .await
                {
                    Ok(_) => {
                        deleted = true;
                        break;
                    }
                    Err(e)
                        if e.downcast_ref::<Refused>()
                            .is_some_and(|r| r.status == StatusCode::NOT_FOUND) => {}
                    Err(e) => return Err(e),
                }
            }
            deleted
        }
    };
    if deleted {
        println!("deleted key {id}; it stops working on every node within a second");
        Ok(())
    } else {
        anyhow::bail!("no key with id {id}")
    }
}

/// `sessiond sessions list`
pub async fn sessions_list(config: &Config, tenant: &str, subject: &str) -> anyhow::Result<()> {
    let (manager, opened) = open_manager(config, tenant).await?;
    let sessions = manager.list_subject(&Subject::new(subject)?).await?;
    for session in &sessions {
        let mut line = Vec::new();
        sessiond_wire::write_session(&mut line, session, manager.signals(session, None))?;
        println!("{}", String::from_utf8_lossy(&line));
    }
    close(manager, opened).await?;
    Ok(())
}

/// `sessiond sessions revoke`
pub async fn sessions_revoke(
    config: &Config,
    tenant: &str,
    id: Option<&str>,
    subject: Option<&str>,
) -> anyhow::Result<()> {
    let (manager, opened) = open_manager(config, tenant).await?;
    let result = match (id, subject) {
        (Some(id), _) => {
            let id = SessionId::parse(id).context("not a session id")?;
            manager.revoke_id(&id, RevokeReason::Admin).await.map(|_| 1)
        }
        (None, Some(subject)) => {
            manager
                .revoke_subject(&Subject::new(subject)?, None, RevokeReason::Admin)
                .await
        }
        (None, None) => anyhow::bail!("give --id or --subject"),
    };
    close(manager, opened).await?;
    println!("revoked {}", result?);
    Ok(())
}

/// `sessiond purge`
pub async fn purge(config: &Config) -> anyhow::Result<()> {
    let (manager, opened) = open_manager(config, "default").await?;
    let mut total = 0;
    loop {
        let n = manager.purge_expired(config.store.purge_batch).await?;
        total += n;
        if n < config.store.purge_batch {
            break;
        }
    }
    close(manager, opened).await?;
    println!("purged {total}");
    Ok(())
}

/// `sessiond portal rotate-secret`
pub async fn rotate_portal_secret(config: &Config) -> anyhow::Result<()> {
    let opened = crate::data_keys::open_store(config).await?;
    let rotated = sessiond_portal::rotate_portal_secret(&*opened.secrets()).await;
    opened.shutdown().context("closing the store failed")?;
    let count = rotated?;
    println!(
        "rotated the portal secret: {count} stored; each node signs with the new one from its next start, \
         and the previous one keeps verifying until the next rotation"
    );
    Ok(())
}

/// Writes the command's events, drops the manager (the store's last other
/// handle), then flushes and releases the store.
pub async fn close(manager: SessionManager, opened: CommandStore) -> anyhow::Result<()> {
    opened.events.close().await;
    drop(manager);
    drop(opened.events);
    opened.store.shutdown().context("closing the store failed")
}

/// A time as the commands print it: RFC 3339 in UTC (`Display` would write
/// `2026-11-29 17:35:04.1 +00:00:00`).
pub fn stamp(at: time::OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

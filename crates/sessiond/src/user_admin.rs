//! `sessiond users …`: portal accounts, on the store the configuration
//! names (like the other admin commands, an embedded store held by a running
//! server is refused at once with a message that says so).

use std::io::Read as _;

use anyhow::{Context as _, bail};
use sessiond_core::{RevokeReason, Subject, Tenant, UserRecord, UserStoreError};

use crate::admin::open_manager;
use crate::config::Config;
use crate::portal::Passwords;

/// Reads a password from stdin: everything up to the end, without the
/// final line break (`printf 'pw\n' | …` and `… <<< pw` both work).
pub fn read_password_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .context("cannot read the password from stdin (it must be UTF-8)")?;
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(trimmed.to_owned())
}

fn tenant(config: &Config, tenant: Option<&str>) -> anyhow::Result<Tenant> {
    Ok(Tenant::new(tenant.unwrap_or(&config.portal.tenant))?)
}

fn user_name(name: &str) -> anyhow::Result<Subject> {
    if name.trim() != name || name.is_empty() {
        bail!("a user name must not be empty or start or end with spaces");
    }
    Subject::new(name).with_context(|| format!("{name:?} is not a valid user name"))
}

/// `sessiond users add NAME --password-stdin`
pub async fn add(config: &Config, tenant_name: Option<&str>, name: &str, password: String) -> anyhow::Result<()> {
    let tenant = tenant(config, tenant_name)?;
    let name = user_name(name)?;
    let hash = Passwords::new(1).hash(password).await?;
    let (manager, opened) = open_manager(config, tenant.as_str()).await?;
    let now = manager.now();
    let user = UserRecord {
        tenant: tenant.clone(),
        name: name.clone(),
        password_hash: hash,
        disabled: false,
        created_at: now,
        password_changed_at: now,
        version: 1,
    };
    let result = opened.users().insert_user(&user).await;
    crate::admin::close(manager, opened)?;
    match result {
        Ok(()) => {
            println!("added user {name} (tenant {tenant})");
            Ok(())
        }
        Err(UserStoreError::Exists) => bail!("user {name} already exists (tenant {tenant}); use `users passwd`"),
        Err(other) => Err(other.into()),
    }
}

/// Applies `change` to a user with compare-and-set, retrying if the record
/// changed meanwhile (another admin command, a password change in the portal).
async fn modify(
    users: &dyn sessiond_core::UserStore,
    tenant: &Tenant,
    name: &Subject,
    change: impl Fn(&mut UserRecord),
) -> anyhow::Result<UserRecord> {
    for _ in 0..8 {
        let Some(mut user) = users.get_user(tenant, name).await? else {
            bail!("no user {name} (tenant {tenant})");
        };
        let expected = user.version;
        change(&mut user);
        user.version = expected + 1;
        match users.update_user(&user, expected).await {
            Ok(()) => return Ok(user),
            Err(UserStoreError::VersionConflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    bail!("user {name} kept changing concurrently; try again")
}

/// `sessiond users passwd NAME --password-stdin`: sets a new password and
/// ends the user's sessions, as a password change in the portal does.
pub async fn passwd(config: &Config, tenant_name: Option<&str>, name: &str, password: String) -> anyhow::Result<()> {
    let tenant = tenant(config, tenant_name)?;
    let name = user_name(name)?;
    let hash = Passwords::new(1).hash(password).await?;
    let (manager, opened) = open_manager(config, tenant.as_str()).await?;
    let now = manager.now();
    let result = async {
        modify(opened.users().as_ref(), &tenant, &name, |user| {
            user.password_hash = hash.clone();
            user.password_changed_at = now;
        })
        .await?;
        Ok::<_, anyhow::Error>(
            manager
                .revoke_subject(&name, None, RevokeReason::PasswordChange)
                .await?,
        )
    }
    .await;
    crate::admin::close(manager, opened)?;
    println!("changed the password of {name}; ended {} session(s)", result?);
    Ok(())
}

/// `sessiond users disable NAME` / `enable NAME`. Disabling ends every
/// session of the user.
pub async fn set_disabled(
    config: &Config,
    tenant_name: Option<&str>,
    name: &str,
    disabled: bool,
) -> anyhow::Result<()> {
    let tenant = tenant(config, tenant_name)?;
    let name = user_name(name)?;
    let (manager, opened) = open_manager(config, tenant.as_str()).await?;
    let result = async {
        modify(opened.users().as_ref(), &tenant, &name, |user| user.disabled = disabled).await?;
        if disabled {
            Ok::<_, anyhow::Error>(manager.revoke_subject(&name, None, RevokeReason::Admin).await?)
        } else {
            Ok(0)
        }
    }
    .await;
    crate::admin::close(manager, opened)?;
    let ended = result?;
    if disabled {
        println!("disabled {name}; ended {ended} session(s)");
    } else {
        println!("enabled {name}");
    }
    Ok(())
}

/// `sessiond users list`: name, state, created, password changed; tab-separated.
pub async fn list(config: &Config, tenant_name: Option<&str>) -> anyhow::Result<()> {
    let tenant = tenant(config, tenant_name)?;
    let (manager, opened) = open_manager(config, tenant.as_str()).await?;
    let result = opened.users().list_users(&tenant).await;
    crate::admin::close(manager, opened)?;
    for user in result? {
        let state = if user.disabled { "disabled" } else { "active" };
        println!(
            "{}\t{state}\t{}\t{}",
            user.name, user.created_at, user.password_changed_at
        );
    }
    Ok(())
}

//! `sessiond users …`: portal accounts, on the store the configuration
//! names, through the portal's [`Accounts`] (like the other admin commands,
//! an embedded store held by a running server is refused at once with a
//! message that says so).

use std::io::Read as _;

use anyhow::{Context as _, bail};
use sessiond_core::{SessionManager, Tenant};
use sessiond_portal::{AccountError, Accounts, Passwords, user_name};

use crate::admin::{CommandStore, close, open_manager, stamp};
use crate::config::Config;

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

/// The accounts of `tenant` (default: the portal's) on the configured store.
async fn open_accounts(
    config: &Config,
    tenant: Option<&str>,
) -> anyhow::Result<(Accounts, SessionManager, CommandStore)> {
    let tenant = Tenant::new(tenant.unwrap_or(&config.portal.tenant))?;
    let (manager, opened) = open_manager(config, tenant.as_str()).await?;
    // One hash at a time: a command hashes once.
    let accounts = Accounts::new(opened.users(), manager.clone(), Passwords::new(1));
    Ok((accounts, manager, opened))
}

/// Runs `work` on the accounts, then closes the store whatever happened.
async fn with_accounts<T>(
    config: &Config,
    tenant: Option<&str>,
    work: impl AsyncFnOnce(&Accounts) -> Result<T, AccountError>,
) -> anyhow::Result<(T, Tenant)> {
    let (accounts, manager, opened) = open_accounts(config, tenant).await?;
    let result = work(&accounts).await;
    let tenant = accounts.tenant().clone();
    drop(accounts);
    close(manager, opened).await?;
    Ok((result?, tenant))
}

/// `sessiond users add NAME --password-stdin`
pub async fn add(config: &Config, tenant: Option<&str>, name: &str, password: String) -> anyhow::Result<()> {
    let name = user_name(name)?;
    match with_accounts(config, tenant, async |a| a.add(&name, password).await).await {
        Ok((_, tenant)) => {
            println!("added user {name} (tenant {tenant})");
            Ok(())
        }
        Err(e) if matches!(e.downcast_ref(), Some(AccountError::Exists)) => {
            bail!("user {name} already exists; use `users passwd`")
        }
        Err(e) => Err(e),
    }
}

/// `sessiond users passwd NAME --password-stdin`: sets a new password and
/// ends the user's sessions, as a password change in the portal does.
pub async fn passwd(config: &Config, tenant: Option<&str>, name: &str, password: String) -> anyhow::Result<()> {
    let name = user_name(name)?;
    let (ended, _) = with_accounts(config, tenant, async |a| a.change_password(&name, password, None).await).await?;
    println!("changed the password of {name}; ended {ended} session(s)");
    Ok(())
}

/// `sessiond users disable NAME` / `enable NAME`. Disabling ends every
/// session of the user.
pub async fn set_disabled(config: &Config, tenant: Option<&str>, name: &str, disabled: bool) -> anyhow::Result<()> {
    let name = user_name(name)?;
    let (ended, _) = with_accounts(config, tenant, async |a| a.set_disabled(&name, disabled).await).await?;
    if disabled {
        println!("disabled {name}; ended {ended} session(s)");
    } else {
        println!("enabled {name}");
    }
    Ok(())
}

/// `sessiond users list`: name, state, created, password changed; tab-separated.
pub async fn list(config: &Config, tenant: Option<&str>) -> anyhow::Result<()> {
    let (users, _) = with_accounts(config, tenant, async |a| a.list().await).await?;
    for user in users {
        let state = if user.disabled { "disabled" } else { "active" };
        println!(
            "{}\t{state}\t{}\t{}",
            user.name,
            stamp(user.created_at),
            stamp(user.password_changed_at)
        );
    }
    Ok(())
}

//! `sessiond users …`: portal accounts, on the store the configuration
//! names, through the portal's [`Accounts`]; on an embedded store a running
//! server holds, through that server's admin routes (see
//! [`crate::local_admin`]).

use std::io::Read as _;

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::json;
use sessiond_core::{SessionManager, Tenant};
use sessiond_portal::{AccountError, Accounts, Passwords, user_name};
use sessiond_wire::UserView;

use crate::admin::{AdminTarget, CommandStore, close, manager_on, open_target, stamp};
use crate::config::Config;
use crate::local_admin::{AdminClient, Refused};

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

/// Where a users command works: the accounts of the store, or the running
/// server's admin routes.
enum Users {
    Here(Accounts, SessionManager, CommandStore),
    Server(AdminClient),
}

/// The accounts of `tenant` (default: the portal's) on the configured store.
async fn open_users(config: &Config, tenant: Option<&str>) -> anyhow::Result<Users> {
    let tenant = Tenant::new(tenant.unwrap_or(&config.portal.tenant))?;
    match open_target(config).await? {
        AdminTarget::Store(opened) => {
            let (manager, opened) = manager_on(config, opened, tenant.as_str())?;
            // One hash at a time: a command hashes once.
            let accounts = Accounts::new(opened.users(), manager.clone(), Passwords::new(1));
            Ok(Users::Here(accounts, manager, opened))
        }
        AdminTarget::Server(dir) => Ok(Users::Server(AdminClient::open(&dir, tenant.as_str())?)),
    }
}

/// Runs `here` on the accounts of the store and closes it whatever
/// happened, or `remote` on the running server.
async fn with_users<T>(
    config: &Config,
    tenant: Option<&str>,
    here: impl AsyncFnOnce(&Accounts) -> Result<T, AccountError>,
    remote: impl AsyncFnOnce(&AdminClient) -> anyhow::Result<T>,
) -> anyhow::Result<(T, String)> {
    match open_users(config, tenant).await? {
        Users::Here(accounts, manager, opened) => {
            let result = here(&accounts).await;
            let tenant = accounts.tenant().to_string();
            drop(accounts);
            close(manager, opened).await?;
            Ok((result?, tenant))
        }
        Users::Server(server) => {
            let result = remote(&server).await?;
            Ok((result, server.tenant().to_owned()))
        }
    }
}

/// `sessiond users add NAME --password-stdin`
pub async fn add(config: &Config, tenant: Option<&str>, name: &str, password: String) -> anyhow::Result<()> {
    let name = user_name(name)?;
    let body = json!({"username": name.as_str(), "password": password.clone()});
    let added = with_users(
        config,
        tenant,
        async |a| a.add(&name, password).await.map(|_| ()),
        async |server| {
            server.call(Method::POST, &["v1", "admin", "users"], Some(body)).await?;
            Ok(())
        },
    )
    .await;
    match added {
        Ok((_, tenant)) => {
            println!("added user {name} (tenant {tenant})");
            Ok(())
        }
        Err(e)
            if matches!(e.downcast_ref(), Some(AccountError::Exists))
                || e.downcast_ref::<Refused>().is_some_and(|r| r.code == "user_exists") =>
        {
            bail!("user {name} already exists; use `users passwd`")
        }
        Err(e) => Err(e),
    }
}

/// `sessiond users passwd NAME --password-stdin`: sets a new password and
/// ends the user's sessions, as a password change in the portal does.
pub async fn passwd(config: &Config, tenant: Option<&str>, name: &str, password: String) -> anyhow::Result<()> {
    let name = user_name(name)?;
    let body = json!({"password": password.clone()});
    let path = ["v1", "admin", "users", name.as_str(), "password"];
    let (ended, _) = with_users(
        config,
        tenant,
        async |a| a.change_password(&name, password, None).await.map(|n| n.to_string()),
        async |server| {
            server.call(Method::PUT, &path, Some(body)).await?;
            Ok("every".to_owned())
        },
    )
    .await?;
    println!("changed the password of {name}; ended {ended} session(s)");
    Ok(())
}

/// `sessiond users disable NAME` / `enable NAME`. Disabling ends every
/// session of the user.
pub async fn set_disabled(config: &Config, tenant: Option<&str>, name: &str, disabled: bool) -> anyhow::Result<()> {
    let name = user_name(name)?;
    let path = [
        "v1",
        "admin",
        "users",
        name.as_str(),
        if disabled { "disable" } else { "enable" },
    ];
    let (ended, _) = with_users(
        config,
        tenant,
        async |a| a.set_disabled(&name, disabled).await.map(|n| n.to_string()),
        async |server| {
            server.call(Method::POST, &path, None).await?;
            Ok("every".to_owned())
        },
    )
    .await?;
    if disabled {
        println!("disabled {name}; ended {ended} session(s)");
    } else {
        println!("enabled {name}");
    }
    Ok(())
}

/// `sessiond users list`: name, state, created, password changed; tab-separated.
pub async fn list(config: &Config, tenant: Option<&str>) -> anyhow::Result<()> {
    let (users, _) = with_users(
        config,
        tenant,
        async |a| Ok(a.list().await?.iter().map(UserView::from).collect::<Vec<_>>()),
        async |server| {
            let (_, listed) = server.call(Method::GET, &["v1", "admin", "users"], None).await?;
            Ok(serde_json::from_value::<Vec<UserView>>(listed["users"].clone())?)
        },
    )
    .await?;
    for user in users {
        let state = if user.disabled { "disabled" } else { "active" };
        println!(
            "{}\t{state}\t{}\t{}",
            user.username,
            stamp(user.created_at),
            stamp(user.password_changed_at)
        );
    }
    Ok(())
}

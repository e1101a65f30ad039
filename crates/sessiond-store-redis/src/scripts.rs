//! The Lua scripts that make each multi-key change atomic, and the replies
//! they give. Every script is `common.lua` followed by its own file; each
//! file says what it guarantees.

use std::sync::LazyLock;

use redis::{Script, Value};
use sessiond_core::StoreError;

use crate::error::corrupt;

const COMMON: &str = include_str!("lua/common.lua");

const READ_ONLY_SHEBANG: &str = "#!lua flags=no-writes";

/// A script that writes. With the `#!lua` line (Redis 7) the server
/// decides before the script starts whether it may write at all (e.g. it
/// refuses the whole call over `maxmemory`), rather than at its first write
/// command; together with each script checking its preconditions before
/// writing, a refused call has written nothing.
fn script(body: &str) -> Script {
    Script::new(&format!("#!lua\n{COMMON}\n{body}"))
}

/// A script that only reads: declared so, it also runs on a read-only
/// replica and is never refused for memory.
fn read_only(body: &str) -> Script {
    Script::new(&format!("{READ_ONLY_SHEBANG}\n{COMMON}\n{body}"))
}

/// The loaded scripts (hashed once per process; `EVALSHA` falls back to
/// `EVAL` when a server does not know one yet, e.g. after a restart).
pub(crate) struct Scripts {
    pub(crate) read: Script,
    pub(crate) insert: Script,
    pub(crate) update: Script,
    pub(crate) touch: Script,
    pub(crate) revoke: Script,
    pub(crate) revoke_subject: Script,
    pub(crate) subject: Script,
    pub(crate) purge: Script,
    pub(crate) due: Script,
    pub(crate) user_insert: Script,
    pub(crate) user_update: Script,
    pub(crate) user_list: Script,
    pub(crate) user_delete: Script,
    pub(crate) secret_init: Script,
    pub(crate) secret_put: Script,
    pub(crate) counter_reserve: Script,
    pub(crate) counter_release: Script,
    pub(crate) key_insert: Script,
    pub(crate) key_delete: Script,
    pub(crate) key_touch: Script,
    pub(crate) key_list: Script,
    pub(crate) event_append: Script,
    pub(crate) event_prune: Script,
}

/// Whether the argument after `EVALSHA` (a hash) or `EVAL` (a body) is a
/// script declared `no-writes`: calls of it need no `WAIT` for replicas.
pub(crate) fn is_read_only_script(hash_or_body: &[u8]) -> bool {
    let scripts = &*SCRIPTS;
    hash_or_body.starts_with(READ_ONLY_SHEBANG.as_bytes())
        || [&scripts.read, &scripts.due, &scripts.user_list, &scripts.key_list]
            .iter()
            .any(|script| script.get_hash().as_bytes() == hash_or_body)
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    read: read_only(include_str!("lua/read.lua")),
    insert: script(include_str!("lua/insert.lua")),
    update: script(include_str!("lua/update.lua")),
    touch: script(include_str!("lua/touch.lua")),
    revoke: script(include_str!("lua/revoke.lua")),
    revoke_subject: script(include_str!("lua/revoke_subject.lua")),
    subject: script(include_str!("lua/subject.lua")),
    purge: script(include_str!("lua/purge.lua")),
    due: read_only(include_str!("lua/due.lua")),
    user_insert: script(include_str!("lua/user_insert.lua")),
    user_update: script(include_str!("lua/user_update.lua")),
    user_list: read_only(include_str!("lua/user_list.lua")),
    user_delete: script(include_str!("lua/user_delete.lua")),
    secret_init: script(include_str!("lua/secret_init.lua")),
    secret_put: script(include_str!("lua/secret_put.lua")),
    counter_reserve: script(include_str!("lua/counter_reserve.lua")),
    counter_release: script(include_str!("lua/counter_release.lua")),
    key_insert: script(include_str!("lua/key_insert.lua")),
    key_delete: script(include_str!("lua/key_delete.lua")),
    key_touch: script(include_str!("lua/key_touch.lua")),
    key_list: read_only(include_str!("lua/key_list.lua")),
    event_append: script(include_str!("lua/event_append.lua")),
    event_prune: script(include_str!("lua/event_prune.lua")),
});

/// What kind of reply `value` is, for an error message: never its contents,
/// which may be a secret value or sealed session data.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a bulk string",
        Value::Array(_) => "an array",
        Value::SimpleString(_) => "a simple string",
        Value::Okay => "OK",
        Value::ServerError(_) => "an error",
        _ => "another kind of reply",
    }
}

/// A script's answer split into its status word and the rest:
/// `{'ok', …}`, `{'collision'}`, `{'conflict', v}`, ….
pub(crate) fn status(reply: Value) -> Result<(String, Vec<Value>), StoreError> {
    let Value::Array(mut items) = reply else {
        return Err(corrupt(format!("script replied {}", kind(&reply))));
    };
    if items.is_empty() {
        return Err(corrupt("script replied with an empty array".into()));
    }
    let word = match items.remove(0) {
        Value::BulkString(b) => String::from_utf8(b).map_err(|e| StoreError::Corrupt(Box::new(e)))?,
        Value::SimpleString(s) => s,
        other => return Err(corrupt(format!("script status is {}", kind(&other)))),
    };
    Ok((word, items))
}

/// An integer reply.
pub(crate) fn int(reply: &Value) -> Result<i64, StoreError> {
    match reply {
        Value::Int(n) => Ok(*n),
        other => Err(corrupt(format!("expected an integer, got {}", kind(other)))),
    }
}

/// An array reply (nil counts as empty).
pub(crate) fn array(reply: Value) -> Result<Vec<Value>, StoreError> {
    match reply {
        Value::Array(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        other => Err(corrupt(format!("expected an array, got {}", kind(&other)))),
    }
}

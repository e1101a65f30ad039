//! The audit argument of the session scripts: the events a write stores in
//! the same script as the change (see [`Audit`] and `lua/common.lua`).
//!
//! Known events go as finished members. A picked event is made in the
//! script, which alone knows the records it picks: Rust sends the JSON
//! head ([`sessiond_core::Picked::json_head`]) and the id prefix, and the
//! script adds the record's tenant, id and subject (as `cjson.encode`d
//! strings, which serde reads back exactly) and the sequence number.

use sessiond_core::{Audit, StoreError};

use crate::events::member;
use crate::keys::KeySpace;

fn backend(error: serde_json::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}

/// The argument for `audit` of a script in `shard` (whose event keys it
/// writes), `''` when it stores nothing; `skip` picked events were numbered
/// by earlier calls of the same write (purge batches).
pub(crate) fn audit_arg(keys: &KeySpace, shard: u8, audit: &Audit, skip: usize) -> Result<String, StoreError> {
    if audit.is_empty() {
        return Ok(String::new());
    }
    let mut known = Vec::with_capacity(audit.events.len() * 2);
    for stored in &audit.events {
        known.push(stored.event.tenant.as_str().to_owned());
        known.push(member(stored).map_err(backend)?);
    }
    let mut arg = serde_json::json!({
        "t": keys.event_tenants(shard),
        "p": keys.events_prefix(shard),
        "k": known,
    });
    if let Some(picked) = &audit.picked {
        // Numbering wraps at 2^32 in the script too.
        let first = picked.ids.first().wrapping_add(skip as u32);
        arg["h"] = picked.json_head().map_err(backend)?.into();
        arg["i"] = picked.ids.prefix().into();
        arg["f"] = first.into();
    }
    serde_json::to_string(&arg).map_err(backend)
}

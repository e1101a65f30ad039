//! [`CounterStore`] for [`RedisStore`]: one hash per failure counter
//! (`Pcounter:<key>`, see `keys.rs`) with its count, last failure, lock
//! end and expiry in microseconds, and a TTL of the rule's forget-after
//! from its last failure, so forgotten records leave by themselves.
//!
//! A reserve is one script that reads every key's lock before it counts
//! anything (`lua/counter_reserve.lua`), so racing reserves on any number
//! of nodes get exactly the allowance left; a release is another
//! (`lua/counter_release.lua`). A clear is one `DEL`, a read one `HMGET`.
//! The lock arithmetic mirrors [`CounterRule::delay_after`] in Lua (in
//! `lua/common.lua`); the conformance suite holds the two to the same
//! answers. Durability is the server's, as for sessions (see the crate docs).

use redis::Value;
use sessiond_core::{
    CounterKey, CounterRecord, CounterRule, CounterStore, CounterStoreError, Reserved, StoreError, async_trait,
    check_counter_keys,
};
use time::OffsetDateTime;

use crate::error::{corrupt, from_redis};
use crate::record::micros;
use crate::scripts::{SCRIPTS, int, status};
use crate::store::RedisStore;

fn duration_micros(duration: std::time::Duration) -> String {
    duration.as_micros().to_string()
}

fn time_of(reply: &Value) -> Result<OffsetDateTime, StoreError> {
    let micros = i128::from(int(reply)?);
    OffsetDateTime::from_unix_timestamp_nanos(micros * 1000).map_err(|e| StoreError::Corrupt(Box::new(e)))
}

fn count_of(reply: &Value) -> Result<u32, StoreError> {
    let count = int(reply)?;
    u32::try_from(count).map_err(|_| corrupt(format!("a counter of {count}")))
}

/// A stored field of a counter hash, as a number.
fn field(reply: &Value) -> Result<i64, StoreError> {
    match reply {
        Value::BulkString(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| corrupt("a counter field is not a number".into())),
        other => Err(corrupt(format!("a counter field is {other:?}"))),
    }
}

/// A counter hash read with `HMGET c l u e`: `None` when it is missing.
fn decode(reply: Value) -> Result<Option<CounterRecord>, StoreError> {
    let Value::Array(fields) = reply else {
        return Err(corrupt(format!("HMGET replied {reply:?}")));
    };
    if fields.first().is_none_or(|f| matches!(f, Value::Nil)) {
        return Ok(None);
    }
    let [count, last, locked_until, expires_at] = fields.as_slice() else {
        return Err(corrupt(format!("a counter hash of {} fields", fields.len())));
    };
    let at = |reply: &Value| time_of(&Value::Int(field(reply)?));
    Ok(Some(CounterRecord {
        count: count_of(&Value::Int(field(count)?))?,
        last: at(last)?,
        locked_until: at(locked_until)?,
        expires_at: at(expires_at)?,
    }))
}

impl RedisStore {
    async fn reserve_counters(
        &self,
        keys: &[(CounterKey, CounterRule)],
        now: OffsetDateTime,
    ) -> Result<Reserved, StoreError> {
        let mut call = SCRIPTS.counter_reserve.prepare_invoke();
        call.arg(micros(now));
        for (key, rule) in keys {
            call.key(self.keys().counter(key))
                .arg(rule.free)
                .arg(duration_micros(rule.base_delay))
                .arg(duration_micros(rule.max_delay))
                .arg(duration_micros(rule.forget_after));
        }
        let (word, rest) = status(self.run(&call).await?)?;
        if rest.len() != keys.len() {
            return Err(corrupt(format!("counter reserve answered {} values", rest.len())));
        }
        match word.as_str() {
            "counted" => Ok(Reserved::Counted(rest.iter().map(count_of).collect::<Result<_, _>>()?)),
            "locked" => {
                let lock = |reply: &Value| match reply {
                    Value::Nil => Ok(None),
                    other => time_of(other).map(Some),
                };
                Ok(Reserved::Locked(rest.iter().map(lock).collect::<Result<_, _>>()?))
            }
            other => Err(corrupt(format!("counter reserve answered {other}"))),
        }
    }

    async fn release_counters(
        &self,
        keys: &[(CounterKey, CounterRule)],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut call = SCRIPTS.counter_release.prepare_invoke();
        call.arg(micros(now));
        for (key, rule) in keys {
            call.key(self.keys().counter(key))
                .arg(rule.free)
                .arg(duration_micros(rule.base_delay))
                .arg(duration_micros(rule.max_delay));
        }
        match status(self.run(&call).await?)?.0.as_str() {
            "ok" => Ok(()),
            other => Err(corrupt(format!("counter release answered {other}"))),
        }
    }

    async fn stored_counter(&self, key: &CounterKey) -> Result<Option<CounterRecord>, StoreError> {
        let mut connection = self.connection().await?;
        let reply: Value = redis::cmd("HMGET")
            .arg(self.keys().counter(key))
            .arg(&["c", "l", "u", "e"])
            .query_async(&mut connection)
            .await
            .map_err(from_redis)?;
        decode(reply)
    }
}

#[async_trait]
impl CounterStore for RedisStore {
    async fn reserve(
        &self,
        keys: &[(CounterKey, CounterRule)],
        now: OffsetDateTime,
    ) -> Result<Reserved, CounterStoreError> {
        check_counter_keys(keys.iter().map(|(k, _)| k))?;
        Ok(self.reserve_counters(keys, now).await?)
    }

    async fn release(&self, keys: &[(CounterKey, CounterRule)], now: OffsetDateTime) -> Result<(), CounterStoreError> {
        check_counter_keys(keys.iter().map(|(k, _)| k))?;
        Ok(self.release_counters(keys, now).await?)
    }

    async fn clear(&self, key: &CounterKey) -> Result<(), CounterStoreError> {
        let mut connection = self.connection().await?;
        let _: Value = redis::cmd("DEL")
            .arg(self.keys().counter(key))
            .query_async(&mut connection)
            .await
            .map_err(from_redis)?;
        Ok(())
    }

    async fn counter(&self, key: &CounterKey, now: OffsetDateTime) -> Result<Option<CounterRecord>, CounterStoreError> {
        Ok(self.stored_counter(key).await?.filter(|r| r.is_live(now)))
    }
}

//! The Standard Webhooks signature: `webhook-signature: v1,<base64 of
//! HMAC-SHA256("{id}.{timestamp}.{body}")>` keyed with the secret's bytes.
//!
//! The timestamp is the attempt's, not the event's: receivers refuse a
//! timestamp more than a few minutes away from their clock (replay
//! defence), and a retry may come hours after the event.

use base64::Engine as _;
use hmac::Mac as _;

use super::config::SecretKey;

/// The three headers of one signed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `webhook-id`: the event id, the same on every retry and node.
    pub id: String,
    /// `webhook-timestamp`: Unix seconds of the attempt.
    pub timestamp: i64,
    /// `webhook-signature`: `v1,<base64>`.
    pub signature: String,
}

/// Signs `body` for delivery with `id` at `timestamp`.
pub fn sign(key: &SecretKey, id: &str, timestamp: i64, body: &[u8]) -> Signed {
    let mut mac = key.mac();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    Signed {
        id: id.to_owned(),
        timestamp,
        signature: format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(tag)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::parse_secret;
    use super::*;

    /// The example of the Standard Webhooks reference libraries.
    #[test]
    fn signs_the_reference_example() {
        let key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signed = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signed.signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_whsec_and_24_to_64_bytes_of_base64() {
        use base64::engine::general_purpose::STANDARD;
        assert!(parse_secret(&format!("whsec_{}", STANDARD.encode([7u8; 24]))).is_ok());
        assert!(parse_secret(&format!("whsec_{}", STANDARD.encode([7u8; 64]))).is_ok());
        for bad in [
            format!("whsec_{}", STANDARD.encode([7u8; 23])),
            format!("whsec_{}", STANDARD.encode([7u8; 65])),
            STANDARD.encode([7u8; 32]),
            "whsec_not base64!".to_owned(),
        ] {
            assert!(parse_secret(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            format!(
                "{key:?}",
                key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
            ),
            "SecretKey([redacted])"
        );
    }
}

//! Password hashing for the portal: Argon2id (m = 19 MiB, t = 2, p = 1),
//! always on the blocking pool and behind a semaphore, so a burst of logins
//! neither stalls the async workers nor runs more hashes than there are
//! cores.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

/// Shortest password accepted when one is set (NIST SP 800-63B: at least 8).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Longest password accepted, in bytes: bounds the work of one request.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// How long a request waits for a hashing slot before answering "busy".
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a password operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The new password is too short or too long.
    #[error("a password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} bytes long")]
    Unacceptable,
    /// Every hashing slot stayed busy for the whole queue timeout.
    #[error("too many password checks in progress")]
    Busy,
    /// Hashing itself failed (no randomness for the salt, a panicked task).
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// Hashes and checks passwords; cheap to clone.
#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A hash of a random password, checked when the user is unknown so an
    /// unknown name costs the same time as a wrong password. Made on the
    /// blocking pool by the first check of any password, so neither start-up
    /// nor the admin commands (which only hash) pay for it, and the one
    /// extra hash falls on whichever login comes first, known user or not.
    decoy: Arc<OnceCell<String>>,
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Checks the length rules of a new password.
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::Unacceptable);
    }
    Ok(())
}

impl Passwords {
    /// At most `concurrency` hashes at once.
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            decoy: Arc::new(OnceCell::new()),
        }
    }

    async fn decoy(&self) -> Result<&str, PasswordError> {
        let decoy = self
            .decoy
            .get_or_try_init(|| async {
                let mut random = [0u8; 32];
                getrandom::fill(&mut random).map_err(|e| PasswordError::Internal(e.to_string()))?;
                self.run(move || hash_blocking(&random)).await?
            })
            .await?;
        Ok(decoy)
    }

    /// The PHC string of a new password, after the length rules.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        check_new_password(&password)?;
        self.run(move || hash_blocking(password.as_bytes())).await?
    }

    /// True when `password` matches `stored`. With `stored = None` (no such
    /// user) the decoy is checked instead, and the answer is always false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, PasswordError> {
        let decoy = self.decoy().await?;
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| decoy.to_owned());
        let matched = self
            .run(move || {
                // Over-long input is refused after the same work as any other.
                let bytes = password.as_bytes();
                let bytes = &bytes[..bytes.len().min(MAX_PASSWORD_BYTES)];
                argon2().verify_password(bytes, hash.as_str()).is_ok() && password.len() <= MAX_PASSWORD_BYTES
            })
            .await?;
        Ok(known && matched)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|e| PasswordError::Internal(e.to_string()))?;
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await;
        result.map_err(|e| PasswordError::Internal(e.to_string()))
    }
}

fn hash_blocking(password: &[u8]) -> Result<String, PasswordError> {
    argon2()
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_only_against_its_own_hash() {
        let passwords = Passwords::new(2);
        let hash = passwords.hash("correct horse".to_owned()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(
            passwords
                .verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("correct horsE".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        // The decoy never lets anyone in, whatever they type.
        assert!(!passwords.verify("anything at all".into(), None).await.unwrap());
        // A stored value that is not a PHC string is a mismatch, not a panic.
        assert!(
            !passwords
                .verify("correct horse".into(), Some("garbage".into()))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn new_passwords_obey_the_length_rules() {
        let passwords = Passwords::new(1);
        assert!(matches!(
            passwords.hash("short".into()).await,
            Err(PasswordError::Unacceptable)
        ));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(passwords.hash(long).await, Err(PasswordError::Unacceptable)));
        // Eight characters, counted as characters, not bytes.
        assert!(check_new_password("éééééééé").is_ok());
        assert!(check_new_password("ééééééé").is_err());
    }
}

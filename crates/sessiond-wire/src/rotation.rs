//! The rotate body and the core [`Rotation`] it stands for, both ways: the
//! server reads a [`RotateRequest`] into a [`Rotation`], the remote backend
//! writes one from it, so the two cannot drift apart.
//!
//! `aal` alone keeps its old meaning for a higher level (a step-up), but no
//! longer lowers a session or resets `authenticated_at` at the same level
//! (issue 12, finding 10): those need `downgrade` or `reauthenticated`.

use sessiond_core::{Aal, Rotation};

use crate::requests::RotateRequest;
use crate::session::InvalidField;

impl RotateRequest {
    /// The body asking for `rotation` with `token`.
    ///
    /// The wire cannot say "strictly higher": a [`Rotation::StepUp`] is sent
    /// as a re-authentication at that level, which the server resolves to a
    /// step-up when it is higher, refuses with `aal_downgrade` when it is
    /// lower, and takes as a re-authentication when it is the same.
    pub fn new(token: String, rotation: Rotation) -> Self {
        let (aal, reauthenticated, downgrade) = match rotation {
            Rotation::Plain => (None, false, false),
            Rotation::Reauthenticate => (None, true, false),
            Rotation::StepUp(aal) => (Some(aal), true, false),
            Rotation::Downgrade(aal) => (Some(aal), false, true),
            Rotation::AtLevel { aal, reauthenticated } => (Some(aal), reauthenticated, false),
        };
        Self {
            token,
            aal: aal.map(Aal::get),
            reauthenticated,
            downgrade,
        }
    }

    /// The rotation the body asks for. Whether `aal` is above, at or below
    /// the session's level is decided by the manager, against the session
    /// it is about to write.
    pub fn rotation(&self) -> Result<Rotation, InvalidField> {
        let aal = self
            .aal
            .map(Aal::try_from)
            .transpose()
            .map_err(|e| InvalidField(e.to_string()))?;
        match (aal, self.reauthenticated, self.downgrade) {
            (None, false, false) => Ok(Rotation::Plain),
            (None, true, false) => Ok(Rotation::Reauthenticate),
            (Some(aal), reauthenticated, false) => Ok(Rotation::AtLevel { aal, reauthenticated }),
            (Some(aal), false, true) => Ok(Rotation::Downgrade(aal)),
            (None, _, true) => Err(InvalidField("downgrade needs the lower aal".into())),
            // A downgrade is not an authentication; asking for both is a
            // confused caller, and guessing which was meant is unsafe.
            (Some(_), true, true) => Err(InvalidField("downgrade and reauthenticated cannot be combined".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> RotateRequest {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn fields_map_to_operations() {
        let t = r#""token":"sd_x""#;
        assert_eq!(body(&format!("{{{t}}}")).rotation(), Ok(Rotation::Plain));
        assert_eq!(
            body(&format!(r#"{{{t},"reauthenticated":true}}"#)).rotation(),
            Ok(Rotation::Reauthenticate)
        );
        assert_eq!(
            body(&format!(r#"{{{t},"aal":2}}"#)).rotation(),
            Ok(Rotation::AtLevel {
                aal: Aal::AAL2,
                reauthenticated: false
            })
        );
        assert_eq!(
            body(&format!(r#"{{{t},"aal":1,"downgrade":true}}"#)).rotation(),
            Ok(Rotation::Downgrade(Aal::AAL1))
        );
        assert!(body(&format!(r#"{{{t},"downgrade":true}}"#)).rotation().is_err());
        assert!(
            body(&format!(r#"{{{t},"aal":1,"downgrade":true,"reauthenticated":true}}"#))
                .rotation()
                .is_err()
        );
        assert!(body(&format!(r#"{{{t},"aal":4}}"#)).rotation().is_err());
    }

    #[test]
    fn what_is_written_reads_back_as_the_same_decision() {
        for rotation in [
            Rotation::Plain,
            Rotation::Reauthenticate,
            Rotation::Downgrade(Aal::AAL1),
            Rotation::AtLevel {
                aal: Aal::AAL3,
                reauthenticated: false,
            },
        ] {
            let json = serde_json::to_string(&RotateRequest::new("sd_x".into(), rotation)).unwrap_or_default();
            assert_eq!(body(&json).rotation(), Ok(rotation), "{json}");
        }
        // A plain rotation sends only the token, as before: an older server
        // (which refuses unknown fields) still understands it.
        let plain = serde_json::to_string(&RotateRequest::new("sd_x".into(), Rotation::Plain)).unwrap_or_default();
        assert_eq!(plain, r#"{"token":"sd_x"}"#);
    }
}

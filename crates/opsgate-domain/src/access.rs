//! Access roles: what a credential may do in opsgate as a whole (distinct from the roles a
//! workflow declares, which say who acts for what in one transition).

use std::fmt;

use crate::error::{Error, Result};

/// One access role of a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Service Management Office: administers workflows and tokens; reads everything.
    Smo,
    ProjectManager,
    ServiceManager,
    Approver,
    /// A pipeline: checks gates, attaches evidence; never approves or accepts.
    Ci,
    /// Reads everything, changes nothing.
    Auditor,
}

impl Access {
    pub const ALL: [Access; 6] = [
        Access::Smo,
        Access::ProjectManager,
        Access::ServiceManager,
        Access::Approver,
        Access::Ci,
        Access::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Smo => "smo",
            Access::ProjectManager => "project_manager",
            Access::ServiceManager => "service_manager",
            Access::Approver => "approver",
            Access::Ci => "ci",
            Access::Auditor => "auditor",
        }
    }

    /// Parses a role name, listing the valid ones when it is none of them.
    pub fn parse(value: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == value.trim())
            .ok_or_else(|| Error::InvalidArgument {
                field: "roles",
                message: format!(
                    "'{}' is not a role: use {}",
                    crate::ids::clip(value),
                    Self::ALL.map(Access::as_str).join(", ")
                ),
            })
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_ones_are_listed() {
        for a in Access::ALL {
            assert_eq!(Access::parse(a.as_str()).unwrap(), a);
        }
        let err = Access::parse("admin").unwrap_err().to_string();
        assert!(err.contains("use smo, project_manager"), "{err}");
    }
}

//! Secrets that never print.

/// A secret value (API key, connection string with a password).
///
/// `Debug` and `Display` show `***`; [`Secret::redacted`] shows a URL with only
/// its password masked. Read the value with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// For URLs: the URL with any password replaced by `***` ([`redact_url`]);
    /// for anything else `***`.
    pub fn redacted(&self) -> String {
        if self.0.contains("://") {
            redact_url(&self.0)
        } else {
            "***".into()
        }
    }
}

/// The one masking rule for URLs shown anywhere (configuration, logs,
/// errors, JSON): the password of the user info (`user:pw@`) and a
/// `password=` query parameter become `***`. Text that is not a URL is
/// returned as given.
pub fn redact_url(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_string();
    };
    let rest = &s[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let masked = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let pass = if userinfo.contains(':') { ":***" } else { "" };
            format!("{user}{pass}@{}", &authority[at + 1..])
        }
        None => authority.to_string(),
    };
    // Query parameters may carry a password too (`?password=`).
    let tail = &rest[authority_end..];
    let tail = match tail.find("password=") {
        Some(p) => {
            let end = tail[p..].find('&').map_or(tail.len(), |e| p + e);
            format!("{}password=***{}", &tail[..p], &tail[end..])
        }
        None => tail.to_string(),
    };
    format!("{}://{masked}{tail}", &s[..scheme_end])
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.redacted(), "***");
        assert_eq!(s.expose(), "sk-live-123");
    }

    #[test]
    fn redacts_url_passwords() {
        let u = Secret::new("postgres://alice:hunter2@db.example:5432/onto?sslmode=require");
        assert_eq!(
            u.redacted(),
            "postgres://alice:***@db.example:5432/onto?sslmode=require"
        );
        let q = Secret::new("postgresql://h/db?user=a&password=pw&x=1");
        assert_eq!(q.redacted(), "postgresql://h/db?user=a&password=***&x=1");
        assert_eq!(
            Secret::new("http://localhost:8000").redacted(),
            "http://localhost:8000"
        );
    }
}

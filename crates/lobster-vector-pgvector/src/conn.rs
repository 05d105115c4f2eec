//! Connection strings, TLS, connecting within a deadline, the connection pool
//! and the mapping of PostgreSQL errors. No function here ever formats the
//! password: targets are described as `user@host:port/dbname`.

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lobster_vector_core::{Error, Result};
use postgres::config::{Host, SslMode};
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::PgOptions;
use crate::BACKEND;

/// How the connection is encrypted.
#[derive(Clone)]
enum Tls {
    /// `sslmode=disable`.
    Off,
    /// `prefer`/`require` (encrypted; the certificate is not checked, as libpq
    /// does without a root certificate) or `verify-full` (chain against
    /// `sslrootcert`, and host name).
    Rustls(MakeRustlsConnect),
}

/// A parsed connection string and how to open connections to it.
#[derive(Clone)]
pub(crate) struct Connector {
    config: Config,
    tls: Tls,
    deadline: Duration,
    statement_timeout: Duration,
    target: String,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target)
            .field("tls", &matches!(self.tls, Tls::Rustls(_)))
            .finish_non_exhaustive()
    }
}

/// TLS parameters libpq knows but the driver's parser does not.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    verify_full: bool,
    root_cert: Option<String>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes `sslrootcert=…` and `sslmode=verify-full` / `verify-ca` (which the
/// driver's parser rejects) from a URL or keyword/value connection string.
fn split_tls_params(url: &str) -> Result<(String, TlsParams)> {
    let mut tls = TlsParams::default();
    let mut take = |key: &str, value: &str| -> Result<bool> {
        match (key, value) {
            ("sslrootcert", v) => {
                tls.root_cert = Some(v.to_string());
                Ok(true)
            }
            ("sslmode", "verify-full") => {
                tls.verify_full = true;
                Ok(true)
            }
            ("sslmode", "verify-ca") => Err(Error::InvalidConfig {
                key: "sslmode in LOBSTER_PGVECTOR_URL".into(),
                value: "verify-ca".into(),
                valid: "disable, prefer, require, verify-full".into(),
            }),
            _ => Ok(false),
        }
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_string(), tls));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(&percent_decode(k), &percent_decode(v))? {
                kept.push(pair);
            }
        }
        let cleaned = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((cleaned, tls))
    } else {
        let mut kept = Vec::new();
        for token in url.split_whitespace() {
            let (k, v) = token.split_once('=').unwrap_or((token, ""));
            if !take(k, v.trim_matches('\''))? {
                kept.push(token);
            }
        }
        Ok((kept.join(" "), tls))
    }
}

/// `user@host:port/dbname` (never the password).
fn describe(config: &Config) -> String {
    let user = config.get_user().unwrap_or("?");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = config
                .get_ports()
                .get(i)
                .or(config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match h {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost:5432".to_string()
    } else {
        hosts.join(",")
    };
    format!("{user}@{hosts}/{}", config.get_dbname().unwrap_or(user))
}

fn rustls_config(tls: &TlsParams) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::backend(BACKEND, format!("TLS setup failed: {e}")))?;
    if tls.verify_full {
        let Some(path) = &tls.root_cert else {
            return Err(Error::invalid_input(
                "sslmode=verify-full in LOBSTER_PGVECTOR_URL needs sslrootcert=PATH \
                 (a PEM file of the CA certificates to trust)",
            ));
        };
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| Error::invalid_input(format!("cannot read sslrootcert `{path}`: {e}")))?;
        for cert in certs {
            let cert = cert.map_err(|e| {
                Error::invalid_input(format!("cannot parse sslrootcert `{path}`: {e}"))
            })?;
            roots.add(cert).map_err(|e| {
                Error::invalid_input(format!("unusable certificate in `{path}`: {e}"))
            })?;
        }
        if roots.is_empty() {
            return Err(Error::invalid_input(format!(
                "sslrootcert `{path}` holds no certificate"
            )));
        }
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    } else {
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth())
    }
}

/// libpq's `sslmode=require` without a root certificate: the channel is
/// encrypted and the handshake signatures are checked, the certificate chain is not.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl Connector {
    /// Parses `url` (a `postgres://` URL or libpq keyword/value string).
    pub fn new(url: &str, options: &PgOptions) -> Result<Self> {
        let (cleaned, tls_params) = split_tls_params(url)?;
        let mut config: Config = cleaned.parse().map_err(|e: postgres::Error| {
            // The parser's messages name the offending key, never a value.
            Error::InvalidConfig {
                key: "LOBSTER_PGVECTOR_URL".into(),
                value: "(connection string not shown)".into(),
                valid: format!("a postgres:// URL or libpq keyword/value string ({e})"),
            }
        })?;
        if tls_params.verify_full {
            config.ssl_mode(SslMode::Require);
        }
        if config.get_application_name().is_none() {
            config.application_name("lobster-vector");
        }
        let per_attempt = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(options.connect_timeout);
        config.connect_timeout(per_attempt);
        let attempts = config.get_hosts().len().max(1) as u32;
        let tls = match config.get_ssl_mode() {
            SslMode::Disable => Tls::Off,
            _ => Tls::Rustls(MakeRustlsConnect::new(rustls_config(&tls_params)?)),
        };
        let target = describe(&config);
        Ok(Self {
            config,
            tls,
            deadline: per_attempt * attempts,
            statement_timeout: options.statement_timeout,
            target,
        })
    }

    /// `user@host:port/dbname`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Opens one connection, giving up after the connect timeout even when the
    /// server accepts TCP but never answers (the connecting thread is then left
    /// to finish or fail on its own; its connection is closed when it does).
    pub fn connect(&self) -> Result<Client> {
        let (tx, rx) = mpsc::channel();
        let (config, tls) = (self.config.clone(), self.tls.clone());
        std::thread::Builder::new()
            .name("lobster-pg-connect".into())
            .spawn(move || {
                let r = match tls {
                    Tls::Off => config.connect(NoTls),
                    Tls::Rustls(t) => config.connect(t),
                };
                let _ = tx.send(r);
            })
            .map_err(|e| Error::backend(BACKEND, format!("cannot start a thread: {e}")))?;
        let mut client = match rx.recv_timeout(self.deadline) {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.connect_error(&e)),
            Err(_) => {
                return Err(Error::backend(
                    BACKEND,
                    format!(
                        "cannot connect to PostgreSQL at {}: no answer within {:.1} s \
                         (connect timeout; set connect_timeout=SECONDS in the URL to change it)",
                        self.target,
                        self.deadline.as_secs_f64()
                    ),
                ))
            }
        };
        let ms = self.statement_timeout.as_millis();
        client
            .batch_execute(&format!("SET statement_timeout = {ms}"))
            .map_err(|e| self.error("setting statement_timeout", &e))?;
        Ok(client)
    }

    fn connect_error(&self, e: &postgres::Error) -> Error {
        let what = match e.code() {
            Some(c) if *c == SqlState::INVALID_PASSWORD => {
                "authentication failed (wrong password?)".to_string()
            }
            Some(c) if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                "authentication failed (unknown user or no pg_hba.conf entry?)".to_string()
            }
            Some(c) if *c == SqlState::INVALID_CATALOG_NAME => "the database does not exist".into(),
            Some(c) if *c == SqlState::TOO_MANY_CONNECTIONS => {
                "the server has too many connections".into()
            }
            _ => "connection failed".into(),
        };
        Error::backend(
            BACKEND,
            format!(
                "cannot connect to PostgreSQL at {}: {what}: {}",
                self.target,
                message(e)
            ),
        )
    }

    /// Maps a failed statement while doing `action`.
    pub fn error(&self, action: &str, e: &postgres::Error) -> Error {
        let extra = match e.code() {
            Some(c) if *c == SqlState::QUERY_CANCELED => {
                " (statement timeout: raise PgOptions::statement_timeout)"
            }
            Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => {
                " (the PostgreSQL role lacks a privilege)"
            }
            _ => "",
        };
        Error::backend(
            BACKEND,
            format!(
                "PostgreSQL at {}: {action} failed{extra}: {}",
                self.target,
                message(e)
            ),
        )
    }
}

/// The server's message with detail and hint, or the client error's text.
pub(crate) fn message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; detail: {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                let t = inner.to_string();
                if !s.contains(&t) {
                    s.push_str(&format!(": {t}"));
                }
                src = inner.source();
            }
            s
        }
    }
}

/// A pooled connection and its prepared statements.
pub(crate) struct Conn {
    pub client: Client,
    stmts: HashMap<String, Statement>,
    broken: bool,
}

impl Conn {
    fn new(client: Client) -> Self {
        Self {
            client,
            stmts: HashMap::new(),
            broken: false,
        }
    }

    /// Marks the connection as not reusable (a failed rollback).
    pub fn poison(&mut self) {
        self.broken = true;
    }

    /// A prepared statement for `sql`, cached per connection.
    pub fn prepare(&mut self, sql: &str) -> std::result::Result<Statement, postgres::Error> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        if self.stmts.len() >= 256 {
            self.stmts.clear();
        }
        let s = self.client.prepare(sql)?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

/// At most `size` connections, opened on demand and reused.
pub(crate) struct Pool {
    pub connector: Connector,
    state: Mutex<PoolState>,
    freed: Condvar,
    size: usize,
    wait: Duration,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.connector.target)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub fn new(connector: Connector, size: usize, wait: Duration) -> Self {
        Self {
            connector,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            size: size.max(1),
            wait,
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an already open connection (the one used to set up the schema).
    pub fn put(&self, client: Client) {
        let mut s = self.lock();
        s.open += 1;
        s.idle.push(Conn::new(client));
    }

    /// A connection, returned to the pool when dropped.
    pub fn get(&self) -> Result<Pooled<'_>> {
        let start = Instant::now();
        let mut s = self.lock();
        loop {
            while let Some(c) = s.idle.pop() {
                if c.client.is_closed() {
                    s.open -= 1;
                    continue;
                }
                return Ok(Pooled {
                    pool: self,
                    conn: Some(c),
                });
            }
            if s.open < self.size {
                s.open += 1;
                drop(s);
                return match self.connector.connect() {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        conn: Some(Conn::new(client)),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let left = self.wait.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(Error::backend(
                    BACKEND,
                    format!(
                        "all {} connections to PostgreSQL at {} stayed busy for {:.0} s",
                        self.size,
                        self.connector.target,
                        self.wait.as_secs_f64()
                    ),
                ));
            }
            s = self
                .freed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A connection borrowed from the [`Pool`].
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        // `conn` is only taken in `drop`.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut s = self.pool.lock();
        match self.conn.take() {
            // A connection left mid-transaction by a panic, or closed, is not reused.
            Some(c) if !c.broken && !c.client.is_closed() && !std::thread::panicking() => {
                s.idle.push(c)
            }
            _ => s.open -= 1,
        }
        drop(s);
        self.pool.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_params_are_split_off_urls() {
        let (u, t) = split_tls_params(
            "postgres://u:p@h:5/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(u, "postgres://u:p@h:5/db?application_name=x");
        assert!(t.verify_full);
        assert_eq!(t.root_cert.as_deref(), Some("/etc/ca.pem"));
        let (u, t) = split_tls_params("postgres://u@h/db?sslmode=require").unwrap();
        assert_eq!(u, "postgres://u@h/db?sslmode=require");
        assert_eq!(t, TlsParams::default());
        let (u, t) =
            split_tls_params("host=h user=u sslmode=verify-full sslrootcert=/ca.pem").unwrap();
        assert_eq!(u, "host=h user=u");
        assert!(t.verify_full && t.root_cert.as_deref() == Some("/ca.pem"));
        assert!(split_tls_params("postgres://h/db?sslmode=verify-ca").is_err());
    }

    #[test]
    fn targets_never_show_the_password() {
        let c = Connector::new(
            "postgres://alice:s3cr%40t@db.example:6543/onto?sslmode=disable",
            &PgOptions::default(),
        )
        .unwrap();
        assert_eq!(c.target(), "alice@db.example:6543/onto");
        assert!(!format!("{c:?}").contains("s3cr"));
        let e = Connector::new(
            "postgres://alice:s3cret@h/db?bogus=1",
            &PgOptions::default(),
        )
        .unwrap_err();
        assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
    }

    #[test]
    fn verify_full_needs_a_root_certificate() {
        let e = Connector::new(
            "postgres://u@h/db?sslmode=verify-full",
            &PgOptions::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("sslrootcert"), "{e}");
    }
}

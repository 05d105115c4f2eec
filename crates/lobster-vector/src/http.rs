//! The one HTTP client behind the API adapters (OpenAI embeddings, Cohere
//! rerank, the Chroma store).
//!
//! Contract: GET, POST, PUT or DELETE with an optional JSON body (on any
//! method), JSON out; connect and read timeouts; 429, 5xx and connection
//! failures are retried with exponential backoff and full jitter, honouring
//! `Retry-After`; 401/403 become [`Error::Unauthorized`] naming the variable
//! that holds the key; any other failure is an [`Error::Backend`] whose source
//! is an [`HttpError`] carrying the status and an excerpt of the body (read it
//! back with [`http_status`]). Requests sent through it must be idempotent:
//! a request whose response was lost is sent again.

use std::time::Duration;

use lobster_vector_core::{Error, Result};
use rand::Rng;
use serde_json::Value;

use crate::secret::redact_url;
use crate::Secret;

/// Responses larger than this are refused (a 2,048-input embedding batch is well below).
const MAX_RESPONSE_BYTES: u64 = 512 * 1024 * 1024;
/// How much of an error body is quoted in the error.
const EXCERPT_CHARS: usize = 300;

/// Timeouts and retry policy of an [`ApiClient`].
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for the whole response after the request is sent.
    pub read_timeout: Duration,
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
    /// Backoff before the first retry; doubles per retry, capped by `max_backoff`.
    pub base_backoff: Duration,
    /// Upper bound of one wait, also of a server's `Retry-After`.
    pub max_backoff: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
            max_retries: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Why a request failed, as the source of [`Error::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server answered with a status that is neither success nor retryable
    /// (or still retryable after the last retry).
    #[error("HTTP {status} from {url}: {excerpt}")]
    Status {
        url: String,
        status: u16,
        excerpt: String,
    },
    /// No response within the read timeout.
    #[error("no response from {url} within {seconds:.1} s")]
    Timeout { url: String, seconds: f64 },
    /// The server could not be reached.
    #[error("cannot reach {url}")]
    Connect {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// The response was not the JSON the API defines.
    #[error("unexpected response from {url}: {message}")]
    Malformed { url: String, message: String },
}

/// An HTTP method [`ApiClient::send_json`] can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// How a request presents its secret.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// No credentials.
    None,
    /// `Authorization: Bearer <secret>`.
    Bearer(&'a Secret),
    /// The secret as the whole value of the named header (e.g. `x-chroma-token`).
    Header(&'static str, &'a Secret),
}

/// The HTTP status of a request that failed with one (an [`Error::Backend`]
/// whose source is [`HttpError::Status`]); `None` for any other error.
pub fn http_status(error: &Error) -> Option<u16> {
    match error {
        Error::Backend { source, .. } => match source.downcast_ref::<HttpError>() {
            Some(HttpError::Status { status, .. }) => Some(*status),
            _ => None,
        },
        _ => None,
    }
}

/// A JSON-over-HTTP client for one service.
#[derive(Debug, Clone)]
pub struct ApiClient {
    agent: ureq::Agent,
    /// Service name for errors (`openai`, `cohere`).
    service: &'static str,
    /// Where the key comes from, for 401/403 errors.
    key_variable: &'static str,
    options: HttpOptions,
}

/// One attempt's outcome.
enum Attempt {
    Done(Value),
    /// Worth another try, after `after` if the server said so.
    Retry {
        error: Error,
        after: Option<Duration>,
    },
    /// Not worth another try.
    Fail(Error),
}

impl ApiClient {
    pub fn new(service: &'static str, key_variable: &'static str, options: HttpOptions) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(options.connect_timeout))
            .timeout_recv_response(Some(options.read_timeout))
            .timeout_recv_body(Some(options.read_timeout))
            .http_status_as_error(false)
            .user_agent(concat!("lobster-vector/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.into(),
            service,
            key_variable,
            options,
        }
    }

    /// The service name given at construction.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// POSTs `body` to `url` (with `Authorization: Bearer key` when a key is
    /// given) and returns the parsed JSON response, retrying as the module says.
    pub fn post_json(&self, url: &str, key: Option<&Secret>, body: &Value) -> Result<Value> {
        let auth = key.map_or(Auth::None, Auth::Bearer);
        self.send_json(Method::Post, url, auth, Some(body))
    }

    /// Sends `method` to `url` with `auth` and, when given, `body` as JSON, and
    /// returns the parsed JSON response, retrying as the module says. An empty
    /// successful body reads as `null`.
    pub fn send_json(
        &self,
        method: Method,
        url: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut retry = 0u32;
        loop {
            match self.attempt(method, url, auth, body) {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { error, after } => {
                    if retry >= self.options.max_retries {
                        return Err(error);
                    }
                    let wait = after.unwrap_or_else(|| self.backoff(retry));
                    tracing::warn!(
                        service = self.service,
                        method = ?method,
                        retry = retry + 1,
                        wait_ms = wait.as_millis() as u64,
                        error = %error.chain(),
                        "request failed; retrying"
                    );
                    std::thread::sleep(wait);
                    retry += 1;
                }
            }
        }
    }

    /// Exponential backoff with full jitter: uniform in `[0, min(max, base·2^retry)]`.
    fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .options
            .base_backoff
            .saturating_mul(1u32 << retry.min(20))
            .min(self.options.max_backoff);
        cap.mul_f64(rand::rng().random_range(0.0..=1.0))
    }

    fn attempt(&self, method: Method, url: &str, auth: Auth<'_>, body: Option<&Value>) -> Attempt {
        fn headers<B>(request: ureq::RequestBuilder<B>, auth: Auth<'_>) -> ureq::RequestBuilder<B> {
            let request = request.header("Accept", "application/json");
            match auth {
                Auth::None => request,
                Auth::Bearer(key) => {
                    request.header("Authorization", format!("Bearer {}", key.expose()))
                }
                Auth::Header(name, key) => request.header(name, key.expose()),
            }
        }
        let sent = match (method, body) {
            (Method::Get, None) => headers(self.agent.get(url), auth).call(),
            (Method::Get, Some(b)) => headers(self.agent.get(url), auth)
                .force_send_body()
                .send_json(b),
            (Method::Delete, None) => headers(self.agent.delete(url), auth).call(),
            (Method::Delete, Some(b)) => headers(self.agent.delete(url), auth)
                .force_send_body()
                .send_json(b),
            (Method::Post, None) => headers(self.agent.post(url), auth).send_empty(),
            (Method::Post, Some(b)) => headers(self.agent.post(url), auth).send_json(b),
            (Method::Put, None) => headers(self.agent.put(url), auth).send_empty(),
            (Method::Put, Some(b)) => headers(self.agent.put(url), auth).send_json(b),
        };
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Retry {
                    error: self.transport_error(url, e),
                    after: None,
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s).min(self.options.max_backoff));
        let text = match response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .lossy_utf8(true)
            .read_to_string()
        {
            Ok(t) => t,
            Err(e) => {
                return Attempt::Retry {
                    error: self.transport_error(url, e),
                    after: None,
                }
            }
        };
        match status {
            200..=299 if text.trim().is_empty() => Attempt::Done(Value::Null),
            200..=299 => match serde_json::from_str(&text) {
                Ok(v) => Attempt::Done(v),
                Err(e) => Attempt::Fail(
                    self.malformed(url, format!("invalid JSON ({e}): {}", excerpt(&text))),
                ),
            },
            401 | 403 => Attempt::Fail(Error::Unauthorized {
                service: self.service.into(),
                status,
                variable: self.key_variable.into(),
            }),
            429 | 500..=599 => Attempt::Retry {
                error: self.status_error(url, status, &text),
                after: retry_after,
            },
            _ => Attempt::Fail(self.status_error(url, status, &text)),
        }
    }

    fn status_error(&self, url: &str, status: u16, body: &str) -> Error {
        Error::backend(
            self.service,
            HttpError::Status {
                url: redact_url(url),
                status,
                excerpt: excerpt(body),
            },
        )
    }

    /// An error for a response whose JSON does not have the API's shape.
    pub fn malformed(&self, url: &str, message: impl Into<String>) -> Error {
        Error::backend(
            self.service,
            HttpError::Malformed {
                url: redact_url(url),
                message: message.into(),
            },
        )
    }

    fn transport_error(&self, url: &str, e: ureq::Error) -> Error {
        let source = match e {
            ureq::Error::Timeout(_) => HttpError::Timeout {
                url: redact_url(url),
                seconds: self.options.read_timeout.as_secs_f64(),
            },
            other => HttpError::Connect {
                url: redact_url(url),
                source: other,
            },
        };
        Error::backend(self.service, source)
    }
}

/// The first characters of a body, on one line.
fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > EXCERPT_CHARS {
        let cut: String = one_line.chars().take(EXCERPT_CHARS).collect();
        format!("{cut}…")
    } else if one_line.is_empty() {
        "(empty body)".into()
    } else {
        one_line
    }
}

/// Joins a base URL and a path with exactly one slash.
pub fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_bounded_and_single_line() {
        assert_eq!(excerpt("a\n  b"), "a b");
        assert_eq!(excerpt(""), "(empty body)");
        let long = "x".repeat(1000);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_CHARS + 1);
    }

    #[test]
    fn join_url_uses_one_slash() {
        assert_eq!(
            join_url("http://h/v1/", "/embeddings"),
            "http://h/v1/embeddings"
        );
        assert_eq!(
            join_url("http://h/v1", "embeddings"),
            "http://h/v1/embeddings"
        );
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let c = ApiClient::new(
            "t",
            "T_KEY",
            HttpOptions {
                base_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(400),
                ..HttpOptions::default()
            },
        );
        for retry in 0..30 {
            let d = c.backoff(retry);
            let cap =
                Duration::from_millis(100 * (1u64 << retry.min(3))).min(Duration::from_millis(400));
            assert!(d <= cap, "retry {retry}: {d:?} > {cap:?}");
        }
    }
}

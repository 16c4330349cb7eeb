//! The server's configuration file (`opsgate.toml`): read and checked here, then merged with
//! flags and environment variables, which win. One type for all three: [`crate::Config`].
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:50051"
//! http = "0.0.0.0:8080"
//! database_url = "postgres://opsgate@db.internal/opsgate"
//! workflows = "/etc/opsgate/workflows"
//! state_cache_mib = 40
//! insecure_dev = false
//! tls_cert = "/etc/opsgate/tls/server.crt"
//! tls_key = "/etc/opsgate/tls/server.key"
//!
//! [[oidc.issuers]]
//! issuer = "https://token.actions.githubusercontent.com"
//! audience = "opsgate"
//! principal_claim = "repository"
//!
//! [[oidc.issuers.rules]]
//! claims = { repository = "acme/payroll", repository_owner_id = "1234" }
//! services = ["payroll"]
//! deliverables = ["release-notes"]
//!
//! [notify]
//! base_url = "https://opsgate.example.org/"
//!
//! [[notify.channels]]
//! name = "ops-events"
//! kind = "webhook"
//! url = "https://hooks.example.org/opsgate"
//! secrets = ["whsec_..."]
//! ```
//! Later features (identity providers, the web UI) add their own sections.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// What `opsgate.toml` may say. Every key is optional; unknown keys are refused (a typo must
/// not silently fall back to a default).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub oidc: OidcSection,
    #[serde(default)]
    pub notify: NotifySection,
    #[serde(default)]
    pub auth_proxy: AuthProxySection,
    #[serde(default)]
    pub calendar: CalendarSection,
    #[serde(default)]
    pub catalog: CatalogSection,
}

/// `[catalog]`: the service catalog.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSection {
    /// Start transitions only for services the SMO added (`opsgate service add`) [default:
    /// false: a start for a new service adds it, recorded as an event].
    #[serde(default)]
    pub closed: bool,
}

/// `[calendar]`: how a transition's iCalendar feed places its meetings.
///
/// ```toml
/// [calendar]
/// time_zone = "Europe/Amsterdam"
/// meeting_time = "10:00"
/// meeting_minutes = 60
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSection {
    /// An IANA time zone name; meetings in UTC when unset.
    pub time_zone: Option<String>,
    /// Local time of the meetings, HH:MM [default: 10:00].
    pub meeting_time: Option<String>,
    /// How long a meeting lasts [default: 60].
    pub meeting_minutes: Option<u32>,
}

impl CalendarSection {
    /// The feed's options (with the transition page's link prefix `base_url`), or every problem.
    pub fn options(
        &self,
        base_url: Option<&str>,
    ) -> Result<opsgate_domain::calendar::CalendarOptions, Vec<String>> {
        let mut problems = Vec::new();
        let mut options = opsgate_domain::calendar::CalendarOptions::default();
        if let Some(zone) = &self.time_zone {
            match zone.parse::<chrono_tz::Tz>() {
                Ok(tz) => options.time_zone = Some(tz),
                Err(_) => problems.push(format!(
                    "calendar.time_zone: '{zone}' is not an IANA time zone such as Europe/Amsterdam"
                )),
            }
        }
        if let Some(time) = &self.meeting_time {
            match chrono::NaiveTime::parse_from_str(time, "%H:%M") {
                Ok(t) => options.meeting_time = t,
                Err(_) => problems.push(format!(
                    "calendar.meeting_time: '{time}' is not a time as HH:MM"
                )),
            }
        }
        if let Some(minutes) = self.meeting_minutes {
            if (1..=24 * 60).contains(&minutes) {
                options.meeting_minutes = minutes;
            } else {
                problems.push(format!(
                    "calendar.meeting_minutes: from 1 to 1440, not {minutes}"
                ));
            }
        }
        options.link = base_url.map(|b| b.trim_end_matches('/').to_owned());
        if problems.is_empty() {
            Ok(options)
        } else {
            Err(problems)
        }
    }
}

/// `[auth_proxy]`: web sign-in behind an SSO reverse proxy (oauth2-proxy, or any proxy that sets
/// a user header). Off unless `header` is set; the header is believed only from `trusted`.
///
/// ```toml
/// [auth_proxy]
/// header = "X-Forwarded-User"
/// trusted = ["10.0.0.5/32"]
/// roles = ["project_manager", "approver", "service_manager"]
/// groups_header = "X-Forwarded-Groups"
/// group_roles = { "transition-office" = ["smo"], "internal-audit" = ["auditor"] }
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthProxySection {
    /// The request header naming the signed-in person (`--auth-proxy-header`).
    pub header: Option<String>,
    /// Addresses (CIDR) of the proxy: the header from anywhere else is ignored
    /// (`--auth-proxy-trusted`).
    #[serde(default)]
    pub trusted: Vec<String>,
    /// Roles every person the proxy names holds [default: project_manager, approver,
    /// service_manager: what they may do is then decided by the transitions naming them].
    pub roles: Option<Vec<String>>,
    /// A header listing the person's groups, separated by commas (oauth2-proxy's
    /// `X-Forwarded-Groups`).
    pub groups_header: Option<String>,
    /// Group -> further roles (such as `smo` and `auditor`, which nobody holds by default).
    #[serde(default)]
    pub group_roles: std::collections::BTreeMap<String, Vec<String>>,
}

/// `[notify]`: where notifications go.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// Links in messages lead to this followed by `transitions/ID` (the web pages' address).
    pub base_url: Option<String>,
    /// Webhook targets on loopback addresses are refused unless this is true.
    #[serde(default)]
    pub allow_loopback: bool,
    /// Webhook targets on private and link-local addresses are refused unless this is true.
    #[serde(default)]
    pub allow_private: bool,
    /// Multiplies every wait of the retry schedule (default 1: about three days in all); for
    /// tests and drills only.
    pub retry_scale: Option<f64>,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    /// Which notices go to which channels; without routes every channel gets every notice.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Reminders, overdue notices and escalations from the workflows' due dates.
    #[serde(default)]
    pub timers: TimersConfig,
}

/// `[notify.timers]`: when reminders, overdue notices and escalations fire, in whole days
/// around a due date (due dates are days, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimersConfig {
    /// A reminder to whoever must act this many days before the due date (0: none) [default: 2].
    pub reminder_days: u32,
    /// An overdue notice to whoever must act the day after the due date [default: true].
    pub overdue: bool,
    /// An escalation to the SMO (the workflow's contacts for the role `smo`) this many days
    /// after the due date (0: none) [default: 3].
    pub escalation_days: u32,
    /// How often to look for timers that are due, in seconds [default: 60].
    pub check_seconds: u64,
}

impl Default for TimersConfig {
    fn default() -> Self {
        let rules = opsgate_domain::timers::TimerRules::default();
        Self {
            reminder_days: rules.reminder_days,
            overdue: rules.overdue,
            escalation_days: rules.escalation_days,
            check_seconds: 60,
        }
    }
}

impl TimersConfig {
    pub fn rules(&self) -> opsgate_domain::timers::TimerRules {
        opsgate_domain::timers::TimerRules {
            reminder_days: self.reminder_days,
            overdue: self.overdue,
            escalation_days: self.escalation_days,
        }
    }
}

/// `[[notify.channels]]`: one place notifications are delivered to.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// How routes and the dead-letter list name it.
    pub name: String,
    /// `log`, `webhook`, `slack`, `teams`, `email` or `nats`.
    pub kind: String,
    /// The receiver's URL (webhook, slack, teams).
    pub url: Option<String>,
    /// The environment variable holding the URL instead (Slack and Teams webhook URLs carry
    /// their secret, an SMTP URL its password: keep them out of the file).
    pub url_env: Option<String>,
    /// email: the sender (`opsgate <opsgate@example.org>`).
    pub from: Option<String>,
    /// email: every message goes to these addresses.
    #[serde(default)]
    pub to: Vec<String>,
    /// nats: the subject prefix; each notice is published to `SUBJECT.KIND`.
    pub subject: Option<String>,
    /// nats: the subject belongs to a JetStream stream; a delivery counts once it acknowledges.
    #[serde(default)]
    pub jetstream: bool,
    /// Standard Webhooks signing secrets (`whsec_...`), every one signs (rotation).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Post a CloudEvents 1.0 JSON envelope instead of the plain event.
    #[serde(default)]
    pub cloudevents: bool,
    /// slack: a bot token (`xoxb-...`) posting through the Web API instead of an incoming
    /// webhook, so that routes to people reach each in a direct message.
    pub token: Option<String>,
    /// slack: the environment variable holding the bot token instead.
    pub token_env: Option<String>,
    /// slack with a bot token: the Web API's base URL [default: https://slack.com/api].
    pub api_url: Option<String>,
    /// slack with a bot token: the conversation routes to the channel post in (`C0123ABCD`).
    pub channel: Option<String>,
    /// Deliveries in flight to this channel at once [default: 8].
    pub concurrency: Option<usize>,
}

/// `value`, or else the value of the environment variable `var` names (a secret kept out of
/// the file).
fn value_or_env(value: Option<&String>, var: Option<&String>) -> Option<String> {
    value
        .cloned()
        .or_else(|| var.and_then(|var| std::env::var(var).ok()))
}

impl ChannelConfig {
    /// The receiver's URL: `url`, or the value of the variable `url_env` names.
    pub fn resolved_url(&self) -> Option<String> {
        value_or_env(self.url.as_ref(), self.url_env.as_ref())
    }

    /// The Slack bot token: `token`, or the value of the variable `token_env` names.
    pub fn resolved_token(&self) -> Option<String> {
        value_or_env(self.token.as_ref(), self.token_env.as_ref())
    }

    /// Whether this is a Slack channel posting with a bot token.
    pub fn is_slack_bot(&self) -> bool {
        self.kind == "slack" && (self.token.is_some() || self.token_env.is_some())
    }
}

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed.
        f.debug_struct("ChannelConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            // Slack and Teams webhook URLs are secrets themselves.
            .field(
                "url",
                &match self.kind.as_str() {
                    "slack" | "teams" | "email" | "nats" => {
                        self.url.as_ref().map(|_| "(secret)".to_owned())
                    }
                    _ => self.url.clone(),
                },
            )
            .field("url_env", &self.url_env)
            .field("from", &self.from)
            .field("subject", &self.subject)
            .field("jetstream", &self.jetstream)
            .field("to", &self.to)
            .field("secrets", &format!("{} secret(s)", self.secrets.len()))
            .field("cloudevents", &self.cloudevents)
            .field("token", &self.token.as_ref().map(|_| "(secret)"))
            .field("token_env", &self.token_env)
            .field("api_url", &self.api_url)
            .field("channel", &self.channel)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// `[[notify.routes]]`: notices of these kinds (`*` for all) go to these channels, to the
/// channel's own destination or to each person the notice is for.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub events: Vec<String>,
    pub channels: Vec<String>,
    /// `channel` (default): one delivery to the channel's destination (its webhook, its `to`
    /// list); `people`: one delivery to each person the notice is for, at their own address.
    #[serde(default)]
    pub to: RouteTo,
}

/// Where a route's deliveries go.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteTo {
    #[default]
    Channel,
    People,
}

impl NotifySection {
    /// Every problem of the section, each naming where.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, c) in self.channels.iter().enumerate() {
            let at = format!("notify.channels[{i}] ({})", c.name);
            if c.name.trim().is_empty() || c.name.len() > 64 {
                problems.push(format!(
                    "{at}: a channel needs a name of 1 to 64 characters"
                ));
            }
            if !names.insert(c.name.as_str()) {
                problems.push(format!("{at}: another channel has the same name"));
            }
            match c.kind.as_str() {
                "log" => {}
                "slack" if c.is_slack_bot() => {
                    match (&c.token, &c.token_env) {
                        (Some(_), Some(_)) => {
                            problems.push(format!("{at}: give token or token_env, not both"));
                        }
                        (None, Some(var)) if std::env::var(var).is_err() => {
                            problems.push(format!("{at}: token_env names {var}, which is not set"));
                        }
                        _ => {
                            if !c.resolved_token().is_some_and(|t| {
                                opsgate_notify::channels::slack_bot::is_bot_token(&t)
                            }) {
                                problems.push(format!(
                                    "{at}: the token is not a Slack bot token (xoxb-...)"
                                ));
                            }
                        }
                    }
                    if c.url.is_some() || c.url_env.is_some() {
                        problems.push(format!(
                            "{at}: a slack channel with a bot token posts through the Web API \
                             (api_url); url and url_env are for incoming webhooks: make them two \
                             channels"
                        ));
                    }
                    if !c.secrets.is_empty()
                        || c.cloudevents
                        || c.from.is_some()
                        || !c.to.is_empty()
                        || c.subject.is_some()
                        || c.jetstream
                    {
                        problems.push(format!(
                            "{at}: a slack channel takes token or token_env, api_url, channel and \
                             concurrency"
                        ));
                    }
                    if let Some(api) = &c.api_url
                        && !(api.starts_with("https://") || api.starts_with("http://"))
                    {
                        problems.push(format!("{at}: api_url is not an http(s) URL"));
                    }
                    if c.channel.as_ref().is_some_and(|ch| {
                        ch.is_empty() || ch.len() > 80 || ch.chars().any(char::is_whitespace)
                    }) {
                        problems.push(format!(
                            "{at}: channel is a Slack conversation id (C0123ABCD) or #name"
                        ));
                    }
                }
                "webhook" | "slack" | "teams" | "email" | "nats" => {
                    match (&c.url, &c.url_env) {
                        (None, None) if c.kind == "slack" => problems.push(format!(
                            "{at}: a slack channel needs url (or url_env, the environment \
                             variable holding it) for an incoming webhook, or token (or \
                             token_env) for a bot token"
                        )),
                        (None, None) => problems.push(format!(
                            "{at}: a {} channel needs url (or url_env, the environment variable \
                             holding it)",
                            c.kind
                        )),
                        (Some(_), Some(_)) => {
                            problems.push(format!("{at}: give url or url_env, not both"));
                        }
                        (None, Some(var)) if std::env::var(var).is_err() => {
                            problems.push(format!("{at}: url_env names {var}, which is not set"))
                        }
                        _ => {}
                    }
                    if c.kind != "webhook" && (!c.secrets.is_empty() || c.cloudevents) {
                        problems.push(format!(
                            "{at}: secrets and cloudevents are for webhook channels"
                        ));
                    }
                    if c.kind == "email" {
                        if c.from.is_none() {
                            problems.push(format!("{at}: an email channel needs from"));
                        }
                    } else if c.from.is_some() || !c.to.is_empty() {
                        problems.push(format!("{at}: from and to are for email channels"));
                    }
                    if c.kind == "nats" {
                        if c.subject.is_none() {
                            problems.push(format!(
                                "{at}: a nats channel needs subject (notices go to SUBJECT.KIND)"
                            ));
                        }
                    } else if c.subject.is_some() || c.jetstream {
                        problems.push(format!("{at}: subject and jetstream are for nats channels"));
                    }
                    if c.api_url.is_some()
                        || c.channel.is_some()
                        || c.token.is_some()
                        || c.token_env.is_some()
                    {
                        problems.push(format!(
                            "{at}: token, token_env, api_url and channel are for slack channels \
                             (a bot token)"
                        ));
                    }
                    for (k, secret) in c.secrets.iter().enumerate() {
                        if let Err(e) = opsgate_notify::signature::Secret::parse(secret) {
                            problems.push(format!("{at}: secrets[{k}]: {e}"));
                        }
                    }
                }
                other => problems.push(format!(
                    "{at}: unknown kind '{other}' (known: log, webhook, slack, teams, email, nats)"
                )),
            }
            if c.concurrency.is_some_and(|n| n == 0 || n > 256) {
                problems.push(format!("{at}: concurrency is 1 to 256"));
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            for e in &r.events {
                if e != "*" && opsgate_domain::notice::NoticeKind::parse(e).is_none() {
                    let known: Vec<&str> = opsgate_domain::notice::NoticeKind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect();
                    problems.push(format!(
                        "notify.routes[{i}]: unknown event '{e}' (known: *, {})",
                        known.join(", ")
                    ));
                }
            }
            for c in &r.channels {
                let Some(channel) = self.channels.iter().find(|ch| &ch.name == c) else {
                    problems.push(format!("notify.routes[{i}]: no channel is named '{c}'"));
                    continue;
                };
                match (r.to, channel.kind.as_str()) {
                    (RouteTo::People, "email" | "slack" | "teams") => {}
                    (RouteTo::People, kind) => problems.push(format!(
                        "notify.routes[{i}]: a {kind} channel ('{c}') reaches an endpoint, not \
                         people: route it with to = \"channel\" (people are reached by email, \
                         slack and teams channels)"
                    )),
                    (RouteTo::Channel, "email") if channel.to.is_empty() => problems.push(format!(
                        "notify.routes[{i}]: the email channel '{c}' has no `to` addresses: give \
                         it some, or route it with to = \"people\""
                    )),
                    (RouteTo::Channel, "slack")
                        if channel.is_slack_bot() && channel.channel.is_none() =>
                    {
                        problems.push(format!(
                            "notify.routes[{i}]: the slack channel '{c}' posts with a bot token \
                             and has no `channel`: give it one, or route it with to = \"people\""
                        ))
                    }
                    (RouteTo::Channel, _) => {}
                }
            }
        }
        if self.routes.is_empty() {
            // Every channel gets every notice at its own destination.
            for c in self
                .channels
                .iter()
                .filter(|c| c.kind == "email" && c.to.is_empty())
            {
                problems.push(format!(
                    "notify.channels ({}): an email channel without routes needs `to` addresses \
                     (or a route with to = \"people\")",
                    c.name
                ));
            }
        }
        if self.retry_scale.is_some_and(|s| !(s > 0.0 && s <= 1.0)) {
            problems.push("notify.retry_scale: a factor above 0 and at most 1".to_owned());
        }
        let t = &self.timers;
        for (key, days) in [
            ("reminder_days", t.reminder_days),
            ("escalation_days", t.escalation_days),
        ] {
            if days > 365 {
                problems.push(format!(
                    "notify.timers.{key}: at most 365 days (0 turns it off), not {days}"
                ));
            }
        }
        if !(1..=3600).contains(&t.check_seconds) {
            problems.push(format!(
                "notify.timers.check_seconds: from 1 to 3600 seconds, not {}",
                t.check_seconds
            ));
        }
        problems
    }
}

/// `[oidc]`: CI platforms whose OIDC ID tokens authenticate pipelines (role `ci`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
}

/// `[[oidc.issuers]]`: one trusted token issuer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` claim, exactly (`https://token.actions.githubusercontent.com`,
    /// `https://gitlab.example.com`).
    pub issuer: String,
    /// The `aud` every token must carry (the job asks for it: GitHub `audience:`, GitLab
    /// `id_tokens: ... aud:`).
    pub audience: String,
    /// Where the signing keys are; by default found through
    /// `ISSUER/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// The claim that names the pipeline as a principal [default: sub].
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// Signature algorithms accepted, asymmetric only [default: RS256, ES256].
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds [default: 60, at most 300].
    pub leeway_seconds: Option<u64>,
    /// Which tokens are admitted and what they may do; a token no rule matches is refused.
    #[serde(default)]
    pub rules: Vec<ClaimRule>,
}

fn default_principal_claim() -> String {
    "sub".to_owned()
}

/// `[[oidc.issuers.rules]]`: tokens whose claims equal all of `claims` may check the gates of
/// `services` and attach evidence to `deliverables` of their transitions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    /// Claim name -> required value (strings; numbers and booleans compare as their text).
    pub claims: std::collections::BTreeMap<String, String>,
    pub services: Vec<String>,
    /// Deliverable ids (`*`: any) whose evidence the pipeline may submit [default: none].
    #[serde(default)]
    pub deliverables: Vec<String>,
}

/// `[server]`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: Option<SocketAddr>,
    /// The HTTP listener: `/metrics` (and the web pages to come).
    pub http: Option<SocketAddr>,
    pub database_url: Option<String>,
    /// Relative paths are relative to the file's directory.
    pub workflows: Option<PathBuf>,
    pub state_cache_mib: Option<usize>,
    pub insecure_dev: Option<bool>,
    /// PEM certificate chain and private key: serve gRPC over TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: require client certificates signed by it.
    pub client_ca: Option<PathBuf>,
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: larger than {MAX_CONFIG_BYTES} bytes; is it the right file?")]
    TooLarge { path: String },
    /// `path:line:col: message`, like every other input problem.
    #[error("{0}")]
    Invalid(String),
}

impl ConfigFile {
    /// Reads and checks `path`; relative paths in it become relative to its directory.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge { path: shown });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut file = Self::parse(&shown, &text)?;
        if let Some(dir) = path.parent() {
            let server = &mut file.server;
            for p in [
                &mut server.workflows,
                &mut server.tls_cert,
                &mut server.tls_key,
                &mut server.client_ca,
            ]
            .into_iter()
            .flatten()
            {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        Ok(file)
    }

    /// Parses the text of a file named `name` (for messages).
    pub fn parse(name: &str, text: &str) -> Result<Self, ConfigError> {
        let file: Self = toml::from_str(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Invalid(format!("{name}:{line}:{col}: {}", e.message()))
        })?;
        let problems: Vec<String> = file
            .oidc
            .issuers
            .iter()
            .enumerate()
            .flat_map(|(i, issuer)| {
                crate::oidc::check_issuer(issuer)
                    .into_iter()
                    .map(move |p| format!("{name}: oidc.issuers[{i}]: {p}"))
            })
            .chain(
                file.notify
                    .problems()
                    .into_iter()
                    .map(|p| format!("{name}: {p}")),
            )
            .chain(
                file.calendar
                    .options(None)
                    .err()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| format!("{name}: {p}")),
            )
            .chain(
                crate::proxy::AuthProxy::new(&file.auth_proxy)
                    .err()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| format!("{name}: {p}")),
            )
            .collect();
        if problems.is_empty() {
            Ok(file)
        } else {
            Err(ConfigError::Invalid(problems.join("\n")))
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_url_comes_from_the_file_or_from_the_variable_url_env_names() {
        let from_file: ChannelConfig = toml::from_str(
            "name = \"chat\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/S\"",
        )
        .unwrap();
        assert_eq!(
            from_file.resolved_url().as_deref(),
            Some("https://hooks.slack.com/services/T/B/S")
        );
        // The URL is the secret of a Slack webhook: never printed.
        assert!(!format!("{from_file:?}").contains("hooks.slack.com"));
        // Any variable that is set will do for the test; PATH always is.
        let from_env: ChannelConfig =
            toml::from_str("name = \"chat\"\nkind = \"teams\"\nurl_env = \"PATH\"").unwrap();
        assert_eq!(from_env.resolved_url(), std::env::var("PATH").ok());
    }

    #[test]
    fn a_file_with_every_key_parses() {
        let file = ConfigFile::parse(
            "opsgate.toml",
            "[server]\nlisten = \"0.0.0.0:50051\"\ndatabase_url = \"sqlite://x.db\"\nworkflows = \"wf\"\nstate_cache_mib = 8\ninsecure_dev = true\n",
        )
        .unwrap();
        assert_eq!(file.server.state_cache_mib, Some(8));
        assert_eq!(file.server.insecure_dev, Some(true));
        assert_eq!(
            ConfigFile::parse("e.toml", "").unwrap(),
            ConfigFile::default()
        );
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let example = include_str!("../../../opsgate.example.toml");
        let file = ConfigFile::parse("opsgate.example.toml", example).unwrap();
        assert_eq!(file.server.insecure_dev, Some(false));
        assert!(file.server.listen.is_some() && file.server.database_url.is_some());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_located() {
        let err = ConfigFile::parse("opsgate.toml", "[server]\nlisten = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("opsgate.toml:2:10: "), "{err}");
        let err = ConfigFile::parse("opsgate.toml", "[server]\nlsten = \"127.0.0.1:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("opsgate.toml:2:1: unknown field `lsten`"),
            "{err}"
        );
        assert!(err.contains("listen"), "{err}");
    }
}

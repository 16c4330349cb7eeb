//! `opsgate gate check [--wait DURATION]`: exit 0 when the gate is open, 1 when closed (with the
//! explanation) or still closed when the wait is up, 2 on error.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::check_gate_request::Target;

use crate::client::Context;
use crate::{EXIT_NO, output};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Is the operations gate open? Exit 0 open, 1 closed, 2 error.
    #[command(
        after_help = "Identify the transition by its id, or by --service NAME --version V.\n\n\
                      With --wait, the server tells the command of every change (no polling): \
                      it exits 0 as soon as the gate opens, 1 when the time is up, 2 on error. \
                      A lost connection is retried until the time is up. docs/ci.md has \
                      recipes for GitHub Actions, GitLab CI and Jenkins."
    )]
    Check {
        /// Transition id.
        #[arg(conflicts_with = "service", required_unless_present = "service")]
        transition_id: Option<String>,
        /// Service name (with --version).
        #[arg(long, requires = "version")]
        service: Option<String>,
        /// Service version (with --service).
        #[arg(long, requires = "service")]
        version: Option<String>,
        /// Exit 0 only once the service manager has accepted the handover.
        #[arg(long)]
        require_accepted: bool,
        /// Wait up to this long for the gate to open (90s, 30m, 2h, 1d; at most 7d).
        #[arg(long, value_name = "DURATION", value_parser = wait_time)]
        wait: Option<Duration>,
    },
}

/// Longest `--wait`.
const MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// `90s`, `30m`, `2h`, `1d` (or plain seconds).
fn wait_time(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration: use 90s, 30m, 2h or 1d"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => {
            return Err(format!(
                "unknown unit '{unit}' in '{text}': use s, m, h or d"
            ));
        }
    };
    let wait = Duration::from_secs(seconds);
    if wait.is_zero() || wait > MAX_WAIT {
        return Err(format!("'{text}': wait more than 0s and at most 7d"));
    }
    Ok(wait)
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let Command::Check {
        transition_id,
        service,
        version,
        require_accepted,
        wait,
    } = command;
    let target = match (transition_id, service, version) {
        (Some(id), None, None) => Target::TransitionId(id),
        (None, Some(name), Some(version)) => Target::Service(pb::ServiceRef { name, version }),
        _ => bail!("give a transition id, or --service NAME --version V"),
    };
    if let Some(wait) = wait {
        return watch(ctx, target, require_accepted, wait).await;
    }
    let answer = ctx
        .gates()
        .await?
        .check_gate(ctx.reading(pb::CheckGateRequest {
            target: Some(target),
        })?)
        .await?
        .into_inner();
    output::gate(&answer);
    Ok(if passed(&answer, require_accepted) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}

/// Whether `g` lets the pipeline go on: open, or with `--require-accepted` accepted.
fn passed(g: &pb::CheckGateResponse, require_accepted: bool) -> bool {
    if require_accepted {
        g.state == i32::from(pb::GateState::Accepted)
    } else {
        g.open
    }
}

/// `--wait`: follows `WatchGate` until the gate opens or `wait` is up, reconnecting while the
/// server is unreachable.
async fn watch(
    ctx: &Context,
    target: Target,
    require_accepted: bool,
    wait: Duration,
) -> anyhow::Result<ExitCode> {
    let deadline = tokio::time::Instant::now() + wait;
    let target = match target {
        Target::TransitionId(id) => pb::watch_gate_request::Target::TransitionId(id),
        Target::Service(s) => pb::watch_gate_request::Target::Service(s),
    };
    let mut last: Option<pb::CheckGateResponse> = None;
    // A server never reached is a mistake to report at once; one lost later is waited for.
    let mut reached = false;
    let timed_out = |last: &Option<pb::CheckGateResponse>| {
        let state = if last.as_ref().is_some_and(|g| g.open) {
            "still not accepted"
        } else {
            "still closed"
        };
        eprintln!("the gate is {state} after waiting {}", humane(wait));
        Ok(ExitCode::from(EXIT_NO))
    };
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return timed_out(&last);
        }
        let mut request = ctx.reading(pb::WatchGateRequest {
            target: Some(target.clone()),
            until_accepted: require_accepted,
        })?;
        request.set_timeout(remaining);
        let opened = async {
            let mut stream = ctx.gates().await?.watch_gate(request).await?.into_inner();
            reached = true;
            while let Some(answer) = stream.message().await? {
                if last.as_ref() != Some(&answer) {
                    if last.is_some() {
                        println!();
                    }
                    output::gate(&answer);
                }
                let done = passed(&answer, require_accepted);
                last = Some(answer);
                if done {
                    return Ok::<bool, anyhow::Error>(true);
                }
            }
            Ok(false)
        };
        match tokio::time::timeout_at(deadline, opened).await {
            Err(_) => return timed_out(&last),
            Ok(Ok(true)) => return Ok(ExitCode::SUCCESS),
            // The server ended the watch (a restart, its own time limit): watch again.
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                let retry = match e.downcast_ref::<tonic::Status>() {
                    Some(s) => matches!(
                        s.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::Cancelled
                            | tonic::Code::ResourceExhausted
                    ),
                    // Not connected at all.
                    None => reached && e.downcast_ref::<tonic::transport::Error>().is_some(),
                };
                if !retry {
                    return Err(e);
                }
                tracing::debug!(error = %e, "watching the gate again in 1 s");
                let pause = tokio::time::Instant::now() + Duration::from_secs(1);
                tokio::time::sleep_until(pause.min(deadline)).await;
            }
        }
    }
}

fn humane(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_times() {
        assert_eq!(wait_time("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(wait_time("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(wait_time("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(wait_time("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(wait_time("45"), Ok(Duration::from_secs(45)));
        assert!(wait_time("0s").is_err());
        assert!(wait_time("8d").is_err());
        assert!(wait_time("3w").unwrap_err().contains("unknown unit"));
        assert!(wait_time("soon").unwrap_err().contains("not a duration"));
        assert_eq!(humane(Duration::from_secs(1800)), "30m");
        assert_eq!(humane(Duration::from_secs(90)), "90s");
    }
}

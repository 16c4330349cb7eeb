//! `opsgate token create|list|revoke`: API tokens, administered by the SMO.

use std::process::ExitCode;

use opsgate_proto::v1 as pb;

use crate::client::Context;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a token; prints its secret alone on stdout (shown once: store it now).
    Create {
        /// Who the token acts as, as named in transitions.
        #[arg(long, value_name = "NAME")]
        principal: String,
        /// An access role, repeatable: smo, project_manager, service_manager, approver, ci, auditor.
        #[arg(long = "role", required = true, value_name = "ROLE")]
        roles: Vec<String>,
        /// Lifetime: days (90d) or weeks (12w); never expires when not given.
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// What the token is for, shown in listings.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List tokens (without secrets), newest first.
    List {
        /// Revoked and expired tokens too.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a token at once.
    Revoke {
        /// The token's id (from `opsgate token list`).
        id: String,
    },
}

fn timestamp(t: Option<&prost_types::Timestamp>) -> String {
    crate::output::timestamp(t, "%Y-%m-%d %H:%M", "-")
}

fn line(t: &pb::TokenInfo) -> String {
    let state = if !t.revoked_by.is_empty() || t.revoked_at.is_some() {
        format!(
            "revoked {} by {}",
            timestamp(t.revoked_at.as_ref()),
            t.revoked_by
        )
    } else {
        format!("expires {}", timestamp(t.expires_at.as_ref()))
    };
    format!(
        "{}  {}…  {}  [{}]  {}  {}",
        t.id,
        t.prefix,
        t.principal,
        t.roles.join(", "),
        state,
        t.description
    )
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let mut client = ctx.identity().await?;
    match command {
        Command::Create {
            principal,
            roles,
            expires,
            description,
        } => {
            let expires_in_days = expires
                .as_deref()
                .map(|e| crate::output::days("--expires", e))
                .transpose()?
                .unwrap_or(0);
            let created = client
                .create_token(ctx.acting(pb::CreateTokenRequest {
                    principal,
                    roles,
                    expires_in_days,
                    description,
                })?)
                .await?
                .into_inner();
            println!("{}", created.token);
            if let Some(info) = &created.info {
                eprintln!("{}", line(info));
            }
            eprintln!("the secret above is shown once: store it now");
        }
        Command::List { all } => {
            let listed = client
                .list_tokens(ctx.acting(pb::ListTokensRequest {
                    include_inactive: all,
                })?)
                .await?
                .into_inner();
            for t in &listed.tokens {
                println!("{}", line(t));
            }
        }
        Command::Revoke { id } => {
            let revoked = client
                .revoke_token(ctx.acting(pb::RevokeTokenRequest { id })?)
                .await?
                .into_inner();
            if let Some(info) = &revoked.info {
                println!("{}", line(info));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `opsgate audit kpis` and `opsgate audit forecast`, and the forecast lines `transition get`
//! and `audit stalled` print: how the transition process performs, and when go-live will really
//! happen.

use opsgate_proto::v1 as pb;

use crate::client::Context;
use crate::commands::audit::Format;
use crate::output;

/// `audit kpis`.
pub(crate) async fn kpis(
    ctx: &Context,
    since: Option<String>,
    until: Option<String>,
    workflow: Option<String>,
    format: Format,
) -> anyhow::Result<()> {
    let request = pb::GetKpisRequest {
        since: since
            .map(|s| output::moment("--since", &s, false))
            .transpose()?,
        until: until
            .map(|u| output::moment("--until", &u, true))
            .transpose()?,
        workflow: workflow.unwrap_or_default(),
    };
    let k = ctx
        .audit()
        .await?
        .get_kpis(ctx.acting(request)?)
        .await?
        .into_inner();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&kpis_json(&k))?),
        Format::Table => print_kpis(&k),
    }
    Ok(())
}

/// Seconds as days with one decimal.
fn days(seconds: f64) -> String {
    format!("{:.1}d", seconds / 86_400.0)
}

fn percent(f: &pb::KpiFigure) -> String {
    if f.samples == 0 {
        "-".to_owned()
    } else {
        format!("{:.0}%", f.ratio * 100.0)
    }
}

fn print_kpis(k: &pb::GetKpisResponse) {
    let window = format!(
        "{} .. {}",
        output::timestamp(k.since.as_ref(), "%Y-%m-%d %H:%M", "?"),
        output::timestamp(k.until.as_ref(), "%Y-%m-%d %H:%M", "?")
    );
    println!("KPIs for {window} (UTC)");
    let empty = pb::KpiFigure::default();
    let lead = k.lead_time.as_ref().unwrap_or(&empty);
    println!("\nHandovers accepted: {}", lead.samples);
    if lead.samples > 0 {
        println!(
            "  lead time, start to accepted handover: mean {}, min {}, max {}",
            days(lead.mean_seconds),
            days(lead.min_seconds as f64),
            days(lead.max_seconds as f64)
        );
        println!(
            "  on-time go-live: {} ({} of {})",
            percent(lead),
            lead.hits,
            lead.samples
        );
    }
    let table = |title: &str, rows: &[pb::KpiFigure], show: &dyn Fn(&pb::KpiFigure) -> String| {
        if rows.is_empty() {
            return;
        }
        println!("\n{title}");
        for f in rows {
            println!("  {:<28} {:>6}  {}", f.key, f.samples, show(f));
        }
    };
    table(
        "Time in each state (state, samples, mean)",
        &k.time_in_state,
        &|f| days(f.mean_seconds),
    );
    table(
        "Approval latency by approver (approver, approvals, mean from submission)",
        &k.approval_latency_by_approver,
        &|f| days(f.mean_seconds),
    );
    table(
        "Approval latency by role (role, approvals, mean from submission)",
        &k.approval_latency_by_role,
        &|f| days(f.mean_seconds),
    );
    table(
        "First-pass approval (deliverable, approved, first pass, mean duration)",
        &k.first_pass,
        &|f| format!("{:>4}  {}", percent(f), days(f.mean_seconds)),
    );
    table(
        "Sent back (deliverable, times, mean review time)",
        &k.sent_back,
        &|f| days(f.mean_seconds),
    );
    let rejections = k.rejections.as_ref().unwrap_or(&empty);
    println!("\nHandovers rejected: {}", rejections.total);
    for r in &k.rejection_reasons {
        println!("  {:>4}x  {}", r.samples, r.key);
    }
    table("Waivers (deliverable, waivers)", &k.waivers, &|_| {
        String::new()
    });
    let support = k.support.as_ref().unwrap_or(&empty);
    if support.samples > 0 {
        println!(
            "\nPost-go-live support ended: {}, within the support window: {} ({} of {})",
            support.samples,
            percent(support),
            support.hits,
            support.samples
        );
    }
}

fn figure_json(f: &pb::KpiFigure) -> serde_json::Value {
    serde_json::json!({
        "key": f.key,
        "samples": f.samples,
        "mean_seconds": f.mean_seconds,
        "min_seconds": f.min_seconds,
        "max_seconds": f.max_seconds,
        "hits": f.hits,
        "ratio": f.ratio,
        "total": f.total,
    })
}

fn kpis_json(k: &pb::GetKpisResponse) -> serde_json::Value {
    let one = |f: Option<&pb::KpiFigure>| f.map_or(serde_json::Value::Null, figure_json);
    let many = |fs: &[pb::KpiFigure]| fs.iter().map(figure_json).collect::<Vec<_>>();
    serde_json::json!({
        "since": output::timestamp(k.since.as_ref(), "%Y-%m-%dT%H:%M:%SZ", ""),
        "until": output::timestamp(k.until.as_ref(), "%Y-%m-%dT%H:%M:%SZ", ""),
        "lead_time": one(k.lead_time.as_ref()),
        "time_in_state": many(&k.time_in_state),
        "approval_latency_by_approver": many(&k.approval_latency_by_approver),
        "approval_latency_by_role": many(&k.approval_latency_by_role),
        "first_pass": many(&k.first_pass),
        "sent_back": many(&k.sent_back),
        "rejections": one(k.rejections.as_ref()),
        "rejection_reasons": many(&k.rejection_reasons),
        "waivers": many(&k.waivers),
        "support": one(k.support.as_ref()),
    })
}

/// `audit forecast`.
pub(crate) async fn forecast(
    ctx: &Context,
    transition_id: Option<String>,
    workflow: Option<String>,
    late: bool,
    format: Format,
) -> anyhow::Result<()> {
    let list = ctx
        .audit()
        .await?
        .get_forecast(ctx.reading(pb::GetForecastRequest {
            transition_id: transition_id.clone().unwrap_or_default(),
            workflow: workflow.unwrap_or_default(),
            only_late: late,
        })?)
        .await?
        .into_inner();
    for f in &list.forecasts {
        match format {
            Format::Table => {
                println!(
                    "{} {}  ({})",
                    f.service_name, f.service_version, f.transition_id
                );
                println!("{}", forecast_line(f));
                if transition_id.is_some() {
                    for n in &f.nodes {
                        println!(
                            "  {} {:<28} {} .. {}  planned {}d, expected {}d{}",
                            if n.done {
                                "done"
                            } else if n.on_critical_path {
                                "crit"
                            } else {
                                "    "
                            },
                            n.node_id,
                            n.projected_start,
                            n.projected_finish,
                            n.planned_days,
                            n.expected_days,
                            if n.samples > 0 {
                                format!(" ({} past)", n.samples)
                            } else {
                                String::new()
                            }
                        );
                    }
                }
            }
            Format::Json => println!("{}", forecast_json(f)),
        }
    }
    if matches!(format, Format::Table) && transition_id.is_none() {
        let late = list.forecasts.iter().filter(|f| f.will_miss).count();
        eprintln!(
            "{} forecast, {late} projected to miss the target go-live",
            list.forecasts.len()
        );
    }
    Ok(())
}

/// The one-line summary: projected against target, and what drives a delay.
pub(crate) fn forecast_line(f: &pb::Forecast) -> String {
    let when = match f.days_late {
        d if d > 0 => format!("{d} days after the target {}", f.target_go_live),
        0 => format!("on the target {}", f.target_go_live),
        d => format!("{} days before the target {}", -d, f.target_go_live),
    };
    let mut line = format!("  forecast: go-live {} ({when})", f.projected_go_live);
    if f.will_miss {
        line.push_str(" WILL MISS");
        if !f.driver_node_id.is_empty() {
            line.push_str(&format!(
                "\n  driven by {}: {}",
                f.driver_node_id, f.driver_reason
            ));
        }
    }
    if !f.critical_path.is_empty() {
        line.push_str(&format!(
            "\n  critical path: {}",
            f.critical_path.join(" -> ")
        ));
    }
    line
}

pub(crate) fn forecast_json(f: &pb::Forecast) -> serde_json::Value {
    serde_json::json!({
        "transition_id": f.transition_id,
        "service": f.service_name,
        "version": f.service_version,
        "workflow": f.workflow_name,
        "target_go_live": f.target_go_live,
        "projected_go_live": f.projected_go_live,
        "days_late": f.days_late,
        "will_miss": f.will_miss,
        "driver": f.driver_node_id,
        "driver_reason": f.driver_reason,
        "critical_path": f.critical_path,
        "nodes": f.nodes.iter().map(|n| serde_json::json!({
            "node": n.node_id,
            "done": n.done,
            "planned_days": n.planned_days,
            "expected_days": n.expected_days,
            "samples": n.samples,
            "start": n.projected_start,
            "finish": n.projected_finish,
            "critical": n.on_critical_path,
        })).collect::<Vec<_>>(),
    })
}

//! `GET /transitions/{id}`: one transition for the people working on it: the gate decision and
//! its blockers in words, the DAG drawn on the server as SVG with each node's live state, and
//! every node's owner, approvers, due date, evidence and latest comment. Who may read it is
//! decided as for `GetTransition`.

use axum::extract::{Path, State};
use axum::response::Response;
use opsgate_domain::notice::{approvers_of, owners_of};
use opsgate_domain::stalled::{due_date, must_act};
use opsgate_domain::{Actor, GateDecision, NodeKind, NodeStatus, WaitingOn};
use opsgate_store::TransitionView;

use super::Web;
use super::page::{esc, problem};

/// The access table's row of this page.
pub(crate) const ROUTE: &str = "GET /transitions/{id}";

pub(crate) async fn page(
    State(web): State<Web>,
    Path(id): Path<String>,
    headers: super::Seen,
) -> Response {
    let viewer = match web.viewer(&headers, ROUTE).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let who = viewer.as_ref();
    let view = match web.readable(who, &id).await {
        Ok(view) => view,
        Err(refused) => return refused,
    };
    // A waiver that has run out is recorded before the page shows it (as GetTransition does).
    let view = match web.api.expired(view).await {
        Ok(view) => view,
        Err(s) => return problem(super::connect::http_status(s.code()), who, s.message()),
    };
    let now = web.api.store().now();
    let deputies = web
        .api
        .store()
        .delegations_in_force()
        .await
        .unwrap_or_default();
    let meta = &view.state.meta;
    let wf = &view.workflow.workflow;
    let decision = GateDecision::of(wf, &view.state);
    let mut body = format!(
        "<h1>{service} {version}</h1><p class=\"meta\">Workflow <strong>{workflow}</strong> \
         version {wv} · {status} · project manager {pm} · service manager {sm} · target go-live \
         {golive} · <a href=\"/services/{link}\">the service in the catalog</a></p>",
        link = super::page::segment(&meta.service_name),
        service = esc(&meta.service_name),
        version = esc(&meta.service_version),
        workflow = esc(meta.workflow.as_str()),
        wv = meta.workflow_version,
        status = esc(view.state.status.as_str()),
        pm = esc(&meta.project_manager.to_string()),
        sm = esc(&meta.service_manager.to_string()),
        golive = meta.target_go_live,
    );
    let gate_class = if decision.is_open() { "open" } else { "closed" };
    body.push_str(&format!(
        "<section class=\"gate {gate_class}\" aria-labelledby=\"gate\"><h2 id=\"gate\">The operations \
         gate is {}</h2><p>{}</p>",
        if decision.is_open() { "open" } else { "closed" },
        esc(&decision.summary())
    ));
    if !decision.blockers.is_empty() {
        body.push_str("<ul class=\"blockers\">");
        for b in &decision.blockers {
            let waits = match &b.waiting_on {
                WaitingOn::Role { role, people } if people.is_empty() => {
                    format!("nobody is named for the role {role}")
                }
                WaitingOn::Role { role, people } => {
                    format!("waits on {} ({role})", names(people))
                }
                WaitingOn::Approvals {
                    policy,
                    given,
                    needed,
                    people,
                } => format!(
                    "waits on approval: {given} of {needed} ({policy}); may approve: {}",
                    names(people)
                ),
                WaitingOn::Nodes(nodes) => format!(
                    "waits on {}",
                    nodes
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            body.push_str(&format!(
                "<li><a href=\"#node-{id}\">{title}</a> is {status}: {waits}</li>",
                id = esc(b.node.as_str()),
                title = esc(&b.title),
                status = esc(b.status.as_str()),
                waits = esc(&waits),
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str("</section>");
    let (csrf, form_cookie) = super::actions::csrf_for(&headers);
    body.push_str(&actions(&view, &decision, who, &csrf, now, &deputies));
    body.push_str("<section aria-labelledby=\"graph\"><h2 id=\"graph\">The plan</h2>");
    body.push_str("<div class=\"scroll\">");
    body.push_str(&opsgate_domain::docs::svg(wf, Some(&view.state)));
    body.push_str("</div>");
    body.push_str("</section>");
    body.push_str(
        "<section aria-labelledby=\"nodes\"><h2 id=\"nodes\">Deliverables and milestones</h2>\
         <table class=\"nodes\"><thead><tr><th scope=\"col\">Node</th><th scope=\"col\">Status</th>\
         <th scope=\"col\">Owner</th><th scope=\"col\">Approvers</th><th scope=\"col\">Due</th>\
         <th scope=\"col\">Must act now</th><th scope=\"col\">Evidence</th>\
         <th scope=\"col\">Comment</th></tr></thead><tbody>",
    );
    for (i, node) in wf.nodes().iter().enumerate() {
        let ns = &view.state.nodes[i];
        let (acting, unfilled) = must_act(wf, &view.state, i, now, &deputies);
        let acting = match unfilled {
            Some(role) => format!("nobody named for {role}"),
            None if ns.counts_as_done() => String::new(),
            None => names(&acting),
        };
        let evidence = ns
            .evidence
            .as_ref()
            .map(|e| {
                let mut out: Vec<String> = e.links.iter().map(|l| link(l)).collect();
                out.extend(e.attachments.iter().map(|a| {
                    let shown = match super::actions::uploaded(&a.uri) {
                        Some((sha256, name)) => format!(
                            "<a href=\"/transitions/{}/attachments/{}\" download>{}</a>",
                            super::page::segment(&view.id),
                            esc(sha256),
                            esc(name)
                        ),
                        None => link(&a.uri),
                    };
                    format!(
                        "{shown} <span class=\"hash\" title=\"SHA-256\">{}</span>",
                        esc(a.sha256.get(..12).unwrap_or(&a.sha256))
                    )
                }));
                if !e.text.is_empty() {
                    out.push(format!("<span class=\"text\">{}</span>", esc(&e.text)));
                }
                out.join("<br>")
            })
            .unwrap_or_default();
        let waived = ns
            .waiver
            .as_ref()
            .map(|w| {
                format!(
                    " <span class=\"tag\">waived by {} until {}: {}</span>",
                    esc(&w.by.to_string()),
                    w.until.date_naive(),
                    esc(&w.reason)
                )
            })
            .unwrap_or_default();
        body.push_str(&format!(
            "<tr id=\"node-{id}\"><th scope=\"row\">{title}<br><span class=\"id\">{id} · {kind}</span>{template}</th>\
             <td><span class=\"status s-{status}\">{status_word}</span>{waived}</td><td>{owner}</td>\
             <td>{approvers}</td><td>{due}</td><td>{acting}</td><td>{evidence}</td><td>{comment}</td></tr>",
            id = esc(node.id.as_str()),
            title = esc(&node.title),
            kind = node.kind.label(),
            status = ns.status.as_str(),
            status_word = esc(&ns.status.as_str().replace('_', " ")),
            owner = esc(&names(&owners_of(wf, &view.state, i))),
            approvers = esc(&names(&approvers_of(wf, &view.state, i))),
            due = due_date(wf, &view.state, i)
                .map(|d| d.to_string())
                .unwrap_or_default(),
            acting = esc(&acting),
            comment = match ns.comment.as_deref() {
                // The changes it asked for were resubmitted: history, not a verdict on the
                // submission shown (as the CLI says it).
                Some(c) if !ns.comment_is_current() => format!(
                    "<span class=\"earlier\">earlier, round {}:</span> {}",
                    ns.comment_round,
                    esc(c)
                ),
                Some(c) => esc(c),
                None => String::new(),
            },
            template = node
                .deliverable()
                .and_then(|d| d.template.as_ref())
                .map(|t| format!(
                    "<br><a class=\"template\" href=\"/transitions/{}/templates/{}\">Template: {}</a>",
                    super::page::segment(&view.id),
                    super::page::segment(node.id.as_str()),
                    esc(t.rsplit('/').next().unwrap_or(t))
                ))
                .unwrap_or_default(),
        ));
    }
    body.push_str("</tbody></table></section>");
    match history(&web, &view).await {
        Ok(h) => body.push_str(&h),
        Err(s) => return problem(super::connect::http_status(s.code()), who, s.message()),
    }
    body.push_str(&format!(
        "<p class=\"links\"><a href=\"/transitions/{id}/calendar.ics\">Calendar (iCalendar)</a></p>",
        id = super::page::segment(&view.id)
    ));
    let live = format!(
        "/transitions/{}/live?seq={}",
        super::page::segment(&view.id),
        view.state.seq
    );
    let mut response = super::page::layout_live(
        &format!("{} {}", meta.service_name, meta.service_version),
        who,
        &body,
        Some(&live),
    );
    if let Some(value) = form_cookie.and_then(|c| axum::http::HeaderValue::from_str(&c).ok()) {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, value);
    }
    response
}

/// The forms of what the viewer may do here now (on a development server, where nobody signs
/// in, each form names the person who must act, in an "acting as" field).
fn actions(
    view: &TransitionView,
    decision: &GateDecision,
    viewer: Option<&crate::auth::Caller>,
    csrf: &str,
    now: chrono::DateTime<chrono::Utc>,
    deputies: &[opsgate_domain::Delegation],
) -> String {
    let wf = &view.workflow.workflow;
    let state = &view.state;
    let id = super::page::segment(&view.id);
    // Who the form acts as: the viewer when they are among `people`, or on a development server
    // the first of them.
    let acting = |people: &[Actor]| -> Option<String> {
        match viewer {
            Some(v) => people.contains(&v.actor).then(String::new),
            None => people.first().map(|p| {
                format!(
                    "<label>Acting as <input name=\"as\" value=\"{}\" required></label>",
                    esc(&p.to_string())
                )
            }),
        }
    };
    let hidden = |node: &str| {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" \
             name=\"node\" value=\"{}\">",
            esc(csrf),
            esc(node)
        )
    };
    let mut forms = Vec::new();
    for (i, node) in wf.nodes().iter().enumerate() {
        let ns = &state.nodes[i];
        if ns.counts_as_done() {
            continue;
        }
        if matches!(node.kind, NodeKind::Milestone(_)) && ns.status == NodeStatus::Open {
            let (people, _) = must_act(wf, state, i, now, deputies);
            if let Some(as_field) = acting(&people) {
                forms.push(format!(
                    "<form class=\"action\" method=\"post\" action=\"/transitions/{id}/sign-off\">\
                     <h3>Sign off '{title}'</h3>{hidden}{as_field}\
                     <label>Comment <textarea name=\"comment\" rows=\"2\"></textarea></label>\
                     <button type=\"submit\">Sign off</button></form>",
                    title = esc(&node.title),
                    hidden = hidden(node.id.as_str()),
                ));
            }
            continue;
        }
        if node.deliverable().is_none() {
            continue;
        }
        let title = esc(&node.title);
        match ns.status {
            NodeStatus::Open | NodeStatus::ChangesRequested => {
                if let Some(as_field) = acting(&owners_of(wf, state, i)) {
                    forms.push(format!(
                        "<form class=\"action\" method=\"post\" action=\"/transitions/{id}/submit\" \
                         enctype=\"multipart/form-data\">\
                         <h3>Submit '{title}'</h3>{hidden}{as_field}\
                         <label>Links to the evidence, one per line <textarea name=\"links\" \
                         rows=\"3\" placeholder=\"https://\"></textarea></label>\
                         <label>Files (each up to 10 MiB) <input type=\"file\" name=\"file\" \
                         multiple></label>\
                         <label>Notes <textarea name=\"text\" rows=\"2\"></textarea></label>\
                         <button type=\"submit\">Submit</button></form>",
                        hidden = hidden(node.id.as_str()),
                    ));
                }
            }
            NodeStatus::Submitted => {
                let (people, _) = must_act(wf, state, i, now, deputies);
                if let Some(as_field) = acting(&people) {
                    forms.push(format!(
                        "<form class=\"action\" method=\"post\" action=\"/transitions/{id}/review\">\
                         <h3>Review '{title}'</h3>{hidden}{as_field}\
                         <fieldset><legend>Decision</legend>\
                         <label class=\"choice\"><input type=\"radio\" name=\"decision\" \
                         value=\"approve\" required> Approve</label>\
                         <label class=\"choice\"><input type=\"radio\" name=\"decision\" \
                         value=\"request_changes\"> Request changes</label></fieldset>\
                         <label>Comment (required to request changes) <textarea name=\"comment\" \
                         rows=\"2\"></textarea></label><button type=\"submit\">Send the review\
                         </button></form>",
                        hidden = hidden(node.id.as_str()),
                    ));
                }
            }
            _ => {}
        }
    }
    if decision.state == opsgate_domain::GateState::Open
        && let Some(as_field) = acting(std::slice::from_ref(&state.meta.service_manager))
    {
        forms.push(format!(
            "<form class=\"action\" method=\"post\" action=\"/transitions/{id}/accept\">\
             <h3>Accept the handover</h3>{hidden}{as_field}\
             <label>Comment <textarea name=\"comment\" rows=\"2\"></textarea></label>\
             <button type=\"submit\">Accept the handover</button></form>",
            hidden = hidden(""),
        ));
        // Rejecting reopens deliverables before the gate: each a checkbox.
        let reopen: String = wf
            .nodes()
            .iter()
            .filter(|n| n.deliverable().is_some() && !n.after_go_live)
            .map(|n| {
                format!(
                    "<label class=\"choice\"><input type=\"checkbox\" name=\"reopen\" \
                     value=\"{}\"> {}</label>",
                    esc(n.id.as_str()),
                    esc(&n.title)
                )
            })
            .collect();
        forms.push(format!(
            "<form class=\"action\" method=\"post\" action=\"/transitions/{id}/reject\">\
             <h3>Reject the handover</h3>{hidden}{as_field}\
             <label>Why, one reason per line <textarea name=\"reasons\" rows=\"3\" required>\
             </textarea></label><fieldset class=\"reopen\"><legend>Deliverables to redo</legend>\
             {reopen}</fieldset><button type=\"submit\">Reject the handover</button></form>",
            hidden = hidden(""),
        ));
    }
    // The SMO waives a deliverable not done (on a development server, naming who acts).
    let smo = match viewer {
        Some(v) => v
            .roles
            .contains(&opsgate_domain::Access::Smo)
            .then(String::new),
        None => Some("<label>Acting as (the SMO) <input name=\"as\" required></label>".to_owned()),
    };
    let open: Vec<String> = wf
        .nodes()
        .iter()
        .enumerate()
        .filter(|(i, n)| n.deliverable().is_some() && !state.nodes[*i].counts_as_done())
        .map(|(_, n)| {
            format!(
                "<option value=\"{}\">{}</option>",
                esc(n.id.as_str()),
                esc(&n.title)
            )
        })
        .collect();
    if let Some(as_field) = smo
        && !open.is_empty()
    {
        forms.push(format!(
            "<form class=\"action\" method=\"post\" action=\"/transitions/{id}/waive\">\
             <h3>Waive a deliverable (SMO)</h3><input type=\"hidden\" name=\"csrf\" \
             value=\"{csrf}\">{as_field}<label>Deliverable <select name=\"node\">{options}\
             </select></label><label>Why <textarea name=\"reason\" rows=\"2\" required>\
             </textarea></label><label>Until (the last day it counts as done) <input \
             type=\"date\" name=\"until\" required></label>\
             <button type=\"submit\">Waive</button></form>",
            csrf = esc(csrf),
            options = open.concat(),
        ));
    }
    if forms.is_empty() {
        return String::new();
    }
    format!(
        "<section aria-labelledby=\"act\"><h2 id=\"act\">What you can do here</h2>\
         <div class=\"actions\">{}</div></section>",
        forms.join("")
    )
}

fn names(people: &[Actor]) -> String {
    let mut out: Vec<String> = Vec::new();
    for p in people {
        let p = p.to_string();
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out.join(", ")
}

/// An evidence link: a link when it is http(s), text otherwise (no `javascript:` ever links).
fn link(url: &str) -> String {
    if url.starts_with("https://") || url.starts_with("http://") {
        format!(
            "<a href=\"{u}\" rel=\"noopener noreferrer nofollow\">{u}</a>",
            u = esc(url)
        )
    } else {
        esc(url)
    }
}

/// Events the page shows, the latest first (the whole log: `opsgate transition history`).
const HISTORY: u64 = 100;

/// The transition's history: its latest events, who did what, as which role, when, and why.
async fn history(web: &Web, view: &TransitionView) -> Result<String, tonic::Status> {
    let after = view.state.seq.saturating_sub(HISTORY);
    let mut events = web
        .api
        .store()
        .events_page(&view.id, after, None)
        .await
        .map_err(crate::error::status)?;
    events.reverse();
    let mut out = format!(
        "<section aria-labelledby=\"history\"><h2 id=\"history\">History</h2>{}\
         <table class=\"history\"><thead><tr><th scope=\"col\">When (UTC)</th>\
         <th scope=\"col\">Who</th><th scope=\"col\">What</th><th scope=\"col\">Node</th>\
         <th scope=\"col\">Comment</th></tr></thead><tbody>",
        if after > 0 {
            format!(
                "<p class=\"note\">The latest {HISTORY} of {} events (the whole log: \
                 <code>opsgate transition history</code>).</p>",
                view.state.seq
            )
        } else {
            String::new()
        }
    );
    for e in &events {
        let row = crate::convert::event(e);
        let mut who = esc(&row.actor);
        if !row.acted_as.is_empty() {
            who.push_str(&format!(
                " <span class=\"id\">as {}</span>",
                esc(&row.acted_as)
            ));
        }
        if !row.on_behalf_of.is_empty() {
            who.push_str(&format!(
                " <span class=\"id\">for {}</span>",
                esc(&row.on_behalf_of)
            ));
        }
        out.push_str(&format!(
            "<tr><td>{at}</td><td>{who}</td><td>{what}</td><td>{node}</td><td>{comment}</td></tr>",
            at = e.at.format("%Y-%m-%d %H:%M"),
            what = esc(&row.kind.replace('_', " ")),
            node = esc(&row.node_id),
            comment = esc(&row.comment),
        ));
    }
    out.push_str("</tbody></table></section>");
    Ok(out)
}

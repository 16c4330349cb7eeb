//! The web pages over real HTTP: the SMO board and a transition page show what is stored (the
//! DAG as SVG, blockers in words), escape every user text, carry the security headers, and on a
//! secure server are reached only after signing in with an API token (a cookie only this site
//! reads; the form refuses a post that did not come from it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_proto::v1 as pb;
use opsgate_tests::{TestDb, TestServer, create_token, server_with_one, start_one};

const BOOTSTRAP: &str = "og_5a5a0c1b2a3948576a6b5c4d3e2f10011223344556677889900aabbccddeef12";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_and_a_transition_page_show_the_state_escaped_and_locked_down() {
    let db = TestDb::sqlite();
    let (server, _dir) = server_with_one(&db, None).await;
    let mut c = server.clients().await;
    let t = start_one(&mut c, "payroll <b>", "2.0").await;
    c.transitions
        .submit_deliverable(opsgate_tests::acting(
            "Pat",
            pb::SubmitDeliverableRequest {
                transition_id: t.id.clone(),
                deliverable_id: "d".into(),
                evidence: Some(pb::Evidence {
                    links: vec!["https://wiki.example/d?a=1&b=\"2\"".into()],
                    text: "<script>alert(1)</script>".into(),
                    attachments: Vec::new(),
                }),
            },
        ))
        .await
        .unwrap();
    let http = no_redirects();
    let board = http
        .get(format!("{}/", server.http_url))
        .send()
        .await
        .unwrap();
    assert_eq!(board.status().as_u16(), 200);
    let headers = board.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    let html = board.text().await.unwrap();
    assert!(html.contains("payroll &lt;b&gt; 2.0"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    assert!(html.contains(&format!("/transitions/{}", t.id)));
    // Dana must review: the board says on whom it waits.
    assert!(html.contains("<td>Dana</td>"), "{html}");
    // Filtered to another person: nothing.
    let none = http
        .get(format!("{}/?person=Nobody", server.http_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        none.contains("No transition in progress matches."),
        "{none}"
    );

    let page = http
        .get(format!("{}/transitions/{}", server.http_url, t.id))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    // The one script element is the page's own external script: nothing inline, nothing of
    // the user's.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(html.contains("<script src=\"/static/opsgate.js\" defer></script>"));
    // A link's text and address are escaped too.
    assert!(
        html.contains("href=\"https://wiki.example/d?a=1&amp;b=&quot;2&quot;\""),
        "{html}"
    );
    assert!(html.contains("The operations gate is closed"), "{html}");
    assert!(html.contains("waits on approval"), "{html}");
    assert!(html.contains("<svg class=\"dag\""), "{html}");
    assert!(html.contains("n-submitted"), "{html}");
    // The history: the start and the submission, by whom, the latest first.
    let history = &html[html
        .find("<h2 id=\"history\">History</h2>")
        .expect("a history")..];
    let submitted = history.find("</td><td>deliverable submitted</td><td>d</td>");
    let started = history.find("<td>transition started</td>");
    assert!(submitted.is_some() && started.is_some(), "{history}");
    assert!(submitted < started, "the latest first: {history}");
    assert!(
        history.contains("<td>Pat <span class=\"id\">as project_manager</span></td>"),
        "{history}"
    );
    assert!(html.contains(&format!("/transitions/{}/calendar.ics", t.id)));
    // The SVG drawn is well-formed XML.
    let start = html.find("<svg class=\"dag\"").unwrap();
    let end = html[start..].find("</svg>").unwrap() + start + "</svg>".len();
    roxmltree::Document::parse(&html[start..end]).unwrap();

    let missing = http
        .get(format!("{}/transitions/not-an-id", server.http_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let css = http
        .get(format!("{}/static/opsgate.css", server.http_url))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_server_shows_pages_after_signing_in_with_a_token_only() {
    let db = TestDb::sqlite();
    let (server, _dir) = server_with_one(&db, Some(BOOTSTRAP)).await;
    let http = no_redirects();
    let base = server.http_url.clone();
    assert_eq!(
        http.get(format!("{base}/"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );

    // The form sets its double-submit cookie; a post without it (another site's form) is refused.
    let form = http.get(format!("{base}/signin")).send().await.unwrap();
    let set = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure"));
    let csrf = set
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let smo = create_token(&server.url, BOOTSTRAP, "Sue", &["smo"]).await;
    let forged = http
        .post(format!("{base}/signin"))
        .form(&[("token", smo.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);

    // A wrong token: 401, no session.
    let wrong = http
        .post(format!("{base}/signin"))
        .header("cookie", format!("opsgate_signin={csrf}"))
        .form(&[("token", "og_0000"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    let signed = http
        .post(format!("{base}/signin"))
        .header("cookie", format!("opsgate_signin={csrf}"))
        .form(&[("token", smo.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 303);
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("opsgate_session="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let cookie = session.split(';').next().unwrap().to_owned();
    let board = http
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(board.status().as_u16(), 200);
    let html = board.text().await.unwrap();
    assert!(
        html.contains("Sue"),
        "the page names who is signed in: {html}"
    );

    // The session cookie is for pages: the JSON API wants the token itself.
    let api = http
        .post(format!("{base}/opsgate.v1.WorkflowService/ListWorkflows"))
        .header("cookie", &cookie)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);
    server.stop().await;
}

/// A signed-in browser: its session cookie, and the page's CSRF token read from the forms.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Browser {
    async fn sign_in(base: &str, token: &str) -> Self {
        let http = no_redirects();
        let form = http.get(format!("{base}/signin")).send().await.unwrap();
        let set = form.headers()["set-cookie"].to_str().unwrap().to_owned();
        let csrf_cookie = set.split(';').next().unwrap().to_owned();
        let csrf = csrf_cookie.split_once('=').unwrap().1.to_owned();
        let signed = http
            .post(format!("{base}/signin"))
            .header("cookie", &csrf_cookie)
            .form(&[("token", token), ("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(signed.status().as_u16(), 303);
        let cookie = signed
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("opsgate_session="))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        Self {
            http,
            base: base.to_owned(),
            cookie,
        }
    }

    async fn page(&self, path: &str) -> String {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        response.text().await.unwrap()
    }

    /// Posts `fields` (and the CSRF token of `page`'s forms) to `action`; the status.
    async fn post(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> u16 {
        let html = self.page(page).await;
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("")
            .to_owned();
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", csrf.as_str()));
        self.http
            .post(format!("{}{action}", self.base))
            .header("cookie", &self.cookie)
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Posts `fields` and `files` (name, bytes) as `multipart/form-data`, with the CSRF token
    /// of `page`'s forms; the status.
    async fn upload(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
        files: &[(&str, Vec<u8>)],
    ) -> u16 {
        let html = self.page(page).await;
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("")
            .to_owned();
        let mut form = reqwest::multipart::Form::new().text("csrf", csrf);
        for (k, v) in fields {
            form = form.text((*k).to_owned(), (*v).to_owned());
        }
        for (name, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone())
                    .file_name((*name).to_owned())
                    .mime_str("text/plain")
                    .unwrap(),
            );
        }
        self.http
            .post(format!("{}{action}", self.base))
            .header("cookie", &self.cookie)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

/// A file uploaded with a submission is stored with the transition under its SHA-256, named in
/// the evidence, shown on the page and downloaded by those who may read the transition only; a
/// refused submission or a file over the limit leaves nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_as_evidence_is_stored_with_its_hash_and_downloaded_by_readers() {
    let db = TestDb::sqlite();
    let (server, _dir) = server_with_one(&db, Some(BOOTSTRAP)).await;
    let token = |who: &'static str, role: &'static str| {
        let url = server.url.clone();
        async move { create_token(&url, BOOTSTRAP, who, &[role]).await }
    };
    let pat_token = token("Pat", "project_manager").await;
    let pat = Browser::sign_in(&server.http_url, &pat_token).await;
    let dana = Browser::sign_in(&server.http_url, &token("Dana", "approver").await).await;
    let eve = Browser::sign_in(&server.http_url, &token("Eve", "approver").await).await;
    let mut c = server.clients().await;
    c.credentials = None;
    let t = opsgate_tests::start_one_by(&mut c, &pat_token, "payroll", "6.0").await;
    let page = format!("/transitions/{}", t.id);
    let submit = format!("{page}/submit");
    let runbook = b"# Payroll runbook\nRestart: systemctl restart payroll\n".to_vec();
    let sha = opsgate_domain::hash::sha256_hex(&runbook);

    // Dana is not the owner: refused, and the file she sent is not kept.
    let status = dana
        .upload(
            &page,
            &submit,
            &[("node", "d")],
            &[("runbook.md", runbook.clone())],
        )
        .await;
    assert_eq!(status, 403);
    assert!(
        server
            .store()
            .attachment(&t.id, &sha)
            .await
            .unwrap()
            .is_none()
    );
    // Over the limit: refused before anything is stored.
    let huge = vec![b'x'; opsgate_store::MAX_ATTACHMENT_BYTES + 1];
    let status = pat
        .upload(&page, &submit, &[("node", "d")], &[("huge.log", huge)])
        .await;
    assert_eq!(status, 413);

    let status = pat
        .upload(
            &page,
            &submit,
            &[("node", "d"), ("text", "runbook attached")],
            &[("C:\\docs\\Payroll runbook.md", runbook.clone())],
        )
        .await;
    assert_eq!(status, 303);
    let stored = server
        .store()
        .attachment(&t.id, &sha)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "Payroll runbook.md");
    assert_eq!(stored.uploaded_by, "Pat");
    // The evidence names it by its hash.
    let got = c
        .transitions
        .get_transition(opsgate_tests::bearer(
            &pat_token,
            pb::GetTransitionRequest {
                transition_id: t.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .transition
        .unwrap();
    let evidence = got
        .nodes
        .iter()
        .find(|n| n.id == "d")
        .and_then(|n| n.evidence.clone())
        .unwrap();
    assert_eq!(evidence.attachments.len(), 1);
    assert_eq!(evidence.attachments[0].sha256, sha);
    assert_eq!(
        evidence.attachments[0].uri,
        format!("opsgate:attachments/{sha}/Payroll_runbook.md")
    );
    // The page links the download; the approver downloads the very bytes, as a file.
    let download = format!("{page}/attachments/{sha}");
    let html = dana.page(&page).await;
    assert!(html.contains(&download), "{html}");
    assert!(html.contains("Payroll_runbook.md"), "{html}");
    let file = dana
        .http
        .get(format!("{}{download}", dana.base))
        .header("cookie", &dana.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(file.headers()["content-type"], "application/octet-stream");
    let disposition = file.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains("Payroll%20runbook.md"),
        "{disposition}"
    );
    assert_eq!(file.bytes().await.unwrap().to_vec(), runbook);
    // Eve has no part in this transition: no download.
    let refused = eve
        .http
        .get(format!("{}{download}", eve.base))
        .header("cookie", &eve.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let unknown = dana
        .http
        .get(format!(
            "{}{page}/attachments/{}",
            dana.base,
            "0".repeat(64)
        ))
        .header("cookie", &dana.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_submit_review_and_accept_on_the_page_each_only_what_is_theirs() {
    let db = TestDb::sqlite();
    let (server, _dir) = server_with_one(&db, Some(BOOTSTRAP)).await;
    let token = |who: &'static str, role: &'static str| {
        let url = server.url.clone();
        async move { create_token(&url, BOOTSTRAP, who, &[role]).await }
    };
    let pat = Browser::sign_in(&server.http_url, &token("Pat", "project_manager").await).await;
    let dana = Browser::sign_in(&server.http_url, &token("Dana", "approver").await).await;
    let sam = Browser::sign_in(&server.http_url, &token("Sam", "service_manager").await).await;
    let mut c = server.clients().await;
    let pat_token = token("Pat", "project_manager").await;
    c.credentials = None;
    let t = opsgate_tests::start_one_by(&mut c, &pat_token, "payroll", "5.0").await;
    let page = format!("/transitions/{}", t.id);
    let submit = format!("{page}/submit");
    let review = format!("{page}/review");
    let accept = format!("{page}/accept");

    // Pat owns D: only Pat's page offers to submit it; Dana's offers nothing yet. My work says
    // the same.
    assert!(pat.page(&page).await.contains("Submit 'D'"));
    assert!(pat.page("/me").await.contains("Submit &#39;D&#39;"));
    assert!(
        dana.page("/me")
            .await
            .contains("Nothing waits on you right now.")
    );
    assert!(!dana.page(&page).await.contains("<form class=\"action\""));
    // A POST without the page's CSRF token is refused, and nothing changes.
    let forged = pat
        .http
        .post(format!("{}{submit}", pat.base))
        .header("cookie", &pat.cookie)
        .form(&[("node", "d"), ("links", "https://wiki.example/d")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert!(pat.page(&page).await.contains("s-open"));

    let links = [
        ("node", "d"),
        ("links", "https://wiki.example/d\nhttps://wiki.example/d2"),
    ];
    assert_eq!(pat.post(&page, &submit, &links).await, 303);
    let html = dana.page(&page).await;
    assert!(html.contains("Review 'D'"), "{html}");
    assert!(dana.page("/me").await.contains("Review &#39;D&#39;"));
    assert!(pat.page("/me").await.contains("Nothing waits on you"));
    assert!(html.contains("https://wiki.example/d2"), "{html}");
    // Dana asks for changes; without a comment the API refuses it, with the reason shown.
    let status = dana
        .post(
            &page,
            &review,
            &[("node", "d"), ("decision", "request_changes")],
        )
        .await;
    assert_eq!(status, 400);
    let changes = [
        ("node", "d"),
        ("decision", "request_changes"),
        ("comment", "add the escalation numbers"),
    ];
    assert_eq!(dana.post(&page, &review, &changes).await, 303);
    assert!(pat.page(&page).await.contains("add the escalation numbers"));
    assert!(
        pat.page("/me")
            .await
            .contains("Rework and resubmit &#39;D&#39;")
    );
    assert_eq!(pat.post(&page, &submit, &links).await, 303);
    // Resubmitted: the request for changes is history now, and the page says so.
    assert!(
        dana.page(&page).await.contains(
            "<span class=\"earlier\">earlier, round 1:</span> add the escalation numbers"
        )
    );
    // Pat may not approve his own work: the API refuses the forged review.
    let approve = [("node", "d"), ("decision", "approve")];
    assert_eq!(pat.post(&page, &review, &approve).await, 403);
    assert_eq!(dana.post(&page, &review, &approve).await, 303);

    // The gate is open: Sam's page offers the acceptance, Dana's does not; Dana's POST fails.
    assert!(sam.page(&page).await.contains("Accept the handover"));
    assert!(
        sam.page("/me")
            .await
            .contains("Accept or reject the handover")
    );
    assert!(!dana.page(&page).await.contains("Accept the handover</h3>"));
    assert_ne!(dana.post(&page, &accept, &[]).await, 303);
    assert_eq!(
        sam.post(&page, &accept, &[("comment", "ours now")]).await,
        303
    );
    let html = sam.page(&page).await;
    assert!(html.contains("The operations gate is open"), "{html}");
    assert!(html.contains("handover accepted"), "{html}");
    assert!(sam.page("/me").await.contains("Nothing waits on you"));
    server.stop().await;
}

/// An open transition page hears of a change made elsewhere within seconds: its event stream
/// sends `changed` with the new sequence number (the page's script then reads itself again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_page_hears_when_someone_else_acts() {
    for db in TestDb::all().await {
        let (server, _dir) = server_with_one(&db, None).await;
        let mut c = server.clients().await;
        let t = start_one(&mut c, "payroll", "6.0").await;
        let http = no_redirects();
        let html = http
            .get(format!("{}/transitions/{}", server.http_url, t.id))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let live = html
            .split("data-live=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .replace("&amp;", "&");
        assert!(html.contains("<script src=\"/static/opsgate.js\" defer></script>"));
        let script = http
            .get(format!("{}/static/opsgate.js", server.http_url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            script.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );

        let mut events = http
            .get(format!("{}{live}", server.http_url))
            .send()
            .await
            .unwrap();
        assert_eq!(events.headers()["content-type"], "text/event-stream");
        opsgate_tests::submit(&mut c, &t.id, "d", "Pat")
            .await
            .unwrap();
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !seen.contains("event: changed") {
            let chunk = tokio::time::timeout_at(deadline, events.chunk())
                .await
                .unwrap_or_else(|_| panic!("no change event within 5 s on {}: {seen}", db.backend))
                .unwrap()
                .unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let after = opsgate_tests::get(&mut c, &t.id).await;
        assert!(
            seen.contains(&format!("data: {}", after.event_count)),
            "{seen} (seq {})",
            after.event_count
        );
        server.stop().await;
    }
}

const SIGNED: &str = "\
name: signed
roles: {desk: {description: reviews}}
milestones:
  - {id: kickoff, title: Kick-off held, sign_off: project_manager}
deliverables:
  - {id: d, title: D, owner: project_manager, approver: desk, needs: [kickoff]}
gate: {id: gate, title: Gate, needs: [d]}
";

/// On a development server each form names who acts ("Acting as"): a milestone is signed off
/// on the page, and the service manager rejects the handover with reasons, reopening D.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_milestone_is_signed_off_and_the_handover_rejected_on_the_page() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signed.yaml"), SIGNED).unwrap();
    let server = TestServer::start_config(
        &db,
        opsgate_server::Config {
            workflows_dir: Some(dir.path().to_owned()),
            insecure_dev: true,
            ..opsgate_server::Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await;
    let mut c = server.clients().await;
    let t = opsgate_tests::start_with(
        &mut c,
        pb::StartTransitionRequest {
            workflow_name: "signed".into(),
            service_name: "payroll".into(),
            service_version: "8.0".into(),
            project_manager: "Pat".into(),
            service_manager: "Sam".into(),
            target_go_live: opsgate_tests::go_live(),
            participants: vec![pb::Participant {
                role: "desk".into(),
                people: vec!["Dana".into()],
            }],
            ..Default::default()
        },
    )
    .await;
    let http = no_redirects();
    let page = format!("{}/transitions/{}", server.http_url, t.id);
    let html = http.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Sign off 'Kick-off held'"), "{html}");
    assert!(
        html.contains("<input name=\"as\" value=\"Pat\" required>"),
        "{html}"
    );
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let post = |action: &'static str, fields: Vec<(&'static str, String)>| {
        let (http, url, csrf) = (http.clone(), format!("{page}/{action}"), csrf.clone());
        async move {
            let mut form = fields;
            form.push(("csrf", csrf));
            http.post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let signed = post(
        "sign-off",
        vec![("node", "kickoff".into()), ("as", "Pat".into())],
    )
    .await;
    assert_eq!(signed, 303);
    assert_eq!(
        opsgate_tests::status_of(&opsgate_tests::get(&mut c, &t.id).await, "kickoff"),
        pb::NodeStatus::Reached
    );
    opsgate_tests::submit(&mut c, &t.id, "d", "Pat")
        .await
        .unwrap();
    opsgate_tests::review(&mut c, &t.id, "d", pb::ReviewDecision::Approve, "", "Dana")
        .await
        .unwrap();
    let html = http.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Reject the handover"), "{html}");
    assert!(html.contains("name=\"reopen\" value=\"d\""), "{html}");
    let rejected = post(
        "reject",
        vec![
            ("as", "Sam".into()),
            ("reasons", "no runbook\nno on-call rota".into()),
            ("reopen", "d".into()),
        ],
    )
    .await;
    assert_eq!(rejected, 303);
    let after = opsgate_tests::get(&mut c, &t.id).await;
    assert_ne!(
        opsgate_tests::status_of(&after, "d"),
        pb::NodeStatus::Approved
    );
    let html = http.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("The operations gate is closed"), "{html}");
    // The SMO waives D for a while: the gate opens on the waiver.
    assert!(html.contains("Waive a deliverable (SMO)"), "{html}");
    let until = (chrono::Utc::now() + chrono::Duration::days(30))
        .date_naive()
        .to_string();
    let waived = post(
        "waive",
        vec![
            ("as", "Sue".into()),
            ("node", "d".into()),
            ("reason", "signed on paper".into()),
            ("until", until),
        ],
    )
    .await;
    assert_eq!(waived, 303);
    let html = http.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("waived by Sue"), "{html}");
    assert!(html.contains("The operations gate is open"), "{html}");
    // A waiver without its last day is refused with the reason.
    let bad = post(
        "waive",
        vec![
            ("as", "Sue".into()),
            ("node", "d".into()),
            ("reason", "x".into()),
        ],
    )
    .await;
    assert_eq!(bad, 400);
    let stalled = http
        .get(format!("{}/stalled", server.http_url))
        .send()
        .await
        .unwrap();
    assert_eq!(stalled.status().as_u16(), 200);
    assert!(
        stalled
            .text()
            .await
            .unwrap()
            .contains("Nothing is stalled.")
    );
    server.stop().await;
}

/// A deliverable's template is downloadable next to it on the transition page, as stored with
/// the workflow version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transition_page_offers_each_deliverables_template() {
    let db = TestDb::sqlite();
    let server = TestServer::start_with(&db, Some(opsgate_tests::workflows_dir())).await;
    let mut c = server.clients().await;
    let t = opsgate_tests::start(&mut c, "9.0").await;
    let http = no_redirects();
    let html = http
        .get(format!("{}/transitions/{}", server.http_url, t.id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link = format!("/transitions/{}/templates/knowledge-articles", t.id);
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    let got = http
        .get(format!("{}{link}", server.http_url))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(
        got.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    assert_eq!(
        got.headers()["content-disposition"],
        "attachment; filename=\"knowledge-article.md\""
    );
    let shipped = std::fs::read_to_string(
        opsgate_tests::workflows_dir().join("templates/knowledge-article.md"),
    )
    .unwrap();
    assert_eq!(got.text().await.unwrap(), shipped);
    let none = http
        .get(format!(
            "{}/transitions/{}/templates/resolver-group",
            server.http_url, t.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status().as_u16(), 404);
    // The process descriptions: every workflow with its roles, graph and plan.
    let workflows = http
        .get(format!("{}/workflows", server.http_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "href=\"/workflows/standard-transition\"",
        "href=\"/workflows/service-desk-first\"",
    ] {
        assert!(workflows.contains(expected), "{expected}: {workflows}");
    }
    // One workflow's whole description: the document `opsgate workflow docs` writes.
    let one = http
        .get(format!("{}/workflows/standard-transition", server.http_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "<code>service_desk_lead</code>",
        "<svg class=\"dag\"",
        "go_live - 15d",
        "templates/knowledge-article.md",
        "Roles and responsibilities",
    ] {
        assert!(one.contains(expected), "{expected}: {one}");
    }
    let missing = http
        .get(format!("{}/workflows/no-such-workflow", server.http_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    server.stop().await;
}

/// The board shows fifty transitions to a page, with links to the next and the first page
/// keeping the filters, every transition on exactly one page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_pages_fifty_at_a_time() {
    let db = TestDb::sqlite();
    let (server, _dir) = server_with_one(&db, None).await;
    let mut c = server.clients().await;
    for i in 0..55 {
        start_one(&mut c, "payroll", &format!("{i}.0")).await;
    }
    let http = no_redirects();
    let rows = |html: &str| html.matches("<tr><td><a href=\"/transitions/").count();
    let first = http
        .get(format!("{}/?service=payroll", server.http_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&first), 50);
    let next = first
        .split("<a rel=\"next\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a link to the next page")
        .replace("&amp;", "&");
    assert!(next.starts_with("/?service=payroll&after="), "{next}");
    let second = http
        .get(format!("{}{next}", server.http_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&second), 5);
    assert!(second.contains("rel=\"first\""));
    assert!(!second.contains("rel=\"next\""));
    // Every transition once over the two pages.
    let ids = |html: &str| -> Vec<String> {
        html.split("<tr><td><a href=\"/transitions/")
            .skip(1)
            .map(|r| r.split('"').next().unwrap().to_owned())
            .collect()
    };
    let mut all = ids(&first);
    all.extend(ids(&second));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 55);
    server.stop().await;
}

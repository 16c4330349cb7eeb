//! `opsgate workflow docs` (issue "What the SMO hands every transition"): each shipped
//! workflow's process description in Markdown and HTML matches its golden file under
//! `tests/data/docs/` (`OPSGATE_UPDATE_GOLDEN=1` rewrites them after a deliberate change), and
//! names every role, deliverable and template of the workflow; the HTML is well-formed XML
//! apart from its doctype, and every user text in it is escaped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_domain::{NodeKind, Workflow, docs};
use opsgate_tests::workflows_dir;

fn golden(name: &str, rendered: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/docs")
        .join(name);
    if std::env::var("OPSGATE_UPDATE_GOLDEN").is_ok() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (OPSGATE_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    assert!(
        expected == rendered,
        "{} differs from what is rendered now; review the change and run with \
         OPSGATE_UPDATE_GOLDEN=1 to accept it",
        path.display()
    );
}

#[test]
fn each_shipped_workflow_renders_its_process_description() {
    let mut seen = 0;
    for entry in std::fs::read_dir(workflows_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        seen += 1;
        let source = std::fs::read_to_string(&path).unwrap();
        let wf = Workflow::parse(&path.display().to_string(), &source).unwrap();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let markdown = docs::markdown(&wf);
        let html = docs::html(&wf);
        golden(&format!("{stem}.md"), &markdown);
        golden(&format!("{stem}.html"), &html);
        for role in wf.roles() {
            assert!(
                markdown.contains(&format!("`{}`", role.name)),
                "{stem}: role {}",
                role.name
            );
            assert!(
                html.contains(&format!("<code>{}</code>", role.name)),
                "{stem}: role {}",
                role.name
            );
        }
        for node in wf.nodes() {
            assert!(
                markdown.contains(&format!("(`{}`)", node.id)),
                "{stem}: {}",
                node.id
            );
            assert!(
                html.contains(&format!("id=\"node-{}\"", node.id)),
                "{stem}: {}",
                node.id
            );
            if let NodeKind::Deliverable(d) = &node.kind
                && let Some(template) = &d.template
            {
                assert!(
                    markdown.contains(&format!("Template: {template}")),
                    "{stem}: {template}"
                );
                assert!(html.contains(template.as_str()), "{stem}: {template}");
            }
        }
        assert!(markdown.contains("```mermaid\nflowchart"), "{stem}");
        assert!(html.contains("<svg class=\"dag\""), "{stem}");
        // Well-formed: the document parses as XML once the doctype is set aside.
        let body = html.trim_start_matches("<!doctype html>\n");
        roxmltree::Document::parse(body).unwrap_or_else(|e| panic!("{stem}.html: {e}"));
    }
    assert!(seen >= 3, "the shipped workflows were not found");
}

#[test]
fn user_text_in_a_workflow_is_escaped_in_the_html() {
    let source = "\
name: hostile
description: <script>alert(1)</script> & more
roles: {desk: {description: '<b>desk</b>'}}
deliverables:
  - {id: d, title: '<img src=x onerror=alert(1)>', owner: project_manager, approver: desk}
gate: {id: gate, title: Gate, needs: [d]}
";
    let wf = Workflow::parse("hostile.yaml", source).unwrap();
    let html = docs::html(&wf);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
    let markdown = docs::markdown(&wf);
    assert!(
        markdown.contains("<img src=x onerror=alert(1)>"),
        "Markdown keeps the text as written"
    );
}

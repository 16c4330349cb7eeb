//! The HTTP API for pipelines and generic tools, against a real server: the gate decision as
//! JSON and as a badge (valid SVG) with `GET /api/v1/gates/...`; every unary RPC as `POST
//! /opsgate.v1.<Service>/<Method>` with protobuf JSON (Connect's unary shape, errors as JSON with
//! the gRPC code and an HTTP status), with and without tokens; gRPC reflection v1alpha.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_proto::v1 as pb;
use opsgate_tests::{TestDb, create_token, server_with_one, start_one};
use serde_json::{Value, json};

const BOOTSTRAP: &str = "og_7e5d0c1b2a3948576a6b5c4d3e2f10011223344556677889900aabbccddeeff0";

async fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

/// POSTs `body` as JSON to the RPC `rpc`, with `headers`; the status and the JSON answer.
async fn post(base: &str, rpc: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/{rpc}"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

/// The badge parses as SVG and says `word`.
fn assert_badge(svg: &str, word: &str) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let texts: Vec<&str> = root
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(texts, ["ops gate", word], "{svg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_answers_curl_as_json_and_as_a_badge() {
    for db in TestDb::all().await {
        let (server, _dir) = server_with_one(&db, None).await;
        let mut c = server.clients().await;
        let t = start_one(&mut c, "payroll", "1.0").await;
        let base = format!("{}/api/v1/gates/payroll/1.0", server.http_url);

        let (status, kind, body) = get(&base).await;
        assert_eq!((status, kind.as_str()), (200, "application/json"), "{body}");
        let decision: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(decision["open"], json!(false), "{decision}");
        assert_eq!(decision["state"], json!("GATE_STATE_CLOSED"));
        assert_eq!(decision["transitionId"], json!(t.id));
        assert_eq!(decision["blockers"][0]["nodeId"], json!("d"));
        assert!(
            decision["summary"].as_str().unwrap().contains('d'),
            "{decision}"
        );
        let (status, kind, svg) = get(&format!("{base}/badge.svg")).await;
        assert_eq!(
            (status, kind.as_str()),
            (200, "image/svg+xml; charset=utf-8")
        );
        assert_badge(&svg, "closed");

        opsgate_tests::submit(&mut c, &t.id, "d", "Pat")
            .await
            .unwrap();
        opsgate_tests::review(&mut c, &t.id, "d", pb::ReviewDecision::Approve, "", "Dana")
            .await
            .unwrap();
        let (_, _, body) = get(&base).await;
        let decision: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(decision["open"], json!(true), "{decision}");
        assert_eq!(decision["state"], json!("GATE_STATE_OPEN"));
        assert_eq!(decision["awaitingAcceptanceBy"], json!("Sam"));
        assert_badge(&get(&format!("{base}/badge.svg")).await.2, "open");

        // A service version nobody started: 404 with a JSON error; the badge says unknown.
        let missing = format!("{}/api/v1/gates/payroll/9.9", server.http_url);
        let (status, _, body) = get(&missing).await;
        assert_eq!(status, 404, "{body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["code"], json!("not_found"));
        let (status, _, svg) = get(&format!("{missing}/badge.svg")).await;
        assert_eq!(status, 404);
        assert_badge(&svg, "unknown");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unary_rpc_is_callable_as_json_with_the_same_authentication() {
    let db = TestDb::sqlite();
    let (server, _dir) = server_with_one(&db, Some(BOOTSTRAP)).await;
    let base = server.http_url.clone();
    let check = "opsgate.v1.GateService/CheckGate";
    let target = r#"{"service": {"name": "payroll", "version": "1.0"}}"#;

    // No token: 401 with a Bearer challenge, as JSON.
    let (status, error) = post(&base, check, target, &[]).await;
    assert_eq!(status, 401, "{error}");
    assert_eq!(error["code"], json!("unauthenticated"));

    // A write over JSON with the project manager's token, then the gate with a CI-like reader.
    let pat = create_token(&server.url, BOOTSTRAP, "Pat", &["project_manager"]).await;
    let pat = format!("Bearer {pat}");
    let (status, started) = post(
        &base,
        "opsgate.v1.TransitionService/StartTransition",
        r#"{"workflowName": "one", "serviceName": "payroll", "serviceVersion": "1.0",
            "projectManager": "Pat", "serviceManager": "Sam", "targetGoLive": "2030-01-31",
            "participants": [{"role": "desk", "people": ["Dana"]}]}"#,
        &[("authorization", &pat)],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let id = started["transition"]["id"].as_str().unwrap().to_owned();
    let reader = create_token(&server.url, BOOTSTRAP, "pipeline", &["ci"]).await;
    let reader = format!("Bearer {reader}");
    let (status, decision) = post(&base, check, target, &[("authorization", &reader)]).await;
    assert_eq!(status, 200, "{decision}");
    assert_eq!(decision["transitionId"], json!(id));
    assert_eq!(decision["open"], json!(false));

    // The role table holds over JSON as over gRPC: the CI token may not start transitions.
    let (status, error) = post(
        &base,
        "opsgate.v1.TransitionService/StartTransition",
        "{}",
        &[("authorization", &reader)],
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (403, Some("permission_denied"))
    );

    // Bad input gets the RPC's own answer, or the bridge's, each as JSON a person can act on.
    let (status, error) = post(
        &base,
        check,
        "{\"service\": 3}",
        &[("authorization", &reader)],
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_argument")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("opsgate.v1.CheckGateRequest"),
        "{error}"
    );
    let (status, error) = post(&base, check, "{}", &[("authorization", &reader)]).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_argument")),
        "{error}"
    );
    let (status, error) = post(
        &base,
        "opsgate.v1.GateService/NoSuchMethod",
        "{}",
        &[("authorization", &reader)],
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (501, Some("unimplemented"))
    );
    let (status, error) = post(
        &base,
        "opsgate.v1.GateService/WatchGate",
        target,
        &[("authorization", &reader)],
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (501, Some("unimplemented")),
        "{error}"
    );
    let response = reqwest::Client::new()
        .post(format!("{base}/{check}"))
        .header("authorization", &reader)
        .header("content-type", "text/plain")
        .body(target)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);

    // The JSON gate endpoint with and without a token.
    let gate = format!("{base}/api/v1/gates/payroll/1.0");
    assert_eq!(reqwest::get(&gate).await.unwrap().status().as_u16(), 401);
    let response = reqwest::Client::new()
        .get(&gate)
        .header("authorization", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_the_services() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let db = TestDb::sqlite();
    let (server, _dir) = server_with_one(&db, None).await;
    let channel = tonic::transport::Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream_once(request))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("{answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "opsgate.v1.WorkflowService",
        "opsgate.v1.TransitionService",
        "opsgate.v1.GateService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == service), "{service} in {names:?}");
    }
    server.stop().await;
}

/// A request stream of one message.
fn tokio_stream_once<T: Send + 'static>(
    item: T,
) -> impl tonic::codegen::tokio_stream::Stream<Item = T> + Send + 'static {
    tonic::codegen::tokio_stream::iter(std::iter::once(item))
}

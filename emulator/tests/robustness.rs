//! The emulator under hostile or broken input, over raw HTTP: forged and foreign page tokens,
//! refusals below the operations (wrong method, oversized body, undecodable path) answered the
//! way SiteWise answers, members of the wrong JSON type, ETag preconditions, and calls that
//! complete when the client hangs up or the answer is lost.

use std::time::Duration;

use aws_sdk_iotsitewise::operation::delete_asset_model::DeleteAssetModelError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sitewise_emulator::Emulator;
use sitewise_emulator::config::{Quotas, Settings};
use sitewise_emulator::faults::OpFaults;
use sitewise_emulator::ops::Op;
use sitewise_emulator::seed::{self, Seed, Seeded};
use sitewise_operator::sitewise::aws::emulator_client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn setup() -> (Emulator, Seeded) {
    let settings = Settings {
        quotas: Quotas {
            enabled: false,
            ..Quotas::default()
        },
        ..Settings::default()
    };
    let emu = Emulator::start_local(settings).await.expect("emulator");
    let seed: Seed = serde_json::from_value(serde_json::json!({
        "models": [
            {"name": "Machine", "externalId": "machine"},
            {"name": "Line", "externalId": "line", "hierarchies": [
                {"name": "Machines", "externalId": "machines", "childModel": "externalId:machine"}]}
        ],
        "assets": [
            {"name": "line-1", "externalId": "line-1", "model": "externalId:line"},
            {"name": "line-2", "externalId": "line-2", "model": "externalId:line"},
            {"name": "m1", "model": "externalId:machine", "parent": "externalId:line-1", "hierarchy": "externalId:machines"},
            {"name": "m2", "model": "externalId:machine", "parent": "externalId:line-1", "hierarchy": "externalId:machines"}
        ]
    }))
    .expect("seed");
    let seeded = seed::apply(&mut emu.store(), &seed).expect("seeded");
    (emu, seeded)
}

struct Answer {
    status: u16,
    error_type: Option<String>,
    body: serde_json::Value,
}

/// One HTTP/1.1 request; `None` when no answer came within `wait`.
async fn send(
    emu: &Emulator,
    method: &str,
    path: &str,
    body: &[u8],
    wait: Duration,
) -> Option<Answer> {
    let addr = emu.endpoint().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    // A large body may be refused before it is all sent; what was sent is enough.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    tokio::time::timeout(wait, stream.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let error_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-amzn-errortype:")
                .map(|v| v.trim().to_string())
        })
        .map(|v| {
            // Header values keep their case in the answer; compare case-insensitively.
            v.to_string()
        });
    Some(Answer {
        status,
        error_type,
        body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    })
}

const WAIT: Duration = Duration::from_secs(5);

fn assert_aws_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    assert_eq!(
        answer.error_type.as_deref(),
        Some(code.to_ascii_lowercase().as_str()),
        "{:?}",
        answer.body
    );
    assert!(answer.body["message"].is_string(), "{:?}", answer.body);
}

#[tokio::test]
async fn forged_and_foreign_page_tokens_are_refused_not_crashed_on() {
    let (emu, seeded) = setup().await;
    let line = &seeded.assets["line-1"];
    let listing =
        format!("/assets/{line}/hierarchies?hierarchyId=externalId%3Amachines&maxResults=1");
    let first = send(&emu, "GET", &listing, b"", WAIT)
        .await
        .expect("answer");
    let token = first.body["nextToken"]
        .as_str()
        .expect("a next page")
        .to_string();
    let second = send(
        &emu,
        "GET",
        &format!("{listing}&nextToken={}", urlencode(&token)),
        b"",
        WAIT,
    )
    .await
    .expect("answer");
    assert_eq!(second.status, 200);
    assert_eq!(
        second.body["assetSummaries"].as_array().map(Vec::len),
        Some(1)
    );
    let forged = [
        B64.encode("offset:18446744073709551615"),
        B64.encode("v1:18446744073709551615:0000000000000000"),
        B64.encode("v1:1:0000000000000000"),
    ];
    let other = format!(
        "/assets/{}/hierarchies?hierarchyId=externalId%3Amachines&maxResults=1",
        seeded.assets["line-2"]
    );
    for path in forged
        .iter()
        .map(|t| format!("{listing}&nextToken={}", urlencode(t)))
        .chain([format!("{other}&nextToken={}", urlencode(&token))])
    {
        let answer = send(&emu, "GET", &path, b"", WAIT)
            .await
            .expect("an answer, not a crash");
        assert_aws_error(&answer, 400, "InvalidRequestException");
    }
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

#[tokio::test]
async fn refusals_below_the_operations_are_aws_shaped() {
    let (emu, seeded) = setup().await;
    let line = &seeded.assets["line-1"];
    let wrong_method = send(&emu, "PATCH", &format!("/assets/{line}"), b"", WAIT)
        .await
        .expect("answer");
    assert_aws_error(&wrong_method, 404, "UnknownOperationException");
    let huge = vec![b' '; 3 * 1024 * 1024];
    let too_large = send(&emu, "POST", "/assets", &huge, WAIT)
        .await
        .expect("answer");
    assert_aws_error(&too_large, 413, "RequestEntityTooLargeException");
    let undecodable = send(&emu, "GET", "/assets/%FF%FE", b"", WAIT)
        .await
        .expect("answer");
    assert_aws_error(&undecodable, 400, "InvalidRequestException");
}

#[tokio::test]
async fn a_client_token_of_the_wrong_type_is_refused_not_ignored() {
    let (emu, _) = setup().await;
    let body = br#"{"assetName":"press","assetModelId":"externalId:machine","clientToken":123456789012345678901234567890123456}"#;
    let answer = send(&emu, "POST", "/assets", body, WAIT)
        .await
        .expect("answer");
    assert_aws_error(&answer, 400, "InvalidRequestException");
    assert_eq!(
        emu.store().snapshot()["assets"].as_array().map(Vec::len),
        Some(4)
    );
}

#[tokio::test]
async fn delete_asset_model_honours_if_match() {
    let (emu, _) = setup().await;
    let client = emulator_client(&emu.endpoint());
    // A model nobody uses.
    let model = client
        .create_asset_model()
        .asset_model_name("Spare")
        .send()
        .await
        .expect("created")
        .asset_model_id
        .clone();
    emu.store().force_active(&model);
    let described = client
        .describe_asset_model()
        .asset_model_id(&model)
        .send()
        .await
        .expect("described");
    let etag = described.e_tag().expect("an ETag").to_string();
    let stale = format!("{}x", &etag[..42]);
    let err = client
        .delete_asset_model()
        .asset_model_id(&model)
        .if_match(&stale)
        .send()
        .await
        .expect_err("precondition");
    assert!(
        matches!(
            err.as_service_error(),
            Some(DeleteAssetModelError::PreconditionFailedException(_))
        ),
        "{err:?}"
    );
    client
        .delete_asset_model()
        .asset_model_id(&model)
        .if_match(&etag)
        .send()
        .await
        .expect("deleted with the current ETag");
}

#[tokio::test]
async fn a_call_completes_when_the_client_hangs_up_or_its_answer_is_lost() {
    let (emu, _) = setup().await;
    emu.store().settings.faults.operations.insert(
        "CreateAsset".into(),
        OpFaults {
            latency: Duration::from_millis(400),
            ..OpFaults::default()
        },
    );
    let body = br#"{"assetName":"hung-up","assetModelId":"externalId:machine"}"#;
    // The client gives up during the latency, before the call ran.
    assert!(
        send(&emu, "POST", "/assets", body, Duration::from_millis(50))
            .await
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let created = |name: &str| {
        emu.store().snapshot()["assets"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["name"] == name))
    };
    assert!(created("hung-up"), "the call ran to completion");

    emu.store().settings.faults.operations.insert(
        "CreateAsset".into(),
        OpFaults {
            lost: 1.0,
            ..OpFaults::default()
        },
    );
    let body = br#"{"assetName":"lost","assetModelId":"externalId:machine"}"#;
    assert!(
        send(&emu, "POST", "/assets", body, Duration::from_millis(500))
            .await
            .is_none()
    );
    assert!(
        created("lost"),
        "the call took effect; only its answer is lost"
    );
    let journal = emu.store().journal().to_vec();
    assert_eq!(
        journal
            .iter()
            .filter(|e| e.operation == Op::CreateAsset && e.status == 202)
            .count(),
        2
    );
}

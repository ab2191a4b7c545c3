//! Several accounts and Regions: requests are served by the state of the account their
//! access key belongs to, in the Region they were signed for, and ARNs say which.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_iotsitewise::Client;
use aws_sdk_iotsitewise::config::Credentials;
use sitewise_emulator::Emulator;
use sitewise_emulator::config::{Quotas, Settings};
use sitewise_operator::sitewise::aws::KeepEndpointHost;

fn client(endpoint: &str, key: &str, region: &str) -> Client {
    let config = aws_sdk_iotsitewise::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(key, "secret", None, None, "test"))
        .endpoint_url(endpoint)
        .interceptor(KeepEndpointHost::new(endpoint))
        .build();
    Client::from_conf(config)
}

#[tokio::test]
async fn accounts_and_regions_are_kept_apart() {
    let settings = Settings {
        quotas: Quotas {
            enabled: false,
            ..Quotas::default()
        },
        account_keys: [("KEY-A".to_string(), "111111111111".to_string())].into(),
        ..Settings::default()
    };
    let emu = Emulator::start_local(settings).await.expect("emulator");
    let a_eu = client(&emu.endpoint(), "KEY-A", "eu-west-1");
    let a_us = client(&emu.endpoint(), "KEY-A", "us-east-1");
    let own = client(&emu.endpoint(), "unknown-key", "us-east-1");
    let created = a_eu
        .create_asset_model()
        .asset_model_name("Machine")
        .send()
        .await
        .expect("create in account A, eu-west-1");
    assert!(
        created
            .asset_model_arn()
            .starts_with("arn:aws:iotsitewise:eu-west-1:111111111111:asset-model/"),
        "{}",
        created.asset_model_arn()
    );
    // The same name is free in another Region of that account, and in the emulator's own.
    for other in [&a_us, &own] {
        let err = other
            .describe_asset_model()
            .asset_model_id(created.asset_model_id())
            .send()
            .await
            .expect_err("not visible elsewhere");
        assert_eq!(
            aws_sdk_iotsitewise::error::ProvideErrorMetadata::code(&err),
            Some("ResourceNotFoundException")
        );
        other
            .create_asset_model()
            .asset_model_name("Machine")
            .send()
            .await
            .expect("a name is unique per account and Region only");
    }
    let own_state = emu.store().snapshot();
    assert_eq!(own_state["models"].as_array().map(Vec::len), Some(1));
    let a_state = sitewise_emulator::lock(&emu.tenant("111111111111", "eu-west-1")).snapshot();
    assert_eq!(a_state["models"][0]["id"], created.asset_model_id());
}

"""boto3 against the emulator: what a cluster-managed lifecycle needs. CreateAsset with a
caller-chosen assetId and tags (replayed by its clientToken), UpdateAssetProperty, the tag
calls, and AssociateAssets idempotency."""

import time

import pytest

from conftest import Emulator

OWN_ID = "3b9d8f1e-6a2c-5d4b-9e7f-0a1b2c3d4e5f"
TOKEN_A = "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
TOKEN_B = "8d2f3e4a-5b6c-4d7e-9f0a-1b2c3d4e5f6a"
TOKEN_C = "9e3a4f5b-6c7d-4e8f-a0b1-c2d3e4f5a6b7"


@pytest.fixture
def owned():
    emu = Emulator("--no-quotas", "--update-delay", "300ms")
    seeded = emu.admin(
        "POST",
        "/seed",
        {
            "models": [
                {
                    "name": "Machine",
                    "externalId": "machine",
                    "properties": [
                        {"name": "Temperature", "externalId": "temp", "dataType": "DOUBLE", "unit": "C",
                         "type": {"measurement": {}}},
                        {"name": "Serial", "dataType": "STRING", "type": {"attribute": {}}},
                    ],
                },
                {
                    "name": "Line",
                    "externalId": "line",
                    "hierarchies": [
                        {"name": "Machines", "externalId": "machines", "childModel": "externalId:machine"}
                    ],
                },
            ],
            "assets": [
                {"name": "line-1", "externalId": "line-1", "model": "externalId:line"},
                {"name": "m1", "externalId": "m1", "model": "externalId:machine"},
            ],
        },
    )
    yield emu, emu.client(), seeded
    emu.stop()


def replays(emu, operation):
    return sum(1 for e in emu.admin("GET", f"/journal?operation={operation}")["entries"] if e["replay"])


def test_create_asset_with_own_id_and_tags_replays_its_token(owned):
    emu, client, _ = owned
    tags = {"sitewise.operator.dev/owner": "c1/u1", "team": "ops"}
    args = dict(
        assetId=OWN_ID,
        assetModelId="externalId:machine",
        assetName="press-7",
        assetExternalId="press-7",
        tags=tags,
    )
    first = client.create_asset(clientToken=TOKEN_A, **args)
    assert first["assetId"] == OWN_ID and first["assetStatus"]["state"] == "CREATING"
    assert client.create_asset(clientToken=TOKEN_A, **args)["assetId"] == OWN_ID
    assert replays(emu, "CreateAsset") == 1
    described = client.describe_asset(assetId=OWN_ID)
    assert [p["name"] for p in described["assetProperties"]] == ["Temperature", "Serial"]
    assert client.list_tags_for_resource(resourceArn=described["assetArn"])["tags"] == tags
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException):
        client.create_asset(clientToken=TOKEN_B, **args)


def test_update_asset_property(owned):
    _, client, seeded = owned
    m1 = seeded["assets"]["m1"]
    client.update_asset_property(
        assetId=m1,
        propertyId="externalId:temp",
        propertyAlias="/lyon/m1/temp",
        propertyNotificationState="ENABLED",
        propertyUnit="K",
        clientToken=TOKEN_A,
    )
    assert client.describe_asset(assetId=m1)["assetStatus"]["state"] == "UPDATING"
    with pytest.raises(client.exceptions.ConflictingOperationException):
        client.update_asset_property(assetId=m1, propertyId="externalId:temp")
    time.sleep(0.4)
    temp = client.describe_asset(assetId=m1)["assetProperties"][0]
    assert (temp["alias"], temp["unit"], temp["notification"]["state"]) == ("/lyon/m1/temp", "K", "ENABLED")
    client.update_asset_property(assetId=m1, propertyId=temp["id"], clientToken=TOKEN_B)
    time.sleep(0.4)
    temp = client.describe_asset(assetId=m1)["assetProperties"][0]
    assert "alias" not in temp and temp["unit"] == "C" and temp["notification"]["state"] == "DISABLED"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.update_asset_property(assetId=m1, propertyId="externalId:pressure")


def test_tag_calls(owned):
    _, client, seeded = owned
    arn = client.describe_asset(assetId=seeded["assets"]["m1"])["assetArn"]
    client.tag_resource(resourceArn=arn, tags={"a": "1", "sitewise.operator.dev/owner": "c/u"})
    client.tag_resource(resourceArn=arn, tags={"a": "2"})
    client.untag_resource(resourceArn=arn, tagKeys=["sitewise.operator.dev/owner"])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"a": "2"}


def test_associate_assets_replays_its_token(owned):
    emu, client, seeded = owned
    line, m1 = seeded["assets"]["line-1"], seeded["assets"]["m1"]
    link = dict(assetId=line, hierarchyId="externalId:machines", childAssetId=m1)
    client.associate_assets(clientToken=TOKEN_A, **link)
    client.associate_assets(clientToken=TOKEN_A, **link)
    assert replays(emu, "AssociateAssets") == 1
    client.disassociate_assets(clientToken=TOKEN_B, **link)
    client.associate_assets(clientToken=TOKEN_A, **link)
    assert client.list_associated_assets(assetId=m1, traversalDirection="PARENT")["assetSummaries"] == []
    client.associate_assets(clientToken=TOKEN_C, **link)
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.associate_assets(clientToken=TOKEN_C, assetId=line, hierarchyId="externalId:machines",
                                childAssetId=line)

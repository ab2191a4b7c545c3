"""boto3 against the emulator binary: every operation, every modeled exception class decoded
into client.exceptions.*, the paginators and the asset_active / asset_not_exists waiters."""

import uuid

import pytest

from conftest import Emulator

TOKEN = "0f5b3c2a-9d8e-4f7a-b6c5-d4e3f2a1b0c9"


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_model_operations(client):
    machine = client.create_asset_model(assetModelName="Machine", assetModelExternalId="machine")
    assert machine["assetModelStatus"]["state"] == "CREATING"
    line = client.create_asset_model(
        assetModelName="Line",
        assetModelDescription="A production line",
        assetModelHierarchies=[{"name": "Machines", "childAssetModelId": "externalId:machine"}],
        tags={"team": "ops"},
    )
    described = client.describe_asset_model(assetModelId=line["assetModelId"])
    assert described["assetModelName"] == "Line"
    assert described["assetModelHierarchies"][0]["childAssetModelId"] == machine["assetModelId"]
    assert described["assetModelStatus"]["state"] == "ACTIVE"
    assert described["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    tags = client.list_tags_for_resource(resourceArn=line["assetModelArn"])
    assert tags["tags"] == {"team": "ops"}
    deleted = client.delete_asset_model(assetModelId=line["assetModelId"], clientToken=TOKEN)
    assert deleted["assetModelStatus"]["state"] == "DELETING"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_asset_model(assetModelId=line["assetModelId"])


def test_asset_operations_and_paginators(client, plant):
    line_id = plant["assets"]["line-1"]
    line = client.describe_asset(assetId="externalId:line-1")
    assert line["assetId"] == line_id
    hierarchy = line["assetHierarchies"][0]["id"]

    pages = list(
        client.get_paginator("list_associated_assets").paginate(
            assetId=line_id, hierarchyId=hierarchy, PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["assetSummaries"]) for p in pages] == [2, 1]
    children = [s["id"] for p in pages for s in p["assetSummaries"]]
    assert children == [plant["assets"][f"m{i}"] for i in range(3)]

    parent = client.list_associated_assets(assetId="externalId:m0", traversalDirection="PARENT")
    assert [s["id"] for s in parent["assetSummaries"]] == [line_id]

    model_id = client.describe_asset(assetId="externalId:m0")["assetModelId"]
    listed = [
        s["id"]
        for p in client.get_paginator("list_assets").paginate(
            assetModelId=model_id, PaginationConfig={"PageSize": 1}
        )
        for s in p["assetSummaries"]
    ]
    assert len(listed) == 3
    top = client.list_assets(filter="TOP_LEVEL")
    assert [s["id"] for s in top["assetSummaries"]] == [line_id]

    created = client.create_asset(assetName="m3", assetModelId=model_id, assetId=str(uuid.uuid4()))
    assert created["assetStatus"]["state"] == "CREATING"
    client.associate_assets(assetId=line_id, hierarchyId=hierarchy, childAssetId=created["assetId"])
    client.disassociate_assets(assetId=line_id, hierarchyId=hierarchy, childAssetId=created["assetId"])
    updated = client.update_asset(assetId=created["assetId"], assetName="m3b", assetExternalId="m3")
    assert updated["assetStatus"]["state"] == "UPDATING"
    assert client.describe_asset(assetId="externalId:m3")["assetName"] == "m3b"

    client.tag_resource(resourceArn=line["assetArn"], tags={"a": "1", "b": ""})
    client.untag_resource(resourceArn=line["assetArn"], tagKeys=["a", "missing key"])
    assert client.list_tags_for_resource(resourceArn=line["assetArn"])["tags"] == {"b": ""}

    deleted = client.delete_asset(assetId=created["assetId"], clientToken=TOKEN)
    assert deleted["assetStatus"]["state"] == "DELETING"


def test_every_modeled_exception_class(client, emulator, plant):
    line_id = plant["assets"]["line-1"]
    hierarchy = client.describe_asset(assetId=line_id)["assetHierarchies"][0]["id"]
    ex = client.exceptions

    with pytest.raises(ex.InvalidRequestException) as e:
        client.create_asset(assetName="x", assetModelId="not-a-valid-model-id")
    assert "assetModelId" in e.value.response["Error"]["Message"]
    with pytest.raises(ex.ResourceNotFoundException):
        client.describe_asset(assetId=str(uuid.uuid4()))
    with pytest.raises(ex.ResourceAlreadyExistsException) as e:
        client.associate_assets(assetId=line_id, hierarchyId=hierarchy, childAssetId="externalId:m0")
    assert e.value.response["resourceId"] == plant["assets"]["m0"]
    with pytest.raises(ex.InvalidRequestException) as e:
        client.delete_asset(assetId=line_id)
    assert "child" in e.value.response["Error"]["Message"]

    emulator.admin("PUT", "/timings", {"create": 0, "update": 60000, "delete": 0})
    client.update_asset(assetId="externalId:m2", assetName="busy machine")
    with pytest.raises(ex.ConflictingOperationException) as e:
        client.update_asset(assetId="externalId:m2", assetName="again")
    assert e.value.response["resourceArn"].endswith(plant["assets"]["m2"])

    quotas = emulator.admin("GET", "/quotas")
    emulator.admin("PUT", "/quotas", {**quotas, "enabled": False, "maxChildrenPerParent": 3})
    model_id = client.describe_asset(assetId="externalId:m0")["assetModelId"]
    extra = client.create_asset(assetName="m4", assetModelId=model_id)["assetId"]
    with pytest.raises(ex.LimitExceededException):
        client.associate_assets(assetId=line_id, hierarchyId=hierarchy, childAssetId=extra)
    with pytest.raises(ex.InvalidRequestException):
        # m0 is a Machine: the Line's hierarchy is not in its model.
        client.associate_assets(assetId="externalId:m0", hierarchyId=hierarchy, childAssetId=extra)

    arn = client.describe_asset(assetId=extra)["assetArn"]
    client.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(50)})
    with pytest.raises(ex.TooManyTagsException):
        client.tag_resource(resourceArn=arn, tags={"one-more": "v"})

    for op, code, call in [
        ("DeleteAsset", "InternalFailureException", lambda: client.delete_asset(assetId=extra)),
        ("DeleteAsset", "ThrottlingException", lambda: client.delete_asset(assetId=extra)),
        ("TagResource", "UnauthorizedException", lambda: client.tag_resource(resourceArn=arn, tags={"a": "b"})),
        (
            "DeleteAssetModel",
            "PreconditionFailedException",
            lambda: client.delete_asset_model(assetModelId=model_id),
        ),
    ]:
        emulator.admin("POST", "/faults/scripted", {"operation": op, "error": code, "count": 1})
        with pytest.raises(getattr(ex, code)):
            call()


def test_quota_throttles_a_burst():
    emu = Emulator("--asset-tps", "5")
    try:
        client = emu.client()
        throttled = 0
        for _ in range(15):
            try:
                client.list_assets(filter="TOP_LEVEL")
            except client.exceptions.ThrottlingException:
                throttled += 1
        assert throttled >= 8, throttled
        counters = emu.admin("GET", "/counters")
        assert counters["ListAssets"]["ThrottlingException"] == throttled
    finally:
        emu.stop()


def test_random_faults_are_injected_at_the_configured_rate(client, emulator, plant):
    emulator.admin("PUT", "/faults", {"operations": {"DescribeAsset": {"throttle": 0.5}}})
    outcomes = []
    for _ in range(200):
        try:
            client.describe_asset(assetId="externalId:line-1")
            outcomes.append("ok")
        except client.exceptions.ThrottlingException:
            outcomes.append("throttled")
    assert 60 < outcomes.count("throttled") < 140


def test_waiters():
    emu = Emulator("--no-quotas", "--create-delay", "1500ms", "--delete-delay", "1500ms")
    try:
        client = emu.client()
        model = client.create_asset_model(assetModelName="Waitable")["assetModelId"]
        client.get_waiter("asset_model_active").wait(
            assetModelId=model, WaiterConfig={"Delay": 1, "MaxAttempts": 10}
        )
        asset = client.create_asset(assetName="a", assetModelId=model)["assetId"]
        assert client.describe_asset(assetId=asset)["assetStatus"]["state"] == "CREATING"
        client.get_waiter("asset_active").wait(assetId=asset, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
        assert client.describe_asset(assetId=asset)["assetStatus"]["state"] == "ACTIVE"
        client.delete_asset(assetId=asset)
        client.get_waiter("asset_not_exists").wait(assetId=asset, WaiterConfig={"Delay": 1, "MaxAttempts": 10})
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.describe_asset(assetId=asset)
    finally:
        emu.stop()


def test_client_token_idempotency(client, emulator, plant):
    line = client.describe_asset(assetId="externalId:line-1")
    hierarchy = line["assetHierarchies"][0]["id"]
    args = dict(assetId=line["assetId"], hierarchyId=hierarchy, childAssetId="externalId:m0", clientToken=TOKEN)
    client.disassociate_assets(**args)
    client.disassociate_assets(**args)  # replay: no second effect, no error
    with pytest.raises(client.exceptions.InvalidRequestException) as e:
        client.disassociate_assets(**{**args, "childAssetId": "externalId:m1"})
    assert "clientToken" in e.value.response["Error"]["Message"]
    journal = emulator.admin("GET", "/journal?operation=DisassociateAssets")["entries"]
    assert [entry["replay"] for entry in journal] == [False, True, False]
    assert all(entry["clientToken"] == TOKEN for entry in journal)
    state = emulator.admin("GET", "/state")
    assert len(state["associations"]) == 2


def test_admin_state_and_failed_assets(client, emulator, plant):
    emulator.admin("POST", "/assets/externalId:m1/fail", {"code": "VALIDATION_ERROR", "message": "bad"})
    status = client.describe_asset(assetId="externalId:m1")["assetStatus"]
    assert status == {"state": "FAILED", "error": {"code": "VALIDATION_ERROR", "message": "bad"}}
    emulator.admin("POST", "/reset")
    assert emulator.admin("GET", "/state")["assets"] == []
    assert emulator.admin("GET", "/journal")["entries"] == []

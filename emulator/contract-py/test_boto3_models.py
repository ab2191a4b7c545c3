"""boto3 against the emulator: the asset-model lifecycle a model resource needs. UpdateAssetModel
and DeleteAssetModel with If-Match (a stale ETag is refused with PreconditionFailedException),
IDs that keep properties and hierarchies across an update, a removed hierarchy that
disassociates its assets, and models that cannot be deleted while used."""

import time
import uuid

import pytest

from conftest import Emulator


def wait_active(client, model_id):
    client.get_waiter("asset_model_active").wait(
        assetModelId=model_id, WaiterConfig={"Delay": 1, "MaxAttempts": 20}
    )


def measurement(name):
    return {"name": name, "dataType": "DOUBLE", "type": {"measurement": {}}}


@pytest.fixture
def emu():
    e = Emulator("--no-quotas", "--create-delay", "100ms", "--update-delay", "300ms", "--delete-delay", "100ms")
    yield e
    e.stop()


def test_update_with_the_etag_keeps_ids_and_a_stale_etag_is_refused(emu):
    client = emu.client()
    machine = client.create_asset_model(
        assetModelName="Machine", assetModelProperties=[measurement("Temperature")]
    )["assetModelId"]
    wait_active(client, machine)
    read = client.describe_asset_model(assetModelId=machine)
    etag = read["eTag"]
    temperature = read["assetModelProperties"][0]["id"]
    kept = {"id": temperature, "name": "Temperature", "dataType": "DOUBLE", "unit": "C",
            "type": {"measurement": {}}}
    out = client.update_asset_model(
        assetModelId=machine,
        assetModelName="Machine",
        assetModelProperties=[kept, measurement("Speed")],
        ifMatch=etag,
        clientToken=str(uuid.uuid4()),
    )
    assert out["assetModelStatus"]["state"] == "UPDATING"
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 202
    wait_active(client, machine)
    after = client.describe_asset_model(assetModelId=machine)
    assert after["eTag"] != etag
    by_name = {p["name"]: p for p in after["assetModelProperties"]}
    assert by_name["Temperature"]["id"] == temperature
    assert by_name["Temperature"]["unit"] == "C"
    assert "Speed" in by_name
    # The version read before the update is gone: an update or a deletion with its ETag is refused.
    with pytest.raises(client.exceptions.PreconditionFailedException) as refused:
        client.update_asset_model(assetModelId=machine, assetModelName="Blind", ifMatch=etag)
    assert refused.value.response["resourceId"] == machine
    with pytest.raises(client.exceptions.PreconditionFailedException):
        client.delete_asset_model(assetModelId=machine, ifMatch=etag)
    assert client.describe_asset_model(assetModelId=machine)["assetModelName"] == "Machine"
    # An ID the model does not have is refused, not taken for a new property.
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.update_asset_model(
            assetModelId=machine,
            assetModelName="Machine",
            assetModelProperties=[dict(kept, id=str(uuid.uuid4()))],
        )


def test_assets_follow_their_model_and_a_removed_hierarchy_disassociates(emu):
    client = emu.client()
    machine = client.create_asset_model(
        assetModelName="Machine", assetModelProperties=[measurement("Temperature")]
    )["assetModelId"]
    wait_active(client, machine)
    line = client.create_asset_model(
        assetModelName="Line",
        assetModelHierarchies=[{"name": "Machines", "childAssetModelId": machine}],
    )["assetModelId"]
    wait_active(client, line)
    line_asset = client.create_asset(assetName="line", assetModelId=line)["assetId"]
    press = client.create_asset(assetName="press", assetModelId=machine)["assetId"]
    for asset in (line_asset, press):
        client.get_waiter("asset_active").wait(assetId=asset, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    hierarchy = client.describe_asset_model(assetModelId=line)["assetModelHierarchies"][0]["id"]
    client.associate_assets(assetId=line_asset, hierarchyId=hierarchy, childAssetId=press)
    # A model with assets cannot be deleted; nor can a model another model's hierarchy uses.
    with pytest.raises(client.exceptions.InvalidRequestException):
        client.delete_asset_model(assetModelId=machine)
    read = client.describe_asset_model(assetModelId=machine)
    client.update_asset_model(
        assetModelId=machine,
        assetModelName="Machine",
        assetModelProperties=read["assetModelProperties"] + [measurement("Speed")],
        ifMatch=read["eTag"],
    )
    # The model propagates to its assets, which are UPDATING meanwhile.
    assert client.describe_asset_model(assetModelId=machine)["assetModelStatus"]["state"] == "PROPAGATING"
    assert client.describe_asset(assetId=press)["assetStatus"]["state"] == "UPDATING"
    wait_active(client, machine)
    names = {p["name"] for p in client.describe_asset(assetId=press)["assetProperties"]}
    assert names == {"Temperature", "Speed"}
    read = client.describe_asset_model(assetModelId=line)
    client.update_asset_model(assetModelId=line, assetModelName="Line", assetModelHierarchies=[],
                              ifMatch=read["eTag"])
    children = client.list_associated_assets(assetId=line_asset, traversalDirection="PARENT")
    assert children["assetSummaries"] == []
    assert client.list_associated_assets(assetId=press, traversalDirection="PARENT")["assetSummaries"] == []
    wait_active(client, line)
    client.delete_asset(assetId=press)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            client.delete_asset_model(assetModelId=machine)
            break
        except client.exceptions.InvalidRequestException:
            time.sleep(0.2)
    assert client.describe_asset_model(assetModelId=machine)["assetModelStatus"]["state"] == "DELETING"

"""Data-store transfers of files larger than one part, through both clients (the unmodified
official `craft-ai-sdk==0.60.0` and our SDK), on the local store and on the S3 store (moto, and
SeaweedFS, which checks the presigned URLs' signatures): multipart uploads (ours sends its
parts in parallel) and downloads (ours into a file in parallel ranges) come back byte for byte.

Parts are 5 MiB (S3's smallest part but the last) and files 3.5 parts long, so every upload
has a short last part."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ..backends.servers import MotoServer, SeaweedServer
from ..helpers import ROOT, ServerProcess

PART = 5 * 1024 * 1024
SIZE = 3 * PART + PART // 2

SCRIPT = '''
import hashlib, io, json, os, sys
from craft_ai_sdk import CraftAiSdk
from shipyard import CraftAiSdk as ShipyardSdk

folder, out_path = sys.argv[1:3]
size = int(os.environ["TEST_SIZE"])
source = os.path.join(folder, "big.bin")
with open(source, "wb") as f:
    f.write(os.urandom(size))
digest = hashlib.sha256(open(source, "rb").read()).hexdigest()
seen = {"digest": digest}
for name, client in (("official", CraftAiSdk()), ("ours", ShipyardSdk())):
    assert client._MULTIPART_PART_SIZE < size, "the file must be larger than one part"
    path = f"big/{name}.bin"
    client.upload_data_store_object(source, path)
    seen[name + "_info"] = client.get_data_store_object_information(path)
    target = os.path.join(folder, name + ".out")
    client.download_data_store_object(path, target)
    seen[name + "_download"] = hashlib.sha256(open(target, "rb").read()).hexdigest()
    # A buffer source too (ours reads parts under a lock rather than by offset).
    with open(source, "rb") as f:
        buffer = io.BytesIO(f.read())
    client.upload_data_store_object(buffer, path + ".buf")
    back = io.BytesIO()
    client.download_data_store_object(path + ".buf", back)
    seen[name + "_buffer"] = hashlib.sha256(back.getvalue()).hexdigest()
# Each client reads what the other wrote.
other = os.path.join(folder, "cross.out")
ShipyardSdk().download_data_store_object("big/official.bin", other)
seen["cross"] = hashlib.sha256(open(other, "rb").read()).hexdigest()
json.dump(seen, open(out_path, "w"))
'''


@pytest.fixture(params=["local", "moto", "seaweedfs"])
def store_env(request):
    if request.param == "local":
        yield {"SHIPYARD_DATASTORE": "local"}
        return
    s3 = (MotoServer if request.param == "moto" else SeaweedServer)().start()
    try:
        yield s3.env("datastore-clients")
    finally:
        s3.stop()


@pytest.mark.compat
def test_files_larger_than_one_part_with_both_clients(client_python, tmp_path, store_env):
    script = tmp_path / "transfer.py"
    script.write_text(SCRIPT)
    server = ServerProcess(tmp_path / "data", env=store_env).start()
    try:
        creds = server.credentials
        env = {k: v for k, v in os.environ.items()
               if k not in ("CRAFT_AI_EXECUTION_ID", "SHIPYARD_EXECUTION_ID")}
        env.update(CRAFT_AI_ENVIRONMENT_URL=creds["environment_url"],
                   CRAFT_AI_SDK_TOKEN=creds["sdk_token"], CRAFT_AI_CONTROL_URL=creds["control_url"],
                   CRAFT_AI__MULTIPART_THRESHOLD__B=str(PART),
                   CRAFT_AI__MULTIPART_PART_SIZE__B=str(PART), TEST_SIZE=str(SIZE))
        out = tmp_path / "seen.json"
        proc = subprocess.run([str(client_python), str(script), str(tmp_path), str(out)],
                              env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        seen = json.loads(out.read_text())
    finally:
        server.stop()
    for name in ("official", "ours"):
        assert seen[name + "_info"]["size"] == "17.50 MB"  # both format it this way
        assert seen[name + "_download"] == seen["digest"], name
        assert seen[name + "_buffer"] == seen["digest"], name
    assert seen["cross"] == seen["digest"]

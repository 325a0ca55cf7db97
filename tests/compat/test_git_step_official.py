"""A step and a pipeline from a Git repository, created the way the documentation shows
("Connect a Git repository", Step 3a: URL, deploy key and branch in container_config),
with the unmodified official craft-ai-sdk 0.60.0 and with our SDK, against a real server
and a real sshd on loopback."""

from __future__ import annotations

import json
import subprocess

import pytest

from ..gitserver import GitServer, Unavailable
from ..helpers import ROOT, ServerProcess, client_env

SOURCE = '''def my_function(name):
    print("greeting", name)
    return {"greeting": "Hello " + name}
'''

CLIENT_SCRIPT = '''
import importlib, json, sys

module_name, url, key_path, out_path = sys.argv[1:5]
sdk_module = importlib.import_module(module_name)
io_module = importlib.import_module(module_name + ".io")
CraftAiSdk = sdk_module.CraftAiSdk
NULL = sdk_module.CREATION_PARAMETER_VALUE.NULL  # STEP_PARAMETER.NULL in the documentation
Input, Output = io_module.Input, io_module.Output

sdk = CraftAiSdk()
with open(key_path, "r") as file:
    private_key_value = file.read().rstrip()

observed = {}
observed["step"] = sdk.create_step(
    function_path="src/my_source_code.py",
    function_name="my_function",
    step_name="my-step-name",
    container_config={
        "repository_url": url,
        "repository_deploy_key": private_key_value,
        "repository_branch": "main",
        "requirements_path": NULL,
    },
    inputs=[Input(name="name", data_type="string", is_required=True)],
    outputs=[Output(name="greeting", data_type="string")],
)
sdk.create_pipeline(pipeline_name="git-pipeline", step_name="my-step-name")
observed["run"] = sdk.run_pipeline(pipeline_name="git-pipeline", inputs={"name": "Ada"})
observed["pipeline"] = sdk.create_pipeline(
    pipeline_name="git-direct",
    function_path="src/my_source_code.py",
    function_name="my_function",
    container_config={"repository_url": url, "repository_deploy_key": private_key_value,
                      "repository_branch": "v1"},
    inputs=[Input(name="name", data_type="string")],
    outputs=[Output(name="greeting", data_type="string")],
)
observed["run_direct"] = sdk.run_pipeline(pipeline_name="git-direct", inputs={"name": "Bob"})
try:
    sdk.create_step(function_path="src/my_source_code.py", function_name="my_function",
                    step_name="wrong-branch",
                    container_config={"repository_url": url,
                                      "repository_deploy_key": private_key_value,
                                      "repository_branch": "no-such-branch"})
except Exception as error:
    observed["error"] = {"type": type(error).__name__, "text": str(error)}
observed["steps"] = sdk.list_steps()
with open(out_path, "w") as f:
    json.dump(observed, f, default=str)
'''


@pytest.mark.compat
@pytest.mark.parametrize("module", ["craft_ai_sdk", "shipyard"])
def test_git_step_with_the_client(module, client_python, tmp_path):
    try:
        git = GitServer(tmp_path / "git").start()
    except Unavailable as exc:
        pytest.skip(f"no sshd for the Git tests: {exc}")
    server = None
    try:
        key = git.new_deploy_key("my-key-filename")
        (tmp_path / "keys").mkdir()
        key_path = tmp_path / "keys" / "my-key-filename"
        key_path.write_text(key)
        url = git.create_repo("my-git-repo", {"main": {
            "README.md": "# repo\n", "requirements.txt": "", "src/my_source_code.py": SOURCE,
        }}, tags={"v1": "main"})
        server = ServerProcess(tmp_path / "data").start()
        env = client_env(server)
        script = tmp_path / "client.py"
        script.write_text(CLIENT_SCRIPT)
        out = tmp_path / "observed.json"
        proc = subprocess.run([str(client_python), str(script), module, url, str(key_path), str(out)],
                              env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        seen = json.loads(out.read_text())
        server_log = server.log_path.read_text()
    finally:
        if server is not None:
            server.stop()
        git.stop()

    step = seen["step"]
    assert step["creation_info"]["status"] == "ready"
    assert step["creation_info"]["origin"] == "git_repository"
    assert step["creation_info"]["commit_id"] == git.commit_of("my-git-repo", "main")
    assert step["parameters"]["container_config"]["repository_url"] == url
    assert "repository_deploy_key" not in step["parameters"]["container_config"]
    assert seen["run"]["outputs"] == {"greeting": "Hello Ada"}
    assert seen["pipeline"]["creation_info"]["origin"] == "git_repository"
    assert seen["run_direct"]["outputs"] == {"greeting": "Hello Bob"}
    assert "no-such-branch" in seen["error"]["text"] and "GitBranchNotFound" in seen["error"]["text"]
    assert [s["step_name"] for s in seen["steps"]] == ["my-step-name"]
    key_body = [line for line in key.splitlines() if len(line) >= 40]
    assert not [line for line in key_body if line in json.dumps(seen) or line in server_log]

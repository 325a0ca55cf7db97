"""Unit tests of the Shipyard SDK (``shipyard``): pure helpers, then HTTP behaviour
against a small stdlib server started on 127.0.0.1 by each test."""

from __future__ import annotations

import contextvars
import email.parser
import email.policy
import http.server
import io
import json
import os
import sys
import tarfile
import threading
import time
import types
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
import shipyard
from shipyard import (
    CREATION_PARAMETER_VALUE,
    DEPLOYMENT_EXECUTION_RULES,
    DEPLOYMENT_MODES,
    INPUT_OUTPUT_TYPES,
    STEP_PARAMETER,
    CraftAiSdk,
    Input,
    InputSource,
    Output,
    OutputDestination,
    SdkException,
    _execution_context,
)
from shipyard._api.creation import creation_payload
from shipyard._archive import build_archive, include_list
from shipyard._flatten import flatten
from shipyard._http import parse_response, raise_storage_error

pytestmark = pytest.mark.timeout(30)

TOKEN = "sdk-token-123"
ENV_PATH = "/environments/proj/dev"
API = f"{ENV_PATH}/api/v1"


# ---------------------------------------------------------------- helpers


def make_jwt(lifetime_s: float = 3600) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": "user-1", "iat": now, "exp": now + lifetime_s},
        "unit-test-secret-key-0123456789abcdef",
        algorithm="HS256",
    )


def fake_response(
    status: int, body: bytes | str = b"", content_type: str | None = "application/json"
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode() if isinstance(body, str) else body
    if content_type:
        response.headers["Content-Type"] = content_type
    response.encoding = "utf-8"
    return response


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """``(name, filename, content)`` of each part of a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = []
    for part in message.iter_parts():
        disposition = part.get("Content-Disposition")
        parts.append(
            (
                disposition.params.get("name"),
                disposition.params.get("filename"),
                part.get_payload(decode=True) or b"",
            )
        )
    return parts


class Recorded:
    def __init__(self, method: str, raw_path: str, headers: Any, body: bytes) -> None:
        split = urlsplit(raw_path)
        self.method = method
        self.path = split.path
        self.raw_query = split.query
        self.query = parse_qs(split.query, keep_blank_values=True)
        self.headers = {key.lower(): value for key, value in headers.items()}
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)

    def multipart(self) -> list[tuple[str, str | None, bytes]]:
        return parse_multipart(self.headers["content-type"], self.body)

    def __repr__(self) -> str:
        return f"<{self.method} {self.path}?{self.raw_query}>"


Reply = tuple  # (status, body, headers)


class StubServer:
    """Answers registered ``(method, path)`` routes with queued replies (the last reply
    repeats) and records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Any]] = {}
        self.requests: list[Recorded] = []
        self.refresh_count = 0
        self.token_lifetime_s = 3600.0
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Recorded(self.command, self.path, self.headers, body)
                stub.requests.append(request)
                status, payload, headers = stub.reply(request)
                if isinstance(payload, (bytes, str)):
                    data = payload.encode() if isinstance(payload, str) else payload
                    headers = {"Content-Type": "application/octet-stream", **headers}
                else:
                    data = json.dumps(payload).encode()
                    headers = {"Content-Type": "application/json", **headers}
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if status != 204:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if status != 204:
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.route("POST", "/api/v1/auth/refresh", self._refresh)

    def _refresh(self, request: Recorded) -> Reply:
        self.refresh_count += 1
        return 200, {"access_token": make_jwt(self.token_lifetime_s)}, {}

    def route(self, method: str, path: str, *replies: Any) -> None:
        """Each reply is ``(status, body[, headers])`` or a callable taking the request."""
        self.routes[(method, path)] = list(replies)

    def reply(self, request: Recorded) -> Reply:
        queue = self.routes.get((request.method, request.path))
        if not queue:
            return 404, {"message": f"no route {request.path}", "name": "NotFound"}, {}
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(answer):
            answer = answer(request)
        status, body, *rest = answer
        return status, body, (rest[0] if rest else {})

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    def api_calls(self) -> list[Recorded]:
        return [r for r in self.requests if r.path != "/api/v1/auth/refresh"]

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def stub() -> Any:
    server = StubServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Any:
    for prefix in ("SHIPYARD_", "CRAFT_AI_"):
        for name in ("SDK_TOKEN", "ENVIRONMENT_URL", "CONTROL_URL", "EXECUTION_ID"):
            monkeypatch.delenv(prefix + name, raising=False)
    monkeypatch.setenv("SDK_VERBOSE_LOG", "false")
    monkeypatch.delitem(sys.modules, _execution_context.CONTEXT_MODULE_NAME, raising=False)
    _execution_context.reset_cache()
    yield
    _execution_context.reset_cache()


@pytest.fixture()
def sdk(stub: StubServer) -> CraftAiSdk:
    return CraftAiSdk(sdk_token=TOKEN, environment_url=stub.url + ENV_PATH)


# ---------------------------------------------------------------- public surface


def test_public_surface_is_exactly_the_documented_names() -> None:
    assert sorted(shipyard.__all__) == sorted(
        [
            "CraftAiSdk",
            "SdkException",
            "STEP_PARAMETER",
            "CREATION_PARAMETER_VALUE",
            "DEPLOYMENT_EXECUTION_RULES",
            "DEPLOYMENT_MODES",
            "INPUT_OUTPUT_TYPES",
            "Input",
            "Output",
            "InputSource",
            "OutputDestination",
        ]
    )
    for name in shipyard.__all__:
        assert getattr(shipyard, name) is not None
    assert STEP_PARAMETER is CREATION_PARAMETER_VALUE
    assert {m.name for m in STEP_PARAMETER} == {"FALLBACK_PROJECT", "NULL"}
    from shipyard.io import Input as IoInput
    from shipyard.io import InputSource as IoInputSource
    from shipyard.io import OutputDestination as IoOutputDestination

    assert (IoInput, IoInputSource, IoOutputDestination) == (Input, InputSource, OutputDestination)
    assert shipyard.exceptions.SdkException is SdkException
    assert isinstance(shipyard.__version__, str)


def test_enumerations_behave_as_their_values() -> None:
    assert INPUT_OUTPUT_TYPES.FILE == "file"
    assert str(INPUT_OUTPUT_TYPES.FILE) == "file" and f"{INPUT_OUTPUT_TYPES.JSON}" == "json"
    assert [m.value for m in DEPLOYMENT_MODES] == ["low_latency", "elastic"]
    assert {m.value for m in DEPLOYMENT_EXECUTION_RULES} == {"endpoint", "periodic"}
    assert json.dumps({"t": INPUT_OUTPUT_TYPES.NUMBER}) == '{"t": "number"}'


def test_every_documented_method_exists() -> None:
    names = [
        "who_am_i",
        "get_user",
        "create_step",
        "get_step",
        "list_steps",
        "delete_step",
        "download_step_local_folder",
        "get_step_logs",
        "create_pipeline",
        "get_pipeline",
        "list_pipelines",
        "delete_pipeline",
        "download_pipeline_local_folder",
        "get_pipeline_logs",
        "run_pipeline",
        "list_pipeline_executions",
        "get_pipeline_execution",
        "get_pipeline_execution_input",
        "get_pipeline_execution_output",
        "get_pipeline_execution_logs",
        "delete_pipeline_execution",
        "create_deployment",
        "get_deployment",
        "list_deployments",
        "update_deployment",
        "delete_deployment",
        "get_deployment_logs",
        "trigger_endpoint",
        "retrieve_endpoint_results",
        "generate_new_endpoint_token",
        "create_or_update_environment_variable",
        "list_environment_variables",
        "delete_environment_variable",
        "upload_data_store_object",
        "download_data_store_object",
        "get_data_store_object_information",
        "list_data_store_objects",
        "delete_data_store_object",
        "record_metric_value",
        "record_list_metric_values",
        "get_metrics",
        "get_list_metrics",
        "get_resource_metrics",
    ]
    assert [name for name in names if not callable(getattr(CraftAiSdk, name, None))] == []


def test_io_classes_encode_without_none_and_check_names() -> None:
    assert Input("a", "number", is_required=False, default_value=0).to_dict() == {
        "name": "a",
        "data_type": "number",
        "is_required": False,
        "default_value": 0,
    }
    assert Output("o", "file").to_dict() == {"name": "o", "data_type": "file"}
    assert InputSource(pipeline_input_name="a", constant_value=3).to_dict() == {
        "pipeline_input_name": "a",
        "constant_value": 3,
    }
    with pytest.warns(FutureWarning):
        assert OutputDestination(step_output_name="o", is_null=True).to_dict() == {
            "is_null": True,
            "step_output_name": "o",
        }
    with pytest.raises(ValueError):
        InputSource(constant_value=1)
    with pytest.raises(ValueError):
        OutputDestination(pipeline_output_name="o", step_output_name="o")


# ---------------------------------------------------------------- flattening (§3.2)


def test_flatten_yields_exactly_the_contract_example_fields() -> None:
    payload = creation_payload(
        "pipeline_name",
        "p",
        "src/main.py",
        "run",
        None,
        {
            "language": "python:3.10-slim",
            "included_folders": ["src", "req.txt"],
            "requirements_path": STEP_PARAMETER.NULL,
            "system_dependencies": [],
        },
        [
            Input("a", "number", is_required=True, default_value=5),
            Input("b", "json", default_value={"k": [1, 2]}),
        ],
        [],
    )
    assert flatten(payload) == [
        ("pipeline_name", "p"),
        ("function_path", "src/main.py"),
        ("function_name", "run"),
        ("container_config[language]", "python:3.10-slim"),
        ("container_config[included_folders][0]", "src"),
        ("container_config[included_folders][1]", "req.txt"),
        ("container_config[requirements_path]", ""),
        ("inputs[0][name]", "a"),
        ("inputs[0][data_type]", "number"),
        ("inputs[0][is_required]", "True"),
        ("inputs[0][default_value]", "5"),
        ("inputs[1][name]", "b"),
        ("inputs[1][data_type]", "json"),
        ("inputs[1][default_value][k][0]", "1"),
        ("inputs[1][default_value][k][1]", "2"),
    ]


def test_flatten_leaves_and_fallback_values() -> None:
    assert flatten(
        {"a": {"b": None, "c": False, "d": 0.5, "e": {}, "f": INPUT_OUTPUT_TYPES.FILE}}
    ) == [
        ("a[b]", ""),
        ("a[c]", "False"),
        ("a[d]", "0.5"),
        ("a[f]", "file"),
    ]
    payload = creation_payload(
        "step_name",
        "s",
        None,
        None,
        None,
        {
            "language": STEP_PARAMETER.FALLBACK_PROJECT,
            "repository_branch": None,
            "local_folder": "/tmp",
            "dockerfile_path": CREATION_PARAMETER_VALUE.NULL,
        },
        None,
        None,
    )
    assert flatten(payload) == [("step_name", "s"), ("container_config[dockerfile_path]", "")]


# ---------------------------------------------------------------- archive (§6.2.1)


def _tree(tmp_path: Any) -> Any:
    for relative, content in {
        "src/main.py": "def run(): pass\n",
        "src/lib/util.py": "X = 1\n",
        "requirements.txt": "numpy\n",
        "docs/readme.md": "doc\n",
        "big.bin": "x" * 100,
    }.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return tmp_path


def test_archive_holds_included_items_under_their_names(tmp_path: Any) -> None:
    folder = _tree(tmp_path)
    project = {"included_folders": ["/src"], "requirements_path": "requirements.txt"}
    items = include_list({}, project, "src/main.py")
    assert items == ["src", "requirements.txt", "src/main.py"]
    with tarfile.open(fileobj=build_archive(str(folder), items), mode="r:gz") as archive:
        names = archive.getnames()
        assert set(names) == {
            "src",
            "src/main.py",
            "src/lib",
            "src/lib/util.py",
            "requirements.txt",
        }
        assert archive.extractfile("src/lib/util.py").read() == b"X = 1\n"


def test_archive_include_list_prefers_sent_values_even_null() -> None:
    project = {"included_folders": ["src", "docs"], "requirements_path": "requirements.txt"}
    sent = {"included_folders": None, "requirements_path": None}
    assert include_list(sent, project, "main.py") == ["main.py"]
    assert include_list({"included_folders": ["docs/"]}, project, None) == [
        "docs/",
        "requirements.txt",
    ]
    assert include_list({}, {}, "/a/b.py") == ["a/b.py"]


def test_archive_missing_item_raises(tmp_path: Any) -> None:
    with pytest.raises(FileNotFoundError):
        build_archive(str(_tree(tmp_path)), ["nope.py"])


# ---------------------------------------------------------------- response handling


def test_error_body_becomes_sdk_exception() -> None:
    body = {
        "message": "Pipeline 'foo' not found",
        "name": "NotFound",
        "request_id": "req-1",
        "additional_data": {"pipeline_name": "foo"},
    }
    with pytest.raises(SdkException) as caught:
        parse_response(fake_response(404, json.dumps(body)))
    error = caught.value
    assert (error.status_code, error.name, error.message) == (404, "NotFound", body["message"])
    assert error.request_id == "req-1" and error.additional_data == {"pipeline_name": "foo"}
    text = str(error)
    assert text.startswith("[NotFound] Pipeline 'foo' not found")
    assert "Request id: req-1" in text and "Additional data" in text


def test_error_without_name_and_gateway_errors() -> None:
    with pytest.raises(SdkException) as caught:
        parse_response(fake_response(502, json.dumps({"request_id": "NO_REQUEST_ID"})))
    assert caught.value.message == "The server returned an error"
    assert str(caught.value).startswith("[502] The platform is currently unreachable")
    assert "Request id" not in str(caught.value)


def test_non_json_error_body() -> None:
    with pytest.raises(SdkException) as caught:
        parse_response(fake_response(500, "<html>boom</html>", "text/html"))
    assert caught.value.status_code == 500
    assert "invalid response content" in caught.value.message
    assert "<html>boom</html>" in caught.value.message


def test_success_bodies() -> None:
    assert parse_response(fake_response(204, b"")) is None
    assert parse_response(fake_response(200, "OK", "text/plain")) is None
    assert (
        parse_response(fake_response(200, b"\x00\x01", "application/octet-stream")) == b"\x00\x01"
    )
    assert parse_response(fake_response(200, b"a,b\n", "text/csv; charset=utf-8")) == b"a,b\n"
    assert parse_response(fake_response(200, '{"a": 1}', "text/plain")) == {"a": 1}
    assert parse_response(fake_response(307, '{"x": null}')) == {"x": None}
    assert parse_response(fake_response(200, "null")) is None
    with pytest.raises(SdkException, match="Unable to decode response data into json"):
        parse_response(fake_response(200, b""))


def test_json_bodies_decode_with_orjson_and_what_it_refuses_with_json() -> None:
    """The `fast` extra (installed by `make install`) decodes bodies; what orjson refuses
    but the json module reads (NaN, integers past 64 bits) still decodes the same."""
    import shipyard._http as sdk_http

    assert sdk_http.orjson is not None
    body = {"metrics": [{"value": 0.1 + 0.2, "name": "é"}, {"value": 1.0}], "total_count": 2}
    decoded = parse_response(fake_response(200, json.dumps(body)))
    assert decoded == body and repr(decoded) == repr(body)
    nan = parse_response(fake_response(200, '{"v": NaN, "big": 123456789012345678901234567890}'))
    assert nan["v"] != nan["v"] and nan["big"] == 123456789012345678901234567890


def test_forbidden_inside_execution_gets_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    response = fake_response(403, json.dumps({"message": "nope", "name": "Forbidden"}))
    with pytest.raises(SdkException) as caught:
        parse_response(response)
    assert caught.value.message == "nope"
    monkeypatch.setenv("CRAFT_AI_EXECUTION_ID", "p-12345")
    with pytest.raises(SdkException) as caught:
        parse_response(response)
    assert caught.value.message.startswith("Insufficient permissions")
    assert caught.value.message.endswith("Original error: nope")


def test_storage_xml_errors() -> None:
    xml = "<Error><Code>NoSuchKey</Code><Message>Object not found</Message><Key>a/b</Key></Error>"
    with pytest.raises(SdkException) as caught:
        raise_storage_error(fake_response(404, xml, "application/xml"))
    error = caught.value
    assert (error.name, error.message, error.status_code) == ("NoSuchKey", "Object not found", 404)
    assert error.additional_data == {"Key": "a/b"}
    with pytest.raises(SdkException, match="Unable to decode response from the data store"):
        raise_storage_error(fake_response(500, "not xml", "text/plain"))


# ---------------------------------------------------------------- execution id (§8.2)


def _context_module(variable: contextvars.ContextVar) -> types.ModuleType:
    module = types.ModuleType(_execution_context.CONTEXT_MODULE_NAME)
    module.current_execution_id = variable  # type: ignore[attr-defined]
    return module


def test_execution_id_from_context_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("current_execution_id")
    monkeypatch.setitem(
        sys.modules, _execution_context.CONTEXT_MODULE_NAME, _context_module(variable)
    )
    monkeypatch.setenv("CRAFT_AI_EXECUTION_ID", "from-env")
    assert _execution_context.get_execution_id() == "from-env"  # unset → LookupError → env

    def inside() -> str | None:
        variable.set("from-context")
        return _execution_context.get_execution_id()

    assert contextvars.copy_context().run(inside) == "from-context"
    assert _execution_context.get_execution_id() == "from-env"


def test_execution_id_from_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _execution_context.get_execution_id() is None
    monkeypatch.setenv("SHIPYARD_EXECUTION_ID", "shipyard-id")
    assert _execution_context.get_execution_id() == "shipyard-id"
    monkeypatch.setenv("CRAFT_AI_EXECUTION_ID", "craft-id")
    assert _execution_context.get_execution_id() == "craft-id"


def test_failed_context_import_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _execution_context.get_execution_id() is None  # import fails once
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("v", default="late")
    monkeypatch.setitem(
        sys.modules, _execution_context.CONTEXT_MODULE_NAME, _context_module(variable)
    )
    assert _execution_context.get_execution_id() is None  # never retried
    _execution_context.reset_cache()
    assert _execution_context.get_execution_id() == "late"


def test_metrics_outside_execution_warn_and_send_nothing(stub: StubServer, sdk: CraftAiSdk) -> None:
    with pytest.warns(UserWarning, match="outside a step"):
        assert sdk.record_metric_value("accuracy", 0.9) is False
    with pytest.warns(UserWarning):
        assert sdk.record_list_metric_values("loss", [1, 2]) is False
    sdk.warn_on_metric_outside_of_step = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sdk.record_metric_value("accuracy", 0.9) is False
    assert stub.requests == []


def test_metrics_inside_execution(
    stub: StubServer, sdk: CraftAiSdk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRAFT_AI_EXECUTION_ID", "p-abcde")
    stub.route("PUT", f"{API}/metrics/single-value/acc", (204, b""))
    stub.route("POST", f"{API}/metrics/list-values/loss", (200, {"ok": True}))
    assert sdk.record_metric_value("acc", 0.5) is True
    assert sdk.record_list_metric_values("loss", list(range(10_001))) is True
    assert stub.calls("PUT")[0].json() == {"value": 0.5, "execution_id": "p-abcde"}
    batches = [r.json() for r in stub.calls("POST", f"{API}/metrics/list-values/loss")]
    assert [len(b["values"]) for b in batches] == [10_000, 1]
    assert all(b["execution_id"] == "p-abcde" for b in batches)


# ---------------------------------------------------------------- construction


def test_constructor_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):
        CraftAiSdk(environment_url="http://h")
    with pytest.raises(ValueError):
        CraftAiSdk(sdk_token="t")
    monkeypatch.setenv("CRAFT_AI_SDK_TOKEN", "craft")
    monkeypatch.setenv("CRAFT_AI_ENVIRONMENT_URL", "http://craft:1/environments/a/b/")
    monkeypatch.setenv("SHIPYARD_ENVIRONMENT_URL", "https://ship:8443/environments/p/e/")
    sdk = CraftAiSdk()
    assert sdk.base_environment_url == "https://ship:8443/environments/p/e"
    assert sdk.base_environment_api_url == "https://ship:8443/environments/p/e/api/v1"
    assert sdk.base_control_url == "https://ship:8443"
    assert sdk.base_control_api_url == "https://ship:8443/api/v1"
    assert sdk._http._refresh_token == "craft"
    monkeypatch.setenv("CRAFT_AI_CONTROL_URL", "http://control/")
    assert CraftAiSdk().base_control_api_url == "http://control/api/v1"
    assert CraftAiSdk(control_url="http://other").base_control_url == "http://other"
    assert CraftAiSdk().verbose_log is False


# ---------------------------------------------------------------- HTTP: authentication


def test_auth_refresh_is_lazy_and_happens_once(stub: StubServer) -> None:
    sdk = CraftAiSdk(sdk_token=TOKEN, environment_url=stub.url + ENV_PATH)
    assert stub.requests == []
    stub.route("GET", f"{API}/steps", (200, [{"step_name": "s"}]))
    stub.route("GET", "/api/v1/users/me", (200, {"id": "u", "name": "N", "email": "e", "x": 1}))
    assert sdk.list_steps() == [{"step_name": "s"}]
    assert sdk.list_steps() == [{"step_name": "s"}]
    assert sdk.who_am_i() == {"id": "u", "name": "N", "email": "e"}
    refreshes = stub.calls("POST", "/api/v1/auth/refresh")
    assert len(refreshes) == 1 and stub.requests[0] is refreshes[0]
    assert refreshes[0].json() == {"refresh_token": TOKEN}
    assert "authorization" not in refreshes[0].headers
    for request in stub.api_calls():
        assert request.headers["authorization"].startswith("Bearer ")
        assert request.headers["craft-ai-client"] == f"shipyard-sdk@{shipyard.__version__}"


def test_token_close_to_expiry_is_refreshed(stub: StubServer, sdk: CraftAiSdk) -> None:
    stub.token_lifetime_s = 10  # less than the 30 s margin
    stub.route("GET", f"{API}/steps", (200, []))
    sdk.list_steps()
    sdk.list_steps()
    assert stub.refresh_count == 2


def test_401_drops_the_token_without_retry(stub: StubServer, sdk: CraftAiSdk) -> None:
    stub.route(
        "GET",
        f"{API}/steps",
        (200, []),
        (401, {"message": "expired", "name": "Unauthorized"}),
        (200, [{"step_name": "s"}]),
    )
    assert sdk.list_steps() == []
    with pytest.raises(SdkException) as caught:
        sdk.list_steps()
    assert caught.value.status_code == 401
    assert stub.refresh_count == 1 and len(stub.calls("GET", f"{API}/steps")) == 2
    assert sdk.list_steps() == [{"step_name": "s"}]
    assert stub.refresh_count == 2


def test_refresh_failure_is_raised(stub: StubServer, sdk: CraftAiSdk) -> None:
    stub.route(
        "POST", "/api/v1/auth/refresh", (401, {"message": "bad token", "name": "Unauthorized"})
    )
    with pytest.raises(SdkException) as caught:
        sdk.list_pipelines()
    assert (caught.value.status_code, caught.value.message) == (401, "bad token")
    assert stub.api_calls() == []


def test_network_failure_is_a_request_error() -> None:
    sdk = CraftAiSdk(sdk_token=TOKEN, environment_url="http://127.0.0.1:9/environments/p/e")
    with pytest.raises(SdkException) as caught:
        sdk.list_steps()
    assert caught.value.name == "RequestError"


# ---------------------------------------------------------------- HTTP: runs and executions


PIPELINE = {
    "parameters": {
        "pipeline_name": "p",
        "inputs": [
            {"name": "a", "data_type": "number"},
            {"name": "f", "data_type": "file"},
        ],
        "outputs": [],
    },
    "creation_info": {"status": "ready", "id": "x", "is_archived": False},
}


def test_run_pipeline_long_polls_on_307(stub: StubServer, sdk: CraftAiSdk, tmp_path: Any) -> None:
    data_file = tmp_path / "data.csv"
    data_file.write_bytes(b"a,b\n1,2\n")
    stub.route("GET", f"{API}/pipelines/p", (200, PIPELINE))
    stub.route("POST", f"{API}/pipelines/p/run", (200, {"execution_id": "p-abcde"}))
    outputs = {
        "outputs": [
            {
                "pipeline_output_name": "o",
                "data_type": "string",
                "mapping_type": "run",
                "value": "hi",
            },
            {
                "pipeline_output_name": "f",
                "data_type": "file",
                "mapping_type": "run",
                "value": None,
            },
            {
                "pipeline_output_name": "d",
                "data_type": "file",
                "mapping_type": "datastore",
                "value": "x",
            },
            {"pipeline_output_name": "n", "data_type": "file", "mapping_type": "is_null"},
        ]
    }
    poll = f"{API}/executions/p-abcde/outputs"
    stub.route("GET", poll, (307, {}, {"Location": poll}), (307, {}), (200, outputs))
    stub.route("GET", f"{poll}/f", (200, b"FILE-BYTES"))

    result = sdk.run_pipeline(
        "p",
        inputs={"a": 1, "f": str(data_file), "extra": "x"},
        outputs_mapping=[OutputDestination(pipeline_output_name="d", datastore_path="out/x")],
    )
    assert result == {
        "execution_id": "p-abcde",
        "outputs": {"o": "hi", "f": b"FILE-BYTES", "d": "x", "n": None},
    }
    polls = stub.calls("GET", poll)
    assert len(polls) == 3
    assert all(p.raw_query == "wait_for_completion=true" for p in polls)
    run = stub.calls("POST", f"{API}/pipelines/p/run")[0]
    parts = {name: (filename, content) for name, filename, content in run.multipart()}
    assert json.loads(parts["json_inputs"][1]) == {"a": 1, "extra": "x"}
    assert parts["f"] == ("data.csv", b"a,b\n1,2\n")
    assert json.loads(parts["outputs_mapping"][1]) == [
        {"pipeline_output_name": "d", "datastore_path": "out/x"}
    ]
    assert "inputs_mapping" not in parts


def test_run_pipeline_without_files_is_form_encoded(stub: StubServer, sdk: CraftAiSdk) -> None:
    stub.route("GET", f"{API}/pipelines/p", (200, PIPELINE))
    stub.route("POST", f"{API}/pipelines/p/run", (200, {"execution_id": "p-00000"}))
    result = sdk.run_pipeline(
        "p",
        inputs={"a": 2},
        inputs_mapping=[InputSource(pipeline_input_name="f", datastore_path="in/f.csv")],
        wait_for_completion=False,
    )
    assert result == {"execution_id": "p-00000"}
    run = stub.calls("POST", f"{API}/pipelines/p/run")[0]
    assert run.headers["content-type"] == "application/x-www-form-urlencoded"
    form = run.form()
    assert json.loads(form["json_inputs"][0]) == {"a": 2}
    assert json.loads(form["inputs_mapping"][0]) == [
        {"pipeline_input_name": "f", "datastore_path": "in/f.csv"}
    ]
    assert stub.calls("GET", f"{API}/executions/p-00000/outputs") == []
    # No value could be a file (a path, a binary file, bytes): one call, not two.
    assert stub.calls("GET", f"{API}/pipelines/p") == []


def test_run_pipeline_with_binary_stream(stub: StubServer, sdk: CraftAiSdk) -> None:
    stub.route("GET", f"{API}/pipelines/p", (200, PIPELINE))
    refused = {"message": "Input 'f' is a file: send it as a file part", "name": "BadRequest",
               "request_id": "r-1", "additional_data": {"name": "f"}}
    stub.route("POST", f"{API}/pipelines/p/run", (200, {"execution_id": "p-11111"}),
               (400, refused))
    sdk.run_pipeline("p", inputs={"f": io.BytesIO(b"xyz")}, wait_for_completion=False)
    parts = stub.calls("POST", f"{API}/pipelines/p/run")[0].multipart()
    assert ("f", "f", b"xyz") in parts
    with pytest.raises(SdkException, match="is a file"):  # the server's word
        sdk.run_pipeline("p", inputs={"f": 3}, wait_for_completion=False)


def test_get_pipeline_execution_reshapes_items(stub: StubServer, sdk: CraftAiSdk) -> None:
    execution = {
        "execution_id": "p-1",
        "status": "Succeeded",
        "inputs": [
            {
                "pipeline_input_name": "a",
                "data_type": "number",
                "mapping_type": "endpoint",
                "mapping_value": {
                    "endpoint_input_name": "x",
                    "is_required": True,
                    "default_value": 1,
                },
                "value": 4,
            },
            {
                "pipeline_input_name": "f",
                "data_type": "file",
                "mapping_type": "run",
                "mapping_value": {"run_input_name": "f"},
            },
        ],
        "outputs": [
            {
                "pipeline_output_name": "o",
                "data_type": "file",
                "mapping_type": "datastore",
                "mapping_value": {"datastore_path": "out/o"},
            }
        ],
    }
    stub.route("GET", f"{API}/executions/p-1", (200, execution))
    stub.route("GET", f"{API}/executions/p-1/inputs/f", (200, b"IN"))
    stub.route("GET", f"{API}/executions/p-1/outputs/o", (200, b"OUT"))
    result = sdk.get_pipeline_execution("p-1")
    assert result["status"] == "Succeeded"
    assert result["inputs"] == [
        {
            "pipeline_input_name": "a",
            "data_type": "number",
            "endpoint_input_name": "x",
            "source": "endpoint",
            "value": 4,
        },
        {"pipeline_input_name": "f", "data_type": "file", "source": "run", "value": b"IN"},
    ]
    assert result["outputs"] == [
        {
            "pipeline_output_name": "o",
            "data_type": "file",
            "datastore_path": "out/o",
            "destination": "datastore",
            "value": b"OUT",
        }
    ]
    stub.route("GET", f"{API}/executions/p-1/inputs/a", (200, 4))
    assert sdk.get_pipeline_execution_input("p-1", "a")["value"] == 4
    assert stub.requests[-2].raw_query == "include_io_values=false"
    with pytest.raises(SdkException):
        sdk.get_pipeline_execution_output("p-1", "missing")


def test_execution_logs_accept_both_signatures(stub: StubServer, sdk: CraftAiSdk) -> None:
    logs = [[{"timestamp": "t", "message": "hi", "stream": "stdout"}]]
    stub.route("POST", f"{API}/executions/p-1/logs", (200, logs))
    since = datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert (
        sdk.get_pipeline_execution_logs(pipeline_name="p", execution_id="p-1", limit=3) == logs[0]
    )
    assert sdk.get_pipeline_execution_logs("p-1", since) == logs[0]
    assert sdk.get_pipeline_execution_logs("p-1") == logs[0]
    bodies = [r.json() for r in stub.calls("POST")]
    assert bodies[-3:] == [{"limit": 3}, {"from": 1714521600000}, {}]
    stub.route("POST", f"{API}/executions/p-2/logs", (200, []))
    assert sdk.get_pipeline_execution_logs("p", "p-2") == []


# ---------------------------------------------------------------- HTTP: creation and waits


def test_create_step_from_local_folder(stub: StubServer, sdk: CraftAiSdk, tmp_path: Any) -> None:
    folder = _tree(tmp_path)
    stub.route(
        "GET",
        f"{API}/project-information",
        (200, {"included_folders": ["docs"], "requirements_path": "requirements.txt"}),
    )
    stub.route("POST", f"{API}/steps", (201, {"step_name": "s"}))
    pending = {"creation_info": {"status": "creation_pending"}}
    ready = {"parameters": {"step_name": "s"}, "creation_info": {"status": "ready", "id": "i"}}
    stub.route("GET", f"{API}/steps/s", (200, pending), (200, pending), (200, ready))
    step = sdk.create_step(
        "s",
        function_path="src/main.py",
        function_name="run",
        container_config={
            "local_folder": str(folder),
            "included_folders": ["src"],
            "requirements_path": STEP_PARAMETER.FALLBACK_PROJECT,
            "system_dependencies": STEP_PARAMETER.NULL,
        },
        inputs=[Input("a", INPUT_OUTPUT_TYPES.NUMBER)],
    )
    assert step == {"parameters": {"step_name": "s"}, "creation_info": {"status": "ready"}}
    assert [r.method + " " + r.path for r in stub.api_calls()][:2] == [
        f"GET {API}/project-information",
        f"POST {API}/steps",
    ]
    parts = stub.calls("POST", f"{API}/steps")[0].multipart()
    fields = {name: content.decode() for name, filename, content in parts if filename is None}
    assert fields == {
        "step_name": "s",
        "function_path": "src/main.py",
        "function_name": "run",
        "container_config[included_folders][0]": "src",
        "container_config[system_dependencies]": "",
        "inputs[0][name]": "a",
        "inputs[0][data_type]": "number",
    }
    (archive_part,) = [p for p in parts if p[1] is not None]
    assert archive_part[:2] == ("step_file", "step_file")
    with tarfile.open(fileobj=io.BytesIO(archive_part[2]), mode="r:gz") as archive:
        assert "src/lib/util.py" in archive.getnames()
        assert "requirements.txt" in archive.getnames()
        assert not any(name.startswith("docs") for name in archive.getnames())
    waits = stub.calls("GET", f"{API}/steps/s")
    assert len(waits) == 3 and all(w.raw_query == "wait_for_completion=true" for w in waits)


def test_create_pipeline_failures_and_step_form(stub: StubServer, sdk: CraftAiSdk) -> None:
    stub.route("POST", f"{API}/pipelines", (200, {"pipeline_name": "p", "pipeline_id": "x"}))
    stub.route("GET", f"{API}/pipelines/p", (200, {"creation_info": {"status": "creation_failed"}}))
    with pytest.raises(SdkException) as caught:
        sdk.create_pipeline("p", function_path="main.py", function_name="run")
    assert caught.value.name == "CreationFailed"
    form = stub.calls("POST", f"{API}/pipelines")[0]
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form.form() == {
        "pipeline_name": ["p"],
        "function_path": ["main.py"],
        "function_name": ["run"],
    }
    assert sdk.create_pipeline("p", step_name="s") == {"pipeline_name": "p"}
    assert stub.calls("POST", f"{API}/pipelines")[-1].json() == {
        "pipeline_name": "p",
        "step_names": ["s"],
    }
    stub.route("GET", f"{API}/pipelines/q", (200, {"creation_info": {"status": "weird"}}))
    with pytest.raises(SdkException) as caught:
        sdk.get_pipeline("q", wait_for_completion=True)
    assert caught.value.name == "TimeoutException"


def test_get_pipeline_adds_last_execution(stub: StubServer, sdk: CraftAiSdk) -> None:
    stub.route("GET", f"{API}/pipelines/p", (200, PIPELINE))
    stub.route(
        "GET", f"{API}/pipelines/p/executions/latest", (204, b""), (200, {"execution_id": "p-9"})
    )
    assert sdk.get_pipeline("p")["creation_info"] == {"status": "ready", "last_execution_id": None}
    assert sdk.get_pipeline("p")["creation_info"]["last_execution_id"] == "p-9"


def test_deployment_create_waits_until_final_status(stub: StubServer, sdk: CraftAiSdk) -> None:
    stub.route("POST", f"{API}/endpoints", (201, {"name": "d"}))
    deployment = {
        "name": "d",
        "id": "x",
        "pipeline": {"name": "p", "id": "y"},
        "execution_rule": "endpoint",
    }
    stub.route(
        "GET",
        f"{API}/deployments/d",
        (200, {**deployment, "status": "creation_pending"}),
        (200, {**deployment, "status": "up"}),
    )
    stub.route("GET", f"{API}/deployments/d/executions/latest", (200, {}))
    result = sdk.create_deployment(
        "p",
        "d",
        DEPLOYMENT_EXECUTION_RULES.ENDPOINT,
        mode=DEPLOYMENT_MODES.LOW_LATENCY,
        inputs_mapping=[InputSource(pipeline_input_name="a", constant_value=1)],
    )
    assert result == {
        "name": "d",
        "pipeline": {"name": "p"},
        "execution_rule": "endpoint",
        "status": "up",
        "last_execution_id": None,
    }
    assert stub.calls("POST", f"{API}/endpoints")[0].json() == {
        "pipeline_name": "p",
        "name": "d",
        "mode": "low_latency",
        "inputs_mapping": [{"pipeline_input_name": "a", "constant_value": 1}],
    }
    assert len(stub.calls("GET", f"{API}/deployments/d")) == 2
    with pytest.raises(ValueError):
        sdk.create_deployment("p", "d", "endpoint", schedule="* * * * *")
    with pytest.raises(ValueError):
        sdk.create_deployment("p", "d", "sometimes")


# ---------------------------------------------------------------- HTTP: endpoints


def test_trigger_endpoint_and_results(stub: StubServer, sdk: CraftAiSdk) -> None:
    deployment = {
        "name": "d",
        "execution_rule": "endpoint",
        "endpoint_url_path": "my-path",
        "status": "up",
    }
    stub.route("GET", f"{API}/deployments/d", (200, deployment))
    stub.route("GET", f"{API}/deployments/d/executions/latest", (200, None))
    stub.route(
        "POST",
        f"{ENV_PATH}/endpoints/my-path",
        (200, {"execution_id": "d-12345"}, {"Craft-Ai-Execution-Id": "d-12345"}),
    )
    results = f"{ENV_PATH}/endpoints/my-path/executions/d-12345"
    stub.route("GET", results, (307, {}, {"Location": "/redirected"}))
    stub.route("GET", "/redirected", (200, {"outputs": {"o": 3}}))
    assert sdk.trigger_endpoint("d", "tok/en", inputs={"a": 1}) == {
        "outputs": {"o": 3},
        "execution_id": "d-12345",
    }
    trigger = stub.calls("POST", f"{ENV_PATH}/endpoints/my-path")[0]
    assert trigger.headers["authorization"] == "EndpointToken tok/en"
    assert trigger.headers["craft-ai-client"].startswith("shipyard-sdk@")
    assert trigger.json() == {"a": 1}
    fetch = stub.calls("GET", results)[0]
    assert fetch.query == {"token": ["tok/en"]}
    assert "authorization" not in fetch.headers and "craft-ai-client" not in fetch.headers
    assert sdk.trigger_endpoint("d", "t", wait_for_results=False) == {"execution_id": "d-12345"}
    assert stub.calls("POST", f"{ENV_PATH}/endpoints/my-path")[-1].json() == {}


def test_endpoint_file_result_and_file_trigger(stub: StubServer, sdk: CraftAiSdk) -> None:
    deployment = {
        "name": "d",
        "execution_rule": "endpoint",
        "endpoint_url_path": "d",
        "status": "up",
    }
    stub.route("GET", f"{API}/deployments/d", (200, deployment))
    stub.route("GET", f"{API}/deployments/d/executions/latest", (204, b""))
    stub.route("POST", f"{ENV_PATH}/endpoints/d", (200, {}, {"Craft-Ai-Execution-Id": "d-1"}))
    stub.route(
        "GET",
        f"{ENV_PATH}/endpoints/d/executions/d-1",
        (200, b"PNG", {"Content-Disposition": "attachment; filename=result_d-1_image_out"}),
    )
    with pytest.warns(UserWarning, match="not sent"):
        result = sdk.trigger_endpoint("d", "t", {"img": io.BytesIO(b"raw"), "n": 2})
    assert result == {"outputs": {"image_out": b"PNG"}, "execution_id": "d-1"}
    parts = stub.calls("POST", f"{ENV_PATH}/endpoints/d")[0].multipart()
    assert parts == [("img", "img", b"raw")]
    stub.route(
        "GET",
        f"{ENV_PATH}/endpoints/d/executions/d-1",
        (500, {"message": "boom", "name": "ExecutionFailed"}),
    )
    with pytest.raises(SdkException, match="boom"):
        sdk.retrieve_endpoint_results("d", "d-1", "t")
    stub.route("GET", f"{API}/deployments/d", (200, {**deployment, "execution_rule": "periodic"}))
    with pytest.raises(ValueError):
        sdk.trigger_endpoint("d", "t")


# ---------------------------------------------------------------- HTTP: data store


def test_file_parts_are_sent_by_sendfile_in_larger_parts(
    stub: StubServer, sdk: CraftAiSdk, tmp_path: Path
) -> None:
    """A regular file with the default part size goes in FILE_PART_SIZE parts (sendfile:
    none of it in memory); a buffer keeps the default. Both bodies arrive whole."""
    from shipyard import _datastore

    sdk._MULTIPART_THRESHOLD = 8
    assert sdk._MULTIPART_PART_SIZE == _datastore.DEFAULT_MULTIPART_PART_SIZE
    stub.route("POST", f"{API}/data-store/upload/multipart", (200, {"upload_id": "u"}))
    stub.route(
        "POST",
        f"{API}/data-store/upload/multipart/part",
        (200, {"signed_url": f"{stub.url}/signed/part/1", "headers": {}}),
    )
    stub.route("PUT", "/signed/part/1", (200, b"", {"ETag": '"e"'}))
    stub.route("POST", f"{API}/data-store/upload/multipart/end", (204, b""))
    data = os.urandom(300_000)
    source = tmp_path / "f.bin"
    source.write_bytes(data)
    sdk.upload_data_store_object(str(source), "a/f.bin")
    sdk.upload_data_store_object(io.BytesIO(data), "a/b.bin")
    asked = stub.calls("POST", f"{API}/data-store/upload/multipart/part")
    sizes = [r.json()["chunk_size"] for r in asked]
    assert sizes == [_datastore.FILE_PART_SIZE, _datastore.DEFAULT_MULTIPART_PART_SIZE]
    assert [p.body for p in stub.calls("PUT")] == [data, data]
    stub.route(
        "POST",
        f"{API}/data-store/upload/multipart/part",
        (200, {"signed_url": "http://127.0.0.1:9/part", "headers": {}}),
    )
    with pytest.raises(SdkException) as caught:
        sdk.upload_data_store_object(str(source), "a/f.bin")
    assert caught.value.name == "RequestError"


def test_multipart_upload_sequence(stub: StubServer, sdk: CraftAiSdk) -> None:
    sdk._MULTIPART_THRESHOLD = 8
    sdk._MULTIPART_PART_SIZE = 4
    config = {"upload_id": "u-1"}
    stub.route("POST", f"{API}/data-store/upload/multipart", (200, config))

    def part(request: Recorded) -> Reply:
        number = request.json()["part_number"]
        return 200, {
            "signed_url": f"{stub.url}/signed/part/{number}",
            "headers": {"X-Part": str(number)},
        }

    stub.route("POST", f"{API}/data-store/upload/multipart/part", part)
    for number in (1, 2, 3):
        etag = {"ETag": f'"etag-{number}"'} if number != 3 else {}
        stub.route("PUT", f"/signed/part/{number}", (200, b"", etag))
    stub.route("POST", f"{API}/data-store/upload/multipart/end", (204, b""))

    sdk.upload_data_store_object(io.BytesIO(b"0123456789"), "a/b.bin")

    # Parts go in parallel: start first, end last, each PUT after its own part request.
    calls = stub.api_calls()
    sequence = [(r.method, r.path) for r in calls]
    assert sequence[0] == ("POST", f"{API}/data-store/upload/multipart")
    assert sequence[-1] == ("POST", f"{API}/data-store/upload/multipart/end")
    assert sorted(sequence[1:-1]) == sorted(
        [("POST", f"{API}/data-store/upload/multipart/part")] * 3
        + [("PUT", f"/signed/part/{n}") for n in (1, 2, 3)]
    )
    for number in (1, 2, 3):
        asked = next(
            i for i, r in enumerate(calls) if r.method == "POST" and r.path.endswith("/part")
            and r.json()["part_number"] == number
        )
        assert sequence.index(("PUT", f"/signed/part/{number}")) > asked
    assert stub.calls("POST", f"{API}/data-store/upload/multipart")[0].json() == {
        "path_to_object": "a/b.bin"
    }
    part_requests = sorted(
        (r.json() for r in stub.calls("POST", f"{API}/data-store/upload/multipart/part")),
        key=lambda body: body["part_number"],
    )
    assert part_requests == [
        {
            "path_to_object": "a/b.bin",
            "multipart_upload_configuration": config,
            "chunk_size": 4,
            "part_number": 1,
        },
        {
            "path_to_object": "a/b.bin",
            "multipart_upload_configuration": config,
            "chunk_size": 4,
            "part_number": 2,
        },
        {
            "path_to_object": "a/b.bin",
            "multipart_upload_configuration": config,
            "chunk_size": 4,
            "part_number": 3,
            "size": 10,
        },
    ]
    puts = sorted(stub.calls("PUT"), key=lambda p: p.path)
    assert [p.body for p in puts] == [b"0123", b"4567", b"89"]
    assert [p.headers["x-part"] for p in puts] == ["1", "2", "3"]
    assert all(
        "authorization" not in p.headers and "craft-ai-client" not in p.headers for p in puts
    )
    assert stub.calls("POST", f"{API}/data-store/upload/multipart/end")[0].json() == {
        "path_to_object": "a/b.bin",
        "multipart_upload_configuration": config,
        "parts": [
            {"number": 1, "metadata": '"etag-1"'},
            {"number": 2, "metadata": '"etag-2"'},
            {"number": 3},
        ],
    }


def test_single_part_upload_and_exact_part_multiple(
    stub: StubServer, sdk: CraftAiSdk, tmp_path: Any
) -> None:
    source = tmp_path / "model.pkl"
    source.write_bytes(b"weights")
    stub.route(
        "GET",
        f"{API}/data-store/upload",
        (
            200,
            {
                "signed_url": f"{stub.url}/signed/post",
                "fields": {"key": "m/model.pkl", "policy": "p"},
            },
        ),
    )
    stub.route("POST", "/signed/post", (204, b""))
    sdk.upload_data_store_object(str(source), "m/model.pkl")
    presign = stub.calls("GET", f"{API}/data-store/upload")[0]
    assert presign.query == {"path_to_object": ["m/model.pkl"]}
    post = stub.calls("POST", "/signed/post")[0]
    assert post.multipart() == [
        ("key", None, b"m/model.pkl"),
        ("policy", None, b"p"),
        ("file", "model.pkl", b"weights"),
    ]
    assert "authorization" not in post.headers and "craft-ai-client" not in post.headers

    sdk._MULTIPART_THRESHOLD = 4
    sdk._MULTIPART_PART_SIZE = 4
    stub.route("POST", f"{API}/data-store/upload/multipart", (200, {"id": 1}))
    stub.route(
        "POST",
        f"{API}/data-store/upload/multipart/part",
        (200, {"signed_url": f"{stub.url}/signed/p", "headers": {}}),
    )
    stub.route("PUT", "/signed/p", (200, b""))
    stub.route("POST", f"{API}/data-store/upload/multipart/end", (200, {}))
    sdk.upload_data_store_object(io.BytesIO(b"abcdefgh"), "x")
    parts = [r.json() for r in stub.calls("POST", f"{API}/data-store/upload/multipart/part")]
    assert sorted((p["part_number"], p.get("size") or 0) for p in parts) == [(1, 0), (2, 8)]


def test_download_and_storage_errors(stub: StubServer, sdk: CraftAiSdk, tmp_path: Any) -> None:
    stub.route(
        "POST", f"{API}/data-store/download", (200, {"signed_url": f"{stub.url}/signed/get"})
    )
    stub.route("GET", "/signed/get", (200, b"content", {"Content-Type": "text/plain"}))
    target = tmp_path / "out.txt"
    sdk.download_data_store_object("a/b.txt", str(target))
    assert target.read_bytes() == b"content"
    buffer = io.BytesIO()
    sdk.download_data_store_object("a/b.txt", buffer)
    assert buffer.read() == b"content"
    request = stub.calls("POST", f"{API}/data-store/download")[0]
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {"path_to_object": ["a/b.txt"]}
    assert "craft-ai-client" not in stub.calls("GET", "/signed/get")[0].headers

    xml = "<Error><Code>NoSuchKey</Code><Message>missing</Message></Error>"
    stub.route("GET", "/signed/get", (404, xml, {"Content-Type": "application/xml"}))
    with pytest.raises(SdkException) as caught:
        sdk.download_data_store_object("a/b.txt", str(tmp_path / "never.txt"))
    assert (caught.value.name, caught.value.message, caught.value.status_code) == (
        "NoSuchKey",
        "missing",
        404,
    )
    assert not (tmp_path / "never.txt").exists()

    # Nothing listening at the signed URL: the same RequestError as any API call.
    stub.route("POST", f"{API}/data-store/download", (200, {"signed_url": "http://127.0.0.1:9/x"}))
    with pytest.raises(SdkException) as caught:
        sdk.download_data_store_object("a/b.txt", str(tmp_path / "never.txt"))
    assert caught.value.name == "RequestError"
    assert not (tmp_path / "never.txt").exists()


def test_data_store_listing_information_and_deletion(stub: StubServer, sdk: CraftAiSdk) -> None:
    stub.route(
        "GET",
        f"{API}/data-store/list",
        (200, {"items": [{"path": "a", "size": 1}], "continuation_token": "n/1"}),
        (200, {"items": [{"path": "b", "size": 2048}], "continuation_token": None}),
    )
    assert sdk.list_data_store_objects() == [
        {"path": "a", "size": "1.00 B"},
        {"path": "b", "size": "2.00 KB"},
    ]
    pages = stub.calls("GET", f"{API}/data-store/list")
    assert pages[0].raw_query == "include_continuation_token=t"
    assert pages[1].raw_query == "include_continuation_token=t&continuation_token=n%2F1"
    stub.route("POST", f"{API}/data-store/information", (200, {"path": "a", "size": 1239}))
    assert sdk.get_data_store_object_information("a")["size"] == "1.21 KB"
    assert stub.calls("POST", f"{API}/data-store/information")[0].json() == {"path_to_object": "a"}
    stub.route("DELETE", f"{API}/data-store/delete", (200, {"path": "a"}))
    assert sdk.delete_data_store_object("a") == {"path": "a"}
    assert stub.calls("DELETE")[0].form() == {"path_to_object": ["a"]}


# ---------------------------------------------------------------- HTTP: misc routes


def test_metric_pages_and_resource_metrics(stub: StubServer, sdk: CraftAiSdk) -> None:
    def columns(values: list, total: int) -> dict:
        return {"total_count": total, "constant": {"name": "m", "pipeline_name": "p"},
                "columns": {"created_at": ["c"] * len(values), "execution_id": ["e"] * len(values),
                            "deployment_name": [None] * len(values), "value": values}}

    stub.route("GET", f"{API}/metrics/single-value",
               (200, columns([1, 2.5], 3)), (200, columns([3], 3)))
    assert sdk.get_metrics(name="m", pipeline_name="p") == [
        {"name": "m", "created_at": "c", "execution_id": "e", "deployment_name": None,
         "pipeline_name": "p", "value": v} for v in (1, 2.5, 3)]
    first, second = stub.calls("GET", f"{API}/metrics/single-value")
    assert first.query == {
        "filters[name]": ["m"],
        "filters[pipeline_name]": ["p"],
        "items_per_page": ["50000"],
        "page": ["1"],
        "format": ["columns"],
    }
    assert second.query["page"] == ["2"]
    stub.route("GET", f"{API}/metrics/list-values",
               (200, {"total_count": 5, "constant": {}, "columns": {
                   "name": [], "created_at": [], "execution_id": [], "deployment_name": [],
                   "pipeline_name": [], "values": []}}))
    assert sdk.get_list_metrics() == []  # a short page ends the loop
    assert stub.calls("GET", f"{API}/metrics/list-values")[0].query["items_per_page"] == ["5000"]
    # A server older than format=columns ignores it and answers the objects themselves.
    listed = {"name": "l", "created_at": "c", "execution_id": "e", "deployment_name": None,
              "pipeline_name": "p", "value": [1.0], "values": [1.0]}
    stub.route("GET", f"{API}/metrics/list-values", (200, {"total_count": 1, "metrics": [listed]}))
    assert sdk.get_list_metrics() == [listed]
    # Its single-value pages stop at 5,000: a 400 for 50,000, then pages of 5,000.
    single = {k: v for k, v in listed.items() if k != "values"} | {"value": 0.5}
    stub.route("GET", f"{API}/metrics/single-value",
               (400, {"message": "'items_per_page' is 1 to 5000", "name": "BadRequest"}),
               (200, {"total_count": 2, "metrics": [single]}),
               (200, {"total_count": 2, "metrics": [single]}))
    assert sdk.get_metrics() == [single, single]
    asked = [(c.query["items_per_page"], c.query["page"])
             for c in stub.calls("GET", f"{API}/metrics/single-value")[-3:]]
    assert asked == [(["50000"], ["1"]), (["5000"], ["1"]), (["5000"], ["2"])]
    # Any other 400 is the caller's: asked again at 5,000, it is raised.
    stub.route("GET", f"{API}/metrics/single-value",
               (400, {"message": "Give at most one filter", "name": "BadRequest"}),
               (400, {"message": "Give at most one filter", "name": "BadRequest"}))
    with pytest.raises(SdkException, match="at most one filter"):
        sdk.get_metrics(pipeline_name="p", deployment_name="d")
    stub.route("GET", f"{API}/resource-metrics", (200, b"t,w,m,v\n", {"Content-Type": "text/csv"}))
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    end = datetime(2024, 5, 2, tzinfo=timezone.utc)
    assert sdk.get_resource_metrics(start, end, csv=True) == b"t,w,m,v\n"
    assert stub.calls("GET", f"{API}/resource-metrics")[0].raw_query == (
        "start=1714521600000&end=1714608000000&download=True"
    )


def test_simple_routes(stub: StubServer, sdk: CraftAiSdk) -> None:
    stub.route("DELETE", f"{API}/steps/s", (200, {"step_name": "s"}))
    assert sdk.delete_step("s", force_dependents_deletion=True) == {"step_name": "s"}
    assert stub.requests[-1].raw_query == "force_dependents_deletion=True"
    stub.route(
        "DELETE", f"{API}/pipelines/p", (200, {"pipeline": {"name": "p"}, "deployments": []})
    )
    sdk.delete_pipeline("p")
    assert stub.requests[-1].raw_query == "force_deployments_deletion=False"
    stub.route("PUT", f"{API}/environment-variables", (204, b""))
    assert sdk.create_or_update_environment_variable("NAME", "v") is None
    assert stub.requests[-1].json() == {"environment_variables": {"NAME": "v"}}
    stub.route("POST", f"{API}/endpoints/d/generate-new-token", (200, {"endpoint_token": "new"}))
    assert sdk.generate_new_endpoint_token("d") == {"endpoint_token": "new"}
    assert stub.requests[-1].body == b"" and stub.requests[-1].headers["content-length"] == "0"
    stub.route("PATCH", f"{API}/deployments/d", (200, {}))
    stub.route("GET", f"{API}/deployments/d", (200, {"status": "disabled"}))
    stub.route("GET", f"{API}/deployments/d/executions/latest", (200, {"execution_id": "d-1"}))
    assert sdk.update_deployment("d", is_enabled=False)["last_execution_id"] == "d-1"
    assert stub.calls("PATCH")[0].json() == {"is_enabled": False}
    logs = [{"message": "a", "type": "deployment"}, {"message": "b", "type": "build"}]
    stub.route("POST", f"{API}/deployments/d/logs", (200, logs))
    assert sdk.get_deployment_logs("d", type="deployment") == logs[:1]
    assert sdk.get_deployment_logs(deployment_name="d", limit=None) == logs


def test_download_step_archive(stub: StubServer, sdk: CraftAiSdk, tmp_path: Any) -> None:
    stub.route("GET", f"{API}/steps/s/download", (200, {"signed_url": f"{stub.url}/signed/s.tgz"}))
    stub.route("GET", "/signed/s.tgz", (200, b"TGZ"))
    sdk.download_step_local_folder("s", str(tmp_path))
    assert (tmp_path / "s.tgz").read_bytes() == b"TGZ"


# ---------------------------------------------------------------- progress and isolation


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_for_large_interactive_transfers(monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard import _progress

    pytest.importorskip("tqdm")
    big = _progress.MIN_PROGRESS_BYTES
    with _progress.progress_bar(big, "x") as progress:  # stderr is not a terminal here
        assert progress.active is False
    monkeypatch.setattr(sys, "stderr", _Terminal())
    with _progress.progress_bar(big, "x") as progress:  # SDK_VERBOSE_LOG=false (fixture)
        assert progress.active is False
    monkeypatch.delenv("SDK_VERBOSE_LOG")
    with _progress.progress_bar(big - 1, "x") as progress:
        assert progress.active is False
    with _progress.progress_bar(big, "x", allowed=False) as progress:
        assert progress.active is False
    with _progress.progress_bar(big, "x") as progress:
        assert progress.active is True
        progress.update(big)
    assert (
        CraftAiSdk(sdk_token="t", environment_url="http://h", verbose_log=False)._progress_allowed()
        is False
    )
    assert CraftAiSdk(sdk_token="t", environment_url="http://h")._progress_allowed() is True


def test_sdk_never_imports_the_service() -> None:
    import pathlib

    root = pathlib.Path(shipyard.__file__).parent
    sources = [path.read_text() for path in root.rglob("*.py")]
    assert sources and not any("shipyard_service" in text for text in sources)

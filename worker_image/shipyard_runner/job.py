"""The job document: what to run, with which inputs, expecting which outputs."""

from __future__ import annotations

DATA_TYPES = ("string", "number", "boolean", "json", "array", "file")


class JobError(Exception):
    """The job document itself is unusable (exit code 2)."""


class Job:
    __slots__ = ("execution_id", "api_url", "token", "code_dir", "code_url", "function_path",
                 "function_name", "inputs", "outputs", "environment_variables",
                 "input_data_types")

    def __init__(self, **fields) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))


def _opt_str(data: dict, key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise JobError("job field %r must be a string" % key)
    return value


def parse_job(data, api_url: str | None = None, token: str | None = None,
              require_code: bool = True, default_code_dir: str | None = None) -> Job:
    """Validate a decoded job. ``api_url``/``token`` (the runner's own configuration) win
    over the job's ``api_url``/``token``, which are fallbacks. ``default_code_dir`` (the
    image's code, ``SHIPYARD_CODE_DIR``) serves when the job names no code."""
    if not isinstance(data, dict):
        raise JobError("the job must be a JSON object")
    execution_id = _opt_str(data, "execution_id")
    if not execution_id:
        raise JobError("job field 'execution_id' is missing")
    function_path = _opt_str(data, "function_path")
    function_name = _opt_str(data, "function_name")
    code_dir = _opt_str(data, "code_dir")
    code_url = _opt_str(data, "code_url")
    if not code_dir and not code_url:
        code_dir = default_code_dir
    if require_code:
        if not function_path or not function_name:
            raise JobError("job fields 'function_path' and 'function_name' are required")
        if not code_dir and not code_url:
            raise JobError("the job needs 'code_dir' or 'code_url'")
    inputs = data.get("inputs") or {}
    if not isinstance(inputs, dict) or not all(isinstance(k, str) for k in inputs):
        raise JobError("job field 'inputs' must be an object")
    outputs = []
    seen = set()
    for item in data.get("outputs") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise JobError("each output must be an object with a 'name'")
        data_type = item.get("data_type")
        if data_type not in DATA_TYPES:
            raise JobError("output %r has an unknown data_type %r (one of: %s)"
                           % (item["name"], data_type, ", ".join(DATA_TYPES)))
        if item["name"] in seen:
            raise JobError("output %r is declared twice" % item["name"])
        seen.add(item["name"])
        outputs.append((item["name"], data_type))
    env = data.get("environment_variables") or {}
    if not isinstance(env, dict):
        raise JobError("job field 'environment_variables' must be an object")
    types = data.get("input_data_types")
    if types is not None and not isinstance(types, dict):
        raise JobError("job field 'input_data_types' must be an object")
    return Job(
        execution_id=execution_id,
        api_url=api_url or _opt_str(data, "api_url"),
        token=token or _opt_str(data, "token"),
        code_dir=code_dir,
        code_url=code_url,
        function_path=function_path,
        function_name=function_name,
        inputs=inputs,
        outputs=outputs,
        environment_variables=env,
        input_data_types=types,
    )

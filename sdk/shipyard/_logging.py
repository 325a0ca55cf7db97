"""Optional progress messages printed on stderr when ``verbose_log`` is on."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

from .exceptions import SdkException

F = TypeVar("F", bound=Callable[..., Any])


def log_action(sdk: Any, message: str) -> None:
    if getattr(sdk, "verbose_log", False):
        print(message, file=sys.stderr)


def logged(label: str, when: Callable[[], Any] = lambda: True) -> Callable[[F], F]:
    """Decorate an SDK method to log ``"<label> succeeded"`` or ``"<label> failed ! …"``."""

    def decorator(method: F) -> F:
        @functools.wraps(method)
        def wrapper(sdk: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                result = method(sdk, *args, **kwargs)
            except SdkException as error:
                if when():
                    log_action(sdk, f"{label} failed ! {error}")
                raise
            except Exception as error:
                if when():
                    log_action(sdk, f"{label} failed for unexpected reason ! {error}")
                raise
            if when():
                log_action(sdk, f"{label} succeeded")
            return result

        return wrapper  # type: ignore[return-value]

    return decorator

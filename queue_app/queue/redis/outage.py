"""``translate_errors``: a lost Redis connection becomes ``QueueConnectionError`` at the API."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import QueueConnectionError, QueueError


def translate_errors[**P, R](
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Raise ``QueueConnectionError`` (a ``ConnectionError``) when Redis is unreachable."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except QueueError:  # already translated (a QueueConnectionError is an OSError too)
            raise
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise QueueConnectionError(f"Redis unreachable: {error}") from error

    return wrapper


def translate_errors_sync[**P, R](method: Callable[P, R]) -> Callable[P, R]:
    """``translate_errors`` for methods of the sync clients."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except QueueError:  # already translated (a QueueConnectionError is an OSError too)
            raise
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise QueueConnectionError(f"Redis unreachable: {error}") from error

    return wrapper

"""The site's ASGI handler: Django's, with each request served by one call on a reused thread.

The site's middleware (Django's own, WhiteNoise, django-prometheus, OpenTelemetry) and its views
(DRF) are sync. Django's ``ASGIHandler`` starts a new thread for every request (a
``ThreadSensitiveContext`` per request), sends ``request_started`` and ``request_finished`` each
with its own hop to that thread, and runs a sync middleware's ``process_*`` methods one hop at a
time: these switches and thread starts cost more CPU than the view. Here a request takes an idle
thread from a small pool (a new one only when all are busy) and makes one call on it that sends
``request_started``, runs the middleware chain and the view as WSGI does, and closes the
response (``request_finished``, which closes the thread's database connections): the whole
request on one thread, as under WSGI, so ``CONN_MAX_AGE`` behaves as it does there.

A streaming response (WhiteNoise's static files) is streamed as Django does, while noticing a
disconnect, and its iteration and ``close()`` run on the same thread: the request's thread
stays its ``ThreadSensitiveContext`` executor until the response is closed. The body, already
read and bounded by ``aragora_site.edge``, is taken from it as bytes (Django would copy it into
a spooled temporary file); without the edge, Django reads it. A client that goes away during a
sync view cannot stop it (Django's handler cannot either); its response is then not sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import IO

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import connections
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

from aragora_site.edge import ASGIScope, Receive, Replay, Send

#: Idle request threads kept for the next requests; more are started while more requests run
#: at once, and stopped when they finish beyond this number.
IDLE_THREADS = 8


class _Sent(Exception):
    """The streamed response was sent in full."""


class RequestThreads:
    """Single-thread executors, one per request in flight, reused from request to request."""

    def __init__(self, idle: int) -> None:
        #: The idle executors, the one given back last at the end.
        self.idle: list[ThreadPoolExecutor] = []
        self._keep = idle
        self._lock = threading.Lock()
        self._started = 0

    def take(self) -> ThreadPoolExecutor:
        """Return an idle executor, or a new one when none is idle."""
        with self._lock:
            if self.idle:
                return self.idle.pop()
            self._started += 1
            name = f"request-{self._started}"
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        """Keep ``executor`` for another request, or stop it when enough are idle."""
        with self._lock:
            if len(self.idle) < self._keep:
                self.idle.append(executor)
                return
        discard(executor)


def discard(executor: ThreadPoolExecutor) -> None:
    """Stop ``executor``'s thread once its queued calls are done, closing its DB connections."""
    executor.submit(connections.close_all)
    executor.shutdown(wait=False)


class SyncStackASGIHandler(ASGIHandler):
    """Serve ASGI requests through the sync middleware chain, one call per request on a thread."""

    def __init__(self, idle_threads: int = IDLE_THREADS) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.threads = RequestThreads(idle_threads)

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        """Serve the request on a thread of the pool (Django's own refusal for non-HTTP)."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        executor = self.threads.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send, executor)
        except BaseException:
            # The thread may still run the view (a cancelled await cannot stop it).
            discard(executor)
            raise
        self.threads.give_back(executor)

    async def read_body(self, receive: Receive) -> IO[bytes]:
        """Return the body that ``aragora_site.edge`` read (no copy to a spooled file), or
        read it as Django does."""
        body = receive.take_body() if isinstance(receive, Replay) else None
        if body is None:
            return await super().read_body(receive)
        return io.BytesIO(body)

    async def handle(
        self, scope: ASGIScope, receive: Receive, send: Send, executor: ThreadPoolExecutor
    ) -> None:
        """Read the body, respond in one call on the request's thread, send the response.

        The call is a plain ``run_in_executor`` in a copy of the context: ``sync_to_async``
        would also copy the context's changes back, which costs more than the view's
        middleware. A streamed response is sent in the context the call left (a task of its
        own), so its iteration and ``close()`` see what the request set.
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with closing(body_file):
            context = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(
                executor, context.run, self.respond, scope, body_file
            )
            if response.streaming:
                streaming = self.stream(response, receive, send)
                await asyncio.create_task(streaming, context=context)
            else:
                await self.send_response(response, send)

    def respond(self, scope: ASGIScope, body_file: IO[bytes]) -> HttpResponseBase:
        """Answer the request; close the response unless it streams (it is sent after)."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            response.close()
        return response

    async def stream(self, response: HttpResponseBase, receive: Receive, send: Send) -> None:
        """Stream ``response`` until done or the client leaves, then close it (Django's way)."""
        try:
            await self.send_streaming(response, receive, send)
        finally:
            await sync_to_async(response.close, thread_sensitive=True)()

    async def send_streaming(
        self, response: HttpResponseBase, receive: Receive, send: Send
    ) -> None:
        """Send ``response`` while listening for a disconnect, which stops the sending."""
        try:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self.listen_for_disconnect(receive))
                    await self.send_response(response, send)
                    raise _Sent
            except* (_Sent, RequestAborted):
                pass
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise


def get_sync_stack_application() -> SyncStackASGIHandler:
    """Set Django up and return the site's ASGI handler (as ``get_asgi_application`` does)."""
    django.setup(set_prefix=False)
    return SyncStackASGIHandler()

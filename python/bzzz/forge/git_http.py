"""Git over smart HTTP (clone, fetch, push) for the forge's repositories, through git's own CGI program.

`http_backend` answers one request by running `git-http-backend` on the repository that
`bzzz.forge.repositories.Repositories` keeps. The caller authenticates; this module only
refuses pushes from anonymous clients. The request body is streamed into the CGI program while
its output is streamed back, so pushes and fetches of any size run in constant memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import subprocess
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from urllib.parse import parse_qs

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from bzzz.forge.repositories import Repositories, git_env

log = structlog.get_logger("bzzz.forge.git_http")

# A 401 with this makes git retry with the credentials it has (as GitHub answers, hence the realm).
BASIC_CHALLENGE: Mapping[str, str] = {"WWW-Authenticate": 'Basic realm="GitHub"'}

_HTTP_PATHS = frozenset({"/info/refs", "/git-upload-pack", "/git-receive-pack", "/HEAD"})
_MAX_CGI_HEADER = 64 * 1024
_CHUNK = 64 * 1024
_STDIN_GRACE = 5.0  # seconds the request body may still trickle in after git-http-backend is done


@functools.cache
def http_backend_program() -> Path:
    """git-http-backend, from git's exec path (`git --exec-path`)."""
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, check=True, env=git_env(Path(os.devnull))
    ).stdout.decode()
    return Path(exec_path.strip()) / "git-http-backend"


async def http_backend(
    request: Request, repos: Repositories, owner: str, name: str, path_info: str, remote_user: str | None
) -> Response:
    """Answer one smart-HTTP request for `owner/name` by running git-http-backend as CGI.

    `path_info` is the part after `/<owner>/<name>.git`: `/info/refs`, `/git-upload-pack`,
    `/git-receive-pack` or `/HEAD` (anything else is 404, and so is a missing repository).
    `remote_user` is who the caller authenticated, None for anonymous; anonymous pushes get
    401 with a Basic challenge, which makes git retry with the credentials it has.
    """
    if path_info not in _HTTP_PATHS:
        return PlainTextResponse("Not Found", status_code=404)
    if not repos.exists(owner, name):
        return PlainTextResponse("Repository not found", status_code=404)
    query = request.scope.get("query_string", b"").decode("latin-1")
    pushing = path_info == "/git-receive-pack" or (
        path_info == "/info/refs" and "git-receive-pack" in parse_qs(query).get("service", [])
    )
    if pushing and not remote_user:
        return PlainTextResponse("Authentication required to push", status_code=401, headers=BASIC_CHALLENGE)

    env = git_env(repos.root)
    env.update(
        {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GIT_PROJECT_ROOT": str(repos.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{owner}/{name}.git{path_info}",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": query,
            "CONTENT_TYPE": request.headers.get("content-type", ""),
            "REMOTE_ADDR": request.client.host if request.client else "",
        }
    )
    # Without Content-Length (chunked uploads, which git uses for large pushes) the backend
    # reads the body until EOF, so CONTENT_LENGTH is set only when the client sent one.
    content_length = request.headers.get("content-length")
    if content_length is not None and "chunked" not in request.headers.get("transfer-encoding", "").lower():
        env["CONTENT_LENGTH"] = content_length
    if encoding := request.headers.get("content-encoding"):
        env["HTTP_CONTENT_ENCODING"] = encoding  # git gzips fetch negotiation bodies
    if protocol := request.headers.get("git-protocol"):
        env["GIT_PROTOCOL"] = protocol  # protocol v2 is negotiated through this header
    if remote_user:
        env["REMOTE_USER"] = remote_user

    process = await asyncio.create_subprocess_exec(
        str(http_backend_program()),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=repos.root,
    )
    run = _BackendRun(process, request, f"{owner}/{name}", path_info, remote_user)
    try:
        status, headers, first = await run.read_headers()
    except BaseException:
        await run.finish()
        raise
    if status is None:
        await run.finish()
        return PlainTextResponse("git-http-backend failed", status_code=502)
    return _BackendResponse(run, status, headers, first)


class _BackendRun:
    """One running git-http-backend: its stdin fed from the request, its stderr collected."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        request: Request,
        repo: str,
        path_info: str,
        remote_user: str | None,
    ) -> None:
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        self.process = process
        self.stdout = process.stdout
        self.context = {"repo": repo, "path": path_info, "method": request.method, "user": remote_user}
        self.stderr_task = asyncio.create_task(process.stderr.read())
        self.stdin_task = asyncio.create_task(self._feed(request, process.stdin))
        self.finished = False

    @staticmethod
    async def _feed(request: Request, stdin: asyncio.StreamWriter) -> None:
        """Copy the request body into the backend's stdin, then close it (EOF ends the body)."""
        try:
            async for chunk in request.stream():
                if chunk:
                    stdin.write(chunk)
                    await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the backend stopped reading (it failed, or needed no body); it says why on stderr
        except ClientDisconnect:
            pass  # the backend sees a truncated body and gives up
        finally:
            stdin.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await stdin.wait_closed()

    async def read_headers(self) -> tuple[int | None, list[tuple[str, str]], bytes]:
        """Parse the CGI header block: (status, other headers, body bytes read past it).

        Status None: the backend wrote no (or no well-formed) header block.
        """
        buffer = b""
        while True:
            ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := buffer.find(sep)) >= 0]
            if ends:
                end, length = min(ends)
                break
            if len(buffer) > _MAX_CGI_HEADER:
                return None, [], b""
            chunk = await self.stdout.read(_CHUNK)
            if not chunk:
                return None, [], b""
            buffer += chunk
        status = 200
        headers = []
        for line in buffer[:end].decode("latin-1").splitlines():
            key, colon, value = line.partition(":")
            if not colon:
                return None, [], b""
            key, value = key.strip(), value.strip()
            if key.lower() == "status":
                try:
                    status = int(value.split()[0])
                except (ValueError, IndexError):
                    return None, [], b""
            else:
                headers.append((key, value))
        return status, headers, buffer[end + length :]

    async def body(self, first: bytes) -> AsyncIterator[bytes]:
        if first:
            yield first
        while chunk := await self.stdout.read(_CHUNK):
            yield chunk

    async def finish(self) -> None:
        """Wait for the backend (killing it if the response was cut short) and log its stderr."""
        if self.finished:
            return
        self.finished = True
        try:
            if self.process.returncode is None and self.stdout.at_eof():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.process.wait(), _STDIN_GRACE)
            if self.process.returncode is None:
                self.process.kill()
            returncode = await self.process.wait()
            if not self.stdin_task.done():
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(self.stdin_task), _STDIN_GRACE)
                self.stdin_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.stdin_task
            stderr = (await self.stderr_task).decode(errors="replace").strip()
        except BaseException:
            if self.process.returncode is None:
                self.process.kill()
            self.stdin_task.cancel()
            self.stderr_task.cancel()
            raise
        if returncode != 0:
            log.warning("git-http-backend failed", returncode=returncode, stderr=stderr, **self.context)
        elif stderr:
            log.info("git-http-backend", stderr=stderr, **self.context)


class _BackendResponse(StreamingResponse):
    """git-http-backend's output as the response, while its stdin is still being fed.

    Starlette's StreamingResponse (for ASGI servers below spec 2.4, uvicorn included) reads
    `receive()` for a disconnect while streaming and throws away any request body it gets, the
    very body the backend is still reading for a push. This one leaves `receive()` alone.
    """

    def __init__(self, run: _BackendRun, status: int, headers: list[tuple[str, str]], first: bytes) -> None:
        super().__init__(run.body(first), status_code=status)
        self.raw_headers = [(key.lower().encode("latin-1"), value.encode("latin-1")) for key, value in headers]
        self.run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.stream_response(send)
        except OSError as e:
            raise ClientDisconnect() from e
        finally:
            await self.run.finish()


__all__ = ["BASIC_CHALLENGE", "http_backend", "http_backend_program"]

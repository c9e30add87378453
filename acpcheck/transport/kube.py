"""The Kubernetes API client: which kubeconfig, how to authenticate, and one request at a time.

Which kubeconfig and context: the environment (``ACPCHECK_KUBECONFIG``,
``ACPCHECK_KUBECONTEXT``: what ``acpcheck run --kubeconfig --context`` set) before the
plan (``spec.kubeconfig``, ``spec.kubeconfigContext``), else the kubeconfig's
``current-context`` (``kubeconfig_of``). Like acpcheck's SSH, nothing is taken
implicitly: not ``$KUBECONFIG``, not ``~/.kube/config``, not ``HTTPS_PROXY`` (only the
kubeconfig's own ``proxy-url``).

Authentication: bearer token (``token``, ``tokenFile``), client certificate (files, or
``client-certificate-data``/``client-key-data``; held in a memfd, never written to
disk), and exec plugins (``users[].user.exec``: ``run_exec_plugin``, without a terminal,
in a process group of its own that is killed when it ends, within the deadline and
``EXEC_MAX_OUTPUT``). TLS is verified against the kubeconfig's CA (or the system's when it
names none); ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` play no part, and only the
kubeconfig's ``insecure-skip-tls-verify: true`` turns verification off. A TLS failure
is named by its cause (unknown CA, expired, host name, client certificate or key:
``acpcheck.tlserrors``).

Files: the kubeconfig and every file it names (``certificate-authority``, ``tokenFile``,
``client-certificate``, ``client-key``) are read by acpcheck's hardened loader
(``acpcheck.yamlsource``: regular files only, the input size limit, UTF-8), never by a
library; a problem names the file, the line and the field that pointed to it
(``kubeconfig_problems``: exit 4 before a run starts, where the run asks for it).

Deadlines (``acpcheck.transport.deadline``): each request has, besides the connect and
per-read timeouts, a deadline on the whole exchange (60 s, ``ACPCHECK_REQUEST_TIMEOUT``),
and an answer is read up to ``MAX_RESPONSE_BYTES`` and must be JSON. A request past its
deadline fails as ``timeout``, naming the request; an answer too large or not JSON fails
as ``error``. Every failure is an ``ApiFailure`` whose message holds no credential.

What to read is a ``Read`` (one object or one list of a resource, by group, version and
plural name); ``qualified_name`` and ``group_version`` name a resource as kubectl does.
The users: the ``cluster`` evidence source (``acpcheck.sources.cluster``) and
remediation's cluster steps (``acpcheck.remediation``).

The ``kubernetes`` package is imported by ``KubeClient`` only: plan-only and node-only
runs never load it.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acpcheck.errors import InputError, Problem
from acpcheck.transport.deadline import REQUEST_TIMEOUT_ENV, Deadline, request_timeout, watch_connections

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan
    from acpcheck.yamlsource import FieldPath

KUBECONFIG_ENV = "ACPCHECK_KUBECONFIG"
CONTEXT_ENV = "ACPCHECK_KUBECONTEXT"
#: Seconds for the TCP/TLS connect and for each response.
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 30.0
#: Items per page of a list (the API server's ``limit``/``continue``).
PAGE = 500
#: ``KubeClient.served``'s cache key for the group versions ``/apis`` lists.
SERVED_GROUP_VERSIONS = "/apis"


# ---------------------------------------------------------------------------
# Naming API resources


def qualified_name(resource: str, group: str) -> str:
    """``etcdencryptionconfigs.cluster.alauda.io`` (``nodes`` for the core group), as kubectl names a resource."""
    return f"{resource}.{group}" if group else resource


def group_version(group: str, version: str) -> str:
    """``cluster.alauda.io/v1alpha1``, or ``v1`` for the core group."""
    return f"{group}/{version}" if group else version


@dataclass(frozen=True)
class Read:
    """One object (``name``) or one list (``name`` None) of a resource, read from the API;
    ``key`` names the read in evidence, ``summarise`` keeps what a reader needs of each object."""

    key: str
    group: str  # "" for the core group
    version: str
    resource: str  # plural
    name: str | None = None
    namespace: str | None = None
    summarise: Callable[[dict[str, Any]], dict[str, Any]] | None = field(default=None, compare=False)
    #: A list of at most this many objects (one page, no ``continue``): enough to tell whether any exists.
    limit: int | None = None

    @property
    def qualified(self) -> str:
        return qualified_name(self.resource, self.group)

    @property
    def group_version(self) -> str:
        return group_version(self.group, self.version)

    def describe(self, verb: str | None = None) -> str:
        verb = verb or ("get" if self.name else "list")
        what = f'{self.qualified} "{self.name}"' if self.name else self.qualified
        return f"{verb} {what}" + (f" in namespace {self.namespace}" if self.namespace else "")


# ---------------------------------------------------------------------------
# Which kubeconfig


def kubeconfig_of(plan: ClusterPlan, environ: dict[str, str] | None = None) -> tuple[str | None, str | None]:
    """(kubeconfig path, context) for this run: the environment (the command line's
    options) first, then the plan. Relative plan paths are relative to the plan file."""
    env = os.environ if environ is None else environ
    path = env.get(KUBECONFIG_ENV) or None
    if path is None and plan.spec.kubeconfig:
        path = str(plan.relative_file(plan.spec.kubeconfig))
    context = env.get(CONTEXT_ENV) or plan.spec.kubeconfig_context
    return (os.path.expanduser(path) if path else None), context


def kubeconfig_given(environ: dict[str, str] | None = None) -> bool:
    """Whether the command line named a kubeconfig or a context (``--kubeconfig``,
    ``--context``: ``KUBECONFIG_ENV``, ``CONTEXT_ENV``)."""
    env = os.environ if environ is None else environ
    return bool(env.get(KUBECONFIG_ENV) or env.get(CONTEXT_ENV))


class KubeconfigError(Exception):
    """The kubeconfig (or a file it names) cannot be used. ``problems``: where and what, as
    ``file:line: field: message`` (exit 4 before a run); the message never quotes a value."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("kubeconfig " + "; ".join(str(problem) for problem in problems))


@dataclass
class KubeTarget:
    """One context of a kubeconfig, resolved: where, and how to authenticate (secrets repr=False).
    Every file the kubeconfig names has been read (``*_data``); ``*_file`` only say which."""

    path: str
    context: str
    cluster: str
    user: str | None
    server: str
    ca_data: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    token: str | None = field(default=None, repr=False)
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: str | None = field(default=None, repr=False)
    key_data: str | None = field(default=None, repr=False)
    exec_config: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def auth(self) -> str:
        if self.exec_config is not None:
            return "exec"
        if self.token is not None:
            return "token"
        if self.cert_file or self.cert_data:
            return "client-certificate"
        return "none"

    def secrets(self) -> list[str]:
        """Every credential value, to scrub from any text we did not write."""
        values = [self.token, self.key_data]
        if self.key_data:
            values += self.key_data.splitlines()
        return [value for value in values if value and len(value) >= 8]


class _Kubeconfig:
    """A kubeconfig read by the hardened loader: its entries, and problems located at their field."""

    def __init__(self, path: str):
        from acpcheck.yamlsource import load_yaml

        self.path = path
        try:
            self.document = load_yaml(path)
        except InputError as error:
            raise KubeconfigError(error.problems) from None
        if not isinstance(self.document.data, dict):
            raise self.error((), "not a kubeconfig (a YAML mapping with clusters, users and contexts)")
        self.data: dict[str, Any] = self.document.data
        self.base = Path(path).resolve().parent

    def error(self, at: FieldPath, message: str) -> KubeconfigError:
        return KubeconfigError([self.document.problem(at, message)])

    def named(self, section: str) -> dict[str, tuple[int, dict[str, Any]]]:
        """``{name: (index, entry)}`` of ``clusters``, ``users`` or ``contexts``."""
        entries = self.data.get(section)
        if entries is None:
            return {}
        if not isinstance(entries, list):
            raise self.error((section,), "is not a list")
        found = {}
        for index, entry in enumerate(entries):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                inner = entry.get(section.rstrip("s"))
                if inner is not None and not isinstance(inner, dict):
                    raise self.error((section, index, section.rstrip("s")), "is not a mapping")
                found[entry["name"]] = (index, inner or {})
        return found

    def text_of(self, at: FieldPath, value: Any, what: str) -> tuple[str, str]:
        """(path, text) of the file the field at ``at`` names, through the hardened loader:
        a regular file within the input size limit, UTF-8. A path that does not exist is not
        shown (a secret may have been typed in its place)."""
        from acpcheck.yamlsource import decode, read_input

        if not isinstance(value, str) or not value.strip():
            raise self.error(at, f"names no {what} file (a path is expected)")
        path = str(self.base / os.path.expanduser(value))
        try:
            return path, decode(read_input(path), path)
        except InputError as error:
            reason = error.problems[0].message
            if reason == "file not found":
                raise self.error(
                    at,
                    f"the {what} file does not exist (the path is not shown, in case a secret was typed in its place)",
                ) from None
            line = error.problems[0].line
            raise self.error(at, f"{what} file {path}{f' line {line}' if line else ''}: {reason}") from None

    def base64_of(self, at: FieldPath, value: Any) -> str:
        try:
            return base64.b64decode(str(value), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise self.error(at, "is not base64-encoded PEM") from None


def load_kubeconfig(path: str, context: str | None = None) -> KubeTarget:
    """Resolve one context of a kubeconfig file and read every file it names (the
    certificate authority, a token file, the client certificate and key), each through
    the hardened loader; KubeconfigError naming the file, line and field otherwise."""
    config = _Kubeconfig(path)
    contexts = config.named("contexts")
    name = context or config.data.get("current-context")
    if not name:
        raise config.error(
            ("current-context",), "there is no current-context; name one with spec.kubeconfigContext or --context"
        )
    if not isinstance(name, str) or name not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise config.error(("contexts",), f"there is no context {name!r} (the contexts: {known})")
    context_index, entry = contexts[name]
    clusters, users = config.named("clusters"), config.named("users")
    cluster_name, user_name = entry.get("cluster"), entry.get("user")
    if not isinstance(cluster_name, str) or cluster_name not in clusters:
        raise config.error(
            ("contexts", context_index, "context", "cluster"),
            f"context {name!r} names cluster {cluster_name!r}, which the file does not define",
        )
    cluster_index, cluster = clusters[cluster_name]
    at_cluster: FieldPath = ("clusters", cluster_index, "cluster")
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise config.error((*at_cluster, "server"), f"cluster {cluster_name!r} has no https:// server")
    target = KubeTarget(
        path=path,
        context=name,
        cluster=cluster_name,
        user=user_name if isinstance(user_name, str) else None,
        server=server.rstrip("/"),
        insecure=cluster.get("insecure-skip-tls-verify") is True,
        tls_server_name=cluster.get("tls-server-name"),
        proxy_url=cluster.get("proxy-url"),
    )
    if cluster.get("certificate-authority-data"):
        target.ca_data = config.base64_of(
            (*at_cluster, "certificate-authority-data"), cluster["certificate-authority-data"]
        )
    elif cluster.get("certificate-authority"):
        target.ca_file, target.ca_data = config.text_of(
            (*at_cluster, "certificate-authority"), cluster["certificate-authority"], "certificate authority"
        )
    if user_name is not None and (not isinstance(user_name, str) or user_name not in users):
        raise config.error(
            ("contexts", context_index, "context", "user"),
            f"context {name!r} names user {user_name!r}, which the file does not define",
        )
    user_index, user = users[user_name] if isinstance(user_name, str) else (-1, {})
    at_user: FieldPath = ("users", user_index, "user")
    if user.get("auth-provider"):
        raise config.error(
            (*at_user, "auth-provider"), "auth-provider was removed from Kubernetes clients; use an exec plugin"
        )
    if user.get("username") or user.get("password"):
        raise config.error(
            at_user,
            (
                "basic authentication (username, password) is no longer served by Kubernetes; use a token or a "
                "client certificate"
            ),
        )
    if user.get("exec"):
        target.exec_config = _exec_config(config, (*at_user, "exec"), user["exec"])
    if user.get("token"):
        target.token = str(user["token"])
    elif user.get("tokenFile"):
        target.token = config.text_of((*at_user, "tokenFile"), user["tokenFile"], "token")[1].strip()
    if user.get("client-certificate-data"):
        target.cert_data = config.base64_of((*at_user, "client-certificate-data"), user["client-certificate-data"])
    elif user.get("client-certificate"):
        target.cert_file, target.cert_data = config.text_of(
            (*at_user, "client-certificate"), user["client-certificate"], "client certificate"
        )
    if user.get("client-key-data"):
        target.key_data = config.base64_of((*at_user, "client-key-data"), user["client-key-data"])
    elif user.get("client-key"):
        target.key_file, target.key_data = config.text_of((*at_user, "client-key"), user["client-key"], "client key")
    if bool(target.cert_data) != bool(target.key_data):
        raise config.error(
            at_user, f"user {user_name!r} has a client certificate without its key (or a key without its certificate)"
        )
    return target


def _exec_config(config: _Kubeconfig, at: FieldPath, value: Any) -> dict[str, Any]:
    """An exec plugin's settings, checked before anything runs it (command, apiVersion, args, env)."""
    if not isinstance(value, dict):
        raise config.error(at, "is not a mapping")
    for key in ("command", "apiVersion"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise config.error((*at, key), "is missing (exec plugins need command and apiVersion)")
    args = value.get("args") or []
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise config.error((*at, "args"), "is not a list of strings")
    env = value.get("env") or []
    if not isinstance(env, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("value"), str) for e in env
    ):
        raise config.error((*at, "env"), "is not a list of {name, value} strings")
    return {
        "command": value["command"],
        "apiVersion": value["apiVersion"],
        "args": list(args),
        "env": [dict(e) for e in env],
    }


def kubeconfig_problems(plan: ClusterPlan, environ: dict[str, str] | None = None) -> list[Problem]:
    """Everything wrong with the run's kubeconfig, the files it names and the deadline
    setting, found before anything connects: a run that reads the cluster refuses to
    start with these (exit 4). The kubeconfig itself is named with where it was given."""
    problems = []
    try:
        request_timeout(environ)
    except ValueError as error:
        problems.append(Problem(REQUEST_TIMEOUT_ENV, None, "", str(error)))
    path, context = kubeconfig_of(plan, environ)
    if path is None:
        return problems
    try:
        load_kubeconfig(path, context)
    except KubeconfigError as error:
        env = os.environ if environ is None else environ
        given = f"--kubeconfig or {KUBECONFIG_ENV}" if env.get(KUBECONFIG_ENV) else f"spec.kubeconfig of {plan.file}"
        problems += [
            replace(p, message=f"{p.message} (the kubeconfig given by {given})")
            if p.file == path and not p.field
            else p
            for p in error.problems
        ]
    return problems


# ---------------------------------------------------------------------------
# Talking to the API server


class ApiFailure(Exception):
    """A request failed: ``kind`` (unreachable, tls, timeout, auth, forbidden, absent, not-served, error)."""

    def __init__(self, kind: str, message: str, status: int = 0):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


def scrub(text: str, secrets: list[str]) -> str:
    """``acpcheck.transport.errors.scrub``, imported when needed (the transport package loads paramiko)."""
    from acpcheck.transport.errors import scrub as scrub_secrets

    return scrub_secrets(text, secrets)


def memfd_file(name: str, content: str | bytes) -> tuple[int, str]:
    """An anonymous in-memory file (Linux memfd) holding ``content``: (fd, /proc/self/fd/N path).
    For libraries that load certificates only by path; nothing reaches a disk."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, content.encode() if isinstance(content, str) else content)
    return fd, f"/proc/self/fd/{fd}"


#: The largest answer read from the API server, in bytes. Our choice: a page of 500 of the
#: largest objects read (Nodes, 20-40 kB each with their image lists) is 10-20 MB.
MAX_RESPONSE_BYTES = 64 << 20


class _AnswerProblem(Exception):
    """An answer too large to read, or not JSON (``call`` names the request)."""


class _ReadAnswer:
    """A urllib3 response whose body ``_bounded_request`` has read: ``data`` and
    ``read()`` give that body, everything else is the response's own."""

    def __init__(self, raw: Any, data: bytes):
        self._raw = raw
        self.data = data

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        return self.data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _bounded_request(request: Callable[..., Any], limit: int) -> Callable[..., Any]:
    """The kubernetes client's ``RESTClientObject.request``, reading the answer's body itself:
    at most ``limit`` bytes (decompressed), and a 2xx body must be JSON (the client would
    hand a body that is not on as a string)."""

    def bounded(*args: Any, **kwargs: Any) -> Any:
        response = request(*args, **kwargs)  # headers read; the body not yet (preload_content=False)
        raw = response.response
        declared = str(raw.headers.get("Content-Length") or "")
        if declared.isdigit() and int(declared) > limit:
            raw.close()
            raise _AnswerProblem(f"is {int(declared):,} bytes, more than the {limit:,} acpcheck reads")
        chunks, size = [], 0
        for chunk in raw.stream(1 << 16):
            size += len(chunk)
            if size > limit:
                raw.close()
                raise _AnswerProblem(f"is more than the {limit:,} bytes acpcheck reads")
            chunks.append(chunk)
        response.data = b"".join(chunks)
        # A caller asking for the raw answer (``_preload_content=False``, remediation's
        # object reads) gets ``response.response``, whose body is read by now.
        response.response = _ReadAnswer(raw, response.data)
        if 200 <= response.status < 300:
            try:
                json.loads(response.data)
            except (ValueError, RecursionError):
                raise _AnswerProblem("is not valid JSON") from None
        return response

    return bounded


#: The most an exec credential plugin may print on stdout, in bytes (our choice: an
#: ExecCredential with a client certificate and key is a few kB), and how much of its
#: stderr is kept for a message.
EXEC_MAX_OUTPUT = 1 << 20
EXEC_STDERR_KEPT = 64 << 10


class ExecPluginError(Exception):
    """An exec credential plugin that could not be run, ran past its deadline or printed too much."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def run_exec_plugin(config: dict[str, Any], cwd: str, seconds: float) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, stderr) of an exec credential plugin (``_exec_config``'s
    settings), run without a terminal in a process group of its own, within ``seconds``
    and ``EXEC_MAX_OUTPUT``. The group is killed when the plugin exits or is stopped, so
    nothing it started outlives it (a child left holding its stdout would otherwise keep
    the read waiting, and stay behind as an orphan)."""
    import selectors
    import signal
    import subprocess
    import time

    env = {**os.environ, **{item["name"]: item["value"] for item in config["env"]}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {"apiVersion": config["apiVersion"], "kind": "ExecCredential", "spec": {"interactive": False}}
    )
    try:
        process = subprocess.Popen(
            [config["command"], *config["args"]],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        raise ExecPluginError("auth", f"could not be run ({type(error).__name__}: {error.strerror})") from None

    def kill_group() -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # start_new_session: the group's id is the plugin's pid
        except (ProcessLookupError, PermissionError):
            pass  # nobody left in it

    stdout, stderr = bytearray(), bytearray()
    ends = time.monotonic() + seconds
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ, stdout)  # type: ignore[arg-type]
            selector.register(process.stderr, selectors.EVENT_READ, stderr)  # type: ignore[arg-type]
            while selector.get_map():
                exited = process.poll() is not None
                if exited:
                    kill_group()  # what it wrote is in the pipes; whatever it left running goes now
                elif time.monotonic() >= ends:
                    raise ExecPluginError(
                        "timeout",
                        f"did not finish within {seconds:g} s (the deadline; {REQUEST_TIMEOUT_ENV} sets it); "
                        "it and everything it started were stopped",
                    )
                # Woken by output; a tenth of a second at most, to notice an exit while a child holds the pipes.
                events = selector.select(0 if exited else max(0.0, min(0.1, ends - time.monotonic())))
                if exited and not events:
                    break  # all read; a pipe still open belongs to a process that left the group
                for key, _ in events:
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        selector.unregister(key.fileobj)
                    elif key.data is stdout:
                        if len(stdout) + len(chunk) > EXEC_MAX_OUTPUT:
                            raise ExecPluginError(
                                "auth",
                                (
                                    f"printed more than {EXEC_MAX_OUTPUT:,} bytes (an ExecCredential is a few "
                                    "kB); it was stopped"
                                ),
                            )
                        stdout += chunk
                    elif len(stderr) < EXEC_STDERR_KEPT:
                        stderr += chunk[: EXEC_STDERR_KEPT - len(stderr)]
    finally:
        kill_group()
        for stream in (process.stdout, process.stderr):
            stream.close()  # type: ignore[union-attr]
        process.wait()  # SIGKILL cannot be refused: it ends now (and is reaped)
    return process.returncode, bytes(stdout), bytes(stderr)


class KubeClient:
    """The official client, configured from a ``KubeTarget`` and nothing else. Close it.

    Every request has a deadline on the whole exchange (``deadline`` seconds, default
    ``request_timeout()``), on top of the connect and per-read timeouts: a server that
    drips its answer is cut off and the request fails as ``timeout``. An answer is read
    up to ``MAX_RESPONSE_BYTES`` and must be JSON, or the request fails as ``error``.
    """

    def __init__(
        self,
        target: KubeTarget,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        deadline: float | None = None,
    ):
        from kubernetes import client  # the heavy import: only here

        self.target = target
        self.timeout = (connect_timeout, read_timeout)
        try:
            self.deadline = request_timeout() if deadline is None else deadline
        except ValueError as error:
            raise ApiFailure("config", f"{REQUEST_TIMEOUT_ENV}: {error}") from None
        self._fds: list[int] = []
        self.secrets = target.secrets()
        config = client.Configuration()
        config.host = target.server
        config.proxy = target.proxy_url  # explicit: no proxy from the environment
        config.verify_ssl = not target.insecure
        config.ca_cert_data = target.ca_data  # a CA file was read by the hardened loader: urllib3 never opens it
        if target.tls_server_name:
            config.tls_server_name = target.tls_server_name
        config.retries = False  # one attempt: errors come back at once, with their cause
        config.client_side_validation = False
        token = target.token
        cert_data, key_data = target.cert_data, target.key_data
        if target.exec_config is not None:
            status = self._exec(target)
            token = status.get("token") or token
            cert_data = status.get("clientCertificateData") or cert_data
            key_data = status.get("clientKeyData") or key_data
            self.secrets += [
                value
                for value in (status.get("token"), status.get("clientKeyData"))
                if isinstance(value, str) and value
            ]
        if token:
            config.api_key = {"authorization": f"Bearer {token}"}
        if cert_data and key_data:
            fd, path = memfd_file("acpcheck-kube-client", cert_data.rstrip("\n") + "\n" + key_data)
            self._fds.append(fd)
            config.cert_file, config.key_file = path, None
        self.api = client.ApiClient(config)
        self.client = client
        rest = self.api.rest_client
        watch_connections(rest.pool_manager)
        rest.request = _bounded_request(rest.request, MAX_RESPONSE_BYTES)  # type: ignore[method-assign]  # this instance only

    def _exec(self, target: KubeTarget) -> dict[str, Any]:
        """The ``status`` of the ExecCredential the user's exec plugin prints (ApiFailure otherwise)."""
        assert target.exec_config is not None
        config = target.exec_config
        plugin = f"the exec credential plugin {config['command']!r} of kubeconfig user {target.user!r}"
        try:
            code, stdout, stderr = run_exec_plugin(config, str(Path(target.path).resolve().parent), self.deadline)
        except ExecPluginError as error:
            raise ApiFailure(error.kind, f"{plugin} {error}") from None
        if code != 0:
            first = next(
                (line for line in scrub(stderr.decode(errors="replace"), self.secrets).splitlines() if line.strip()), ""
            )
            raise ApiFailure(
                "auth", f"{plugin} failed: exit status {code}" + (f": {first.strip()[:300]}" if first else "")
            )
        try:
            credential = json.loads(stdout)
        except (ValueError, RecursionError):
            raise ApiFailure("auth", f"{plugin} printed no JSON ExecCredential") from None
        status = credential.get("status") if isinstance(credential, dict) else None
        if not isinstance(status, dict) or credential.get("kind") != "ExecCredential":
            raise ApiFailure("auth", f"{plugin} printed no ExecCredential with a status")
        if credential.get("apiVersion") != config["apiVersion"]:
            raise ApiFailure(
                "auth",
                (
                    f"{plugin} answered in apiVersion {str(credential.get('apiVersion'))[:60]!r}, not "
                    f"{config['apiVersion']!r}"
                ),
            )
        if not all(
            isinstance(status.get(key), (str, type(None)))
            for key in ("token", "clientCertificateData", "clientKeyData")
        ):
            raise ApiFailure("auth", f"{plugin} printed a status whose token or client certificate is not a string")
        return status

    def close(self) -> None:
        try:
            self.api.close()
        except Exception:  # noqa: BLE001, S110 — closing idle pools
            pass
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ----------------------------------------------------------

    def call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args)`` within the connect and read timeouts and the deadline of one
        request; every failure becomes an ApiFailure about ``what``."""
        import urllib3

        with Deadline(self.deadline) as deadline:
            try:
                return function(*args, _request_timeout=self.timeout, **kwargs)
            except Exception as error:  # noqa: BLE001 — sorted below; anything else is re-raised
                if deadline.expired:  # whatever broke, it broke because the deadline shut the connection
                    raise ApiFailure(
                        "timeout",
                        f"{what}: {self.target.server} gave no complete answer within {self.deadline:g} s "
                        f"(the deadline of one request; {REQUEST_TIMEOUT_ENV} sets it)",
                    ) from None
                if isinstance(error, _AnswerProblem):
                    raise ApiFailure("error", f"{what}: the answer of {self.target.server} {error}") from None
                if isinstance(error, self.client.ApiException):
                    raise self._http_failure(error, what) from None
                if isinstance(error, (urllib3.exceptions.HTTPError, OSError)):
                    raise self._connection_failure(error, what) from None
                if isinstance(
                    error, (ValueError, TypeError, AttributeError, KeyError)
                ):  # the client could not make an object of it
                    raise ApiFailure(
                        "error",
                        f"{what}: the answer of {self.target.server} is not what the Kubernetes API sends "
                        f"({type(error).__name__})",
                    ) from None
                raise

    def _http_failure(self, error: Any, what: str) -> ApiFailure:
        status = int(getattr(error, "status", 0) or 0)
        detail = ""
        try:
            body = json.loads(error.body) if error.body else {}
            detail = str(body.get("message", "")) if isinstance(body, dict) else ""
        except (ValueError, TypeError):
            detail = ""
        detail = scrub(detail, self.secrets)[:400]
        user = f"kubeconfig user {self.target.user!r}" if self.target.user else "the kubeconfig's (anonymous) user"
        if status == 0:
            reason = scrub(str(getattr(error, "reason", "") or ""), self.secrets)
            if "SSL" in reason or "certificate" in reason.lower():
                return self._tls_failure(error)
            return ApiFailure(
                "unreachable", f"{self.target.server}: {reason.splitlines()[-1] if reason else 'no response'}"
            )
        if status == 401:
            return ApiFailure(
                "auth",
                f"{self.target.server} refused the credentials of {user} (401 Unauthorized)"
                + (f": {detail}" if detail else ""),
                401,
            )
        if status == 403:
            return ApiFailure(
                "forbidden",
                # No "forbidden:" in front: the kind is said with the message ("forbidden: <this>").
                f"{user} may not {what} (403 Forbidden" + (f": {detail})" if detail else ")"),
                403,
            )
        if status == 404:
            return ApiFailure("absent", f"{what}: not found (404)" + (f": {detail}" if detail else ""), 404)
        return ApiFailure(
            "error", f"{what}: HTTP {status} {getattr(error, 'reason', '')}" + (f": {detail}" if detail else ""), status
        )

    def _tls_failure(self, error: BaseException) -> ApiFailure:
        """A TLS failure named by its cause (unknown CA, expired, host name, client
        certificate or key, with OpenSSL's own words): ``acpcheck.tlserrors`` names
        every TLS failure, from the ssl error the client's exception holds, or from
        its text when only that is left. The message starts with the server, not with
        "TLS": the kind (``tls``) is said in front of it."""
        from acpcheck.tlserrors import describe_tls_error

        trust = (
            f"the kubeconfig's CA of cluster {self.target.cluster!r}"
            if (self.target.ca_data or self.target.ca_file)
            else "the system's CAs (the kubeconfig names no CA)"
        )
        problem = describe_tls_error(
            error,
            trusted=trust,
            ca_pem=self.target.ca_data,
            cert_pem=self.target.cert_data,
            key_pem=self.target.key_data,
        )
        return ApiFailure("tls", f"{self.target.server}: {scrub(problem.message, self.secrets)[:400]}")

    def _connection_failure(self, error: Exception, what: str) -> ApiFailure:
        import urllib3

        cause: Any = getattr(error, "reason", None) or error
        server = self.target.server
        if isinstance(cause, urllib3.exceptions.SSLError) or isinstance(error, urllib3.exceptions.SSLError):
            return self._tls_failure(error)
        timeouts = (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError)
        if (
            isinstance(cause, timeouts)
            and not isinstance(cause, urllib3.exceptions.NewConnectionError)
            or "timed out" in str(cause)
        ):
            return ApiFailure(
                "timeout",
                (
                    f"{what}: {server} did not answer within {self.timeout[0]:g} s (connect) / "
                    f"{self.timeout[1]:g} s (one read)"
                ),
            )
        if isinstance(error, urllib3.exceptions.ProtocolError):  # connected, then the answer broke off
            return ApiFailure(
                "unreachable",
                f"{what}: the connection to {server} ended before the answer was complete "
                f"({type(error.args[1] if len(error.args) > 1 else error).__name__}; reset by the server?)",
            )
        text = str(cause)
        if "Connection refused" in text:
            why = "connection refused (nothing listens there?)"
        elif (
            "Name or service not known" in text
            or "nodename nor servname" in text
            or "Temporary failure in name resolution" in text
        ):
            why = "the host name does not resolve"
        elif "No route to host" in text or "Network is unreachable" in text:
            why = "no route to the host"
        else:
            why = f"{type(cause).__name__}"
        return ApiFailure("unreachable", f"cannot reach the Kubernetes API at {server}: {why}")

    def version(self) -> dict[str, Any]:
        info = self.call("get /version", self.client.VersionApi(self.api).get_code)
        return self._object("get /version", self.api.sanitize_for_serialization(info))

    def served(self, read: Read, cache: dict[str, set[str] | None]) -> bool:
        """Whether the API serves ``read``'s resource (discovery, once per group/version). The group
        versions ``/apis`` does not list are not asked about one by one (a run reads many removed ones)."""
        if read.group and SERVED_GROUP_VERSIONS not in cache:
            try:
                groups = self.call("discover /apis", self.client.ApisApi(self.api).get_api_versions)
                cache[SERVED_GROUP_VERSIONS] = {
                    version.group_version for group in groups.groups or [] for version in group.versions or []
                }
            except ApiFailure as failure:
                if failure.kind != "absent":
                    raise
                cache[SERVED_GROUP_VERSIONS] = None  # no list: ask each group/version
        listed = cache.get(SERVED_GROUP_VERSIONS)
        if read.group and listed is not None and read.group_version not in listed:
            cache[read.group_version] = None
        if read.group_version not in cache:
            try:
                if read.group:
                    found = self.call(
                        f"discover {read.group_version}",
                        self.client.CustomObjectsApi(self.api).get_api_resources,
                        read.group,
                        read.version,
                    )
                else:
                    found = self.call("discover v1", self.client.CoreV1Api(self.api).get_api_resources)
                cache[read.group_version] = {resource.name for resource in found.resources or []}
            except ApiFailure as failure:
                if failure.kind != "absent":
                    raise
                cache[read.group_version] = None
        resources = cache[read.group_version]
        return resources is not None and read.resource in resources

    def get_object(self, read: Read) -> dict[str, Any]:
        """One object (``read.name``); ApiFailure otherwise (``absent`` for a 404)."""
        custom = self.client.CustomObjectsApi(self.api)
        if read.group:
            if read.namespace:
                found = self.call(
                    read.describe(),
                    custom.get_namespaced_custom_object,
                    read.group,
                    read.version,
                    read.namespace,
                    read.resource,
                    read.name,
                )
            else:
                found = self.call(
                    read.describe(),
                    custom.get_cluster_custom_object,
                    read.group,
                    read.version,
                    read.resource,
                    read.name,
                )
        else:
            core = self.client.CoreV1Api(self.api)
            singular = _core_singular(read.resource)
            if read.namespace:
                found = self.call(
                    read.describe(), getattr(core, f"read_namespaced_{singular}"), read.name, read.namespace
                )
            else:
                found = self.call(read.describe(), getattr(core, f"read_{singular}"), read.name)
        data = self._object(read.describe(), self.api.sanitize_for_serialization(found))
        return read.summarise(data) if read.summarise else data

    def _object(self, what: str, data: Any) -> dict[str, Any]:
        """``data`` when it is a JSON object (a server that is not Kubernetes may send any JSON)."""
        if not isinstance(data, dict):
            raise ApiFailure(
                "error",
                f"{what}: the answer of {self.target.server} is not a Kubernetes object (JSON {type(data).__name__})",
            )
        return data

    def list_objects(self, read: Read) -> Iterator[dict[str, Any]]:
        """Every object of a list, a page at a time (with ``read.limit``: the first page only); ApiFailure otherwise."""
        token = None
        while True:
            page = self._page(read, token)
            items = page.get("items") or []
            if not isinstance(items, list):
                raise ApiFailure(
                    "error",
                    (
                        f"{read.describe()}: the answer of {self.target.server} is not a Kubernetes list (its "
                        "items are no list)"
                    ),
                )
            for item in items:
                item = self._object(read.describe(), item)
                yield read.summarise(item) if read.summarise else item
            token = (page.get("metadata") or {}).get("continue")
            if not token or read.limit is not None:
                return

    def _page(self, read: Read, token: str | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"limit": read.limit if read.limit is not None else PAGE}
        if token:
            extra["_continue"] = token
        if read.group:
            custom = self.client.CustomObjectsApi(self.api)
            if read.namespace:
                found = self.call(
                    read.describe(),
                    custom.list_namespaced_custom_object,
                    read.group,
                    read.version,
                    read.namespace,
                    read.resource,
                    **extra,
                )
            else:
                found = self.call(
                    read.describe(), custom.list_cluster_custom_object, read.group, read.version, read.resource, **extra
                )
        else:
            core = self.client.CoreV1Api(self.api)
            singular = _core_singular(read.resource)
            if read.namespace:
                found = self.call(
                    read.describe(), getattr(core, f"list_namespaced_{singular}"), read.namespace, **extra
                )
            else:
                found = self.call(read.describe(), getattr(core, f"list_{singular}"), **extra)
        return self._object(read.describe(), self.api.sanitize_for_serialization(found))


def _core_singular(resource: str) -> str:
    """CoreV1Api method stem of a core resource: nodes -> node, configmaps -> config_map."""
    stems = {
        "configmaps": "config_map",
        "persistentvolumeclaims": "persistent_volume_claim",
        "persistentvolumes": "persistent_volume",
        "serviceaccounts": "service_account",
        "resourcequotas": "resource_quota",
        "limitranges": "limit_range",
        "endpoints": "endpoints",
    }
    return stems.get(resource, re.sub(r"s$", "", resource))

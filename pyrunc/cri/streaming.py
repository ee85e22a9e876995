"""The streaming server behind Exec, Attach and PortForward.

The three RPCs do not stream over gRPC: each checks its request, keeps
it under a random single-use token for a minute and answers with a URL
``http://<streaming_address>:<port>/{exec,attach,portforward}/<token>``.
The client (kubelet, crictl, critest; client-go's remotecommand and
portforward packages) sends an HTTP request there asking to upgrade to
SPDY/3.1 and naming the stream protocols it speaks in
``X-Stream-Protocol-Version``; the server answers ``101 Switching
Protocols`` with the one it picked, and the client opens one SPDY stream
per channel (the ``streamType`` header: error, stdin, stdout, stderr,
resize; data and error per connection for port forwarding).

Protocols: ``v4.channel.k8s.io`` (the exit status as a v1 Status JSON on
the error stream), ``v3`` and ``v2`` (errors as text) and
``channel.k8s.io`` for exec and attach, ``portforward.k8s.io`` for port
forwarding. WebSocket upgrades are not served.
"""

import http.server
import logging
import secrets
import socket
import threading
import time

from pyrunc.cri import spdy
from pyrunc.cri.errors import FailedPrecondition, InvalidArgument

log = logging.getLogger(__name__)

# How long a URL stays valid, as kubelet's streaming server keeps it.
TOKEN_TTL = 60
MAX_TOKENS = 1000
# How long the client gets to open the streams it asked for.
STREAM_CREATION_TIMEOUT = 30
# How long a finished session waits for the client to hang up.
CLOSE_WAIT = 5

REMOTECOMMAND_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io",
                           "v2.channel.k8s.io", "channel.k8s.io")
PORTFORWARD_PROTOCOLS = ("portforward.k8s.io",)
PROTOCOL_HEADER = "X-Stream-Protocol-Version"


class Tokens:
    """Requests waiting for their client, by single-use token."""

    def __init__(self, ttl=TOKEN_TTL):
        self.ttl = ttl
        self._entries = {}
        self._lock = threading.Lock()

    def add(self, kind, request):
        """Keep request; return its token."""
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            if len(self._entries) >= MAX_TOKENS:
                raise FailedPrecondition(
                    "too many streaming requests in flight")
            self._entries[token] = (kind, request, now + self.ttl)
        return token

    def take(self, kind, token):
        """Return the request of a live token of that kind, once."""
        with self._lock:
            self._expire(time.monotonic())
            entry = self._entries.get(token)
            if entry is None or entry[0] != kind:
                return None
            del self._entries[token]
            return entry[1]

    def _expire(self, now):
        for token in [t for t, e in self._entries.items() if e[2] < now]:
            del self._entries[token]


def validate_exec(req):
    """Check an ExecRequest as kubelet's streaming server does."""
    if not req.container_id:
        raise InvalidArgument("missing required container_id")
    if not req.cmd:
        raise InvalidArgument("exec needs a command")
    _validate_stdio(req)


def validate_attach(req):
    """Check an AttachRequest as kubelet's streaming server does."""
    if not req.container_id:
        raise InvalidArgument("missing required container_id")
    _validate_stdio(req)


def _validate_stdio(req):
    if req.tty and req.stderr:
        # A terminal has one output: stderr cannot be told apart.
        raise InvalidArgument("tty and stderr cannot both be true")
    if not (req.stdin or req.stdout or req.stderr):
        raise InvalidArgument("one of stdin, stdout, or stderr must be set")


def negotiate(offered, supported):
    """Return the first protocol the client offered that is supported.

    "" when the client offered none (the oldest protocol); None when
    nothing matches.
    """
    names = [p.strip() for value in offered for p in value.split(",")
             if p.strip()]
    if not names:
        return ""
    for name in names:
        if name in supported:
            return name
    return None


class StreamServer:
    """The HTTP server the streaming URLs point to.

        >>> srv = StreamServer(cfg, containers, pods)
        >>> srv.start()
        >>> srv.exec_url(request)
        'http://127.0.0.1:40123/exec/...'
    """

    def __init__(self, cfg, containers, pods):
        self.cfg = cfg
        self.containers = containers
        self.pods = pods
        self.tokens = Tokens()
        self.httpd = None
        self.base_url = ""
        self._thread = None

    def start(self):
        """Bind the configured address and port, then serve in a thread."""
        address = self.cfg.streaming_address or "127.0.0.1"
        server_cls = _Server6 if ":" in address else _Server
        self.httpd = server_cls((address, self.cfg.streaming_port),
                                _Handler)
        self.httpd.owner = self
        port = self.httpd.server_address[1]
        host = address
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        if ":" in host:
            host = f"[{host}]"
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="streaming", daemon=True)
        self._thread.start()
        log.info("streaming server listening on %s", self.base_url)

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    # --- the RPCs

    def exec_url(self, req):
        """Check an ExecRequest; return the URL that runs it."""
        from pyrunc.cri import session

        validate_exec(req)
        session.check_running(self.containers, req.container_id)
        return self._url("exec", req)

    def attach_url(self, req):
        """Check an AttachRequest; return the URL that attaches."""
        from pyrunc.cri import session

        validate_attach(req)
        session.check_running(self.containers, req.container_id)
        return self._url("attach", req)

    def port_forward_url(self, req):
        """Check a PortForwardRequest; return the URL that forwards."""
        if not req.pod_sandbox_id:
            raise InvalidArgument("missing required pod_sandbox_id")
        pod = self.pods.get(req.pod_sandbox_id)
        if not self.pods.is_ready(pod):
            raise FailedPrecondition(f"pod sandbox {pod['id']} is not ready")
        return self._url("portforward", req)

    def _url(self, kind, req):
        return f"{self.base_url}/{kind}/{self.tokens.add(kind, req)}"


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner = None


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(http.server.BaseHTTPRequestHandler):
    """Upgrade one request to SPDY and run its session."""

    protocol_version = "HTTP/1.1"
    server_version = "pyrunc-cri"

    def log_message(self, fmt, *args):
        log.debug("streaming: %s %s", self.address_string(), fmt % args)

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def _serve(self):
        self.close_connection = True
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 2 or parts[0] not in (
                "exec", "attach", "portforward"):
            self._fail(404, "not found")
            return
        kind, token = parts
        # The token is used up only by an upgrade that succeeds, so a
        # client may first try another upgrade (WebSocket), then SPDY.
        upgrade = self.headers.get("Upgrade", "").lower()
        if upgrade != "spdy/3.1":
            self._fail(400, "unable to upgrade: missing upgrade headers "
                            "in request (only SPDY/3.1 is served)")
            return
        supported = (PORTFORWARD_PROTOCOLS if kind == "portforward"
                     else REMOTECOMMAND_PROTOCOLS)
        offered = self.headers.get_all(PROTOCOL_HEADER) or []
        protocol = negotiate(offered, supported)
        if protocol is None or (kind == "portforward" and not protocol):
            self._fail(403, f"unable to upgrade: unable to negotiate "
                            f"protocol: client supports {offered}, server "
                            f"supports {list(supported)}")
            return
        req = self.server.owner.tokens.take(kind, token)
        if req is None:
            self._fail(404, f"{kind} request not found or expired")
            return
        self._switch(protocol)
        self._run_session(kind, req, protocol)

    def _fail(self, code, message):
        body = message.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _switch(self, protocol):
        lines = ["HTTP/1.1 101 Switching Protocols", "Connection: Upgrade",
                 "Upgrade: SPDY/3.1"]
        if protocol:
            lines.append(f"{PROTOCOL_HEADER}: {protocol}")
        self.connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _run_session(self, kind, req, protocol):
        from pyrunc.cri import portforward, session

        conn = spdy.Connection(self.connection, self.rfile)
        reader = threading.Thread(target=conn.serve, daemon=True,
                                  name=f"spdy-{kind}")
        reader.start()
        owner = self.server.owner
        try:
            if kind == "exec":
                session.run_exec(owner.containers, conn, req, protocol)
            elif kind == "attach":
                session.run_attach(owner.containers, conn, req, protocol)
            else:
                pod = owner.pods.get(req.pod_sandbox_id)
                portforward.run(conn, pod, req)
        except Exception:  # noqa: BLE001 - one session, not the server
            log.exception("streaming %s session failed", kind)
        finally:
            # Half-close and let the client read everything and hang up
            # first: closing a socket with unread input resets it, and
            # a reset can discard what the client has not read yet.
            conn.goaway()
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            reader.join(CLOSE_WAIT)
            conn.close()

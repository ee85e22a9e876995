"""A small SPDY/3.1 client for the streaming tests, as client-go speaks it.

It upgrades an HTTP request (``Upgrade: SPDY/3.1`` with the offered
``X-Stream-Protocol-Version`` values), opens streams with SYN_STREAM
and waits for each SYN_REPLY, sends data with or without FIN and
collects what the server sends per stream until its FIN.
"""

import socket
import struct
import threading
import urllib.parse

from pyrunc.cri import spdy

TIMEOUT = 30


class ClientStream:
    def __init__(self, stream_id):
        self.id = stream_id
        self.data = bytearray()
        self.replied = threading.Event()
        self.finished = threading.Event()
        self.reset = False


class Client:
    """The client end of a SPDY connection (over any connected socket)."""

    def __init__(self, sock, rfile=None):
        self.sock = sock
        self.rfile = rfile or sock.makefile("rb")
        self.codec = spdy.HeaderCodec()
        self.streams = {}
        self.next_id = 1
        self.lock = threading.Lock()
        self.goaway = threading.Event()
        self.pings = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    @classmethod
    def upgrade(cls, url, protocols):
        """Connect to url, upgrade; return (client, chosen protocol)."""
        parts = urllib.parse.urlsplit(url)
        sock = socket.create_connection((parts.hostname, parts.port),
                                        timeout=TIMEOUT)
        lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}",
                 "Connection: Upgrade", "Upgrade: SPDY/3.1",
                 "Content-Length: 0"]
        lines += [f"X-Stream-Protocol-Version: {p}" for p in protocols]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        rfile = sock.makefile("rb")
        status = rfile.readline().decode()
        headers = {}
        while True:
            line = rfile.readline().decode().strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        code = int(status.split()[1])
        if code != 101:
            length = int(headers.get("content-length", 0))
            body = rfile.read(length).decode() if length else ""
            sock.close()
            raise UpgradeFailed(code, body)
        sock.settimeout(None)
        return cls(sock, rfile), headers.get("x-stream-protocol-version")

    def _read(self):
        try:
            while True:
                frame = spdy.read_frame(self.rfile)
                if frame is None:
                    break
                control, kind, flags, payload = frame
                if not control:
                    stream = self.streams[kind]
                    stream.data += payload
                    if flags & spdy.FLAG_FIN:
                        stream.finished.set()
                elif kind == spdy.SYN_REPLY:
                    sid = struct.unpack_from(">I", payload)[0]
                    self.codec.decode(payload[4:])
                    self.streams[sid].replied.set()
                    if flags & spdy.FLAG_FIN:
                        self.streams[sid].finished.set()
                elif kind == spdy.RST_STREAM:
                    sid = struct.unpack_from(">I", payload)[0]
                    stream = self.streams.get(sid)
                    if stream is not None:
                        stream.reset = True
                        stream.finished.set()
                elif kind == spdy.PING:
                    self.pings.append(payload)
                elif kind == spdy.GOAWAY:
                    self.goaway.set()
        except (OSError, spdy.ProtocolError):
            pass
        finally:
            self.goaway.set()
            for stream in self.streams.values():
                stream.finished.set()

    def open(self, headers, fin=False):
        """Open a stream; wait for its reply; return it."""
        with self.lock:
            sid = self.next_id
            self.next_id += 2
            stream = self.streams[sid] = ClientStream(sid)
            block = self.codec.encode(headers)
            payload = struct.pack(">IIBB", sid, 0, 0, 0) + block
            self.sock.sendall(spdy.control_frame(
                spdy.SYN_STREAM, spdy.FLAG_FIN if fin else 0, payload))
        if not stream.replied.wait(TIMEOUT):
            raise TimeoutError(f"no SYN_REPLY for stream {sid}")
        return stream

    def send(self, stream, data, fin=False):
        with self.lock:
            self.sock.sendall(spdy.data_frame(
                stream.id, spdy.FLAG_FIN if fin else 0, data))

    def ping(self, ping_id):
        with self.lock:
            self.sock.sendall(spdy.control_frame(
                spdy.PING, 0, struct.pack(">I", ping_id)))

    def read_all(self, stream, timeout=TIMEOUT):
        """Return what the server sent on stream, once it sent FIN."""
        if not stream.finished.wait(timeout):
            raise TimeoutError(f"stream {stream.id} did not finish: "
                               f"{bytes(stream.data)!r}")
        return bytes(stream.data)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)


class UpgradeFailed(Exception):
    def __init__(self, code, body):
        super().__init__(f"HTTP {code}: {body}")
        self.code = code
        self.body = body

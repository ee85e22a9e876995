"""SPDY/3.1 framing, and the server side of one SPDY connection.

Kubernetes' streaming clients (client-go's remotecommand and portforward
packages, through moby/spdystream) upgrade an HTTP request to SPDY/3.1
and open one stream per channel. Only what those clients use is here:
streams the client opens (SYN_STREAM, answered with SYN_REPLY), data in
both directions with FIN to half-close, RST_STREAM, PING (echoed),
GOAWAY. Name/value header blocks are zlib streams, one per direction and
connection, primed with the dictionary of the SPDY/3 draft.

Flow control is not enforced: spdystream neither sends nor honours
WINDOW_UPDATE, so a sender that counted its window would stall after
64 KiB. WINDOW_UPDATE and SETTINGS frames are read and ignored.
"""

import collections
import logging
import socket
import struct
import threading
import zlib

log = logging.getLogger(__name__)

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes.
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
CANCEL = 5
INTERNAL_ERROR = 6
STREAM_ALREADY_CLOSED = 9

# A data frame's length field has 24 bits; stay far below it.
MAX_DATA = 32 * 1024
# What a stream buffers from the client before the reader waits.
MAX_BUFFERED = 16 * 1024 * 1024

# The SPDY/3 header compression dictionary: each of these words with a
# 32-bit big-endian length before it, then the literal tail. ("200_OK"
# stands for "200 OK", which holds a space.)
_DICT_WORDS = (
    "options head post put delete trace accept accept-charset "
    "accept-encoding accept-language accept-ranges age allow "
    "authorization cache-control connection content-base "
    "content-encoding content-language content-length content-location "
    "content-md5 content-range content-type date etag expect expires "
    "from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after "
    "server te trailer transfer-encoding upgrade user-agent vary via "
    "warning www-authenticate method get status 200_OK version "
    "HTTP/1.1 url public set-cookie keep-alive origin")
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412"
    "413414415416417502504505203 Non-Authoritative Information204 No "
    "Content301 Moved Permanently400 Bad Request401 Unauthorized403 "
    "Forbidden404 Not Found500 Internal Server Error501 Not "
    "Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug "
    "Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, "
    "GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,"
    "application/xhtml+xml,text/plain,text/javascript,publicprivate"
    "max-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,"
    "enq=0.")


def _dictionary():
    out = bytearray()
    for word in _DICT_WORDS.split():
        word = word.replace("_", " ").encode()
        out += struct.pack(">I", len(word)) + word
    return bytes(out + _DICT_TAIL.encode())


DICTIONARY = _dictionary()


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3."""


# --- header blocks

class HeaderCodec:
    """The zlib contexts of one direction pair of a connection."""

    def __init__(self):
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION,
                                         zlib.DEFLATED, 15, 9,
                                         zlib.Z_DEFAULT_STRATEGY,
                                         DICTIONARY)

    def encode(self, headers):
        """Compress a {name: value or [values]} dict into a block."""
        raw = bytearray(struct.pack(">I", len(headers)))
        for name, value in headers.items():
            if isinstance(value, (list, tuple)):
                value = "\0".join(value)
            name_b = name.lower().encode()
            value_b = str(value).encode()
            raw += struct.pack(">I", len(name_b)) + name_b
            raw += struct.pack(">I", len(value_b)) + value_b
        return (self._deflate.compress(bytes(raw))
                + self._deflate.flush(zlib.Z_SYNC_FLUSH))

    def decode(self, block):
        """Return the {name: value} dict of a compressed block.

        A name given several values keeps them NUL-separated, as the
        wire has them.
        """
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as err:
            raise ProtocolError(f"header block: {err}") from None
        return parse_headers(raw)


def parse_headers(raw):
    """Parse an uncompressed SPDY/3 name/value block."""
    try:
        (count,), pos = struct.unpack_from(">I", raw), 4
        headers = {}
        for _ in range(count):
            (size,) = struct.unpack_from(">I", raw, pos)
            name = raw[pos + 4:pos + 4 + size].decode()
            pos += 4 + size
            (size,) = struct.unpack_from(">I", raw, pos)
            value = raw[pos + 4:pos + 4 + size].decode()
            pos += 4 + size
            headers[name.lower()] = value
    except (struct.error, UnicodeDecodeError) as err:
        raise ProtocolError(f"header block: {err}") from None
    return headers


# --- frames

def control_frame(kind, flags, payload):
    """Return the bytes of a control frame."""
    return struct.pack(">HHI", 0x8000 | VERSION, kind,
                       (flags << 24) | len(payload)) + payload


def data_frame(stream_id, flags, payload):
    """Return the bytes of a data frame."""
    return struct.pack(">II", stream_id & 0x7FFFFFFF,
                       (flags << 24) | len(payload)) + payload


def read_frame(rfile):
    """Read one frame; return (is_control, type or stream id, flags,
    payload), or None at a clean end of the connection."""
    head = _read_exact(rfile, 8)
    if head is None:
        return None
    first, second = struct.unpack(">II", head)
    flags, length = second >> 24, second & 0xFFFFFF
    payload = _read_exact(rfile, length) if length else b""
    if payload is None:
        raise ProtocolError("connection closed inside a frame")
    if first & 0x80000000:
        version = (first >> 16) & 0x7FFF
        if version != VERSION:
            raise ProtocolError(f"SPDY version {version}, not {VERSION}")
        return True, first & 0xFFFF, flags, payload
    return False, first & 0x7FFFFFFF, flags, payload


def _read_exact(rfile, size):
    data = b""
    while len(data) < size:
        chunk = rfile.read(size - len(data))
        if not chunk:
            if data:
                raise ProtocolError("connection closed inside a frame")
            return None
        data += chunk
    return data


# --- streams and the connection

class Stream:
    """One SPDY stream the client opened: read, write, half-close."""

    def __init__(self, conn, stream_id, headers, remote_closed):
        self.conn = conn
        self.id = stream_id
        self.headers = headers
        self._chunks = collections.deque()
        self._buffered = 0
        self._discard = False
        self._cond = threading.Condition()
        self.remote_closed = remote_closed
        self.local_closed = False
        self.reset = False

    def __repr__(self):
        return f"<Stream {self.id} {self.headers.get('streamtype', '')}>"

    def _push(self, data, fin):
        with self._cond:
            # No flow control: a reader that does not keep up stops the
            # connection's reader here (TCP then slows the client down),
            # as spdystream's frame workers block on a full stream.
            self._cond.wait_for(lambda: self._buffered < MAX_BUFFERED
                                or self.reset or self._discard)
            if data and not (self.reset or self._discard):
                self._chunks.append(data)
                self._buffered += len(data)
            if fin:
                self.remote_closed = True
            self._cond.notify_all()

    def _abort(self):
        with self._cond:
            self.reset = True
            self.remote_closed = True
            self.local_closed = True
            self._cond.notify_all()

    def read(self, timeout=None):
        """Return the next chunk the client sent; b"" once it closed."""
        with self._cond:
            if not self._cond.wait_for(
                    lambda: self._chunks or self.remote_closed, timeout):
                raise TimeoutError(f"no data on stream {self.id}")
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                self._cond.notify_all()
                return chunk
            return b""

    def discard(self):
        """Drop what the client sends from now on (nobody reads it)."""
        with self._cond:
            self._discard = True
            self._chunks.clear()
            self._buffered = 0
            self._cond.notify_all()

    def read_all(self, timeout=None):
        """Return everything until the client closes the stream."""
        out = bytearray()
        while True:
            chunk = self.read(timeout)
            if not chunk:
                return bytes(out)
            out += chunk

    def write(self, data):
        """Send data; False when the stream or connection is gone."""
        view = memoryview(data)
        while view:
            if self.local_closed:
                return False
            if not self.conn.send(data_frame(self.id, 0, view[:MAX_DATA])):
                return False
            view = view[MAX_DATA:]
        return True

    def close(self):
        """Half-close: send FIN (once)."""
        with self._cond:
            if self.local_closed:
                return
            self.local_closed = True
        self.conn.send(data_frame(self.id, FLAG_FIN, b""))
        self.conn.maybe_forget(self)

    def cancel(self):
        """Reset the stream (RST_STREAM CANCEL)."""
        if not self.reset:
            self.conn.send_reset(self.id, CANCEL)
        self._abort()
        self.conn.maybe_forget(self)


class Connection:
    """The server side of a SPDY connection over an upgraded socket.

    serve() reads frames until the client goes away; streams the client
    opens are answered at once and handed out by accept().

        >>> conn = Connection(sock, rfile)
        >>> threading.Thread(target=conn.serve).start()
        >>> stream = conn.accept(timeout=30)
    """

    def __init__(self, sock, rfile):
        self.sock = sock
        self.rfile = rfile
        self.codec = HeaderCodec()
        self.streams = {}
        self._new = collections.deque()
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self.closed = False
        self._last_id = 0

    # --- sending

    def send(self, frame):
        """Write a frame; False once the connection is gone."""
        with self._send_lock:
            if self.closed:
                return False
            try:
                self.sock.sendall(frame)
            except OSError as err:
                log.debug("spdy: send: %s", err)
                self._mark_closed()
                return False
        return True

    def send_reset(self, stream_id, status):
        self.send(control_frame(RST_STREAM, 0, struct.pack(
            ">II", stream_id & 0x7FFFFFFF, status)))

    def _send_reply(self, stream_id, headers=None, flags=0):
        # The codec's deflate context must see blocks in wire order.
        with self._send_lock:
            block = self.codec.encode(headers or {})
        self.send(control_frame(SYN_REPLY, flags, struct.pack(
            ">I", stream_id & 0x7FFFFFFF) + block))

    def goaway(self, status=0):
        self.send(control_frame(GOAWAY, 0, struct.pack(
            ">II", self._last_id, status)))

    # --- receiving

    def accept(self, timeout=None):
        """Return the next stream the client opened; None when closed
        (or on timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self._new or self.closed, timeout)
            if self._new:
                return self._new.popleft()
            return None

    def serve(self):
        """Read and dispatch frames until the connection ends."""
        try:
            while True:
                frame = read_frame(self.rfile)
                if frame is None:
                    break
                if not self._dispatch(*frame):
                    break
        except (OSError, ProtocolError, ValueError, struct.error) as err:
            log.debug("spdy: connection ended: %s", err)
        finally:
            self._mark_closed()

    def _dispatch(self, control, kind, flags, payload):
        if not control:
            stream = self.streams.get(kind)
            if stream is None:
                self.send_reset(kind, INVALID_STREAM)
                return True
            stream._push(payload, flags & FLAG_FIN)
            self.maybe_forget(stream)
            return True
        if kind == SYN_STREAM:
            self._on_syn_stream(flags, payload)
        elif kind == RST_STREAM:
            stream_id = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF
            stream = self.streams.pop(stream_id, None)
            if stream is not None:
                stream._abort()
        elif kind == PING:
            self.send(control_frame(PING, 0, payload))
        elif kind == GOAWAY:
            return False
        elif kind == HEADERS:
            # Decoded only to keep the zlib context in step.
            self.codec.decode(payload[4:])
        return True

    def _on_syn_stream(self, flags, payload):
        if len(payload) < 10:
            raise ProtocolError("short SYN_STREAM")
        stream_id = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF
        headers = self.codec.decode(payload[10:])
        if stream_id in self.streams or stream_id <= self._last_id:
            self.send_reset(stream_id, PROTOCOL_ERROR)
            return
        self._last_id = stream_id
        stream = Stream(self, stream_id, headers,
                        bool(flags & (FLAG_FIN | FLAG_UNIDIRECTIONAL)))
        self.streams[stream_id] = stream
        self._send_reply(stream_id)
        log.debug("spdy: stream %d opened: %s", stream_id, headers)
        with self._cond:
            self._new.append(stream)
            self._cond.notify_all()

    def maybe_forget(self, stream):
        """Drop a stream that is closed both ways."""
        if stream.remote_closed and stream.local_closed:
            self.streams.pop(stream.id, None)

    def _mark_closed(self):
        with self._cond:
            if self.closed:
                return
            self.closed = True
            self._cond.notify_all()
        for stream in list(self.streams.values()):
            stream._abort()

    def close(self):
        """Shut the socket down (after goaway(), to say so first)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._mark_closed()

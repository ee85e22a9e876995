"""The streaming server: SPDY framing, tokens, and Exec/Attach/PortForward.

The unit tests need no root: SPDY is driven over a socketpair with the
test client of spdyclient.py. The end-to-end tests run a server (see
conftest.py) and talk to its streaming URLs as client-go would.
"""

import json
import socket
import struct
import threading
import time
import zlib

import grpc
import pytest
from cri_api.v1 import api_pb2 as pb

from pyrunc.cri import config, session, spdy, streaming
from pyrunc.cri.errors import InvalidArgument
from spdyclient import Client, UpgradeFailed

V4 = "v4.channel.k8s.io"
OFFER = [V4, "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]


# --- units

class TestFraming:
    def test_dictionary(self):
        d = spdy.DICTIONARY
        assert len(d) == 1423
        assert d.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
        assert b"\x00\x00\x00\x06200 OK\x00\x00\x00\x07version" in d
        assert d.endswith(b",*,enq=0.")

    def test_header_blocks_share_one_zlib_stream(self):
        sender, receiver = spdy.HeaderCodec(), spdy.HeaderCodec()
        first = sender.encode({"streamType": "stdout"})
        second = sender.encode({"streamtype": "stderr", "port": 80})
        assert receiver.decode(first) == {"streamtype": "stdout"}
        assert receiver.decode(second) == {"streamtype": "stderr",
                                           "port": "80"}
        # The second block depends on the first: alone it cannot be read.
        with pytest.raises(spdy.ProtocolError):
            spdy.HeaderCodec().decode(second)

    def test_block_uses_the_dictionary(self):
        block = spdy.HeaderCodec().encode({"a": "b"})
        inflate = zlib.decompressobj()
        with pytest.raises(zlib.error):
            inflate.decompress(block)
        raw = zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(block)
        assert raw == struct.pack(">II", 1, 1) + b"a" + \
            struct.pack(">I", 1) + b"b"

    def test_frames(self):
        frame = spdy.control_frame(spdy.PING, 0, b"\0\0\0\x07")
        assert frame == b"\x80\x03\x00\x06\x00\x00\x00\x04\0\0\0\x07"
        frame = spdy.data_frame(5, spdy.FLAG_FIN, b"abc")
        assert frame == b"\x00\x00\x00\x05\x01\x00\x00\x03abc"

        class R:
            def __init__(self, data):
                self.data = data

            def read(self, n):
                out, self.data = self.data[:n], self.data[n:]
                return out

        assert spdy.read_frame(R(frame)) == (False, 5, 1, b"abc")
        assert spdy.read_frame(R(b"")) is None
        with pytest.raises(spdy.ProtocolError):
            spdy.read_frame(R(frame[:9]))
        with pytest.raises(spdy.ProtocolError):
            spdy.read_frame(R(b"\x80\x02\x00\x06\x00\x00\x00\x00"))


@pytest.fixture
def pair():
    """A server Connection and a test Client over a socketpair."""
    a, b = socket.socketpair()
    conn = spdy.Connection(a, a.makefile("rb"))
    thread = threading.Thread(target=conn.serve, daemon=True)
    thread.start()
    client = Client(b)
    yield conn, client
    client.close()
    conn.close()
    thread.join(5)
    a.close()


class TestConnection:
    def test_streams_data_and_fin(self, pair):
        conn, client = pair
        cs = client.open({"streamType": "stdin"})
        stream = conn.accept(5)
        assert stream.headers == {"streamtype": "stdin"}
        client.send(cs, b"hello ")
        client.send(cs, b"world", fin=True)
        assert stream.read_all(5) == b"hello world"
        stream.write(b"x" * (spdy.MAX_DATA + 10))
        stream.close()
        assert client.read_all(cs) == b"x" * (spdy.MAX_DATA + 10)
        assert cs.id not in conn.streams

    def test_ping_is_echoed(self, pair):
        conn, client = pair
        client.ping(7)
        deadline = time.monotonic() + 5
        while not client.pings and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.pings == [struct.pack(">I", 7)]

    def test_backpressure_and_discard(self, pair, monkeypatch):
        monkeypatch.setattr(spdy, "MAX_BUFFERED", 10)
        conn, client = pair
        cs = client.open({"streamType": "stdin"})
        stream = conn.accept(5)
        client.send(cs, b"x" * 20)
        client.send(cs, b"y" * 5)
        client.ping(1)
        time.sleep(0.3)
        # The reader waits for the stream to be read: no pong yet.
        assert client.pings == []
        assert stream.read(5) == b"x" * 20
        assert _wait_for(lambda: client.pings)
        stream.discard()
        client.send(cs, b"z" * 100)
        client.send(cs, b"z" * 100, fin=True)
        client.ping(2)
        assert _wait_for(lambda: len(client.pings) == 2)
        assert stream.read(5) == b""

    def test_reset_and_hangup_end_reads(self, pair):
        conn, client = pair
        cs = client.open({"streamType": "data"})
        stream = conn.accept(5)
        stream.cancel()
        client.read_all(cs)
        assert cs.reset
        cs2 = client.open({"streamType": "error"})
        other = conn.accept(5)
        client.close()
        assert other.read(5) == b""
        assert conn.accept(5) is None
        assert not cs2.reset


def _wait_for(predicate, timeout=5):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class TestTokens:
    def test_single_use_and_kind(self):
        tokens = streaming.Tokens()
        token = tokens.add("exec", "req")
        assert tokens.take("attach", token) is None
        assert tokens.take("exec", token) == "req"
        assert tokens.take("exec", token) is None

    def test_expiry(self):
        tokens = streaming.Tokens(ttl=0)
        token = tokens.add("exec", "req")
        time.sleep(0.01)
        assert tokens.take("exec", token) is None

    def test_negotiate(self):
        assert streaming.negotiate(OFFER, streaming.REMOTECOMMAND_PROTOCOLS) \
            == V4
        assert streaming.negotiate(["v9.x, v3.channel.k8s.io"],
                                   streaming.REMOTECOMMAND_PROTOCOLS) \
            == "v3.channel.k8s.io"
        assert streaming.negotiate([], ("a",)) == ""
        assert streaming.negotiate(["b"], ("a",)) is None


class TestServer:
    @pytest.fixture
    def server(self):
        cfg = config.Config(streaming_address="127.0.0.1", streaming_port=0)
        srv = streaming.StreamServer(cfg, None, None)
        srv.start()
        yield srv
        srv.stop()

    def _post(self, srv, path, headers=()):
        host, port = srv.httpd.server_address
        with socket.create_connection((host, port), timeout=5) as sock:
            lines = [f"POST {path} HTTP/1.1", f"Host: {host}",
                     "Content-Length: 0", *headers]
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            return sock.makefile("rb").readline().split()[1]

    def test_urls_and_refusals(self, server):
        assert server.base_url.startswith("http://127.0.0.1:")
        assert not server.base_url.endswith(":0")
        assert self._post(server, "/nowhere") == b"404"
        spdy_upgrade = ["Connection: Upgrade", "Upgrade: SPDY/3.1"]
        assert self._post(server, "/exec/unknown", spdy_upgrade) == b"404"
        token = server.tokens.add("exec", pb.ExecRequest())
        assert self._post(server, f"/exec/{token}") == b"400"
        assert self._post(server, f"/exec/{token}", [
            "Connection: Upgrade", "Upgrade: websocket"]) == b"400"
        # Refused upgrades leave the token usable.
        assert server.tokens.take("exec", token) is not None
        token = server.tokens.add("portforward", pb.PortForwardRequest())
        assert self._post(server, f"/portforward/{token}", [
            "Connection: Upgrade", "Upgrade: SPDY/3.1",
            "X-Stream-Protocol-Version: v4.channel.k8s.io"]) == b"403"


class TestRequests:
    def test_validate_exec(self):
        ok = pb.ExecRequest(container_id="c", cmd=["ls"], stdout=True)
        streaming.validate_exec(ok)
        for bad in (pb.ExecRequest(cmd=["ls"], stdout=True),
                    pb.ExecRequest(container_id="c", stdout=True),
                    pb.ExecRequest(container_id="c", cmd=["ls"]),
                    pb.ExecRequest(container_id="c", cmd=["ls"], tty=True,
                                   stdout=True, stderr=True)):
            with pytest.raises(InvalidArgument):
                streaming.validate_exec(bad)

    def test_wanted_streams(self):
        req = pb.ExecRequest(stdin=True, stdout=True, tty=True)
        assert session.wanted_streams(req, V4) == {
            "error", "stdin", "stdout", "resize"}
        assert session.wanted_streams(req, "v2.channel.k8s.io") == {
            "error", "stdin", "stdout"}

    def test_statuses(self):
        status = session.status_exit(3, ["sh"])
        assert status["status"] == "Failure"
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [
            {"reason": "ExitCode", "message": "3"}]
        assert session.status_success() == {"metadata": {},
                                            "status": "Success"}

    def test_read_resizes(self, pair):
        conn, client = pair
        cs = client.open({"streamType": "resize"})
        stream = conn.accept(5)
        client.send(cs, b'{"Width":80,"Height":24}\n{"Width":1')
        client.send(cs, b'00,"Height":50}\n', fin=True)
        sizes = []
        session.read_resizes(stream, lambda w, h: sizes.append((w, h)))
        assert sizes == [(80, 24), (100, 50)]


# --- end to end

def _status(client, stream):
    return json.loads(client.read_all(stream))


def _open_stdio(client, *kinds):
    return {kind: client.open({"streamType": kind}) for kind in kinds}


@pytest.mark.root
@pytest.mark.no_residue
class TestStreaming:
    def _pod(self, cri, name="stream"):
        cfg = cri.pod_config(name)
        return cfg, cri.run_pod(cfg)

    def test_exec(self, cri):
        cfg, sid = self._pod(cri)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"])
        url = cri.rt.Exec(pb.ExecRequest(
            container_id=cid, cmd=["sh", "-c", "echo out; echo err >&2; "
                                   "exit 3"],
            stdout=True, stderr=True)).url
        assert url.startswith("http://127.0.0.1:")
        client, proto = Client.upgrade(url, OFFER)
        assert proto == V4
        s = _open_stdio(client, "error", "stdout", "stderr")
        assert client.read_all(s["stdout"]) == b"out\n"
        assert client.read_all(s["stderr"]) == b"err\n"
        status = _status(client, s["error"])
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"][0]["message"] == "3"
        client.close()
        # The token was used up.
        with pytest.raises(UpgradeFailed) as exc:
            Client.upgrade(url, OFFER)
        assert exc.value.code == 404

    def test_exec_stdin_and_success(self, cri):
        cfg, sid = self._pod(cri)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"])
        url = cri.rt.Exec(pb.ExecRequest(
            container_id=cid, cmd=["cat"], stdin=True, stdout=True)).url
        client, _ = Client.upgrade(url, OFFER)
        s = _open_stdio(client, "error", "stdin", "stdout")
        payload = bytes(range(256)) * 600
        client.send(s["stdin"], payload, fin=True)
        assert client.read_all(s["stdout"]) == payload
        assert _status(client, s["error"])["status"] == "Success"
        client.close()

    def test_exec_tty_and_resize(self, cri):
        cfg, sid = self._pod(cri)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"])
        url = cri.rt.Exec(pb.ExecRequest(
            container_id=cid, cmd=["sh"], stdin=True, stdout=True,
            tty=True)).url
        client, _ = Client.upgrade(url, OFFER)
        s = _open_stdio(client, "error", "stdin", "stdout", "resize")
        client.send(s["resize"], b'{"Width":101,"Height":42}')
        time.sleep(1)
        client.send(s["stdin"], b"stty size; tty; exit 5\n")
        out = client.read_all(s["stdout"]).decode()
        assert "42 101" in out
        assert "/dev/pts/" in out
        # A terminal turns \n into \r\n.
        assert "42 101\r\n" in out
        status = _status(client, s["error"])
        assert status["details"]["causes"][0]["message"] == "5"
        client.close()

    def test_exec_errors(self, cri):
        cfg, sid = self._pod(cri)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"])
        with pytest.raises(grpc.RpcError) as exc:
            cri.rt.Exec(pb.ExecRequest(container_id=cid, cmd=["ls"],
                                       tty=True, stdout=True, stderr=True))
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as exc:
            cri.rt.Exec(pb.ExecRequest(container_id="0" * 64, cmd=["ls"],
                                       stdout=True))
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND
        url = cri.rt.Exec(pb.ExecRequest(
            container_id=cid, cmd=["/nonexistent"], stdout=True)).url
        with pytest.raises(UpgradeFailed) as exc:
            Client.upgrade(url, ["v9.channel.k8s.io"])
        assert exc.value.code == 403
        url = cri.rt.Exec(pb.ExecRequest(
            container_id=cid, cmd=["/nonexistent"], stdout=True)).url
        client, _ = Client.upgrade(url, OFFER)
        s = _open_stdio(client, "error", "stdout")
        status = _status(client, s["error"])
        assert status["status"] == "Failure"
        assert "exec failed" in status["message"]
        client.close()

    def test_exec_killed_when_client_leaves(self, cri):
        cfg, sid = self._pod(cri)
        cid = cri.create(sid, cfg, "c", ["sleep", "1000"])
        url = cri.rt.Exec(pb.ExecRequest(
            container_id=cid, cmd=["sleep", "777"], stdout=True)).url
        client, _ = Client.upgrade(url, OFFER)
        _open_stdio(client, "error", "stdout")
        time.sleep(1)
        assert "sleep 777" in cri.exec(cid, "ps", "-o", "args").stdout.decode()
        client.close()
        deadline = time.monotonic() + 10
        while "sleep 777" in cri.exec(cid, "ps", "-o",
                                      "args").stdout.decode():
            assert time.monotonic() < deadline
            time.sleep(0.2)

    def test_attach(self, cri):
        cfg, sid = self._pod(cri)
        cid = cri.create(sid, cfg, "c", ["sh"], stdin=True,
                         stdin_once=True)
        url = cri.rt.Attach(pb.AttachRequest(
            container_id=cid, stdin=True, stdout=True, stderr=True)).url
        client, _ = Client.upgrade(url, OFFER)
        s = _open_stdio(client, "error", "stdin", "stdout", "stderr")
        time.sleep(0.5)
        client.send(s["stdin"], b"echo hi; echo oops >&2\n", fin=True)
        assert client.read_all(s["stdout"]) == b"hi\n"
        assert client.read_all(s["stderr"]) == b"oops\n"
        assert _status(client, s["error"])["status"] == "Success"
        client.close()
        # StdinOnce: the end of the client's input closed sh's stdin.
        status = cri.wait_state(cid, pb.CONTAINER_EXITED)
        assert status.exit_code == 0

    def test_attach_tty_and_resize(self, cri):
        cfg, sid = self._pod(cri)
        cid = cri.create(sid, cfg, "c", ["sh"], stdin=True, tty=True)
        url = cri.rt.Attach(pb.AttachRequest(
            container_id=cid, stdin=True, stdout=True, tty=True)).url
        client, _ = Client.upgrade(url, OFFER)
        s = _open_stdio(client, "error", "stdin", "stdout", "resize")
        client.send(s["resize"], b'{"Width":77,"Height":33}')
        time.sleep(0.5)
        client.send(s["stdin"], b"stty size\n")
        assert _wait_for(lambda: b"33 77\r\n" in s["stdout"].data, 10), \
            bytes(s["stdout"].data)
        client.send(s["stdin"], b"exit 6\n")
        client.read_all(s["stdout"])
        assert _status(client, s["error"])["status"] == "Success"
        client.close()
        assert cri.wait_state(cid, pb.CONTAINER_EXITED).exit_code == 6

    def test_port_forward(self, cri):
        cfg, sid = self._pod(cri)
        cid = cri.create(sid, cfg, "c",
                         ["nc", "-ll", "-p", "8080", "-e", "cat"])
        url = cri.rt.PortForward(pb.PortForwardRequest(
            pod_sandbox_id=sid)).url
        client, proto = Client.upgrade(url, ["portforward.k8s.io"])
        assert proto == "portforward.k8s.io"
        payload = b"ping " * 20000
        for request_id in range(50):
            headers = {"port": "8080", "requestID": str(request_id)}
            err = client.open(dict(headers, streamType="error"))
            data = client.open(dict(headers, streamType="data"))
            client.send(data, payload, fin=True)
            echoed = client.read_all(data)
            message = client.read_all(err)
            if echoed:
                break
            # nc not listening yet: the error says so; try again.
            assert b"error forwarding port 8080" in message
            time.sleep(0.2)
        assert echoed == payload
        assert message == b""
        headers = {"port": "1", "requestID": "refused"}
        err = client.open(dict(headers, streamType="error"))
        data = client.open(dict(headers, streamType="data"))
        assert b"Connection refused" in client.read_all(err)
        client.close()
        assert cid

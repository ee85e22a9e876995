"""The server's records of pods and containers, in memory and on disk.

Layout under the state root::

    sandboxes/<id>/sandbox.json   the pod record; config.pb its request
    containers/<id>/container.json  the container record; config.pb
    exits/<id>                    exit status, written by conmon
    s/                            conmon's attach socket links
    pause/rootfs/                 the pause containers' shared rootfs

A restarted server rebuilds everything from these files (``load``).
"""

import logging
import os
import shutil
import threading

from pyrunc.cri import monitor, records
from pyrunc.cri.errors import AlreadyExists

log = logging.getLogger(__name__)


class Registry:
    """Records of pods and containers, with name reservation and locks."""

    def __init__(self, state_root):
        self.root = os.path.abspath(state_root)
        self.sandbox_root = os.path.join(self.root, "sandboxes")
        self.container_root = os.path.join(self.root, "containers")
        self.exit_dir = os.path.join(self.root, "exits")
        self.socket_dir = os.path.join(self.root, "s")
        self.pause_dir = os.path.join(self.root, "pause")
        for d in (self.sandbox_root, self.container_root, self.exit_dir,
                  self.socket_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self.lock = threading.RLock()
        self.sandboxes = {}
        self.containers = {}
        self._names = {}
        self._locks = {}

    # --- paths

    def sandbox_dir(self, sid):
        return os.path.join(self.sandbox_root, sid)

    def container_dir(self, cid):
        return os.path.join(self.container_root, cid)

    def exit_file(self, cid):
        return os.path.join(self.exit_dir, cid)

    # --- persistence

    def load(self):
        """Read every record back from disk (at server start)."""
        for sid in sorted(os.listdir(self.sandbox_root)):
            rec = records.read_json(
                os.path.join(self.sandbox_dir(sid), "sandbox.json"))
            if rec is None:
                log.warning("sandbox dir %s has no record: removing", sid)
                shutil.rmtree(self.sandbox_dir(sid), ignore_errors=True)
                continue
            self.sandboxes[sid] = rec
            self._names[("sandbox", rec["name"])] = sid
        for cid in sorted(os.listdir(self.container_root)):
            rec = records.read_json(
                os.path.join(self.container_dir(cid), "container.json"))
            if rec is None:
                log.warning("container dir %s has no record", cid)
                continue
            self.containers[cid] = rec
            self._names[("container", rec["name"])] = cid
        log.info("recovered %d pods and %d containers",
                 len(self.sandboxes), len(self.containers))

    def save_sandbox(self, rec):
        with self.lock:
            self.sandboxes[rec["id"]] = rec
            records.write_json(
                os.path.join(self.sandbox_dir(rec["id"]), "sandbox.json"),
                rec)

    def save_container(self, rec):
        with self.lock:
            self.containers[rec["id"]] = rec
            records.write_json(
                os.path.join(self.container_dir(rec["id"]),
                             "container.json"), rec)

    def drop_sandbox(self, sid):
        with self.lock:
            rec = self.sandboxes.pop(sid, None)
            if rec:
                self._names.pop(("sandbox", rec["name"]), None)
            self._locks.pop(sid, None)
        shutil.rmtree(self.sandbox_dir(sid), ignore_errors=True)
        self._drop_files(sid)

    def drop_container(self, cid):
        with self.lock:
            rec = self.containers.pop(cid, None)
            if rec:
                self._names.pop(("container", rec["name"]), None)
        shutil.rmtree(self.container_dir(cid), ignore_errors=True)
        self._drop_files(cid)

    def _drop_files(self, oid):
        # conmon leaves the exit file and, when killed, its attach link.
        link = os.path.join(self.socket_dir, monitor.cuuid(oid))
        for path in (self.exit_file(oid), link):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    # --- names and locks

    def reserve(self, kind, name, oid):
        """Reserve a pod or container name for oid; AlreadyExists if taken."""
        with self.lock:
            owner = self._names.get((kind, name))
            if owner is not None and owner != oid:
                raise AlreadyExists(
                    f"{kind} name `{name}` is reserved for {owner}")
            self._names[(kind, name)] = oid

    def release(self, kind, name, oid):
        with self.lock:
            if self._names.get((kind, name)) == oid:
                del self._names[(kind, name)]

    def pod_lock(self, sid):
        """Return the lock serializing lifecycle changes within one pod."""
        with self.lock:
            lk = self._locks.get(sid)
            if lk is None:
                lk = self._locks[sid] = threading.RLock()
            return lk

    # --- lookups

    def find_sandbox(self, ref):
        """Return the pod record for an id or unique id prefix, or None."""
        return _find(self.sandboxes, ref, self.lock)

    def find_container(self, ref):
        """Return the container record for an id or unique prefix, or None."""
        return _find(self.containers, ref, self.lock)

    def containers_of(self, sid):
        with self.lock:
            return [c for c in self.containers.values()
                    if c["sandbox_id"] == sid]


def _find(table, ref, lock):
    if not ref:
        return None
    with lock:
        rec = table.get(ref)
        if rec is not None:
            return rec
        matches = [r for k, r in table.items() if k.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    return None

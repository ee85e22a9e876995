"""Pod networking through CNI plugins, as the CNI specification asks.

The network is the first configuration (sorted by file name) in the
configured directory: a ``.conflist``, or a single-plugin ``.conf`` /
``.json``. Its plugins run in order for ADD, each given the previous
result as ``prevResult``, and in reverse order for DEL. The loopback
plugin brings up ``lo`` in every pod first. What ADD returned is kept in
the sandbox directory, so DEL after a server restart uses the same
network configuration and results.
"""

import json
import logging
import os
import subprocess

from pyrunc.cri.errors import RuntimeFailed

log = logging.getLogger(__name__)

IFNAME = "eth0"
PLUGIN_TIMEOUT = 60
# cniVersion for the loopback network, which Debian's plugins (1.1)
# understand; the configured network keeps its own.
LOOPBACK_VERSION = "0.4.0"


class Cni:
    """Runs CNI plugins for pods.

        >>> cni = Cni(config.cni)
        >>> state = cni.setup(sandbox_id, "/proc/123/ns/net", meta, ports)
        >>> cni.pod_ips(state)
        ['10.88.0.2']
        >>> cni.teardown(sandbox_id, "/proc/123/ns/net", meta, state)
    """

    def __init__(self, cfg):
        self.conf_dir = cfg.conf_dir
        self.bin_dirs = list(cfg.bin_dirs)
        self.loopback = cfg.loopback

    def network(self):
        """Return the network configuration as a conflist dict, or None."""
        try:
            names = sorted(os.listdir(self.conf_dir))
        except FileNotFoundError:
            return None
        for name in names:
            if not name.endswith((".conflist", ".conf", ".json")):
                continue
            path = os.path.join(self.conf_dir, name)
            try:
                with open(path) as f:
                    data = json.load(f)
            except (OSError, ValueError) as err:
                log.warning("skipping CNI config %s: %s", path, err)
                continue
            if "plugins" not in data:
                data = {"cniVersion": data.get("cniVersion", "0.4.0"),
                        "name": data.get("name", name), "plugins": [data]}
            return data
        return None

    def status(self):
        """Return (ready, message) for the runtime's NetworkReady."""
        if self.network() is None:
            return False, f"no CNI network config in {self.conf_dir}"
        return True, ""

    def setup(self, sandbox_id, netns, meta, ports=()):
        """ADD the pod to the network; return the state for teardown.

        meta is the pod's (name, namespace, uid); ports a list of CNI
        portMappings dicts. On failure what was added is deleted again.
        """
        state = {"network": self.network(), "results": {}}
        if self.loopback:
            lo = _loopback_conf()
            self._invoke("ADD", lo, sandbox_id, netns, "lo", meta)
            state["loopback"] = lo
        net = state["network"]
        if net is None:
            return state
        try:
            result = self._run_list("ADD", net, sandbox_id, netns, meta,
                                    ports)
        except Exception:
            self.teardown(sandbox_id, netns, meta, state, ports)
            raise
        state["result"] = result
        state["ports"] = list(ports)
        return state

    def teardown(self, sandbox_id, netns, meta, state, ports=None):
        """DEL the pod from the network state (from setup) names."""
        if not state:
            return
        net = state.get("network")
        if ports is None:
            ports = state.get("ports", [])
        if net is not None:
            self._run_list("DEL", net, sandbox_id, netns, meta, ports,
                           prev=state.get("result"))
        lo = state.get("loopback")
        if lo and netns:
            try:
                self._invoke("DEL", lo, sandbox_id, netns, "lo", meta)
            except RuntimeFailed as err:
                log.debug("loopback DEL: %s", err)

    def pod_ips(self, state):
        """Return the pod's IP addresses (no prefix length) from state."""
        result = (state or {}).get("result") or {}
        ips = []
        for entry in result.get("ips", []):
            address = entry.get("address", "")
            if address:
                ips.append(address.split("/", 1)[0])
        return ips

    def _run_list(self, command, net, sandbox_id, netns, meta, ports,
                  prev=None):
        plugins = list(net.get("plugins", []))
        if command == "DEL":
            plugins.reverse()
        result = prev
        for plugin in plugins:
            conf = dict(plugin)
            conf["name"] = net.get("name", "")
            conf["cniVersion"] = net.get("cniVersion", "0.4.0")
            caps = plugin.get("capabilities", {})
            if caps.get("portMappings") and ports:
                conf["runtimeConfig"] = {"portMappings": list(ports)}
            if result is not None:
                conf["prevResult"] = result
            out = self._invoke(command, conf, sandbox_id, netns, IFNAME,
                               meta)
            if command == "ADD":
                result = out or result
        return result

    def _find(self, kind):
        for d in self.bin_dirs:
            path = os.path.join(d, kind)
            if os.access(path, os.X_OK):
                return path
        raise RuntimeFailed(
            f"CNI plugin `{kind}` not found in {':'.join(self.bin_dirs)}")

    def _invoke(self, command, conf, sandbox_id, netns, ifname, meta):
        binary = self._find(conf.get("type", ""))
        name, namespace, uid = meta
        cni_args = (f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};"
                    f"K8S_POD_NAME={name};"
                    f"K8S_POD_INFRA_CONTAINER_ID={sandbox_id};"
                    f"K8S_POD_UID={uid}")
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": sandbox_id,
            "CNI_NETNS": netns or "",
            "CNI_IFNAME": ifname,
            "CNI_PATH": ":".join(self.bin_dirs),
            "CNI_ARGS": cni_args,
        }
        log.debug("CNI %s %s for %s", command, conf.get("type"), sandbox_id)
        try:
            res = subprocess.run(
                [binary], input=json.dumps(conf).encode(), env=env,
                capture_output=True, timeout=PLUGIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RuntimeFailed(
                f"CNI {command} {conf.get('type')}: timed out") from None
        if res.returncode != 0:
            raise RuntimeFailed(
                f"CNI {command} {conf.get('type')}: "
                f"{_plugin_error(res.stdout, res.stderr)}")
        if not res.stdout.strip():
            return None
        try:
            return json.loads(res.stdout)
        except ValueError:
            return None


def _loopback_conf():
    return {"cniVersion": LOOPBACK_VERSION, "name": "cni-loopback",
            "type": "loopback"}


def _plugin_error(stdout, stderr):
    try:
        err = json.loads(stdout)
        msg = err.get("msg", "")
        details = err.get("details", "")
        return f"{msg}: {details}" if details else msg
    except (ValueError, AttributeError):
        text = (stdout + stderr).decode(errors="replace").strip()
        return text or "failed with no message"

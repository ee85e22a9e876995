"""The TOML configuration of pyrunc-cri.

Every key is optional; an example with the defaults::

    listen = "/run/pyrunc/cri.sock"
    state_root = "/var/lib/pyrunc-cri"      # pods, containers, logs
    image_root = "/var/lib/pyrunc-cri/images"
    streaming_address = "127.0.0.1"
    streaming_port = 0
    log_level = "info"                       # debug, info, warning, error
    log_format = "text"                      # text or json
    log_file = ""                            # "" for stderr
    conmon = "/usr/bin/conmon"
    default_runtime = "pyrunc"
    cgroup_parent = "pyrunc-cri"             # for pods that name none
    pause_binary = ""                        # "": pyrunc-pause, built in
    busybox = "/bin/busybox"                 # pause fallback, when not built
    workers = 16
    skopeo = "/usr/bin/skopeo"               # PullImage from registries
    insecure_registries = []                 # plain HTTP or unverified TLS

    [registry_mirrors]                       # tried in order, then the host
    "registry.k8s.io" = ["127.0.0.1:5000"]   # (no mirrors by default)

    [runtimes.pyrunc]                        # RuntimeClass handler names
    path = "/usr/local/bin/pyrunc"
    root = "/run/pyrunc-cri/pyrunc"

    [cni]
    conf_dir = "/etc/cni/net.d"
    bin_dirs = ["/usr/lib/cni", "/opt/cni/bin"]

A registry is named by its host (``host[:port]``, ``docker.io`` for
Docker Hub). A mirror endpoint is a host or an ``http://`` /
``https://`` URL; ``http://`` implies insecure.

A relative cgroup parent is joined, by the runtime, to the cgroup of the
runtime process itself (runc's rule), so a server started inside a
test's cgroup keeps its pods below it.
"""

import dataclasses
import os
import tomllib

from pyrunc.errors import ConfigError

DEFAULT_CONFIG = "/etc/pyrunc/cri.toml"
DEFAULT_LISTEN = "/run/pyrunc/cri.sock"
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclasses.dataclass
class RuntimeHandler:
    """A runtime binary and its --root, selected by a RuntimeClass name."""

    name: str
    path: str
    root: str


@dataclasses.dataclass
class CniConfig:
    """Where CNI network configurations and plugin binaries live."""

    conf_dir: str = "/etc/cni/net.d"
    bin_dirs: list = dataclasses.field(
        default_factory=lambda: ["/usr/lib/cni", "/opt/cni/bin"])
    # Bring up lo in every pod with the loopback plugin (as containerd
    # does), whatever the network configuration says.
    loopback: bool = True


@dataclasses.dataclass
class Config:
    """The whole configuration, with defaults for every key."""

    listen: str = DEFAULT_LISTEN
    state_root: str = "/var/lib/pyrunc-cri"
    image_root: str = ""
    streaming_address: str = "127.0.0.1"
    streaming_port: int = 0
    log_level: str = "info"
    log_format: str = "text"
    log_file: str = ""
    conmon: str = "/usr/bin/conmon"
    default_runtime: str = "pyrunc"
    cgroup_parent: str = "pyrunc-cri"
    pause_binary: str = ""
    busybox: str = "/bin/busybox"
    workers: int = 16
    skopeo: str = "/usr/bin/skopeo"
    insecure_registries: list = dataclasses.field(default_factory=list)
    registry_mirrors: dict = dataclasses.field(default_factory=dict)
    runtimes: dict = dataclasses.field(default_factory=dict)
    cni: CniConfig = dataclasses.field(default_factory=CniConfig)

    def __post_init__(self):
        if not self.image_root:
            self.image_root = os.path.join(self.state_root, "images")
        if not self.runtimes:
            self.runtimes = {"pyrunc": RuntimeHandler(
                "pyrunc", "/usr/local/bin/pyrunc", "/run/pyrunc-cri/pyrunc")}

    def handler(self, name):
        """Return the RuntimeHandler for a RuntimeClass name ("": default).

        Raises ConfigError for a name the configuration does not list.
        """
        key = name or self.default_runtime
        try:
            return self.runtimes[key]
        except KeyError:
            raise ConfigError(
                f"no runtime handler `{key}` is configured") from None


_SCALARS = {f.name: f.type for f in dataclasses.fields(Config)
            if f.name not in ("runtimes", "cni", "registry_mirrors")}


def load(path=None, overrides=None):
    """Read the TOML file at path (None: defaults only) into a Config.

    overrides (a dict of top-level keys) win over the file; the command
    line uses it for --listen and --state-root. Raises ConfigError.
    """
    data = {}
    if path:
        data = _read_toml(path)
    data.update(overrides or {})
    return from_dict(data)


def _read_toml(path):
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as err:
        raise ConfigError(f"open {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: {err}") from None


def from_dict(data):
    """Build a Config from parsed TOML, checking names and types."""
    data = dict(data)
    runtimes = _runtimes(data.pop("runtimes", None))
    cni = _cni(data.pop("cni", None))
    mirrors = _mirrors(data.pop("registry_mirrors", None))
    kwargs = {}
    for key, value in data.items():
        want = _SCALARS.get(key)
        if want is None:
            raise ConfigError(f"unknown configuration key `{key}`")
        kwargs[key] = _check(key, value, want)
    cfg = Config(runtimes=runtimes, cni=cni, registry_mirrors=mirrors,
                 **kwargs)
    if cfg.log_level not in LOG_LEVELS:
        raise ConfigError(f"log_level: unknown level `{cfg.log_level}`")
    if cfg.log_format not in ("text", "json"):
        raise ConfigError(f"log_format: unknown format `{cfg.log_format}`")
    if cfg.default_runtime not in cfg.runtimes:
        raise ConfigError(
            f"default_runtime: `{cfg.default_runtime}` is not a runtime")
    return cfg


def _check(key, value, want):
    if want is int and isinstance(value, bool):
        raise ConfigError(f"{key}: expected an integer")
    if not isinstance(value, want):
        raise ConfigError(f"{key}: expected {want.__name__}, got "
                          f"{type(value).__name__}")
    if want is list:
        _check_strings(key, value)
    return value


def _check_strings(key, value):
    if not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key}: expected a list of non-empty strings")


def _mirrors(table):
    """registry_mirrors: host -> endpoints (a string or a list)."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError("registry_mirrors: expected a table")
    out = {}
    for host, endpoints in table.items():
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        if not isinstance(endpoints, list):
            raise ConfigError(f"registry_mirrors.{host}: expected a list")
        _check_strings(f"registry_mirrors.{host}", endpoints)
        out[host] = list(endpoints)
    return out


def _runtimes(table):
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError("runtimes: expected a table")
    out = {}
    for name, entry in table.items():
        if not isinstance(entry, dict) or "path" not in entry:
            raise ConfigError(f"runtimes.{name}: needs a path")
        unknown = set(entry) - {"path", "root"}
        if unknown:
            raise ConfigError(
                f"runtimes.{name}: unknown key `{sorted(unknown)[0]}`")
        root = entry.get("root") or f"/run/pyrunc-cri/{name}"
        out[name] = RuntimeHandler(name, str(entry["path"]), str(root))
    return out


def _cni(table):
    if table is None:
        return CniConfig()
    if not isinstance(table, dict):
        raise ConfigError("cni: expected a table")
    known = {f.name for f in dataclasses.fields(CniConfig)}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"cni: unknown key `{sorted(unknown)[0]}`")
    cni = CniConfig(**table)
    if isinstance(cni.bin_dirs, str):
        cni.bin_dirs = [cni.bin_dirs]
    return cni

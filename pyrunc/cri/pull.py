"""PullImage from registries, through Debian's skopeo.

``skopeo copy docker://<endpoint>/<repository> oci:<tmp dir>`` fetches
the image for this platform (its manifest, config and layers) into an
OCI layout under the image root; the content store imports it from
there like any other layout, checking every digest again, under the name
the caller asked for. The layout is deleted afterwards.

Endpoints are tried in order: the mirrors configured for the image's
registry (``registry_mirrors``), then the registry itself. A registry
or mirror listed in ``insecure_registries``, or a mirror given as an
``http://`` URL, is reached without TLS verification (skopeo then also
falls back to plain HTTP).

Credentials of the request (AuthConfig) go to skopeo in an auth file of
a private temporary directory, never on its command line; only a
registry bearer token has no auth file field and is passed as an
argument. With no credentials, skopeo uses the host's own auth files.
"""

import base64
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile

from pyrunc.cri import images
from pyrunc.cri.errors import FailedPrecondition, NotFound, PullFailed

log = logging.getLogger(__name__)

PULL_TIMEOUT = 1800
POLICY = "/etc/containers/policy.json"
# What skopeo's errors say when the registry has no such image.
NOT_FOUND = ("manifest unknown", "name unknown", "not found",
             "no such image", "404")
_FATAL = re.compile(r'level=fatal msg="((?:[^"\\]|\\.)*)"')


class Endpoint:
    """A registry host to pull from, and whether TLS is skipped."""

    def __init__(self, host, insecure):
        self.host = host
        self.insecure = insecure

    def __repr__(self):
        return f"Endpoint({self.host!r}, insecure={self.insecure})"


class Puller:
    """Pulls images into an ImageStore with skopeo.

        >>> puller = Puller(cfg, store)
        >>> record = puller.pull("registry.k8s.io/pause:3.9")
    """

    def __init__(self, cfg, store):
        self.skopeo = cfg.skopeo
        self.insecure = set(cfg.insecure_registries)
        self.mirrors = cfg.registry_mirrors
        self.store = store
        self.tmp_root = os.path.join(store.root, "tmp")
        # Layouts a killed server left behind.
        shutil.rmtree(self.tmp_root, ignore_errors=True)

    def endpoints(self, domain):
        """Return the Endpoints to try for a registry, in order."""
        out = []
        for url in self.mirrors.get(domain, []):
            host, plain = _endpoint_host(url)
            out.append(Endpoint(host, plain or host in self.insecure))
        out.append(Endpoint(domain, domain in self.insecure))
        return out

    def pull(self, ref, auth=None):
        """Pull ref (any Docker form) and import it; return its record.

        auth is the request's AuthConfig or None. Raises NotFound when
        no endpoint has the image, PullFailed for other failures, both
        naming the image.
        """
        full = images.normalize(ref)
        if not os.access(self.skopeo, os.X_OK):
            raise FailedPrecondition(
                f"pull image `{full}`: {self.skopeo} is missing: install "
                f"skopeo (scripts/cri-setup.sh)")
        domain, _, remainder = full.partition("/")
        os.makedirs(self.tmp_root, mode=0o700, exist_ok=True)
        failures = []
        for endpoint in self.endpoints(domain):
            tmp = tempfile.mkdtemp(prefix="pull-", dir=self.tmp_root)
            try:
                error = self._copy(endpoint, remainder, auth, tmp)
                if error is None:
                    log.info("pulled %s from %s", full, endpoint.host)
                    return self.store.import_image(
                        os.path.join(tmp, "layout"), name=full)[0]
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            log.info("pull %s from %s: %s", full, endpoint.host, error)
            failures.append((endpoint.host, error))
        text = "; ".join(f"{host}: {error}" for host, error in failures)
        if all(_is_not_found(error) for _, error in failures):
            raise NotFound(f"pull image `{full}`: not found: {text}")
        raise PullFailed(f"pull image `{full}`: {text}")

    def _copy(self, endpoint, remainder, auth, tmp):
        """Run skopeo copy into tmp/layout; return None or its error."""
        argv = [self.skopeo]
        if not os.path.exists(POLICY):
            # pyrunc-cri checks no signatures: the same as the policy
            # Debian ships (insecureAcceptAnything).
            argv.append("--insecure-policy")
        argv += ["copy", "--quiet", "--retry-times", "1",
                 "--tmpdir", tmp]
        if endpoint.insecure:
            argv.append("--src-tls-verify=false")
        argv += _auth_args(auth, endpoint.host, tmp)
        argv += [f"docker://{endpoint.host}/{remainder}",
                 f"oci:{os.path.join(tmp, 'layout')}"]
        log.debug("running `%s`", " ".join(_redact(argv)))
        try:
            res = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True,
                text=True, timeout=PULL_TIMEOUT, cwd=tmp)
        except subprocess.TimeoutExpired:
            return f"timed out after {PULL_TIMEOUT}s"
        except OSError as err:
            return f"run {self.skopeo}: {err.strerror}"
        if res.returncode == 0:
            return None
        return _skopeo_message(res.stderr)


def _endpoint_host(url):
    """"http://h:5000/" -> ("h:5000", True); "h:5000" -> ("h:5000", False)."""
    plain = url.startswith("http://")
    for scheme in ("http://", "https://"):
        if url.startswith(scheme):
            url = url[len(scheme):]
    return url.rstrip("/"), plain


def _auth_args(auth, host, tmp):
    """Return skopeo's credential arguments for an AuthConfig."""
    if auth is None:
        return []
    if auth.server_address:
        server, _ = _endpoint_host(auth.server_address)
        if server.split("/", 1)[0] != host.split("/", 1)[0]:
            # Credentials for another registry are not sent here.
            return []
    args = []
    entry = {}
    if auth.username or auth.password:
        pair = f"{auth.username}:{auth.password}".encode()
        entry["auth"] = base64.b64encode(pair).decode()
    elif auth.auth:
        entry["auth"] = auth.auth
    if auth.identity_token:
        entry["identitytoken"] = auth.identity_token
    if entry:
        path = os.path.join(tmp, "auth.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"auths": {host.split("/", 1)[0]: entry}}, f)
        args += ["--src-authfile", path]
    if auth.registry_token:
        args += ["--src-registry-token", auth.registry_token]
    return args


def _redact(argv):
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--src-registry-token":
            out[i + 1] = "***"
    return out


def _skopeo_message(stderr):
    """Pick the error out of skopeo's stderr (a logrus fatal line)."""
    found = _FATAL.findall(stderr or "")
    if found:
        return found[-1].replace('\\"', '"')
    text = (stderr or "").strip()
    return text.splitlines()[-1] if text else "skopeo failed"


def _is_not_found(error):
    low = error.lower()
    return any(word in low for word in NOT_FOUND)

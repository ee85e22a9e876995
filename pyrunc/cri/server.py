"""The ``pyrunc-cri`` command: serve the CRI on a unix socket, or import.

    pyrunc-cri [--config FILE] [--listen SOCKET] [--state-root DIR]
    pyrunc-cri [--config FILE] import [--name REF] ARCHIVE...

``serve`` (the default) recovers the pods and containers recorded under
the state root, then serves RuntimeService and ImageService from a
thread pool until SIGTERM or SIGINT. Stopping the server leaves pods and
containers running: each has its own conmon.
"""

import concurrent.futures
import json
import logging
import os
import signal
import sys
import threading
import time

import click

from pyrunc.cri import config as config_mod
from pyrunc.cri.errors import CriError
from pyrunc.errors import PyruncError

log = logging.getLogger(__name__)


class _JsonFormatter(logging.Formatter):
    """One JSON object a line with the keys level, msg and time."""

    def format(self, record):
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S",
                              time.gmtime(record.created))
        return json.dumps({"level": record.levelname.lower(), "msg": msg,
                           "time": f"{stamp}Z"})


def setup_logging(cfg):
    """Send the server's log to stderr or cfg.log_file, as configured."""
    if cfg.log_file:
        handler = logging.FileHandler(cfg.log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    if cfg.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(cfg.log_level.upper())


class Server:
    """The CRI server: the managers, the gRPC server and its socket.

        >>> srv = Server(config_mod.load("/etc/pyrunc/cri.toml"))
        >>> srv.start()
        >>> srv.wait()
    """

    def __init__(self, cfg):
        from pyrunc.cri import (containers, events, images, monitor,
                                network, pods, pull, registry, streaming)

        self.cfg = cfg
        self.registry = registry.Registry(cfg.state_root)
        self.registry.load()
        self.images = images.ImageStore(cfg.image_root)
        self.puller = pull.Puller(cfg, self.images)
        self.runtimes = {name: monitor.Runtime(h, cfg.conmon)
                         for name, h in cfg.runtimes.items()}
        self.cni = network.Cni(cfg.cni)
        self.events = events.EventBus()
        self.pods = pods.Pods(cfg, self.registry, self.runtimes, self.cni)
        self.containers = containers.Containers(
            cfg, self.registry, self.runtimes, self.images, self.pods,
            self.events)
        self.pods.containers = self.containers
        self.streaming = streaming.StreamServer(cfg, self.containers,
                                                self.pods)
        self.grpc = None
        self._stopped = threading.Event()

    def start(self):
        """Prepare the pause rootfs, recover, and listen on the socket."""
        import grpc
        from cri_api.v1 import api_pb2_grpc as pb_grpc

        from pyrunc.cri import service

        if not os.access(self.cfg.conmon, os.X_OK):
            raise PyruncError(
                f"conmon not found at {self.cfg.conmon}: install conmon")
        self.pods.prepare_pause_rootfs()
        self.pods.recover()
        self.containers.recover()
        self.containers.start_watcher()
        self.streaming.start()
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.cfg.workers, thread_name_prefix="cri")
        self.grpc = grpc.server(pool)
        pb_grpc.add_RuntimeServiceServicer_to_server(
            service.RuntimeService(self.cfg, self.pods, self.containers,
                                   self.cni, self.events, self.streaming),
            self.grpc)
        pb_grpc.add_ImageServiceServicer_to_server(
            service.ImageService(self.images, self.puller), self.grpc)
        path = self.cfg.listen
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)
        if self.grpc.add_insecure_port(f"unix://{path}") == 0:
            raise PyruncError(f"cannot listen on {path}")
        self.grpc.start()
        os.chmod(path, 0o600)
        log.info("pyrunc-cri listening on %s", path)

    def stop(self, grace=5):
        """Stop serving; pods and containers keep running."""
        self.containers.stop_watcher()
        if self.grpc is not None:
            self.grpc.stop(grace).wait()
        self.streaming.stop()
        self._stopped.set()

    def wait(self):
        self._stopped.wait()


def _load(ctx_obj):
    overrides = {k: v for k, v in ctx_obj["overrides"].items() if v}
    path = ctx_obj["config"]
    if path is None and os.path.exists(config_mod.DEFAULT_CONFIG):
        path = config_mod.DEFAULT_CONFIG
    return config_mod.load(path, overrides)


@click.group(invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help=f"TOML configuration (default {config_mod.DEFAULT_CONFIG}"
                   " when it exists)")
@click.option("--listen", help="unix socket to serve on")
@click.option("--state-root", help="directory of pods and containers")
@click.option("--log-level", type=click.Choice(config_mod.LOG_LEVELS))
@click.pass_context
def cli(ctx, config_path, listen, state_root, log_level):
    """A Kubernetes CRI server that runs pods through pyrunc."""
    ctx.obj = {"config": config_path, "overrides": {
        "listen": listen, "state_root": state_root,
        "log_level": log_level}}
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@cli.command()
@click.pass_context
def serve(ctx):
    """Serve the CRI until SIGTERM or SIGINT (the default command)."""
    cfg = _load(ctx.obj)
    setup_logging(cfg)
    srv = Server(cfg)
    srv.start()

    def on_signal(signum, _frame):
        log.info("signal %d: stopping", signum)
        threading.Thread(target=srv.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    srv.wait()


@cli.command("import")
@click.option("--name", help="tag the image with this reference")
@click.argument("sources", nargs=-1, required=True,
                type=click.Path(exists=True))
@click.pass_context
def import_cmd(ctx, name, sources):
    """Import OCI layouts, OCI archives or docker-save archives."""
    from pyrunc.cri.images import ImageStore

    cfg = _load(ctx.obj)
    setup_logging(cfg)
    store = ImageStore(cfg.image_root)
    for source in sources:
        for image in store.import_image(source, name=name):
            tags = " ".join(image["repo_tags"]) or "<untagged>"
            click.echo(f"{image['id']} {tags}")


def main():
    """Entry point of the ``pyrunc-cri`` console script."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except (CriError, PyruncError) as err:
        # Reported once where the log goes, and on stderr too when the
        # log is a file (or not set up yet).
        handlers = logging.getLogger().handlers
        if handlers:
            log.error("%s", err)
        if not handlers or any(isinstance(h, logging.FileHandler)
                               for h in handlers):
            print(f"pyrunc-cri: {err}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 1))


if __name__ == "__main__":
    main()

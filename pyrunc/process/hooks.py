"""Run OCI lifecycle hooks from the runtime's side.

prestart, createRuntime, poststart and poststop hooks run here, in the
runtime's namespaces; createContainer and startContainer hooks run inside
the container and are carried out by the compiled executor instead.
"""

from pyrunc import jsonfast
from pyrunc import log as _log
from pyrunc.errors import HookError

log = _log.get_logger(__name__)


def run_hooks(hooks, state, phase):
    """Run each hook with the container state as JSON on its stdin.

    hooks is a list of spec Hook objects or of plain dicts as stored in
    state.json. Raises HookError naming the phase and hook on a non-zero
    exit or a timeout.
    """
    data = jsonfast.dumps(state, compact=True).encode()
    for index, hook in enumerate(hooks or ()):
        run_hook(hook, data, f"{phase}[{index}]")


def run_hook(hook, data, where):
    # subprocess is imported here: most containers have no hooks, and
    # the hot commands should not pay for it.
    import subprocess

    path, args, env, timeout = hook_fields(hook)
    log.debug("running %s hook `%s`", where, path)
    try:
        proc = subprocess.run(
            args or [path], executable=path, input=data, env=env_dict(env),
            timeout=timeout, stdout=None, stderr=None, close_fds=True,
        )
    except subprocess.TimeoutExpired:
        raise HookError(f"hooks.{where}: {path} did not finish in "
                        f"{timeout}s") from None
    except OSError as err:
        raise HookError(f"hooks.{where}: {path}: {err.strerror}") from None
    if proc.returncode != 0:
        status = proc.returncode
        if status < 0:
            status = 128 - status
        raise HookError(f"hooks.{where}: {path} failed with status "
                        f"{status}")


def hook_fields(hook):
    if isinstance(hook, dict):
        return (hook.get("path", ""), hook.get("args") or [],
                hook.get("env") or [], hook.get("timeout"))
    return hook.path, hook.args, hook.env, hook.timeout


def env_dict(env):
    result = {}
    for item in env:
        name, _, value = item.partition("=")
        result[name] = value
    return result

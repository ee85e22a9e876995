"""Where the launch plan loads the seccomp filter, as runc does."""

from pyrunc._native import launcher as L
from pyrunc.process import launch
from pyrunc.process import plan as P
from pyrunc.seccomp import SYNC_NOTIFY
from pyrunc.seccomp import filter as sf
from pyrunc.spec.load import parse_process, parse_spec

DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
NOTIFY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": "/run/agent.sock",
                "syscalls": [{"names": ["mkdir"],
                              "action": "SCMP_ACT_NOTIFY"}]}


def make_spec(tmp_path, seccomp, nnp, hooks=None):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "noNewPrivileges": nnp,
                    "user": {"uid": 1000, "gid": 1000},
                    "capabilities": {"bounding": ["CAP_KILL"]}},
        "mounts": [],
        "linux": {"namespaces": [{"type": "mount"}], "seccomp": seccomp},
    }
    if hooks:
        config["hooks"] = hooks
    return parse_spec(config)


def build(tmp_path, seccomp=DENY_MKDIR, nnp=True, **kw):
    spec = make_spec(tmp_path, seccomp, nnp, **kw)
    opts = P.Options(cid="c1", bundle=str(tmp_path), fifo_fd=7)
    return P.build(spec, opts)


def ops(plan):
    return [step[0] for step in plan.steps]


def seccomp_steps(plan):
    return [step for step in plan.steps if step[0] == L.OP_SECCOMP]


class TestPlacement:
    def test_no_seccomp_no_step(self, tmp_path):
        assert not seccomp_steps(build(tmp_path, seccomp=None))

    def test_step_carries_the_bpf_and_flags(self, tmp_path):
        [step] = seccomp_steps(build(tmp_path))
        expected = sf.compile_filter(DENY_MKDIR)
        assert step == (L.OP_SECCOMP, expected.bpf, 0, 0)

    def test_with_no_new_privs_last_after_the_fifo(self, tmp_path):
        hooks = {"startContainer": [{"path": "/bin/true"}]}
        seq = ops(build(tmp_path, nnp=True, hooks=hooks))
        at = seq.index(L.OP_SECCOMP)
        assert seq.index(L.OP_WAIT_FIFO) < at
        assert seq.index(L.OP_NO_NEW_PRIVS) < at
        # startContainer hooks run under the filter, as with runc.
        assert at < seq.index(L.OP_HOOK) < seq.index(L.OP_EXEC)

    def test_without_no_new_privs_before_dropping_privileges(self,
                                                             tmp_path):
        seq = ops(build(tmp_path, nnp=False))
        at = seq.index(L.OP_SECCOMP)
        assert seq.index(L.OP_CLOSE_FDS) < at
        assert at < seq.index(L.OP_CAPS_BOUNDING)
        assert at < seq.index(L.OP_SET_USER)
        assert at < seq.index(L.OP_CAPS_APPLY)
        assert at < seq.index(L.OP_READY)
        assert L.OP_NO_NEW_PRIVS not in seq

    def test_notify_is_loaded_before_ready(self, tmp_path):
        plan = build(tmp_path, seccomp=NOTIFY_MKDIR, nnp=True)
        seq = ops(plan)
        at = seq.index(L.OP_SECCOMP)
        assert seq.index(L.OP_NO_NEW_PRIVS) < at < seq.index(L.OP_READY)
        step = plan.steps[at]
        assert step[2] == sf.FLAG_NEW_LISTENER
        assert step[3] == SYNC_NOTIFY
        assert launch.passes_fds(plan, L)

    def test_notify_without_no_new_privs(self, tmp_path):
        plan = build(tmp_path, seccomp=NOTIFY_MKDIR, nnp=False)
        seq = ops(plan)
        assert seq.index(L.OP_SECCOMP) < seq.index(L.OP_SET_USER)
        assert seq.count(L.OP_SECCOMP) == 1

    def test_plain_plans_read_no_fds(self, tmp_path):
        assert not launch.passes_fds(build(tmp_path), L)
        assert not launch.passes_fds(build(tmp_path, seccomp=None), L)


class TestExec:
    def exec_plan(self, seccomp, nnp):
        process = parse_process({"args": ["sh"], "cwd": "/",
                                 "noNewPrivileges": nnp,
                                 "user": {"uid": 0, "gid": 0}})
        opts = P.Options(cid="c1", bundle="/b")
        joins = [("mount", "/proc/1/ns/mnt")]
        return P.build_exec(process, joins, opts, "/proc/1/root",
                            seccomp=seccomp)

    def test_exec_applies_the_container_filter(self):
        seq = ops(self.exec_plan(DENY_MKDIR, nnp=True))
        at = seq.index(L.OP_SECCOMP)
        assert seq.index(L.OP_READY) < at < seq.index(L.OP_EXEC)

    def test_exec_without_no_new_privs(self):
        seq = ops(self.exec_plan(DENY_MKDIR, nnp=False))
        assert seq.index(L.OP_SECCOMP) < seq.index(L.OP_SET_USER)

    def test_exec_notify_before_ready(self):
        seq = ops(self.exec_plan(NOTIFY_MKDIR, nnp=True))
        assert seq.index(L.OP_SECCOMP) < seq.index(L.OP_READY)

    def test_exec_without_seccomp(self):
        assert L.OP_SECCOMP not in ops(self.exec_plan(None, nnp=True))

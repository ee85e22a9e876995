"""The LSM steps of a plan, on a host with and without each LSM.

The host running the suite may have neither AppArmor nor SELinux (this
one has neither): the "enabled" branches are pinned here by patching the
probes, and the real behaviour without them in
tests/integration/test_lsm.py.
"""

import pytest

from pyrunc._native import launcher as L
from pyrunc.errors import SpecError
from pyrunc.process import plan as P
from pyrunc.spec import load

from test_plan import build, make_spec

LABEL = "system_u:system_r:container_t:s0"
FILE_LABEL = "system_u:object_r:container_file_t:s0"


def process(**fields):
    proc = {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
    proc.update(fields)
    return proc


def writes(plan):
    return [s[1:3] for s in plan.steps if s[0] == L.OP_WRITE_PROC]


@pytest.fixture
def apparmor(monkeypatch):
    monkeypatch.setattr(P, "apparmor_enabled", lambda: True)


@pytest.fixture
def selinux(monkeypatch):
    monkeypatch.setattr(P, "selinux_enabled", lambda: True)
    monkeypatch.setattr(load, "_selinux_enabled", lambda: True)


class TestAppArmor:
    def test_profile_is_asked_for_at_exec(self, tmp_path, apparmor,
                                          pyrunc_logs):
        plan = build(tmp_path, process=process(apparmorProfile="prof"))
        (path, value), = [w for w in writes(plan) if b"attr" in w[0]]
        assert path in (b"/proc/self/attr/apparmor/exec",
                        b"/proc/self/attr/exec")
        assert value == b"exec prof"
        assert "level=warning" not in pyrunc_logs.text

    def test_after_pivot_before_credentials(self, tmp_path, apparmor):
        plan = build(tmp_path, process=process(apparmorProfile="prof"))
        kinds = [s[0] for s in plan.steps]
        at = next(i for i, s in enumerate(plan.steps)
                  if s[0] == L.OP_WRITE_PROC and b"attr" in s[1])
        assert kinds.index(L.OP_PIVOT_ROOT) < at < kinds.index(L.OP_SET_USER)

    def test_without_apparmor_written_anyway_with_warning(
            self, tmp_path, monkeypatch, pyrunc_logs):
        # runc 1.1.5 writes the profile whatever the host; the kernel
        # then refuses it and the container fails to start.
        monkeypatch.setattr(P, "apparmor_enabled", lambda: False)
        plan = build(tmp_path, process=process(apparmorProfile="prof"))
        assert any(v == b"exec prof" for _, v in writes(plan))
        assert "AppArmor is not enabled" in pyrunc_logs.text

    def test_no_profile_no_step(self, tmp_path):
        plan = build(tmp_path)
        assert not any(b"attr" in p for p, _ in writes(plan))


class TestSELinux:
    def test_process_label_is_asked_for_at_exec(self, tmp_path, selinux):
        plan = build(tmp_path, process=process(selinuxLabel=LABEL))
        assert (b"/proc/self/attr/exec", LABEL.encode()) in writes(plan)

    def test_both_labels_in_runc_order(self, tmp_path, selinux, apparmor):
        plan = build(tmp_path, process=process(selinuxLabel=LABEL,
                                               apparmorProfile="prof"))
        values = [v for p, v in writes(plan) if b"attr" in p]
        assert values == [b"exec prof", LABEL.encode()]

    def test_process_label_refused_without_selinux(self, tmp_path,
                                                   monkeypatch):
        monkeypatch.setattr(load, "_selinux_enabled", lambda: False)
        spec = make_spec(tmp_path, process=process(selinuxLabel=LABEL))
        with pytest.raises(SpecError) as info:
            load.validate_host(spec, str(tmp_path))
        assert info.value.path == "process.selinuxLabel"
        assert "selinux is disabled or not supported" in str(info.value)

    def test_exec_process_label_refused_without_selinux(self, monkeypatch):
        monkeypatch.setattr(load, "_selinux_enabled", lambda: False)
        with pytest.raises(SpecError, match="selinux is disabled"):
            load.parse_process(process(selinuxLabel=LABEL))

    def test_mount_label_on_labelled_mounts(self, tmp_path, selinux):
        mounts = [{"destination": "/proc", "type": "proc", "source": "proc"},
                  {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["mode=755"]}]
        linux = {"namespaces": [{"type": "mount"}, {"type": "uts"}],
                 "mountLabel": FILE_LABEL}
        plan = build(tmp_path, mounts=mounts, linux=linux)
        data = {s[2]: s[5] for s in plan.steps if s[0] == L.OP_MOUNT}
        assert data[b"/tmp"] == f'mode=755,context="{FILE_LABEL}"'.encode()
        # procfs takes no context= option (runc leaves it unlabelled).
        assert data[b"/proc"] is None

    def test_mount_label_without_selinux_warns(self, tmp_path, monkeypatch,
                                               pyrunc_logs):
        monkeypatch.setattr(P, "selinux_enabled", lambda: False)
        linux = {"namespaces": [{"type": "mount"}, {"type": "uts"}],
                 "mountLabel": FILE_LABEL}
        build(tmp_path, linux=linux)
        assert "SELinux is not enabled" in pyrunc_logs.text

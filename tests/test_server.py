"""The grading server: commands run in it give what they give in their own process; it is
private, reads edits, and ends when interrupted, idle or asked."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import SOLUTIONS
from test_student_cli import student_copy

from autograder import server
from autograder.course import load_assignment

GRADE = str(Path(sys.executable).parent / "grade")
WRONG_BCE = "def bce(yhat, y):\n    return -(y * yhat.log() + (1 - y) * (1 - yhat).log()).sum()\n"


@pytest.fixture
def runtime(monkeypatch):
    """A private runtime folder (short: a socket path holds 108 bytes); servers stopped after."""
    folder = Path(tempfile.mkdtemp(prefix="tg-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    monkeypatch.setenv("TORCHGRADE_SERVER", "on")
    yield folder
    for info in server.running():
        server.stop(info["key"])
        _wait_for(lambda pid=info["pid"]: not _alive(pid), what=f"server {info['pid']} to exit")
    shutil.rmtree(folder, ignore_errors=True)


def grade(*args, cwd, env=None, **kwargs):
    return subprocess.run([GRADE, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})}, **kwargs)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _wait_for(condition, *, what, limit=120.0):
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"waited {limit:g} s for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize(("argv", "command"), [
    (["check", "a.ipynb"], ("check",)),
    (["--solutions", "s", "run", "a1", "sub"], ("run",)),
    (["--solutions=s", "audit", "a1"], ("audit",)),
    (["course", "autograde", "a1"], ("course", "autograde")),
    (["course", "init", "x"], None),
    (["run", "a1", "sub", "--scheduler", "tcp://h:8786"], None),
    (["run", "--help"], None),
    (["--no-server", "check", "a.ipynb"], None),
    (["--bogus", "check", "a.ipynb"], None),
    (["demo"], None),
    ([], None),
])
def test_only_grading_commands_go_to_a_server(argv, command):
    assert server.served_command(argv) == command


def test_a_key_changes_with_what_changes_grading(monkeypatch):
    before = server.installation_key()
    monkeypatch.setenv("TERM", "something-else")  # how output looks: not part of the key
    assert server.installation_key() == before
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    assert server.installation_key() != before


def test_commands_in_a_server_give_what_they_give_alone_and_see_edits(runtime, tmp_path):
    reference = load_assignment("a1_logistic", SOLUTIONS).reference_sources["bce"]
    right = student_copy(tmp_path / "right", reference)
    wrong = student_copy(tmp_path / "wrong", WRONG_BCE)
    alone = {nb: grade("--no-server", "check", nb, "--devices", "cpu", cwd=tmp_path) for nb in (right, wrong)}
    assert "4 / 4 points" in alone[right].stdout and "0 / 4 points" in alone[wrong].stdout
    assert not list(runtime.glob("*/*.sock"))  # --no-server started nothing

    for nb in (right, wrong, right):
        served = grade("check", nb, "--devices", "cpu", cwd=tmp_path)
        assert (served.returncode, served.stdout) == (alone[nb].returncode, alone[nb].stdout)
    (info,) = server.running()
    assert info["requests"] == 3  # one server answered all three

    # private: a folder only this user may enter, a socket only this user may open
    sock = runtime / "torchgrade" / f"{info['key']}.sock"
    assert stat.S_IMODE((runtime / "torchgrade").stat().st_mode) == 0o700
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600

    # an edited check file is read again: the same notebook now fails the new check
    checks = right.parent / "public_checks.py"
    checks.write_text(checks.read_text() + (
        "\n\n@check(\"bce\", points=1)\ndef test_an_added_check(student, reference, device):\n"
        "    raise AssertionError('the edit was read')\n"))
    edited = grade("check", right, "--devices", "cpu", cwd=tmp_path)
    assert "the edit was read" in edited.stdout

    # errors keep their words and their exit status; the relative path is the client's
    usage = grade("check", "missing.ipynb", cwd=tmp_path)
    assert usage.returncode == 2 and "'missing.ipynb' does not exist" in usage.stderr

    # grade run in the server scores as it does alone
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(right, subs / "ana.ipynb")
    shutil.copy(wrong, subs / "ben.ipynb")
    for flag, out in (("--no-server", "alone"), (None, "served")):
        done = grade(*([flag] if flag else []), "--solutions", SOLUTIONS, "run", "a1_logistic", subs,
                     "--devices", "cpu", "--out", tmp_path / out, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    scores = {out: {s["student"]: s["points"] for s in
                    json.loads((tmp_path / out / "results.json").read_text())["submissions"]}
              for out in ("alone", "served")}
    assert scores["served"] == scores["alone"] and scores["served"]["ana"] > scores["served"]["ben"]
    assert server.running()[0]["requests"] == 6

    stopped = grade("server", "stop", cwd=tmp_path)
    assert "stopped 1 grading server" in stopped.stdout
    _wait_for(lambda: not _alive(info["pid"]), what="the stopped server to exit")
    assert "no grading server is running" in grade("server", "status", cwd=tmp_path).stdout
    assert not sock.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second user")
def test_another_user_cannot_reach_the_server(runtime, tmp_path):
    reference = load_assignment("a1_logistic", SOLUTIONS).reference_sources["bce"]
    assert grade("check", student_copy(tmp_path, reference), "--devices", "cpu", cwd=tmp_path).returncode == 0
    (info,) = server.running()
    path = str(runtime / "torchgrade" / f"{info['key']}.sock")
    pid = os.fork()
    if pid == 0:  # the child becomes nobody and knocks
        code = 3
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(path)
            code = 1
        except PermissionError:
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "a second user could connect to the socket"


def test_ctrl_c_ends_the_command_and_the_server_and_the_next_command_starts_afresh(runtime, tmp_path):
    hang = tmp_path / "subs" / "hangs.py"
    hang.parent.mkdir()
    hang.write_text("import time\n\ndef bce(yhat, y):\n    time.sleep(3600)\n")
    client = subprocess.Popen(
        [GRADE, "--solutions", str(SOLUTIONS), "run", "a1_logistic", str(hang.parent), "--devices",
         "cpu", "--out", str(tmp_path / "out"), "--check-timeout", "3000", "--submission-timeout", "3000"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert client.stdout is not None
    _wait_for(lambda: [i["busy"] for i in server.running()] == [True], what="the server to grade")
    (info,) = server.running()  # answered while the command runs
    os.kill(client.pid, signal.SIGINT)
    output = client.communicate(timeout=120)[0]
    assert client.returncode == 130, output
    _wait_for(lambda: not _alive(info["pid"]), what="the interrupted server to exit")

    reference = load_assignment("a1_logistic", SOLUTIONS).reference_sources["bce"]
    after = grade("check", student_copy(tmp_path, reference), "--devices", "cpu", cwd=tmp_path)
    assert "4 / 4 points" in after.stdout
    (fresh,) = server.running()
    assert fresh["pid"] != info["pid"]


def test_an_idle_server_exits_by_itself(runtime, tmp_path):
    reference = load_assignment("a1_logistic", SOLUTIONS).reference_sources["bce"]
    done = grade("check", student_copy(tmp_path, reference), "--devices", "cpu", cwd=tmp_path,
                 env={"TORCHGRADE_SERVER_IDLE_S": "1"})
    assert "4 / 4 points" in done.stdout
    logs = list((runtime / "torchgrade").glob("*.log"))
    assert len(logs) == 1
    _wait_for(lambda: not list((runtime / "torchgrade").glob("*.sock")), what="the idle server to exit")


def test_without_a_private_folder_the_command_runs_alone_and_says_why(runtime, tmp_path):
    shared = runtime / "torchgrade"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    reference = load_assignment("a1_logistic", SOLUTIONS).reference_sources["bce"]
    done = grade("check", student_copy(tmp_path, reference), "--devices", "cpu", cwd=tmp_path)
    assert done.returncode == 0 and "4 / 4 points" in done.stdout
    assert "not a private folder" in done.stderr and "grading in this process" in done.stderr
    assert not list(shared.glob("*.sock"))



ATTACK = '''
import json, socket, struct

def bce(yhat, y):
    seen = []
    try:
        seen.append("token read: " + open(TOKEN).read())
    except OSError as exc:
        seen.append(f"token unreadable ({exc.strerror})")
    for token in ("", "0" * 64):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(5)
                conn.connect(SOCKET)
                body = json.dumps({"op": "stop", "token": token}).encode()
                conn.sendall(struct.pack("!cI", b"R", len(body)) + body)
                seen.append(f"reply {conn.recv(100)!r}")
        except OSError as exc:
            seen.append(f"connect failed ({exc.strerror})")
    raise RuntimeError("ATTACK " + "; ".join(seen))
'''


def test_a_submission_cannot_ask_the_server_that_grades_it_for_anything(runtime, tmp_path):
    reference = load_assignment("a1_logistic", SOLUTIONS).reference_sources["bce"]
    assert grade("check", student_copy(tmp_path, reference), "--devices", "cpu", cwd=tmp_path).returncode == 0
    (info,) = server.running()
    sock = runtime / "torchgrade" / f"{info['key']}.sock"
    token = sock.with_suffix(".token").read_text()
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "mallory.py").write_text(f"TOKEN = {str(sock.with_suffix('.token'))!r}\n"
                                     f"SOCKET = {str(sock)!r}\n{ATTACK}")
    done = grade("--solutions", SOLUTIONS, "run", "a1_logistic", subs, "--devices", "cpu",
                 "--out", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = "".join(p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "ATTACK token unreadable" in written  # the attack ran, and could not read the token
    assert token not in written and "token read" not in written
    (after,) = server.running()  # its "stop" was not obeyed: the same server, two commands served
    assert (after["pid"], after["requests"]) == (info["pid"], 2)


def test_with_landlock_alone_a_submission_still_cannot_use_the_server(runtime, tmp_path):
    """A student's laptop: no root, so no mount namespace; Landlock keeps the token unreadable."""
    import threading
    from dataclasses import replace

    from autograder.grading.batch import grade_batch
    from autograder.grading.config import GradeConfig
    from autograder.grading.scoring import Submission
    from autograder.isolation.config import SandboxConfig

    folder = server.runtime_dir()
    listening = server.Server(folder / "k.sock")
    listening.listen()
    threading.Thread(target=listening._accept, daemon=True).start()
    try:
        path = tmp_path / "mallory.py"
        path.write_text(f"TOKEN = {str(folder / 'k.token')!r}\nSOCKET = {str(folder / 'k.sock')!r}\n{ATTACK}")
        config = GradeConfig(devices=("cpu",), sandbox=replace(SandboxConfig(), namespaces=False))
        [result] = grade_batch([Submission("mallory", path)],
                               assignment=load_assignment("a1_logistic", SOLUTIONS), config=config,
                               out_dir=tmp_path / "out")
        written = "".join(p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*.json"))
        if not any("Landlock" in p and "no Landlock" not in p for p in result.protections):
            pytest.skip(f"this kernel has no Landlock: {result.protections}")
        assert "ATTACK token unreadable (Permission denied)" in written
        assert listening._queue.empty()  # neither "stop" reached the queue
        assert server._ask(server._try_connect(folder / "k.sock"), folder / "k.sock",
                           {"op": "status"})["requests"] == 0
    finally:
        listening.close()

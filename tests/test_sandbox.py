"""The sandbox process: results come back as data; hangs, exits and floods cost one check."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest
import torch

from autograder.isolation.config import SandboxConfig
from autograder.isolation.sandbox import Sandbox
from autograder.subjects import StudentError, SubjectUnavailable

FAST = SandboxConfig(check_timeout_s=3.0, startup_timeout_s=60.0, output_limit_bytes=200)

CELLS = [{"id": "setup", "source": "import torch, os, sys, time"}, {"id": "work", "source": """
def double(x):
    return x * 2
def hang():
    while True:
        pass
def leave():
    os._exit(3)
def shout():
    print("x" * 100_000)
    return 1
def boom():
    raise ValueError("bad input")
def sleeper():
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)
"""}]


@pytest.fixture(scope="module", params=[True, False], ids=["warm", "cold"])
def sandbox(request):
    """A worker forked from the fork server, and one started with ``python -I``."""
    with Sandbox(CELLS, config=replace(FAST, warm=request.param)) as box:
        box.start()
        yield box


def call(box, name, *args):
    return box.run("call", [name, *args], {})


def test_values_come_back_as_plain_tensors(sandbox):
    outcome = call(sandbox, "double", torch.tensor([1.0, 2.0]))
    assert type(outcome.value) is torch.Tensor and outcome.value.tolist() == [2.0, 4.0]
    assert "mul" in outcome.torch_calls


def test_student_exception_is_data_with_a_traceback(sandbox):
    outcome = call(sandbox, "boom")
    assert isinstance(outcome.error, StudentError) and outcome.error.is_a("ValueError")
    assert "bad input" in outcome.error.message
    assert "cell work, line" in outcome.error.traceback


def test_infinite_loop_times_out_and_the_next_check_still_runs(sandbox):
    started = time.monotonic()
    with pytest.raises(SubjectUnavailable, match="timed out after 3 s"):
        call(sandbox, "hang")
    assert time.monotonic() - started < 10
    assert call(sandbox, "double", 4).value == 8


def test_ignoring_sigterm_does_not_help(sandbox):
    with pytest.raises(SubjectUnavailable, match="timed out"):
        call(sandbox, "sleeper")
    assert call(sandbox, "double", 1).value == 2


def test_exit_during_a_check_is_reported_and_recovered(sandbox):
    with pytest.raises(SubjectUnavailable, match="process exited while running the check .exit code 3"):
        call(sandbox, "leave")
    assert call(sandbox, "double", 5).value == 10


def test_huge_output_is_capped_head_and_tail(sandbox):
    assert call(sandbox, "shout").value == 1
    sandbox.recycle()  # the output is all read once the worker has ended (the next starts afresh)
    text = sandbox.stdout.text()
    assert "bytes of output not shown" in text
    assert len(text) < 1000


def test_cell_errors_are_recorded_per_cell():
    cells = [{"id": "a", "source": "raise SystemExit(1)"}, {"id": "b", "source": "def f():\n    return 7"}]
    with Sandbox(cells, config=FAST) as box:
        box.start()
        assert box.cell_errors["a"]["types"][0] == "SystemExit"
        assert box.run("call", ["f"], {}).value == 7


def test_code_that_hangs_at_load_time_fails_every_check_quickly():
    config = SandboxConfig(check_timeout_s=2.0, startup_timeout_s=5.0)
    with Sandbox([{"id": "a", "source": "while True:\n    pass"}], config=config) as box:
        box.start()
        with pytest.raises(SubjectUnavailable, match="could not be loaded: timed out after 5 s"):
            box.run("call", ["f"], {})


def test_worker_runs_in_a_scratch_dir_with_a_scrubbed_environment():
    os.environ["GRADER_SECRET"] = "hunter2"
    cells = [{"id": "a", "source": "import os\ndef env():\n    return dict(os.environ)\n"
                                   "def cwd():\n    return os.getcwd()"}]
    try:
        with Sandbox(cells, config=FAST) as box:
            env = box.run("call", ["env"], {}).value
            cwd = box.run("call", ["cwd"], {}).value
    finally:
        del os.environ["GRADER_SECRET"]
    assert "GRADER_SECRET" not in env
    assert "grade-scratch-" in cwd and not os.path.exists(cwd)


def test_submission_time_budget_stops_further_checks():
    config = SandboxConfig(check_timeout_s=1.0, submission_timeout_s=1.5)
    with Sandbox(CELLS, config=config) as box:
        with pytest.raises(SubjectUnavailable):
            box.run("call", ["hang"], {})
        time.sleep(0.6)
        with pytest.raises(SubjectUnavailable, match="whole time budget"):
            box.run("call", ["double", 1], {})


PID_SOURCE = """
import os
def pid():
    return os.getpid()
def poison():
    raise RuntimeError("CUDA error: device-side assert triggered")
def hog():
    block = bytearray(3 << 30)
    return len(block)
"""
PID_CELLS = [{"id": "a", "source": PID_SOURCE}]


def test_cuda_runs_give_each_exercise_a_fresh_process():
    from autograder.isolation.sandbox import SandboxSubject

    with Sandbox(PID_CELLS, config=FAST, uses_cuda=True) as box:
        student = SandboxSubject(box)
        student.begin_exercise("softmax")
        first = student.pid()
        assert student.pid() == first
        student.begin_exercise("softmax_backward")
        second = student.pid()
        assert second != first
        student.begin_exercise("softmax_backward")
        assert student.pid() == second


def test_a_cuda_error_gets_the_next_check_a_fresh_process():
    from autograder.isolation.sandbox import SandboxSubject

    with Sandbox(PID_CELLS, config=FAST) as box:
        student = SandboxSubject(box)
        before = student.pid()
        with pytest.raises(StudentError, match="device-side assert"):
            student.poison()
        assert student.pid() != before
        assert box.failures == 0


def test_resident_memory_is_polled_where_no_cgroup_limits_it():
    config = replace(FAST, memory_bytes=1 << 30, cgroup=False, check_timeout_s=30.0)
    with Sandbox(PID_CELLS, config=config, uses_cuda=True) as box:
        with pytest.raises(SubjectUnavailable, match="memory limit 1 GiB exceeded .resident."):
            box.run("call", ["hog"], {})
        assert box.run("call", ["pid"], {}).value > 0


def test_without_a_cgroup_the_results_say_what_is_missing():
    with Sandbox(CELLS, config=replace(FAST, cgroup=False)) as box:
        box.start()
        text = "\n".join(box.confinement)
    assert "cgroup: at most" not in text
    assert ("no process count limit" in text) if os.geteuid() == 0 else ("RLIMIT_NPROC" in text)


LAST_WORDS = [{"id": "work", "source": """import subprocess, sys
def last(n):
    print("a" * n)
    print("LAST LINE", flush=True)
    return n
def leave_a_child():  # it inherits stdout and holds it open: the worker cannot close it
    child = subprocess.Popen(["sleep", "600"])
    print("CHILD", child.pid, flush=True)
    return child.pid
"""}]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie runs nothing
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_ending_keeps_every_line_printed_and_leaves_nothing(warm, monkeypatch):
    """Sandbox.end() returns once the worker has closed its output, without waiting for its
    exit: the last line printed is in the output, even where the reply came back before the
    output was read, and after wait_for_exits() the worker is gone and its scratch removed."""
    from autograder.isolation import launch
    from autograder.isolation.launch import wait_for_exits

    def slow_pump(stream, sink):  # a grader thread that reads the output late
        for chunk in iter(lambda: stream.read1(65536), b""):
            time.sleep(0.2)
            sink.feed(chunk)

    monkeypatch.setattr(launch, "_pump", slow_pump)
    box = Sandbox(LAST_WORDS, config=replace(FAST, warm=warm, output_limit_bytes=1 << 20))
    box.start()
    assert box.run("call", ["last", 1000], {}).value == 1000
    worker = box._worker
    assert worker is not None
    pid, scratch = worker.pid, worker.scratch.path
    box.end()
    assert box.stdout.text().endswith("a" * 1000 + "\nLAST LINE\n")
    wait_for_exits()
    assert _gone(pid) and not scratch.exists()


def test_a_child_holding_the_output_open_is_killed_at_the_end():
    """A process the student started keeps stdout open, so the worker cannot close it: the
    sandbox kills the worker and its child and waits for them, as before."""
    box = Sandbox(LAST_WORDS, config=FAST)
    box.start()
    child = box.run("call", ["leave_a_child"], {}).value
    assert isinstance(child, int)
    box.end()
    assert f"CHILD {child}" in box.stdout.text()
    assert _gone(child)

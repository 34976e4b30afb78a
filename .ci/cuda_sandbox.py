"""Which protection, if any, keeps a sandboxed worker from the GPU (a step of .ci/gpu).

Starts a CUDA worker with each combination of the two protections that can be switched off
(the mount and network namespaces, Landlock) and prints what each worker said about CUDA; then
plain processes with one more layer each (the worker's environment, its rlimits, the capability
drop), which the sandbox always applies. A warm start that was not (the fork server refused)
says why. The last line is the verdict. Exit status 0 when the full sandbox can use the GPU.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

from autograder.isolation.config import SandboxConfig
from autograder.isolation.launch import WARM_NOTE, base_env
from autograder.isolation.sandbox import Sandbox

DEFAULT = SandboxConfig()
LAYERS = {
    "environment only": "",
    "rlimits only": f"""
import resource
for name, value in (("CORE", 0), ("CPU", {DEFAULT.cpu_seconds}), ("FSIZE", {DEFAULT.max_file_bytes}),
                    ("NOFILE", {DEFAULT.max_open_files})):
    resource.setrlimit(getattr(resource, "RLIMIT_" + name), (value, value))
""",
    "capabilities dropped only": """
from autograder.isolation import confine
print(confine.drop_capabilities(), file=sys.stderr)
""",
}
ASK = """
from autograder.isolation.worker import cuda_problem
print(cuda_problem() or "ok")
"""

CELLS = [{"id": "setup", "source": "import torch"}]


def problem(config: SandboxConfig) -> str | None:
    with Sandbox(CELLS, config=config, uses_cuda=True) as box:
        box.start()
        if config.warm and WARM_NOTE not in box.confinement:  # the fork server did not serve
            cold = [note for note in box.confinement if "cold" in note]
            print(f"  (not warm: {'; '.join(cold) or 'no note'})", flush=True)
        return box.cuda_problem


def main() -> int:
    base = SandboxConfig(startup_timeout_s=120.0)
    said = {}
    for namespaces in (True, False):
        for landlock in (True, False):
            for warm in (True, False):
                label = (f"namespaces {'on' if namespaces else 'off'}, Landlock "
                         f"{'on' if landlock else 'off'}, {'warm' if warm else 'cold'} start")
                try:
                    said[label] = problem(replace(base, namespaces=namespaces, landlock=landlock,
                                                  warm=warm)) or "ok"
                except Exception as exc:  # noqa: BLE001 - a start that fails is an answer too
                    said[label] = f"the worker did not start: {exc}"
                print(f"{label}: {said[label]}", flush=True)
    env = {**base_env(), "HOME": "/tmp", "TMPDIR": "/tmp"}
    for label, layer in LAYERS.items():
        done = subprocess.run([sys.executable, "-I", "-c", "import sys\n" + layer + ASK], env=env,
                              capture_output=True, text=True, timeout=300)
        said[label] = (done.stdout.strip().splitlines() or [f"exit {done.returncode}: "
                                                             f"{done.stderr[-300:]}"])[-1]
        print(f"{label}: {said[label]}", flush=True)
    full = said["namespaces on, Landlock on, cold start"]
    blockers = [label for label, answer in said.items() if answer == "ok"]
    print("verdict: the full sandbox can use the GPU" if full == "ok" else
          f"verdict: the full sandbox cannot use the GPU; it can with: {'; '.join(blockers) or 'none'}")
    return 0 if full == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())

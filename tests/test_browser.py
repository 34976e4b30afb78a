"""A student's day in JupyterLab, in a real browser (Debian's chromium driven by Playwright).

instructor: `grade course init` -> nbgrader generate_assignment, release_assignment
student (own HOME, JupyterLab with nbgrader's extensions): fetch a1_logistic from the Assignments
tab, type a wrong `bce` and see its failed check (and Validate fail, naming it), fix it and see
every check pass, Validate, submit from the Assignments tab.

Each step leaves a screenshot in test-artifacts/browser/ (the test prints the folder). The browser
is /usr/bin/chromium (`make browser` installs it); Playwright never downloads one of its own.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, SOLUTIONS, tool
from nbgrader.utils import get_username

try:
    from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
    from playwright.sync_api import Error as PlaywrightError
except ImportError as error:  # a failure, never a skip: CI must not pass without the browser test
    pytest.fail(f"playwright is not installed ({error}); run `make setup`", pytrace=False)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

NAME = "a1_logistic"
COURSE = "torchgrade"
CHROMIUM = Path("/usr/bin/chromium")
# without the background-networking flags chromium's own requests are refused on a closed network
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "test-artifacts" / "browser"
# kernel start, the torch import and nbgrader's validate (the whole notebook) take long on a busy machine
SLOW_MS = 180_000

# sums instead of averaging: right for one element, wrong for the 6 of bce_matches_bceloss
WRONG_BCE = '''def bce(yhat, y):
    p = yhat.clamp(1e-7, 1 - 1e-7)
    return -(y * p.log() + (1 - y) * (1 - p).log()).sum()
'''
RIGHT_BCE = WRONG_BCE.replace(".sum()", ".mean()")

# the student's nbgrader config: where the exchange is and which course they take
STUDENT_CONFIG = """c = get_config()
c.Exchange.root = {exchange!r}
c.CourseDirectory.course_id = {course!r}
"""
# JupyterLab settings that keep news pop-ups out of the screenshots, and every cell in the DOM
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": '{"fetchNews": "false"}',
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"windowingMode": "none"}',
}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict[str, Path]:
    """A released a1_logistic in a fresh course and exchange, and a student home set up for it."""
    base = tmp_path_factory.mktemp("browser")
    course, exchange, admin, home = (base / "course", base / "exchange", base / "home-instructor",
                                     base / "home-student")
    for folder in (exchange, admin, home):
        folder.mkdir()
    tool("grade", "--solutions", str(SOLUTIONS), "course", "init", str(course), "--assignment", NAME,
         "--exchange", str(exchange), cwd=ROOT, home=admin)
    tool("nbgrader", "generate_assignment", NAME, cwd=course, home=admin)
    tool("nbgrader", "release_assignment", NAME, cwd=course, home=admin)
    (home / ".jupyter").mkdir()
    (home / ".jupyter" / "nbgrader_config.py").write_text(
        STUDENT_CONFIG.format(exchange=str(exchange), course=COURSE))
    for name, text in LAB_SETTINGS.items():
        path = home / ".jupyter" / "lab" / "user-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {"course": course, "exchange": exchange, "home": home, "base": base}


def stop(server: subprocess.Popen[bytes]) -> None:
    """Stop JupyterLab and every process it started (kernels run in sessions of their own)."""
    try:
        children = psutil.Process(server.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="module")
def lab(course) -> Iterator[str]:
    """JupyterLab run as the student (HOME and cwd their home) on a free port; yield its URL."""
    home, port, token = course["home"], free_port(), secrets.token_hex(16)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(home),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for variable in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_PATH"):
        env.pop(variable, None)
    log_path = course["base"] / "jupyterlab.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [str(bin_dir / "jupyter"), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home}",
             # a student has no course to grade: no formgrader (it would make a gradebook here)
             "--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=False",
             "--allow-root"],  # CI containers run as root
            cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {url} in 180 s:\n"
                                f"{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield f"{url}/lab?token={token}"
    finally:
        stop(server)
        print(f"JupyterLab log: {log_path}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless; one that cannot start fails the test with the reason."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium", pytrace=False)
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                 args=CHROMIUM_ARGS)
        except PlaywrightError as error:
            pytest.fail(f"chromium at {CHROMIUM} did not start: {error}", pytrace=False)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def page(browser, lab) -> Iterator[Page]:
    """A fresh page; auto-waiting actions wait up to a minute, the slow steps' expect() longer."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    """Save what the page shows as ``name``.png in the screenshots folder."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@contextlib.contextmanager
def kept_on_failure(page: Page) -> Iterator[None]:
    """Keep what the page showed (failed.png, failed.html) when the steps fail."""
    try:
        yield
    except BaseException:
        shot(page, "failed")
        (SCREENSHOTS / "failed.html").write_text(page.content())
        raise


def open_assignment_list(page: Page) -> None:
    """Nbgrader > Assignment List, as a student would."""
    page.locator("#jp-MainMenu div.lm-MenuBar-itemLabel", has_text="Nbgrader").click()
    page.locator('#jp-mainmenu-nbgrader li[data-command="nbgrader:open-assignment-list"]').click()
    expect(page.locator("#released_assignments_list")).to_be_attached(timeout=SLOW_MS)


def assignment_rows(page: Page, status: str) -> Locator:
    """The rows of the Assignments tab's list of ``status`` (released, fetched, submitted)."""
    for part in ("loading", "placeholder", "error"):
        expect(page.locator(f"#{status}_assignments_list_{part}")).not_to_be_visible(timeout=SLOW_MS)
    return page.locator(f"#{status}_assignments_list > .list_item")


def cell(page: Page, text: str) -> Locator:
    """The code cell whose source contains ``text``."""
    return page.locator(".jp-Notebook .jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text=text))


def replace_source(page: Page, target: Locator, source: str) -> None:
    """Put ``source`` in the cell ``target``, as typed: inserted as text so that the editor's
    auto-indent and bracket closing do not change it."""
    target.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(source.rstrip("\n"))
    page.keyboard.press("Escape")  # command mode


def run(page: Page, target: Locator) -> None:
    """Run the cell ``target`` (Shift+Enter in command mode)."""
    # the prompt ("[ ]:") selects the cell without editing it (the bar left of it would fold it)
    target.locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")


def test_a_student_fixes_bce_validates_and_submits_in_jupyterlab(browser, course, lab, page):
    print(f"screenshots: {SCREENSHOTS}")
    for old in [*SCREENSHOTS.glob("*.png"), *SCREENSHOTS.glob("*.html")]:
        old.unlink()
    with kept_on_failure(page):
        page.goto(lab)
        expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=SLOW_MS)

        # 0. fetch from the Assignments tab
        open_assignment_list(page)
        released = assignment_rows(page, "released")
        expect(released.filter(has_text=NAME)).to_have_count(1, timeout=SLOW_MS)
        shot(page, "0-released")
        released.filter(has_text=NAME).locator(".item_status button", has_text="Fetch").click()
        fetched = assignment_rows(page, "fetched")
        expect(fetched.filter(has_text=NAME).first).to_be_visible(timeout=SLOW_MS)
        notebook = course["home"] / NAME / f"{NAME}.ipynb"
        assert notebook.is_file(), f"the Fetch button did not put {notebook} in the student's home"

        # 1. open the released notebook
        page.goto(lab.replace("/lab?", f"/lab/tree/{NAME}/{NAME}.ipynb?"))
        solution = cell(page, "raise NotImplementedError")
        expect(solution).to_have_count(1, timeout=SLOW_MS)
        shot(page, "1-opened")

        # 2. a wrong bce: the failed check, its hint and the ChecksFailed error
        run(page, cell(page, "from sklearn.datasets import load_digits"))
        replace_source(page, solution, WRONG_BCE)
        solution = cell(page, "def bce(yhat, y):")
        check_cell = cell(page, 'check("bce")')
        run(page, solution)
        run(page, check_cell)
        output = check_cell.locator(".jp-OutputArea")
        expect(output).to_contain_text("ChecksFailed", timeout=SLOW_MS)
        expect(output).to_contain_text("bce_matches_bceloss")
        expect(output).to_contain_text("Take the log of the probability each prediction gives")
        expect(output).to_contain_text("1 of 3 public checks failed (bce_matches_bceloss)")
        check_cell.scroll_into_view_if_needed()
        shot(page, "2-wrong-bce-fails")
        # ... and Validate fails too, naming the check
        page.keyboard.press("ControlOrMeta+s")
        expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0, timeout=SLOW_MS)
        page.locator("jp-button.validate-button").click()
        failure = page.locator(".nbgrader-ErrorDialog")
        expect(failure).to_be_visible(timeout=SLOW_MS)
        expect(failure).to_contain_text("1 of 3 public checks failed (bce_matches_bceloss)")
        shot(page, "2-wrong-bce-validate-fails")
        failure.locator("button.jp-Dialog-button").click()
        expect(failure).to_have_count(0)

        # 3. fixed: every public check passes
        replace_source(page, solution, RIGHT_BCE)
        run(page, solution)
        run(page, check_cell)
        expect(output).to_contain_text("all 3 checks passed", timeout=SLOW_MS)
        expect(output).not_to_contain_text("ChecksFailed")
        check_cell.scroll_into_view_if_needed()
        shot(page, "3-right-bce-passes")

        # 4. save and Validate
        page.keyboard.press("ControlOrMeta+s")
        # the notebook's tab loses its dirty mark once the server has written the file
        expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0, timeout=SLOW_MS)
        assert ".mean()" in notebook.read_text(), "the notebook on disk is not the fixed one"
        page.locator("jp-button.validate-button").click()
        success = page.locator(".nbgrader-SuccessDialog")
        expect(success).to_be_visible(timeout=SLOW_MS)
        expect(success).to_contain_text("Success! Your notebook passes all the tests.")
        shot(page, "4-validate-success")
        success.locator("button.jp-Dialog-button").click()
        expect(success).to_have_count(0)

        # 5. submit from the Assignments tab
        open_assignment_list(page)
        fetched = assignment_rows(page, "fetched")
        fetched.filter(has_text=NAME).first.locator(".item_status button", has_text="Submit").click()
        submitted = assignment_rows(page, "submitted")
        expect(submitted.filter(has_text=NAME).first).to_be_visible(timeout=SLOW_MS)
        shot(page, "5-submitted")
        # nbgrader names the student by their login (JupyterHub's user name on a hub)
        inbound = list((course["exchange"] / COURSE / "inbound").glob(f"{get_username()}+{NAME}+*"))
        assert len(inbound) == 1, f"the exchange's inbound holds {inbound}"
        assert (inbound[0] / f"{NAME}.ipynb").is_file()
        assert ".mean()" in (inbound[0] / f"{NAME}.ipynb").read_text()

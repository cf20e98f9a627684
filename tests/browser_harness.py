"""Helpers of the notebook tests: the reduced demo workspace, kernel environment, executed-notebook
summaries, and a JupyterLab server with page helpers for Playwright-driven Chromium.

Used by ``tests/test_notebooks.py`` (headless execution with nbclient) and
``tests/test_browser.py`` (the same notebooks run in JupyterLab in headless Chromium). Recipe for
the browser side: ``/work/shared/notes/jupyterlab-in-chromium.md`` (server flags, readiness via
``window.jupyterapp`` promises, run-all without awaiting, selectors).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO / "notebooks"
NOTEBOOKS = ("01_quickstart", "02_fid_vs_humans", "03_compare_extractors", "04_memorization")
SCREENSHOTS = REPO / "artifacts" / "screenshots"

#: Chromium flags known to work headless on these machines (no GPU, no sandbox, no network chatter).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_DEMO: dict[str, Path] = {}


def small_demo(tmp_path_factory: Any) -> Path:
    """The reduced demo workspace (``DemoConfig.small``, with 28 px thumbnails of the training set
    so the memorization browser shows real neighbours), built once per pytest session and shared by
    both test files (about 15-30 s)."""
    if "path" not in _DEMO:
        from workbench.demo import DemoConfig, build_demo

        out = tmp_path_factory.mktemp("demo-small")
        build_demo(out, config=DemoConfig.small(train_thumbnails=28), progress=False, log=lambda _msg: None)
        _DEMO["path"] = out
    return _DEMO["path"]


def kernel_env(demo_dir: Path) -> dict[str, str]:
    """Environment of the kernels: the demo workspace, and one BLAS/OpenMP thread. The test machines
    are shared 2-core boxes; multi-threaded BLAS and torch's OpenMP pool spin-waiting against other
    jobs made single cells take 50x longer in trials, one thread keeps the timings steady."""
    env = dict(os.environ)
    env["WORKBENCH_DEMO_DIR"] = str(demo_dir)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env.pop("JPY_SESSION_NAME", None)
    return env


def missing_modules(*names: str) -> list[str]:
    """The importable names among ``names`` that are not installed."""
    return [n for n in names if importlib.util.find_spec(n) is None]


def chromium_path() -> str | None:
    """Chromium: ``$WORKBENCH_CHROMIUM``, ``/usr/bin/chromium`` (Debian), else ``chromium`` on PATH."""
    for candidate in (
        os.environ.get("WORKBENCH_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


# ---------------------------------------------------------------------------------------------- nbformat


def summary_of(nb: Any) -> dict[str, Any]:
    """The JSON printed by the notebook's cell tagged ``summary`` (its last stdout line)."""
    for cell in nb.cells:
        if "summary" in cell.get("metadata", {}).get("tags", []):
            text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")
            lines = [line for line in text.splitlines() if line.strip()]
            if not lines:
                raise AssertionError(f"the summary cell printed nothing; outputs: {cell.get('outputs')}")
            return json.loads(lines[-1])
    raise AssertionError("the notebook has no cell tagged 'summary'")


def widget_views(nb: Any) -> int:
    """Number of widget views among the notebook's outputs."""
    return sum(
        "application/vnd.jupyter.widget-view+json" in o.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    )


# ---------------------------------------------------------------------------------------------- JupyterLab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LabServer:
    """A JupyterLab server on 127.0.0.1 with a random port and token, in its own process group,
    its state (config, runtime, settings, workspaces, IPython) in ``state_dir``."""

    def __init__(self, root_dir: Path, state_dir: Path, env: dict[str, str]) -> None:
        self.root_dir = root_dir
        self.state_dir = state_dir
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.env = dict(env)
        self.proc: subprocess.Popen | None = None
        self.log_path = state_dir / "jupyter-lab.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def _configure(self) -> None:
        dirs = {name: self.state_dir / name for name in ("config", "runtime", "settings", "workspaces", "ipython")}
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.env.update(
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
            JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
            IPYTHONDIR=str(dirs["ipython"]),
        )
        # The news toast appears even with news_url=None: disable the announcements plugin.
        (dirs["config"] / "labconfig").mkdir(exist_ok=True)
        (dirs["config"] / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
        )
        # Attach every cell to the DOM (the default skips off-screen cells), and never autosave:
        # the notebooks are copies, but a save would still be wasted work.
        nb_settings = dirs["settings"] / "@jupyterlab" / "notebook-extension"
        nb_settings.mkdir(parents=True, exist_ok=True)
        (nb_settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        doc_settings = dirs["settings"] / "@jupyterlab" / "docmanager-extension"
        doc_settings.mkdir(parents=True, exist_ok=True)
        (doc_settings / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))

    def start(self, timeout: float = 90.0) -> LabServer:
        self._configure()
        cmd = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.port_retries=0",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=self.root_dir, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer within {timeout} s:\n{self.log_tail()}")

    def api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every session's kernel (one notebook at a time keeps the 2 cores free)."""
        for session in self.api("GET", "api/sessions") or []:
            with contextlib.suppress(OSError):
                self.api("DELETE", f"api/sessions/{session['id']}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        """End the server's whole process group (server and kernels): SIGTERM, then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # kernels that outlived the server


@contextlib.contextmanager
def lab_server(root_dir: Path, state_dir: Path, env: dict[str, str]) -> Iterator[LabServer]:
    server = LabServer(root_dir, state_dir, env)
    try:
        yield server.start()
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------- page helpers

# Finds the notebook panel of ``path`` (a restored workspace may hold others), makes it current,
# keeps it as ``window.__wbPanel`` and resolves when its document, session and kernel are ready
# (JupyterLab's own promises: DOM markers appear before the kernel session exists).
JS_WAIT_READY = """
async (path) => {
  const app = window.jupyterapp;
  await app.restored;
  const sleep = (ms) => new Promise(r => setTimeout(r, ms));
  let panel = null;
  for (let i = 0; i < 600 && !panel; i++) {
    for (const w of app.shell.widgets('main')) {
      if (w.context && w.sessionContext && w.context.path === path) panel = w;
    }
    if (!panel) await sleep(100);
  }
  if (!panel) return 'no notebook panel for ' + path;
  app.shell.activateById(panel.id);
  window.__wbPanel = panel;
  await panel.context.ready;
  await panel.sessionContext.ready;
  for (let i = 0; i < 1200; i++) {
    const k = panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (k && k.status === 'idle' && k.connectionStatus === 'connected') return 'ready';
    await sleep(100);
  }
  return 'the kernel did not become idle and connected';
}
"""

JS_HAS_APP = "() => !!(window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.commands)"

# Fire "run all" on our panel without returning the command's promise (page.evaluate would await
# it, untimed).
JS_RUN_ALL = """
() => {
  const app = window.jupyterapp;
  app.shell.activateById(window.__wbPanel.id);
  app.commands.execute('notebook:run-all-cells');
  return true;
}
"""

# Progress of a run: counts of code cells, cells with an execution count, error outputs, kernel status.
JS_RUN_STATE = """
() => {
  const panel = window.__wbPanel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const errors = [];
  for (const c of cells) {
    for (let i = 0; i < c.model.outputs.length; i++) {
      const o = c.model.outputs.get(i).toJSON();
      if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).slice(-3).join('\\n'));
    }
  }
  const k = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {code: cells.length, done: cells.filter(c => c.model.executionCount !== null).length,
          pending: cells.filter(c => c.node.querySelector('.jp-InputArea-prompt')
                                      && c.node.querySelector('.jp-InputArea-prompt').textContent.includes('*')).length,
          errors: errors, status: k ? k.status : 'none', current: window.jupyterapp.shell.currentWidget === panel};
}
"""


def run_all(page: Any, timeout: float) -> float:
    """Run every cell of the open notebook; wait until each code cell has an execution count and the
    kernel is idle (fail fast on an error output). Returns the seconds it took."""
    t0 = time.monotonic()
    page.evaluate(JS_RUN_ALL)
    state: dict[str, Any] = {}
    while time.monotonic() - t0 < timeout:
        state = page.evaluate(JS_RUN_STATE)
        if state["errors"]:
            raise AssertionError("a cell raised in JupyterLab:\n" + "\n\n".join(state["errors"]))
        if state["done"] == state["code"] and state["pending"] == 0 and state["status"] == "idle":
            return time.monotonic() - t0
        time.sleep(0.25)
    raise TimeoutError(f"run-all did not finish within {timeout} s; last state {state}")


def open_notebook(page: Any, server: LabServer, name: str, timeout_ms: int = 120_000) -> None:
    """Open ``name`` in JupyterLab and wait until its kernel is idle and connected."""
    # ?reset: start from an empty workspace instead of restoring the previous notebook's layout.
    page.goto(server.url(f"lab/tree/{name}?reset"), wait_until="domcontentloaded")
    page.wait_for_function(JS_HAS_APP, timeout=timeout_ms)
    state = page.evaluate(JS_WAIT_READY, name)
    if state != "ready":
        raise TimeoutError(f"{name}: {state}")

"""Inject the faults of issue 13 into real `lit-genvision` processes and record what happened.

    python benchmarks/faults.py            # about 5 minutes on 2 CPU cores

Faults: SIGKILL at random moments of a fit that saves every step (the temporary directory on the
run's filesystem, then on another one), a malicious checkpoint by path and by URL, malicious
Inception weights, and a resume from a mid-epoch checkpoint compared bitwise with the
uninterrupted run. Writes benchmarks/results/faults.json.
"""

from __future__ import annotations

import functools
import http.server
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

from common import machine, save  # noqa: E402
from reliability.conftest import Payload, malicious_copy  # noqa: E402
from tests_helpers import DIGITS_DDPM, tiny_diffusion_args  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lit_genvision", *args], capture_output=True, text=True, env=env or ENV, timeout=timeout
    )


def shipped_fit_args(root: Path, name: str, steps: int) -> list[str]:
    """The shipped digits DDPM (about 20 MB checkpoints with EMA and Adam state), saving every step."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / "every_step.yaml"
    text = DIGITS_DDPM.read_text().replace("every_n_train_steps: 200", "every_n_train_steps: 1")
    cfg.write_text(text)
    return [
        "fit", "--config", str(cfg), "--trainer.max_steps", str(steps), "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(root), "--trainer.logger.init_args.save_dir", str(root),
        "--trainer.logger.init_args.name", name,
    ]  # fmt: skip


def kill_during_saves(root: Path, kills: int, tmpdir: str | None) -> dict:
    """SIGKILL a fit that writes last.ckpt after every step, in the middle of a write (the moment
    its temporary file appears) on even kills and at a random moment on odd ones; after each kill,
    is there a last.ckpt, does it load, and did the kill cut a write short (a temporary file left)?"""
    env = dict(ENV, **({"TMPDIR": tmpdir} if tmpdir else {}))
    rng = random.Random(0)
    loadable, cut_writes, steps = 0, 0, []
    ckpt = root / "kill" / "version_0" / "checkpoints" / "last.ckpt"
    for k in range(kills):
        args = shipped_fit_args(root, "kill", 10_000)
        if ckpt.exists():
            args += ["--ckpt_path", str(ckpt)]
        before = ckpt.stat().st_mtime_ns if ckpt.exists() else None
        proc = subprocess.Popen([sys.executable, "-m", "lit_genvision", *args], env=env, stderr=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL)  # fmt: skip
        start = time.time()  # wait for this process's first save, then kill at a random moment of the next ones
        while (not ckpt.exists() or ckpt.stat().st_mtime_ns == before) and time.time() - start < 180:
            time.sleep(0.01)
        if k % 2 == 0:  # mid-write: as soon as the next temporary file exists
            deadline = time.time() + 30
            while not any(ckpt.parent.glob(".last.ckpt.*.tmp")) and time.time() < deadline:
                time.sleep(0.0005)
        else:
            time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        leftovers = list(ckpt.parent.glob(".last.ckpt.*.tmp"))
        cut_writes += bool(leftovers)
        for leftover in leftovers:
            leftover.unlink()
        try:
            steps.append(torch.load(ckpt, weights_only=True)["global_step"])
            loadable += 1
        except Exception:  # noqa: BLE001 - any failure to load is the fault being counted
            pass
    return {"kills": kills, "last_ckpt_loadable": loadable, "writes_cut_short": cut_writes, "steps": steps}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def outcome(proc: subprocess.CompletedProcess, marker: Path) -> dict:
    lines = proc.stderr.strip().splitlines()
    return {"rc": proc.returncode, "payload_ran": marker.exists(), "said": lines[-1] if lines else ""}


def main() -> None:
    results: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    (ROOT / "runs").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "runs") as tmp:  # on the repository's filesystem, git-ignored
        root = Path(tmp)
        good_root = root / "good"
        assert cli("fit", *tiny_diffusion_args(good_root, max_steps=20)).returncode == 0
        good = good_root / "tiny" / "version_0" / "checkpoints" / "last.ckpt"

        served = root / "served"
        served.mkdir()
        server, url = serve(served)
        for where in ("path", "url"):
            marker = root / f"ran-{where}"
            bad = malicious_copy(good, served / f"bad-{where}.ckpt", marker)
            source = str(bad) if where == "path" else f"{url}/{bad.name}"
            fit = cli("fit", *tiny_diffusion_args(root / where, max_steps=25), "--ckpt_path", source)
            results[f"malicious checkpoint by {where}: fit"] = outcome(fit, marker)
            sample = cli("sample", "--ckpt", source, "--num", "4", "--out", str(root / "x.png"))
            results[f"malicious checkpoint by {where}: sample"] = outcome(sample, marker)
        server.shutdown()

        marker = root / "ran-inception"
        torch.save({"w": Payload(marker)}, root / "inception.pth")
        weights, store = str(root / "inception.pth"), str(root / "r.sqlite")
        evaluate = cli("evaluate", "--ckpt", str(good), "--metrics", "fid", "--num", "2049",
                       "--inception-weights", weights, "--store", store)  # fmt: skip
        results["malicious Inception weights: evaluate --metrics fid"] = outcome(evaluate, marker)

        results["SIGKILL during saves, TMPDIR on the run's filesystem"] = kill_during_saves(root / "same", 12, None)
        shm = Path("/dev/shm")
        if shm.is_dir() and shm.stat().st_dev != root.stat().st_dev:
            other = tempfile.mkdtemp(dir=shm)
            results["SIGKILL during saves, TMPDIR on another filesystem (/dev/shm)"] = kill_during_saves(
                root / "other", 12, other
            )

        test = str(ROOT / "tests/reliability/test_resume_exact.py")
        mid = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
            capture_output=True, text=True, env=ENV, cwd=ROOT,
        )  # fmt: skip
        results["resume mid-epoch and at a boundary vs uninterrupted (bitwise)"] = {
            "pytest": mid.stdout.strip().splitlines()[-1]
        }
    for fault, result in results.items():
        if fault not in ("machine", "date"):
            print(f"{fault}: {result}")
    print(f"saved {save('faults', results)}")


if __name__ == "__main__":
    main()

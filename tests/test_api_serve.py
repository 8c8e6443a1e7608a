"""`socialcrm serve`: the API under waitress on 127.0.0.1 (port 0), the schedule beside it, SIGTERM stops both."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from socialcrm.api.webhooks import sign


# How long a request or a wait may take before the test calls it a hang: generous, because on a busy
# machine the server's first tick (learning a page) can hold the CPU for many seconds.
PATIENCE = 60.0


def _wait_for(predicate, timeout=PATIENCE, step=0.05):
    """Ask again until the server process has done it (it works on its own clock, not ours)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        pause.wait(step)
    raise AssertionError("the server did not get there in time")


def test_serve_runs_the_api_and_the_schedule_until_sigterm(api_env, write_config, write_mentions, mention_json,
                                                            tmp_path):
    write_mentions(tmp_path / "mentions.jsonl", [mention_json("1", "@BrightwaveHelp my WaveBox doesn't work, help")])
    config = write_config(api_env.replace("page_size = 50", "page_size = 50\npoll_interval = 3600"))
    command = [str(Path(sys.executable).parent / "socialcrm"), "--log-level", "INFO", "serve", "--config",
               str(config), "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    lines: list[str] = []
    try:
        while True:
            line = proc.stderr.readline()
            assert line, "serve exited early:\n" + "".join(lines)
            lines.append(line)
            found = re.search(r"socialcrm API on (http://127\.0\.0\.1:\d+)", line)
            if found:
                base = found.group(1)
                break
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()
        session = requests.Session()
        desk = {"Authorization": "Bearer desk-token-0123456789abcdef"}
        assert session.get(f"{base}/health", timeout=PATIENCE).json() == {"status": "ok"}
        assert session.get(f"{base}/records", timeout=PATIENCE).status_code == 401
        # the schedule's first tick polls the source and delivers
        records = _wait_for(lambda: session.get(f"{base}/records", headers=desk, timeout=PATIENCE).json()["items"])
        assert [r["id"] for r in records] == ["x:1"] and records[0]["route"] == ["desk"]
        _wait_for(lambda: (tmp_path / "out" / "desk.jsonl").exists())
        # a poll asked for over HTTP is handed to the schedule (the interval is an hour)
        write_mentions(tmp_path / "mentions.jsonl", [mention_json("2", "thanks @Brightwave, love the WaveBox")],
                       mode="a")
        polled = session.post(f"{base}/sources/file/poll", headers=desk, timeout=PATIENCE)
        assert polled.json()["status"] == "scheduled"
        _wait_for(lambda: session.get(f"{base}/records/x:2", headers=desk, timeout=PATIENCE).status_code == 200)
        # a signed webhook delivery goes through the same path
        body = json.dumps([mention_json("w1", "WaveBox doesn't work again")]).encode()
        stamp = str(int(time.time()))
        pushed = session.post(f"{base}/webhooks/partner", data=body, timeout=PATIENCE, headers={
            "Content-Type": "application/json", "X-Socialcrm-Timestamp": stamp,
            "X-Socialcrm-Signature": sign("partner-secret-0123456789abcdef", stamp, body)})
        assert pushed.json() == {"received": 1, "new_records": 1, "duplicates": 0}
        too_big = session.post(f"{base}/records/x:1/feedback", data=b"x" * 10_000, timeout=PATIENCE,
                               headers={**desk, "Content-Type": "application/json"})
        assert too_big.status_code == 413 and too_big.json()["code"] == 413
        spec = session.get(f"{base}/openapi.json", timeout=PATIENCE).json()
        assert spec["info"]["title"] == "socialcrm" and "/webhooks/{name}" in spec["paths"]
        page = session.get(f"{base}/docs", timeout=PATIENCE)
        assert page.headers["Content-Type"].startswith("text/html") and "/records/{record_id}/feedback" in page.text
        assert "<script" not in page.text and "cdn" not in page.text.lower()
        metrics = session.get(f"{base}/metrics", headers=desk, timeout=PATIENCE).text
        assert 'socialcrm_records{type="case"}' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        finally:
            proc.kill()
    assert code == 0
    _wait_for(lambda: any("socialcrm API stopped" in line for line in lines), timeout=PATIENCE)
    log = "".join(lines)
    assert "signal SIGTERM: stopping" in log
    assert "GET /records 200 (desk)" in log
    for secret in ("desk-token-0123456789abcdef", "partner-secret-0123456789abcdef"):
        assert secret not in log

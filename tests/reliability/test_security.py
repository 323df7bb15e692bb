"""Security: what the code may load and run, what the running server hands out, what it accepts.

Static checks read the source (AST, so comments and strings don't count) of the package, the app
and the scripts; the rest talk to the app served on 127.0.0.1.
"""

from __future__ import annotations

import ast
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.reliability.corpus import PORTRAIT, ROOT, SPEECH
from tests.reliability.rawhttp import call_raw, file_data, upload_raw

SOURCES = sorted(
    [ROOT / "app.py", *(ROOT / "starcaster").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")],
)


def _calls(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.expr) -> str:
    """``a.b.c`` of a call's function, as written."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _where(path: Path, call: ast.Call) -> str:
    return f"{path.relative_to(ROOT)}:{call.lineno}"


# -- static: loading and running ------------------------------------------------------------------


def test_sources_were_found():
    assert len(SOURCES) > 20 and ROOT / "app.py" in SOURCES


def test_torch_load_only_with_weights_only():
    offending = [
        _where(path, call)
        for path in SOURCES
        for call in _calls(path)
        if _name(call.func).endswith("torch.load") and not _is_true(_keyword(call, "weights_only"))
    ]
    assert offending == [], "torch.load without weights_only=True"


def test_no_pickle_loading():
    banned = ("pickle.load", "pickle.loads", "cPickle.load", "dill.load", "joblib.load", "pd.read_pickle")
    offending = [_where(p, c) for p in SOURCES for c in _calls(p) if _name(c.func).endswith(banned)]
    offending += [
        _where(p, c)
        for p in SOURCES
        for c in _calls(p)
        if _name(c.func).endswith("load") and _is_true(_keyword(c, "allow_pickle"))
    ]
    assert offending == []


def test_no_trust_remote_code():
    offending = [_where(p, c) for p in SOURCES for c in _calls(p) if _is_true(_keyword(c, "trust_remote_code"))]
    assert offending == []


def test_checkpoints_are_safetensors_only(tiny_checkpoint, tmp_path):
    from starcaster import CheckpointError, STARCasterPipeline
    from starcaster.hub import ALLOW_PATTERNS, PICKLE_SUFFIXES

    assert not [p for p in ALLOW_PATTERNS if p.endswith(tuple(PICKLE_SUFFIXES))]  # pickles are never fetched
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_checkpoint, folder)
    for weights in (folder / "unet").glob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(CheckpointError, match="only has pickled weights"):
        STARCasterPipeline.from_pretrained(str(folder), trust_remote_code=True)  # and the flag is dropped


def test_no_shell():
    """Subprocesses take argument lists: no shell=True, no os.system/popen, no string commands."""
    shells = ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput", "commands.getoutput")
    offending = [_where(p, c) for p in SOURCES for c in _calls(p) if _name(c.func).endswith(shells)]
    offending += [_where(p, c) for p in SOURCES for c in _calls(p) if _is_true(_keyword(c, "shell"))]
    runners = ("subprocess.run", "subprocess.Popen", "subprocess.call", "subprocess.check_call", "check_output")
    offending += [
        _where(p, c)
        for p in SOURCES
        for c in _calls(p)
        if _name(c.func).endswith(runners) and c.args and isinstance(c.args[0], ast.Constant | ast.JoinedStr)
    ]
    assert offending == []


def test_shell_syntax_in_a_file_name_is_just_a_name(tmp_path, monkeypatch):
    """A user's file name full of shell syntax goes to ffmpeg as one argument and runs nothing."""
    from starcaster.audio import read_audio

    monkeypatch.chdir(tmp_path)  # a shell would run `touch pwned` here
    marker = tmp_path / "pwned"
    hostile = tmp_path / "x; touch pwned; $(touch pwned) `touch pwned` | touch pwned & .m4a"
    hostile.write_bytes(b"not audio at all")
    with pytest.raises(Exception, match="not a readable audio file"):
        read_audio(hostile)
    assert not marker.exists()


def test_dependencies_are_pinned():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in lines if line]
    assert len(requirements) > 10
    unpinned = [line for line in requirements if not re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[A-Za-z0-9_.+\-]+", line)]
    assert unpinned == [], "every requirement must be pinned with == (no ranges, URLs, -e or index options)"


# -- the running server ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def result_url(served_app):
    """The URL of a video the server produced for a request (a file it is meant to serve)."""
    url = served_app[1]
    data = [
        upload_raw(url, PORTRAIT),
        None,
        upload_raw(url, SPEECH),
        0,
        0,
        "static",
        4,
        1,
        1,
        1,
        0,
        False,
        8,
        8,
        16,
        0.5,
        True,
    ]
    outcome, message = call_raw(url, json.dumps({"data": data}))
    assert outcome == "ok", message
    return json.loads(message)[1]["url"]


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=30, follow_redirects=False)


SECRETS = [
    "/etc/passwd",
    "/etc/hostname",
    "app.py",
    "./app.py",
    "requirements.txt",
    "examples/portraits/portrait_0.png",  # the source folder itself is not served: example files are copied
    "checkpoints/starcaster-synth/model_index.json",
    "checkpoints/starcaster-synth-live/model_index.json",
    "../../../../etc/passwd",
    "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "..%2f..%2f..%2f..%2fetc%2fpasswd",
    "%2fetc%2fpasswd",
    "/proc/self/environ",
    "~/.bashrc",
]


@pytest.mark.parametrize("target", SECRETS)
def test_server_refuses_files_it_did_not_write(served_app, target):
    url = served_app[1]
    for prefix in ("gradio_api/file=", "file=", "gradio_api/file/", "static/../", "assets/../"):
        response = _get(url + prefix + target)
        assert response.status_code in (400, 403, 404), f"{prefix}{target} → {response.status_code}"
        assert "root:" not in response.text and "PATH=" not in response.text


def test_server_refuses_its_own_work_dir_and_caches(served_app, tiny_checkpoint):
    demo, url = served_app
    inside = demo.starcaster_app.work_dir / "secret.txt"
    inside.write_text("not for clients")
    try:
        for path in (inside, next(tiny_checkpoint.rglob("*.safetensors")), Path(sys.executable)):
            assert _get(f"{url}gradio_api/file={path}").status_code == 403, path
    finally:
        inside.unlink()
    assert not getattr(demo, "allowed_paths", None)  # app.launch adds no served folders


def test_server_serves_uploads_and_results(served_app, result_url):
    url = served_app[1]
    uploaded = upload_raw(url, PORTRAIT)["path"]
    assert _get(f"{url}gradio_api/file={uploaded}").content == PORTRAIT.read_bytes()
    assert _get(result_url).status_code == 200 and _get(result_url).content[4:8] == b"ftyp"


def test_upload_names_cannot_escape_the_upload_folder(served_app, tmp_path):
    url = served_app[1]
    for name in ("../../../../tmp/escaped.png", "/tmp/escaped.png", "..\\..\\escaped.png", "a/../../escaped.png"):
        stored = Path(upload_raw(url, PORTRAIT, name=name)["path"]).resolve()
        cache = Path(served_app[0].GRADIO_CACHE).resolve()
        assert stored.is_relative_to(cache), (name, stored)
    assert not Path("/tmp/escaped.png").exists()


def test_upload_size_limit(served_app):
    import app

    url = served_app[1]
    config = json.loads(_get(url + "config").text)
    assert config["max_file_size"] == 25 * 2**20 and app.MAX_FILE_SIZE == "25mb"
    response = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.png", b"\0" * (25 * 2**20 + 1))}, timeout=60)
    assert response.status_code == 413


def test_server_does_not_fetch_urls_given_as_files(served_app):
    """A FileData whose path/url is a URL (here: a loopback server we watch) is refused unfetched."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 — the http.server API
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(PORTRAIT.read_bytes())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = f"http://127.0.0.1:{server.server_address[1]}/portrait.png"
        url = served_app[1]
        audio = upload_raw(url, SPEECH)
        data = [file_data(target, url=target), None, audio, 0, 0, "static", 4, 1, 1, 1, 0, False, 8, 8, 16, 0.5, True]
        outcome, message = call_raw(url, json.dumps({"data": data}))
    finally:
        server.shutdown()
        thread.join()
    assert outcome == "error" and "failed validation" in message
    assert hits == []


# -- dependencies: known vulnerabilities -------------------------------------------------------------


@pytest.mark.slow
def test_pip_audit(tmp_path):
    """``pip-audit -r requirements.txt`` (PyPI's vulnerability data). Needs pip-audit and the network;
    a run that could audit nothing (the service unreachable) is a skip, not a pass."""
    exe = shutil.which("pip-audit")
    if exe is None:
        pytest.skip("pip-audit is not installed (pip install pip-audit)")
    report = tmp_path / "audit.json"
    done = subprocess.run(
        [exe, "-r", str(ROOT / "requirements.txt"), "-f", "json", "-o", str(report), "--progress-spinner", "off"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if not report.is_file():
        pytest.skip(f"pip-audit could not run: {done.stderr.strip()[-300:]}")
    dependencies = json.loads(report.read_text())["dependencies"]
    audited = [d for d in dependencies if "skip_reason" not in d]
    if not audited:
        pytest.skip(f"pip-audit audited none of {len(dependencies)} packages (vulnerability service unreachable)")
    vulnerable = {d["name"]: [v["id"] for v in d["vulns"]] for d in audited if d.get("vulns")}
    assert vulnerable == {}, vulnerable

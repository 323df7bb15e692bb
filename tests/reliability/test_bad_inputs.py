"""The bad-input corpus (``corpus.CASES``) through the running app, the Python API and the CLI.

Each case must end in its specific message (``gr.Error`` → ``AppError`` for the app, an
``InputError``/``CheckpointError`` for Python, ``error: …`` and exit 2 for the CLI) or, for
odd-but-valid input, in a normal result. After the whole corpus the server still serves, no
temporary or partial file is left behind, no pickle was executed, and memory is back near its
baseline. The table (case → outcome → message) is printed (``pytest -s``) and written to
``$STARCASTER_RELIABILITY_TABLE`` when set (that is how docs/reliability.md got it).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.reliability import harness
from tests.reliability.corpus import CASES, PICKLE_MARKER, PORTRAIT, SPEECH

# One-time caches (face cascade, plugins, the CLI's checkpoint loads) take ~60 MB on the first
# pass; later passes add ~15 MB each (Gradio's per-session state). A leaked decode of the PNG
# bomb alone would be 400 MB.
MEMORY_SLACK_MB = 100


def _temp_leftovers() -> set[str]:
    """Our temporary folders in the system temp dir (VideoWriter audio, app work dirs' partial files)."""
    root = Path(tempfile.gettempdir())
    return {p.name for p in root.glob("starcaster-audio-*")}


def test_bad_input_corpus(served_app, api_client, tiny_checkpoint, tmp_path):
    demo, url = served_app
    work_dir = demo.starcaster_app.work_dir
    PICKLE_MARKER.unlink(missing_ok=True)
    # Warm up (model, ffmpeg, the face detector) so the baseline is not the cold process.
    from gradio_client import handle_file

    api_client.predict(handle_file(str(PORTRAIT)), None, handle_file(str(SPEECH)), api_name="/generate", **harness.FAST)
    baseline_mb, temp_before = harness.settled_rss_mb(), _temp_leftovers()

    results, peak_mb = [], baseline_mb
    for number, case in enumerate(CASES):
        folder = tmp_path / f"case{number:02d}"
        folder.mkdir()
        if case.channel == "api":
            result = harness.run_api(api_client, case, folder)
        elif case.channel == "http":
            result = harness.run_http(url, case, folder)
        elif case.channel == "python":
            result = harness.run_python(case, folder)
        else:
            result = harness.run_cli(case, folder, tiny_checkpoint)
        results.append(result)
        peak_mb = max(peak_mb, harness.rss_mb())

    after_mb = harness.settled_rss_mb()
    table = harness.format_table(results)
    passed = sum(r.passed for r in results)
    summary = (
        f"{passed}/{len(results)} cases passed · RSS baseline {baseline_mb:.0f} MB, peak {peak_mb:.0f} MB, "
        f"after {after_mb:.0f} MB · {sum(r.seconds for r in results):.1f} s in requests"
    )
    print(f"\n{table}\n\n{summary}")
    if out := os.environ.get("STARCASTER_RELIABILITY_TABLE"):
        Path(out).write_text(f"{table}\n\n{summary}\n")

    assert len(results) >= 30
    assert [r.case.name for r in results if not r.passed] == [], table
    # The server survived all of it: a normal request still works.
    status = api_client.predict(
        handle_file(str(PORTRAIT)), None, handle_file(str(SPEECH)), api_name="/generate", **harness.FAST
    )[4]
    assert status.startswith("Done:")
    # Nothing was executed, nothing left behind, memory back near the baseline.
    assert not PICKLE_MARKER.exists(), "a pickle payload was executed"
    leftovers = [p for p in work_dir.rglob("*") if p.is_file() and p.suffix != ".npy"]
    assert leftovers == [], f"files left in the app's work dir: {leftovers}"
    assert not [p for p in work_dir.rglob("*.partial*")]
    assert _temp_leftovers() <= temp_before
    assert after_mb - baseline_mb < MEMORY_SLACK_MB, summary


def test_cli_bad_input_in_a_real_process(tiny_checkpoint, tmp_path):
    """The CLI channel above runs ``main()`` in-process; here once as a user runs it: one line, exit 2."""
    import subprocess
    import sys

    from tests.reliability.corpus import ROOT, make_text_as_wav

    args = [
        "generate",
        "--checkpoint",
        str(tiny_checkpoint),
        "--image",
        str(PORTRAIT),
        "--out",
        str(tmp_path / "x.mp4"),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "starcaster", *args, "--audio", str(make_text_as_wav(tmp_path))],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: notes.wav is not a readable audio file")
    assert "Traceback" not in result.stderr and not (tmp_path / "x.mp4").exists()

"""The app in a real browser: headless Chromium (Debian's chromium + chromedriver) via selenium.

Loads the page, sets a slider, uploads a portrait and a speech clip, clicks Generate, waits
until the ``<video>`` element has a playable source, takes a screenshot and checks the
console has no errors. ``STARCASTER_SCREENSHOTS=1`` also saves a screenshot of each tab to
docs/images/app_*.png (that is how the README's pictures are made).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import soundfile as sf
from test_app import PORTRAIT, ROOT

from tests.helpers import serve

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DOCS_IMAGES = ROOT / "docs" / "images"
SAVE_SCREENSHOTS = os.environ.get("STARCASTER_SCREENSHOTS") == "1"
# Console noise that is not the app's fault: a missing favicon, and network requests a
# sandboxed headless browser makes (fonts, analytics) that fail offline.
IGNORED_CONSOLE = ("favicon.ico", "net::ERR_", "Failed to load resource", "fonts.googleapis", "fonts.gstatic")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
    ),
]


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from starcaster.audio import load_audio

    profile = tempfile.mkdtemp(prefix="starcaster-chromium-")
    microphone = Path(profile) / "microphone.wav"  # what the fake capture device "hears", looped
    sf.write(microphone, load_audio(ROOT / "examples" / "audio" / "weather.wav"), 16_000)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,1400",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",  # the microphone permission is granted
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(tiny_pipe, browser):
    with serve(tiny_pipe, max_audio_seconds=5.0) as (_, url):
        browser.get(url)
        _wait(browser, lambda d: d.find_elements("css selector", "#generate-btn"), 60, "the page to load")
        yield browser


def _wait(driver, condition, timeout: float, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(condition, message=f"waiting for {what}")


def _upload(driver, elem_id: str, path: Path) -> None:
    driver.find_element("css selector", f"#{elem_id} input[type=file]").send_keys(str(path))


def _set_slider(driver, elem_id: str, value: float) -> None:
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element("css selector", f"#{elem_id} input[type=number]")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.TAB)
    _wait(
        driver,
        lambda d: (
            float(d.find_element("css selector", f"#{elem_id} input[type=range]").get_attribute("value")) == value
        ),
        10,
        f"slider {elem_id} = {value}",
    )


def _video_ready(driver):
    return driver.execute_script(
        "const v = document.querySelector('#result-video video');"
        "return v && v.src && v.readyState >= 1 && v.duration > 0 ? [v.src, v.duration, v.readyState] : null;"
    )


def _console_errors(driver) -> list[str]:
    entries = driver.get_log("browser")
    return [
        e["message"] for e in entries if e["level"] == "SEVERE" and not any(s in e["message"] for s in IGNORED_CONSOLE)
    ]


def _displayed(driver, selector: str) -> bool:
    return any(element.is_displayed() for element in driver.find_elements("css selector", selector))


def _screenshot(driver, name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(height + 140, 2400))  # the whole page, not just the viewport
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    if SAVE_SCREENSHOTS:
        from PIL import Image

        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        image = Image.open(path).convert("RGB")
        image.quantize(colors=128).save(DOCS_IMAGES / f"{name}.png", optimize=True)
    return path


def _click_tab(driver, title: str) -> None:
    tab = next(b for b in driver.find_elements("css selector", "button[role=tab]") if title in b.text)
    tab.click()
    time.sleep(0.5)


def test_generate_in_the_browser(page, speech_wave, tmp_path):
    driver = page
    speech = tmp_path / "speech.wav"
    sf.write(speech, speech_wave[:16_000], 16_000)
    _set_slider(driver, "azimuth", 30)
    _upload(driver, "portrait", PORTRAIT)
    _wait(driver, lambda d: d.find_elements("css selector", "#portrait img"), 30, "the portrait preview")
    _upload(driver, "speech", speech)
    _wait(driver, lambda d: d.find_elements("css selector", "#speech audio, #speech .waveform-container"), 30, "audio")
    driver.find_element("css selector", "#generate-btn").click()
    src, duration, _ = _wait(driver, _video_ready, 180, "a playable <video>")
    assert src and 0.9 < duration < 1.3  # 1 s of speech at 25 fps
    status = driver.find_element("css selector", "#status").text
    assert status.startswith("Done:"), status
    assert "azimuth 30° → 30°" in status  # the slider value reached the pipeline
    assert driver.find_elements("css selector", "#live-video video")
    assert "outputs are noise" in driver.find_element("css selector", "#random-banner").text
    assert _screenshot(driver, "app_portrait", tmp_path).stat().st_size > 10_000
    assert _console_errors(driver) == []


@pytest.fixture(scope="module")
def bundled_page(browser):
    from starcaster import BUNDLED_CHECKPOINT, STARCasterPipeline
    from starcaster.demo.checkpoint import CheckpointInfo

    pipe = STARCasterPipeline.from_pretrained(ROOT / BUNDLED_CHECKPOINT)
    info = CheckpointInfo(label=BUNDLED_CHECKPOINT, revision=None)  # trained weights: no random-weights banner
    with serve(pipe, max_audio_seconds=20.0, info=info) as (_, url):
        browser.get(url)
        _wait(browser, lambda d: d.find_elements("css selector", "#generate-btn"), 60, "the page to load")
        yield browser


def _live_state(driver):
    """(the live player's current time, the status line)."""
    return driver.execute_script(
        "const v = document.querySelector('#live-video video');"
        "const s = document.querySelector('#status');"
        "return [v ? v.currentTime : 0, s ? s.innerText : ''];"
    )


def _visible_on_top(driver, selector: str) -> bool:
    """Whether the element under the centre of ``selector`` is that element: no overlay (e.g. a progress
    bar) covers it, so a person sees it."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); if (!e) return false;"
        "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
        "const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
        "return top === e || e.contains(top);",
        selector,
    )


def _fetch(driver, selector: str) -> bytes:
    import urllib.request

    url = driver.execute_script(f"const e = document.querySelector({selector!r}); return e && (e.href || e.src);")
    assert url, f"no {selector} on the page"
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def test_live_playback_starts_before_generation_ends_and_the_camera_follows_the_slider(bundled_page, tmp_path):
    """The bundled model on a 10 s clip: the live player moves while the status still says "Generating…";
    the azimuth slider, moved mid-stream, turns the camera of the chunks still to come (the run's view track
    and the pose expert on the finished video agree)."""
    import imageio.v3 as iio
    import numpy as np

    from starcaster.audio import load_audio
    from starcaster.eval.harness import Experts

    driver = bundled_page
    speech = tmp_path / "speech.wav"
    sf.write(speech, np.tile(load_audio(ROOT / "examples" / "audio" / "weather.wav"), 6)[: 10 * 16_000], 16_000)
    _set_slider(driver, "azimuth", 0)
    _upload(driver, "portrait", PORTRAIT)
    _wait(driver, lambda d: d.find_elements("css selector", "#portrait img"), 30, "the portrait preview")
    _upload(driver, "speech", speech)
    _wait(driver, lambda d: d.find_elements("css selector", "#speech audio, #speech .waveform-container"), 30, "audio")
    note = _wait(driver, lambda d: d.find_element("css selector", "#avatar-read").text, 30, "the avatar note")
    assert "SynthTalk-like portrait" in note and not _displayed(driver, "#avatar-editor")  # animated as it is
    pressed = time.perf_counter()
    driver.find_element("css selector", "#generate-btn").click()
    timeline = []

    def moving(d):
        state = _live_state(d)
        timeline.append((round(time.perf_counter() - pressed, 2), round(state[0], 2), state[1][:40]))
        return state[0] > 0.2 and state

    playing = _wait(driver, moving, 120, "the live player to move")
    print(timeline[::4])
    first_motion = time.perf_counter() - pressed
    progress = re.search(r"(\d+)/(\d+) frames", playing[1])  # the progress overlay, or the status line
    assert playing[1].startswith("Generating") or (progress and int(progress[1]) < int(progress[2])), playing
    assert _visible_on_top(driver, "#live-video video")  # the progress bar is elsewhere: the player is seen
    _set_slider(driver, "azimuth", 45)  # steer mid-stream
    _wait(driver, lambda d: _live_state(d)[1].startswith("Done:"), 300, "the end of generation")
    record = json.loads(_fetch(driver, "#settings-file a"))
    azimuth = np.array(record["views"]["azimuth"])
    turned = int(np.argmax(azimuth > 1.0))
    assert azimuth[0] == 0.0 and 0 < turned < len(azimuth) - 50 and azimuth[-25:].min() > 44.0, azimuth[::10]
    video = tmp_path / "result.mp4"
    video.write_bytes(_fetch(driver, "#result-video video"))
    frames = iio.imread(video)
    seen = Experts().view(frames)[:, 0]  # the pose expert's azimuth of every frame
    assert abs(np.median(seen[: max(1, turned - 5)])) < 10.0 and abs(np.median(seen[-25:]) - 45.0) < 10.0
    shown = next(t for t, played, _ in timeline if played > 0)  # the player's clock first left zero
    print(
        f"playback started {shown:.1f} s and passed 0.2 s {first_motion:.1f} s after Generate; turned at frame {turned}"
    )
    assert not driver.find_elements("css selector", "#random-banner")
    assert _console_errors(driver) == []


def test_live_microphone_in_the_browser(page):
    """The live tab with Chromium's fake microphone playing a speech file: while it records, the live
    player plays the portrait's chunks and the status reports what was heard; stopping ends the session."""
    driver = page
    driver.refresh()
    _wait(driver, lambda d: d.find_elements("css selector", "#generate-btn"), 60, "the page to load")
    _click_tab(driver, "Live mic")
    _upload(driver, "live-portrait", PORTRAIT)
    _wait(driver, lambda d: d.find_elements("css selector", "#live-portrait img"), 30, "the portrait preview")
    record = _wait(driver, lambda d: _button(d, "#live-mic", "Record"), 30, "the record button")
    record.click()
    heard = _wait(driver, lambda d: re.search(r"Live: ([\d.]+) s heard", _live_state(d)[1]), 60, "the first piece")
    playing = _wait(driver, lambda d: _live_state(d)[0] > 1.0 and _live_state(d), 60, "the live player to play")
    assert "Live:" in playing[1] and "over" not in playing[1], playing  # still recording: the session runs on
    assert float(heard[1]) > 0
    _button(driver, "#live-mic", "Stop").click()
    over = _wait(driver, lambda d: "Live session over" in _live_state(d)[1] and _live_state(d)[1], 60, "the end")
    assert re.search(r"([\d.]+) s of speech, mean latency ([\d.]+) s", over), over
    assert _console_errors(driver) == []


def _button(driver, within: str, label: str):
    """The button in ``within`` whose text or aria-label starts with ``label`` (None when there is none)."""
    for button in driver.find_elements("css selector", f"{within} button"):
        if button.is_displayed() and (button.text or button.get_attribute("aria-label") or "").startswith(label):
            return button
    return None


def test_other_tabs_render(page, tmp_path):
    """Each tab shows its controls; with STARCASTER_SCREENSHOTS=1 also a generated sweep for the docs."""
    driver = page
    _click_tab(driver, "From an identity")
    button = next(b for b in driver.find_elements("css selector", "button") if b.text == "Sample a random identity")
    button.click()
    _wait(driver, lambda d: "identity_random_" in d.page_source, 30, "a sampled identity")
    _screenshot(driver, "app_identity", tmp_path)
    _click_tab(driver, "Free viewpoint")
    _upload(driver, "fv-portrait", PORTRAIT)
    _wait(driver, lambda d: d.find_elements("css selector", "#fv-portrait img"), 30, "the portrait preview")
    if SAVE_SCREENSHOTS:
        driver.execute_script("document.querySelector('#result-video video')?.removeAttribute('src')")
        driver.find_element("css selector", "#generate-btn").click()
        done = "azimuth -30° → 30°"  # a sweep of ±azimuth
        _wait(driver, lambda d: done in d.find_element("css selector", "#status").text, 180, "the sweep")
    _screenshot(driver, "app_free_viewpoint", tmp_path)
    assert _console_errors(driver) == []


def test_photo_shows_its_avatar_in_the_browser(page, tmp_path):
    """A real photo in the portrait tab: the avatar panel shows the photo, the avatar and what was read."""
    from PIL import Image
    from skimage import data

    driver = page
    driver.refresh()
    _wait(driver, lambda d: d.find_elements("css selector", "#generate-btn"), 60, "the page to reload")
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    assert not _displayed(driver, "#avatar-editor")  # nothing to edit before a photo has an avatar
    _upload(driver, "portrait", photo)
    _wait(driver, lambda d: d.find_elements("css selector", "#avatar img"), 60, "the avatar portrait")
    assert _displayed(driver, "#avatar-editor")
    _wait(driver, lambda d: "hair:" in d.find_element("css selector", "#avatar-read").text, 30, "what was read")
    assert driver.find_elements("css selector", "#avatar-photo img")
    assert "SynthTalk" in driver.find_element("css selector", "#avatar-note").text
    assert "glasses: no" in driver.find_element("css selector", "#avatar-read").text
    assert _console_errors(driver) == []
    _screenshot(driver, "app_avatar", tmp_path)

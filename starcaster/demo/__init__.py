"""The Gradio demo (``app.py`` is its Spaces entry point); the only part of ``starcaster`` that imports gradio.

One module per job, in the order a request meets them:

* ``serving.py``: ``launch`` (upload limit, served paths, error reporting), ``parse_args`` (the
  flags of ``python app.py``), ZeroGPU (``gpu``, ``gpu_seconds``), the ffmpeg check, work folders;
* ``layout.py``: ``create_demo`` builds the page and wires each event to a handler;
* ``handlers.py``: ``DemoApp``: what each button, slider and API endpoint does, down to
  ``pipe.start(...)``; ``run_record``: the settings JSON written beside a result;
* ``guards.py``: ``STARCasterError`` → ``gr.Error``, bugs → the server log, unreadable inputs named;
* ``checkpoint.py`` (no gradio): which checkpoint is served (``load_app_pipeline``) and what the
  page says about it (``CheckpointInfo``).

Nothing in the rest of ``starcaster`` imports this package.
"""

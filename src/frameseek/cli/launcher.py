"""``frameseek app``: start the Streamlit app in its own process (on 127.0.0.1 unless told otherwise).

Not ``cli/app.py``: ``frameseek.cli.app`` is the typer application itself (``from frameseek import cli;
cli.app``), which a submodule of that name would shadow.
"""

from __future__ import annotations

import os
import subprocess
import sys

import typer

from frameseek.cli.options import DeviceOpt, load_api


def run_app(ctx: typer.Context, device: DeviceOpt = None) -> None:
    """Start the Streamlit app (on 127.0.0.1 unless --server.address says otherwise); Streamlit options pass through."""
    load_api()
    from frameseek import api
    from frameseek.app import APP_SCRIPT

    env = dict(os.environ)
    if device is not None:
        api.resolve_device(device)  # a GPU that is not there: one line now, not an error inside the page
        env["FRAMESEEK_DEVICE"] = device  # the app's models are created there

    extra = list(ctx.args)
    command = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT)]
    if not any(a.startswith("--server.address") for a in extra):
        command += ["--server.address", "127.0.0.1"]
    if not any(a.startswith("--browser.gatherUsageStats") for a in extra):
        command += ["--browser.gatherUsageStats", "false"]
    if not any(a.startswith("--client.toolbarMode") for a in extra):
        command += ["--client.toolbarMode", "minimal"]
    if not any(a.startswith("--server.maxUploadSize") for a in extra):
        upload_mb = max(1, api.limits().max_upload_bytes // (1024 * 1024))
        command += ["--server.maxUploadSize", str(upload_mb)]
    command += extra
    raise typer.Exit(subprocess.call(command, env=env))

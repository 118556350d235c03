"""The Streamlit app (``frameseek app``)."""

from pathlib import Path

APP_SCRIPT = Path(__file__).with_name("streamlit_app.py")

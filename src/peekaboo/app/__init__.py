"""The web demo (``make app``): segment an uploaded image or generate an RGBA image in the browser.

``logic`` holds everything the page does as plain functions (testable without a browser or gradio);
``layout`` is the thin Gradio page that wires them to components; ``python -m peekaboo.app`` serves it.
"""

"""The web app and JSON API over the stored stories (``aggregator serve``, ``aggregator run --serve``).

``make_app(config)`` builds the Starlette app; the CLI serves it with uvicorn. Importing this
package loads Starlette and Jinja2: only the commands that serve import it.
"""

from .app import make_app

__all__ = ["make_app"]

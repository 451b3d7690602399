"""``ibflow.bridge``: Interactive Brokers over HTTP and WebSockets, through one ibflow Session.

An optional extra (``pip install "ibflow[bridge]"``: FastAPI and uvicorn), so ``import ibflow``
never pulls a web framework in. Run it with ``ibflow bridge`` (``--sim`` for the embedded
simulator), with ``uvicorn --factory ibflow.bridge:create_app`` (settings from ``IBFLOW_*``), or
build the app yourself::

    from ibflow.bridge import create_app

    app = create_app()  # connects a Session from the environment in the app's lifespan

The bridge has no authentication and can place orders: keep it on 127.0.0.1. See
``docs/bridge.md`` for the endpoints, idempotency keys and the error mapping.
"""

try:
    import fastapi  # noqa: F401 - only to say what to install when the extra is missing
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        'ibflow.bridge needs FastAPI and uvicorn: pip install "ibflow[bridge]"'
    ) from exc

from ._app import create_app
from ._serve import serve

__all__ = ["create_app", "serve"]

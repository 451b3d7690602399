"""``ibflow.bridge``: Interactive Brokers over HTTP and WebSockets, through one ibflow Session.

An optional extra (``pip install "ibflow[bridge]"``: FastAPI and uvicorn), so ``import ibflow``
never pulls a web framework in. Run it with ``ibflow bridge`` (``--sim`` for the embedded
simulator), with ``uvicorn --factory ibflow.bridge:create_app`` (settings from the environment),
or build the app yourself::

    from ibflow.bridge import create_app

    app = create_app()  # connects a Session from the environment in the app's lifespan

It speaks the TWS Bridge Server's API too (``POST /api/v1/bars``…). It can place orders: keep it
on 127.0.0.1, or set ``IBFLOW_BRIDGE_TOKEN``. See ``docs/bridge.md`` for the endpoints,
security, metrics, idempotency keys and the error mapping.
"""

try:
    import fastapi  # noqa: F401 - only to say what to install when the extra is missing
    import prometheus_client  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        'ibflow.bridge needs FastAPI, uvicorn and prometheus_client: pip install "ibflow[bridge]"'
    ) from exc

from ._app import create_app
from ._serve import serve
from ._settings import BridgeSettings

__all__ = ["BridgeSettings", "create_app", "serve"]

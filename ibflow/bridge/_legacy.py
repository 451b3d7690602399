"""The routes' first home: each old path answers 308 with its new place under ``/api/v1``.

308 keeps the method and the body, so a client written before the move (``POST /orders`` with
its body and ``Idempotency-Key``) still works when its HTTP library follows redirects, and the
OpenAPI document lists the old paths as deprecated.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

__all__ = ["redirect_old_paths"]


def redirect_old_paths(app: FastAPI, routes: Iterable[BaseRoute], prefix: str) -> None:
    """Add a 308 redirect to each route (under ``prefix``) from its path without it."""
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        old = route.path.removeprefix(prefix)
        app.add_api_route(
            old,
            _moved(route.path_format.removeprefix(prefix), prefix),
            methods=sorted(route.methods or ()),
            name=f"moved_{route.name}",
            summary=f"Moved to {route.path}",
            description=f"Answers 308 to `{route.path}`, keeping the method and body.",
            deprecated=True,
            tags=route.tags,
            status_code=308,
            responses={308: {"description": f"now at {route.path}"}},
        )


def _moved(template: str, prefix: str) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def moved(request: Request) -> Response:
        here = template.format(**request.path_params)
        full = request.url.path
        # Whatever comes before the route's own path (a mount's prefix) stays in front.
        head = full[: len(full) - len(here)] if full.endswith(here) else ""
        target = request.url.replace(path=f"{head}{prefix}{here}")
        return RedirectResponse(str(target), status_code=308)

    return moved

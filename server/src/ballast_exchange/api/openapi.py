"""The OpenAPI documents and the interactive docs (docs/adr/0020-openapi-documents-and-docs.md).

Two documents, each built once from the routes: the public one at ``/v1/openapi.json`` (market
data and the signed trading and account endpoints) and the operator's at
``/v1/admin/openapi.json``, served only with the admin token, as the admin routes are. Which
document a route belongs to, and the security it declares, follow from the dependency that
guards it (``admin``, or the signed ``trader`` and ``reader``), so neither can drift from what
is enforced. ``/docs`` is Swagger UI from assets shipped in a package (``fastapi-offline``) and
served here: a self-hosted venue's docs work without internet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import metadata, resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from starlette.staticfiles import StaticFiles

from .routes.admin import admin
from .routes.orders import reader, trader

PUBLIC_DOCUMENT = "/v1/openapi.json"
ADMIN_DOCUMENT = "/v1/admin/openapi.json"
DOCS_PATH = "/docs"
DOCS_ASSETS = "/docs/assets"

SIGNED = "signed"
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "ApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <API_KEY>`",
    },
    "Timestamp": {
        "type": "apiKey",
        "in": "header",
        "name": "X-BM-Timestamp",
        "description": "Unix time in milliseconds, within 30 s of the server's (`GET /v1/time`)",
    },
    "Signature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-BM-Signature",
        "description": "hex HMAC-SHA256, keyed with the API secret, of "
        "`timestamp + METHOD + path + body` (path with `/v1` and the query string); "
        "good once",
    },
}
# All three together: a signed request carries the key, the timestamp and the signature.
SIGNED_REQUIREMENT: list[dict[str, list[str]]] = [{name: [] for name in SECURITY_SCHEMES}]
ADMIN_SCHEMES: dict[str, dict[str, Any]] = {
    "AdminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <admin token>` (the data dir's `admin_token`)",
    }
}
ADMIN_REQUIREMENT: list[dict[str, list[str]]] = [{"AdminToken": []}]
# FastAPI's own validation schemas: its 422 is never answered (validation fails with a 400 in
# the error envelope), so neither the status nor these schemas belong in a document.
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def package_version() -> str:
    """The installed distribution's version, as a client's bug report should quote it."""
    try:
        return metadata.version("ballast-exchange")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def guard(route: Any) -> str | None:
    """``admin``, ``signed`` or None (public), from the dependencies the route runs."""
    calls = set(_calls(route.dependant))
    if admin in calls:
        return "admin"
    if trader in calls or reader in calls:
        return SIGNED
    return None


def _documented(app: FastAPI) -> list[Any]:
    """The app's documented operations as routed: an included router's under its prefix
    (newer FastAPI includes routers lazily and hands out route contexts for them)."""
    expand = getattr(routing, "iter_route_contexts", None)
    found: list[Any] = list(expand(app.routes) if expand is not None else app.routes)
    return [
        route
        for route in found
        if isinstance(getattr(route, "original_route", route), APIRoute) and route.include_in_schema
    ]


def build(app: FastAPI, routes: list[Any], title: str, operator: bool) -> dict[str, Any]:
    """One document: ``routes``' operations with their security, and only the responses they
    give (FastAPI's 422 and its validation schemas taken out)."""
    schema = get_openapi(
        title=title,
        version=app.version,
        description=app.description,
        routes=routes,
    )
    guards = {
        (route.path, method.lower()): guard(route) for route in routes for method in route.methods
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            operation.get("responses", {}).pop("422", None)
            if operator:
                operation["security"] = ADMIN_REQUIREMENT
            elif guards.get((path, method)) == SIGNED:
                operation["security"] = SIGNED_REQUIREMENT
    components = schema.setdefault("components", {})
    for name in FASTAPI_VALIDATION:
        components.get("schemas", {}).pop(name, None)
    components["securitySchemes"] = ADMIN_SCHEMES if operator else SECURITY_SCHEMES
    return schema


def documented_paths(app: FastAPI) -> list[str]:
    """The path templates of both documents (for the access log's route labels)."""
    return [route.path for route in _documented(app)]


def install(app: FastAPI) -> None:
    """Serve the public document, the admin one and the docs page with their assets. The
    documents are built from the routes on first use, so routers included later are in them."""
    cache: dict[bool, dict[str, Any]] = {}

    def document(operator: bool) -> dict[str, Any]:
        if operator not in cache:
            routes = [r for r in _documented(app) if (guard(r) == "admin") == operator]
            title = f"{app.title} (operator)" if operator else app.title
            cache[operator] = build(app, routes, title, operator)
        return cache[operator]

    def public_document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(False)
        return app.openapi_schema

    app.openapi = public_document  # type: ignore[method-assign]

    operator_router = APIRouter()

    @operator_router.get(ADMIN_DOCUMENT, include_in_schema=False)
    async def admin_document(_: Annotated[None, Depends(admin)]) -> JSONResponse:
        """The operator's endpoints, behind the admin token like the endpoints themselves."""
        return JSONResponse(document(True))

    app.include_router(operator_router)

    assets = resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=PUBLIC_DOCUMENT,
            title=f"{app.title}: interactive docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            # No badge fetched from the public validator: nothing leaves the venue.
            swagger_ui_parameters={"validatorUrl": None},
        )

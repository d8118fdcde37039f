"""The API's documentation pages, served without internet: Swagger UI at /docs, ReDoc at /redoc, and `GET /`
naming them.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine without internet they stay blank.
The assets come from an installed package instead, `fastapi-offline` (MIT; Swagger UI is Apache-2.0, ReDoc
MIT): each of its releases vendors the then current bundles (1.7.7: Swagger UI 5.32.6, ReDoc 2.5.3, both
self-contained, plus a favicon), its releases have followed FastAPI's changes to these pages (Swagger UI 5
for FastAPI 0.99 in 2023, FastAPI's CDN addresses in 2024), and it needs nothing but FastAPI. The others
looked at: `swagger-ui-bundle` 1.1.0 (Swagger UI 4.15, which cannot read OpenAPI 3.1, and no ReDoc),
`fastapi-swagger` (Swagger UI only), `fastapi-offline-docs` 1.1.0 (older bundles, no licence stated),
`scalar-fastapi` (ships no assets: Scalar comes from a CDN).
Only the package's files are used: its `FastAPIOffline` factory builds a plain FastAPI, not this app.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from callmemory import __version__

# The browser holds both pages to this origin: ReDoc's footer would fetch its logo from cdn.redoc.ly (and
# hide it when that fails). Inline scripts and styles: the pages start their bundle inline, and both
# bundles style themselves with <style> elements; blob: is where ReDoc runs its search worker.
POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
    ]
)

DOCS: Final = "/docs"
REDOC: Final = "/redoc"
ASSETS: Final = "/docs/assets"
_PACKAGE: Final = ("fastapi_offline", "static")

# The order is the order of the sections in both pages.
TAGS: Final[list[dict[str, Any]]] = [
    {
        "name": "webhooks",
        "description": "The seed webhook format: a telephony platform posts each call event (ringing, "
        "recognised speech, hangup) and gets back what the bot says. Sign requests with "
        "CALLMEMORY_WEBHOOK_SECRET, or send CALLMEMORY_WEBHOOK_TOKEN as a bearer token; with neither set "
        "the webhook is open (the local default).",
    },
    {
        "name": "integrator API",
        "description": "For bots that run their own conversation loop: a caller's memory, their calls and "
        "data, and its erasure. Every request needs a key of CALLMEMORY_API_KEYS as "
        "`Authorization: Bearer <key>` (on /docs: Authorize); a key with a `bot_number` reaches only that "
        "bot's callers. Phone numbers in the path are E.164, with the `+` URL-encoded as `%2B`.",
    },
    {
        "name": "voipbin",
        "description": "VoIPBin's two URLs: the fetch action's URL, which answers a call with the greeting "
        "and the caller's memory, and the event webhook. Set CALLMEMORY_VOIPBIN_FETCH_TOKEN (the fetch URL "
        "answers 404 without it) and CALLMEMORY_VOIPBIN_WEBHOOK_SECRET.",
    },
    {
        "name": "twilio",
        "description": "Twilio Programmable Voice: the number's Voice URL, the speech gathers it leads to, "
        "and the status callback. Each request must carry a valid X-Twilio-Signature made with "
        "CALLMEMORY_TWILIO_AUTH_TOKEN; without that setting these routes answer 404.",
    },
    {
        "name": "health",
        "description": "Liveness and readiness probes for a process supervisor or a load balancer.",
    },
    {
        "name": "operations",
        "description": "The Prometheus scrape target (CALLMEMORY_METRICS_ENABLED turns it off).",
    },
]

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    # Behind a proxy that serves the app under a prefix, every link must carry it.
    root: str = request.scope.get("root_path", "")
    return root


def _openapi_url(request: Request) -> str:
    url = request.app.openapi_url
    assert isinstance(url, str), "the docs pages need the OpenAPI document"
    return _root(request) + url


def _held_to_this_origin(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = POLICY
    return page


@router.get(DOCS)
async def swagger_ui(request: Request) -> HTMLResponse:
    assets = _root(request) + ASSETS
    page = get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon.png",
        # The validator badge would send the document to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return _held_to_this_origin(page)


@router.get(REDOC)
async def redoc(request: Request) -> HTMLResponse:
    assets = _root(request) + ASSETS
    page = get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{assets}/redoc.standalone.js",
        redoc_favicon_url=f"{assets}/favicon.png",
        with_google_fonts=False,
    )
    return _held_to_this_origin(page)


@router.get("/")
async def index(request: Request) -> dict[str, str]:
    """Where a person who opened the service's address goes next."""
    root = _root(request)
    return {
        "service": "callmemory",
        "version": __version__,
        "docs": f"{root}{DOCS}",
        "redoc": f"{root}{REDOC}",
        "openapi": _openapi_url(request),
        "health": f"{root}/healthz",
        "ready": f"{root}/readyz",
    }


def install(app: FastAPI) -> None:
    """The pages and their assets, on an app built with `docs_url=None, redoc_url=None`."""
    app.mount(ASSETS, StaticFiles(packages=[_PACKAGE]), name="docs-assets")
    app.include_router(router)

"""The documentation pages work without internet: every script, stylesheet and icon they load is served by the
service itself, and `GET /` says where they are."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest
from asgi_lifespan import LifespanManager

from callmemory.app import create_app
from callmemory.settings import Settings

PAGES = ["/docs", "/redoc"]


class _Loads(HTMLParser):
    """The URLs a page makes the browser fetch: scripts, stylesheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        url = found.get("src") if tag in ("script", "img") else found.get("href") if tag == "link" else None
        if url:
            self.urls.append(url)


def loaded_by(page: str) -> list[str]:
    parser = _Loads()
    parser.feed(page)
    return parser.urls


@pytest.mark.parametrize("page", PAGES)
async def test_every_script_stylesheet_and_icon_of_a_docs_page_is_served_by_the_service(
    client: httpx.AsyncClient, page: str
) -> None:
    answer = await client.get(page)
    urls = loaded_by(answer.text)
    fetched = {url: await client.get(url) for url in urls if url.startswith("/") and not url.startswith("//")}

    assert answer.status_code == 200
    assert len(urls) >= 2  # the bundle and the icon, and Swagger UI's stylesheet
    assert sorted(fetched) == sorted(urls), "a page loads something from another host"
    assert {url: a.status_code for url, a in fetched.items()} == dict.fromkeys(urls, 200)
    assert all(len(a.content) > 500 for a in fetched.values())


@pytest.mark.parametrize("page", PAGES)
async def test_a_docs_page_names_no_other_host(client: httpx.AsyncClient, page: str) -> None:
    # Not in a tag, not in the inline script that starts the bundle (fonts, a validator, a CDN).
    text = (await client.get(page)).text

    assert "http://" not in text
    assert "https://" not in text


@pytest.mark.parametrize("page", PAGES)
async def test_a_docs_page_holds_the_browser_to_the_service_itself(
    client: httpx.AsyncClient, page: str
) -> None:
    # What the bundles fetch once running (ReDoc's footer logo is on a CDN) is blocked by the browser.
    policy = (await client.get(page)).headers["content-security-policy"]
    directives = dict(d.strip().partition(" ")[::2] for d in policy.split(";"))
    sources = {source for value in directives.values() for source in value.split()}

    assert directives["default-src"] == "'self'"
    assert sources <= {"'self'", "'unsafe-inline'", "data:", "blob:"}


@pytest.mark.parametrize(
    ("asset", "media_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "text/javascript"),
        ("favicon.png", "image/png"),
    ],
)
async def test_the_assets_are_served_as_what_they_are(
    client: httpx.AsyncClient, asset: str, media_type: str
) -> None:
    answer = await client.get(f"/docs/assets/{asset}")

    assert answer.status_code == 200
    assert answer.headers["content-type"].split(";")[0] == media_type


async def test_the_docs_pages_point_at_the_openapi_document(client: httpx.AsyncClient) -> None:
    for page in PAGES:
        assert "/openapi.json" in (await client.get(page)).text
    assert (await client.get("/openapi.json")).status_code == 200


async def test_the_root_names_the_docs_the_document_and_the_probes(client: httpx.AsyncClient) -> None:
    answer = await client.get("/")
    named = answer.json()

    assert answer.status_code == 200
    assert {named["docs"], named["redoc"], named["openapi"], named["ready"]} == {
        "/docs",
        "/redoc",
        "/openapi.json",
        "/readyz",
    }
    for path in ("docs", "redoc", "openapi", "health", "ready"):
        assert (await client.get(named[path])).status_code == 200, path


async def test_behind_a_path_prefix_the_pages_and_the_root_link_under_it(settings: Settings) -> None:
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app, root_path="/memory"), base_url="http://proxy.test"
        ) as client,
    ):
        page = (await client.get("/memory/docs")).text
        named = (await client.get("/memory/")).json()
        asset = await client.get(loaded_by(page)[0])

    assert all(url.startswith("/memory/docs/assets/") for url in loaded_by(page))
    assert "'/memory/openapi.json'" in page
    assert named["docs"] == "/memory/docs"
    assert asset.status_code == 200

"""/docs and /redoc load Swagger UI and ReDoc from the server itself, not from a CDN."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from customer_updates.http import create_app
from customer_updates.settings import Settings


def test_the_docs_pages_load_every_script_and_style_from_the_server_itself():
    client = TestClient(create_app(Settings()))  # no lifespan: the pages need neither Redis nor the database
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200, page
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
        assets += re.findall(r"""url: ?["']([^"']+\\.(?:js|css))["']""", html.text)
        assert assets, html.text[:500]
        for asset in assets:
            assert not asset.startswith(("http://", "https://", "//")), f"{page} loads {asset} from elsewhere"
            served = client.get(asset)
            assert served.status_code == 200, asset
            assert len(served.content) > 1000 or asset.endswith(".png"), asset
    assert client.get("/openapi.json").json()["info"]["title"] == "customer-updates HTTP ingress"

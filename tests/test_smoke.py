from aggregator.tools.feedserver import Response


def test_loopback_server_logs_requests(server, routes):
    import httpx

    routes["/hello"] = Response(200, b"hi", {"Content-Type": "text/plain"})
    assert httpx.get(server.url("/hello")).text == "hi"
    assert httpx.get(server.url("/missing")).status_code == 404
    assert server.paths() == ["/hello", "/missing"]

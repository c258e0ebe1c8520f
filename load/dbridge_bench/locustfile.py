"""Locust mixes of the FastAPI scenario endpoints (apps/scenarios_app.py) with think time.
`dbridge-asgi bench --scenario locust_mix` runs ApiUser headless against each server;
load/soak.py runs SoakUser for its long run. A run names the class it wants."""

import json

from locust import FastHttpUser, between, task

ITEM = json.dumps({"name": "widget", "description": "x" * 800, "price": 12.5, "tags": ["a"] * 20})
ECHO = b"e" * 2048


class ApiUser(FastHttpUser):
    wait_time = between(0.001, 0.01)

    @task(10)
    def get_root(self):
        self.client.get("/")

    @task(5)
    def params(self):
        self.client.get("/users/42?limit=10&q=abc", name="/users/{id}")

    @task(3)
    def post_item(self):
        self.client.post("/items", data=ITEM, headers={"Content-Type": "application/json"})

    @task(2)
    def bytes_10k(self):
        self.client.get("/bytes/10240")

    @task(1)
    def file(self):
        self.client.get("/file")

    @task(1)
    def stream(self):
        self.client.get("/stream")


class SoakUser(ApiUser):
    """ApiUser's mix plus a body read back (echo) and a handler that awaits a sleep, so every
    kind of request and response body the server keeps state for is in the soak. The think
    time paces each user to about 25 requests a second: the soak watches memory per request,
    so it needs many requests over a long time, not a saturated server."""

    wait_time = between(0.02, 0.06)

    @task(2)
    def echo(self):
        self.client.post("/echo", data=ECHO, headers={"Content-Type": "application/octet-stream"})

    @task(1)
    def slow(self):
        self.client.get("/slow")

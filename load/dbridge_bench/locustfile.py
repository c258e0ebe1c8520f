"""A locust mix of the FastAPI scenario endpoints (apps/scenarios_app.py) with think time:
`dbridge-asgi bench --scenario locust_mix` runs it headless against each server."""

import json

from locust import FastHttpUser, between, task

ITEM = json.dumps({"name": "widget", "description": "x" * 800, "price": 12.5, "tags": ["a"] * 20})


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

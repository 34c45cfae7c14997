# SPDX-License-Identifier: Apache-2.0
"""examples/fastapi_app.py: a FastAPI app with async @cached endpoints over a
two-tier cache (memory in each process in front of Redis, kept coherent by
Redis's invalidation messages), and its metrics on /metrics of the same port.

    CM_REDIS_URL=redis://127.0.0.1:6379/0 uvicorn --app-dir examples fastapi_app:app
    # a pool of workers sharing one view of the metrics (docs/multiprocess.md):
    CM_SHARED_DIR=/run/app/metrics CM_REDIS_URL=... uvicorn --workers 2 --app-dir examples fastapi_app:app

Without CM_REDIS_URL the cache is a memory:// cache of each process.
Debian packages: python3-fastapi, python3-uvicorn.
"""
import asyncio
import os

from fastapi import FastAPI, HTTPException

import cachemeter

shared = os.environ.get("CM_SHARED_DIR")
registry = cachemeter.Registry(shared=shared) if shared else cachemeter.Registry()

redis_url = os.environ.get("CM_REDIS_URL")
if redis_url:
    users_cache = cachemeter.Cache.tiered("memory://?max_entries=10000", redis_url, "users", registry=registry)
else:
    users_cache = cachemeter.Cache("memory://?max_entries=10000", "users", registry=registry)


@cachemeter.cached(cache=users_cache, ttl=60)
async def load_user(user_id: int) -> dict:
    """The slow part (a database query, say): 5 ms."""
    await asyncio.sleep(0.005)
    if user_id < 0:
        raise LookupError(f"no user {user_id}")
    return {"id": user_id, "name": f"user-{user_id}", "roles": ["reader"]}


app = FastAPI()


@app.get("/users/{user_id}")
async def get_user(user_id: int) -> dict:
    try:
        return await load_user(user_id=user_id)  # FastAPI-style keyword call: one entry with load_user(7)
    except LookupError as e:
        raise HTTPException(status_code=404, detail=str(e)) from None


@app.get("/uncached/users/{user_id}")
async def get_user_uncached(user_id: int) -> dict:
    """The same work without the cache (the benchmark's baseline)."""
    return await load_user.__wrapped__(user_id=user_id)


app.mount("/metrics", cachemeter.make_asgi_app(registry))

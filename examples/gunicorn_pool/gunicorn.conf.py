# SPDX-License-Identifier: Apache-2.0
# gunicorn settings for app.py (docs/multiprocess.md).
#   CM_SHARED_DIR=/run/app/metrics gunicorn -c gunicorn.conf.py app:app
workers = 4
bind = "127.0.0.1:8000"
# The master imports the app (and makes the shared registry) once, then
# forks: every worker writes its own slot in CM_SHARED_DIR. Without
# preload_app each worker imports the app itself; that works the same.
preload_app = True


def on_starting(server):
    # Counters continue across restarts of the whole pool (the directory is
    # the state). To start every pool from zero instead, remove the
    # directory here: this runs in the master before any worker exists.
    #   import os, shutil
    #   shutil.rmtree(os.environ["CM_SHARED_DIR"], ignore_errors=True)
    pass
